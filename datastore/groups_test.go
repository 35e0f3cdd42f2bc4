package datastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

func transition(gid []byte, from uint64, keep uint64) EpochTransition {
	return EpochTransition{
		GroupID:        gid,
		Decision:       Decision{Epoch: from, Commit: []byte(fmt.Sprintf("commit-%d", from)), Certificate: []byte(fmt.Sprintf("cert-%d", from))},
		State:          []byte(fmt.Sprintf("state-%d", from+1)),
		EpochSecrets:   pattern(fmt.Sprintf("secrets-%d", from+1), 48),
		KeepPastEpochs: keep,
	}
}

func TestEpochTransitions(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	g := s.Groups()
	gid := []byte("group-1")
	if err := g.Create(ctx, NewGroup{GroupID: gid, Epoch: 0, State: []byte("state-0"), EpochSecrets: pattern("secrets-0", 48)}); err != nil {
		t.Fatal(err)
	}
	if err := g.Create(ctx, NewGroup{GroupID: gid}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v", err)
	}
	for e := uint64(0); e < 6; e++ {
		if err := s.Consensus().SaveAcceptor(ctx, gid, e, []byte(fmt.Sprintf("acceptor-%d", e))); err != nil {
			t.Fatal(err)
		}
		if err := g.Transition(ctx, transition(gid, e, 2)); err != nil {
			t.Fatalf("transition %d: %v", e, err)
		}
		st, err := g.State(ctx, gid)
		if err != nil || st.Epoch != e+1 || string(st.State) != fmt.Sprintf("state-%d", e+1) {
			t.Fatalf("after transition %d: %+v, %v", e, st, err)
		}
		epochs, err := g.RetainedEpochs(ctx, gid)
		if err != nil {
			t.Fatal(err)
		}
		var want []uint64
		for x := int64(e+1) - 2; x <= int64(e+1); x++ {
			if x >= 0 {
				want = append(want, uint64(x))
			}
		}
		if !slices.Equal(epochs, want) {
			t.Fatalf("after transition %d retained epochs %v, want %v", e, epochs, want)
		}
		if acc, err := s.Consensus().AcceptorEpochs(ctx, gid); err != nil || len(acc) != 0 {
			t.Fatalf("acceptor records after transition %d: %v, %v", e, acc, err)
		}
	}
	// A stale or replayed transition is refused and changes nothing.
	var ce *EpochConflictError
	if err := g.Transition(ctx, transition(gid, 3, 2)); !errors.As(err, &ce) || ce.Stored != 6 || ce.Want != 3 {
		t.Fatalf("stale transition: %v", err)
	}
	if err := s.Consensus().SaveAcceptor(ctx, gid, 2, []byte("late")); !errors.Is(err, ErrEpochConflict) {
		t.Fatalf("acceptor state for a decided epoch: %v", err)
	}
	ds, err := g.Decisions(ctx, gid, 2, 3)
	if err != nil || len(ds) != 3 {
		t.Fatalf("Decisions: %d, %v", len(ds), err)
	}
	for i, d := range ds {
		if d.Epoch != uint64(2+i) || string(d.Commit) != fmt.Sprintf("commit-%d", 2+i) || !bytes.Equal(d.GroupID, gid) {
			t.Errorf("decision %d: %+v", i, d)
		}
	}
	if err := g.PruneDecisions(ctx, gid, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Decision(ctx, gid, 3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned decision: %v", err)
	}
	if _, err := g.Decision(ctx, gid, 4); err != nil {
		t.Fatalf("kept decision: %v", err)
	}
	// Same-epoch state updates.
	if err := g.SaveState(ctx, GroupState{GroupID: gid, Epoch: 6, State: []byte("state-6b")}); err != nil {
		t.Fatal(err)
	}
	if err := g.SaveState(ctx, GroupState{GroupID: gid, Epoch: 5, State: []byte("x")}); !errors.Is(err, ErrEpochConflict) {
		t.Fatalf("SaveState of another epoch: %v", err)
	}
	list, err := g.List(ctx)
	if err != nil || len(list) != 1 || list[0].Epoch != 6 || !bytes.Equal(list[0].GroupID, gid) {
		t.Fatalf("List: %+v, %v", list, err)
	}
	if err := g.Transition(ctx, EpochTransition{GroupID: []byte("nope")}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("transition of unknown group: %v", err)
	}
}

func TestGroupDeleteRemovesEverythingButHistory(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	gid := []byte("g")
	other := []byte("other")
	for _, id := range [][]byte{gid, other} {
		if err := s.Groups().Create(ctx, NewGroup{GroupID: id, State: []byte("s")}); err != nil {
			t.Fatal(err)
		}
		if err := s.Groups().Transition(ctx, transition(id, 0, 3)); err != nil {
			t.Fatal(err)
		}
		if err := s.Consensus().SaveAcceptor(ctx, id, 1, []byte("a")); err != nil {
			t.Fatal(err)
		}
		if err := s.MessageLog().Append(ctx, id, []LogEntry{{MessageID: []byte("m"), Ciphertext: []byte("c")}}); err != nil {
			t.Fatal(err)
		}
		if err := s.History().Append(ctx, id, []HistoryEntry{{Body: []byte("hello")}}); err != nil {
			t.Fatal(err)
		}
	}
	before := len(rawEntries(t, s))
	if err := s.Groups().Delete(ctx, gid); err != nil {
		t.Fatal(err)
	}
	after := rawEntries(t, s)
	// state, 2 secrets, 1 decision, 1 acceptor, 1 log entry, 1 index entry
	if before-len(after) != 7 {
		t.Fatalf("Delete removed %d records, want 7", before-len(after))
	}
	if _, err := s.Groups().State(ctx, other); err != nil {
		t.Fatalf("other group: %v", err)
	}
	if h, err := s.History().Newest(ctx, gid, 10); err != nil || len(h) != 1 {
		t.Fatalf("history of deleted group: %d, %v", len(h), err)
	}
	if err := s.History().Delete(ctx, gid); err != nil {
		t.Fatal(err)
	}
	if h, err := s.History().Newest(ctx, gid, 10); err != nil || len(h) != 0 {
		t.Fatalf("history after History.Delete: %d, %v", len(h), err)
	}
}

func TestJoinAndRatchet(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	gid := []byte("joined")
	if err := s.Groups().Join(ctx, NewGroup{GroupID: gid, KeyPackageRef: []byte("missing")}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Join with unknown KeyPackage: %v", err)
	}
	if err := s.KeyPackages().Put(ctx, KeyPackage{Ref: []byte("lr"), InitPrivateKey: []byte("lr-init"), LastResort: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Groups().Join(ctx, NewGroup{GroupID: gid, Epoch: 7, State: []byte("s7"), EpochSecrets: []byte("e7"), KeyPackageRef: []byte("lr")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KeyPackages().Get(ctx, []byte("lr")); err != nil {
		t.Fatalf("last-resort KeyPackage deleted by Join: %v", err)
	}
	k := RatchetKey{KeyID: KeyID{Epoch: 7, Leaf: 3, Generation: 9}, Key: []byte("mk")}
	if err := s.Groups().Ratchet(ctx, RatchetUpdate{GroupID: gid, Epoch: 7, Secrets: []byte("e7'"), Retain: []RatchetKey{k}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Groups().RatchetKey(ctx, gid, k.KeyID)
	if err != nil || string(got.Key) != "mk" || got.KeyID != k.KeyID {
		t.Fatalf("RatchetKey: %+v, %v", got, err)
	}
	if sec, err := s.Groups().EpochSecrets(ctx, gid, 7); err != nil || string(sec) != "e7'" {
		t.Fatalf("EpochSecrets: %q, %v", sec, err)
	}
	if err := s.Groups().Ratchet(ctx, RatchetUpdate{GroupID: gid, Epoch: 6, Secrets: []byte("old")}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ratchet update of an unretained epoch: %v", err)
	}
	if err := s.Groups().Ratchet(ctx, RatchetUpdate{GroupID: gid, Epoch: 7, Retain: []RatchetKey{{KeyID: KeyID{Epoch: 8}}}}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("key of another epoch: %v", err)
	}
	if err := s.Groups().Ratchet(ctx, RatchetUpdate{GroupID: gid, Epoch: 7, Used: []KeyID{k.KeyID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Groups().RatchetKey(ctx, gid, k.KeyID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("used key still there: %v", err)
	}
}
