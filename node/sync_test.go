package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/gossip"
	"github.com/conclave-im/conclave/mls"
)

// servingNode is a node with only a store and a profile: enough to serve
// message pages without a network.
func servingNode(t *testing.T) *Node {
	t.Helper()
	s, err := datastore.Open(context.Background(), datastore.Options{Backend: datastore.BackendMemory, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &Node{store: s, prof: testProfile(), log: testLogger()}
}

func appendLog(t *testing.T, n *Node, gid []byte, epoch uint64, texts ...string) {
	t.Helper()
	var es []datastore.LogEntry
	for _, x := range texts {
		es = append(es, datastore.LogEntry{MessageID: []byte(x), Epoch: epoch, ReceivedAt: time.Now(), Ciphertext: []byte(x)})
	}
	if err := n.store.MessageLog().Append(context.Background(), gid, es); err != nil {
		t.Fatal(err)
	}
}

// page asks n for a page after cursor and returns the texts and the next
// cursor.
func page(t *testing.T, n *Node, sc servingScope, cursor []byte, limit uint32) ([]string, []byte, bool) {
	t.Helper()
	resp, err := n.serveMessages(context.Background(), sc, gossip.MessagesRequest{GroupID: sc.gid, Cursor: cursor, Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range resp.Messages {
		out = append(out, string(m))
	}
	if _, err := parseMessageCursor(resp.Next); err != nil {
		t.Fatalf("served cursor: %v", err)
	}
	return out, resp.Next, resp.More
}

func TestServeMessagesCursors(t *testing.T) {
	n := servingNode(t)
	gid := []byte("group")
	sc := servingScope{gid: gid, epoch: 7}
	appendLog(t, n, gid, 1, "m1", "m2", "m3", "m4", "m5")

	got, c1, more := page(t, n, sc, nil, 2)
	if fmt.Sprint(got) != "[m1 m2]" || !more {
		t.Fatalf("first page %v more=%v", got, more)
	}
	if cur, _ := parseMessageCursor(c1); cur.epoch != 7 || cur.seq != 2 {
		t.Fatalf("cursor %+v", cur)
	}
	got, c2, _ := page(t, n, sc, c1, 2)
	got3, c3, more := page(t, n, sc, c2, 2)
	if fmt.Sprint(got, got3) != "[m3 m4] [m5]" || more {
		t.Fatalf("next pages %v %v more=%v", got, got3, more)
	}
	// Nothing new: the same position comes back.
	got, c4, more := page(t, n, sc, c3, 2)
	if len(got) != 0 || more || !bytes.Equal(c4, c3) {
		t.Fatalf("idle page %v more=%v, cursor moved: %v", got, more, !bytes.Equal(c4, c3))
	}
	appendLog(t, n, gid, 1, "m6")
	if got, _, _ := page(t, n, sc, c3, 2); fmt.Sprint(got) != "[m6]" {
		t.Fatalf("after a new message: %v", got)
	}

	// The log is deleted (the node left and rejoined) and starts again:
	// a cursor beyond its end gets it from the start.
	ctx := context.Background()
	if err := n.store.Groups().Delete(ctx, gid); err != nil {
		t.Fatal(err)
	}
	appendLog(t, n, gid, 9, "n1", "n2")
	if got, _, _ := page(t, n, sc, c3, 10); fmt.Sprint(got) != "[n1 n2]" {
		t.Fatalf("cursor beyond a restarted log: %v", got)
	}
	// It grows past the old position: the entry there is another one.
	appendLog(t, n, gid, 9, "n3", "n4", "n5")
	if got, _, _ := page(t, n, sc, c3, 10); fmt.Sprint(got) != "[n1 n2 n3 n4 n5]" {
		t.Fatalf("stale cursor inside a restarted log: %v", got)
	}

	// Retention trimmed the entry a cursor points at: what is left.
	_, n2, _ := page(t, n, sc, nil, 2)
	if _, err := n.store.MessageLog().Trim(ctx, gid, datastore.Retention{MaxBytes: 1}); err != nil {
		t.Fatal(err)
	}
	appendLog(t, n, gid, 9, "n6")
	if got, _, _ := page(t, n, sc, n2, 10); fmt.Sprint(got) != "[n6]" {
		t.Fatalf("cursor into a trimmed log: %v", got)
	}

	for name, bad := range map[string][]byte{
		"short":         {1, 2, 3},
		"version":       append([]byte{9}, make([]byte, messageCursorLen-1)...),
		"check, no seq": append(append([]byte{1}, make([]byte, 8)...), append([]byte{1}, make([]byte, 15)...)...),
	} {
		_, err := n.serveMessages(ctx, sc, gossip.MessagesRequest{GroupID: gid, Cursor: bad})
		if !errors.Is(err, gossip.ErrBadRequest) {
			t.Errorf("%s cursor: %v", name, err)
		}
	}
}

// TestServeMessagesFromJoinEpoch: a requester never gets ciphertexts of
// epochs before it joined, and skipping many of them is bounded per
// request without losing its place.
func TestServeMessagesFromJoinEpoch(t *testing.T) {
	n := servingNode(t)
	gid := []byte("group")
	var old []string
	for i := range 3 * scanPages * 4 {
		old = append(old, fmt.Sprint("old", i))
	}
	appendLog(t, n, gid, 2, old...)
	appendLog(t, n, gid, 3, "new1", "new2")
	sc := servingScope{gid: gid, joined: 3, epoch: 3}
	var got []string
	var cursor []byte
	for range 10 {
		msgs, next, more := page(t, n, sc, cursor, 4)
		got = append(got, msgs...)
		cursor = next
		if !more {
			break
		}
	}
	if fmt.Sprint(got) != "[new1 new2]" {
		t.Fatalf("served %v", got)
	}
}

func FuzzMessageCursor(f *testing.F) {
	f.Add(messageCursor{}.marshal())
	f.Add(messageCursor{seq: 7, check: [8]byte{1, 2, 3}, epoch: 9}.marshal())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseMessageCursor(b)
		if err != nil {
			return
		}
		if out := c.marshal(); !bytes.Equal(out, b) {
			t.Fatalf("round trip changed the cursor:\n in  %x\n out %x", b, out)
		}
	})
}

// TestCatchUpServesOnlyEpochsOfMembership: a member added at epoch E that
// asks a member for everything from epoch 0 gets no decided Commit and no
// ciphertext of an epoch before E; an older member gets what it was there
// for; a non-member is told the group does not exist.
func TestCatchUpServesOnlyEpochsOfMembership(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	a, b, d, x := startNode(t, testOptions("")), startNode(t, testOptions("")), startNode(t, testOptions("")), startNode(t, testOptions(""))
	connectAll(t, ctx, a, b, d, x)
	gid := formGroup(t, ctx, a, b) // b joined at epoch 1
	waitTopicPeers(t, ctx, gid, a, b)
	for i := range 5 {
		if _, err := a.Send(ctx, gid, fmt.Sprint("before d ", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	waitText(t, ctx, b, gid, "before d 4")
	if err := a.Invite(ctx, gid, d.ID()); err != nil {
		t.Fatal(err)
	}
	const joined = 2
	if e := waitJoined(t, ctx, d, gid); e != joined {
		t.Fatalf("d joined at epoch %d", e)
	}
	waitEpoch(t, ctx, b, gid, joined)
	waitTopicPeers(t, ctx, gid, a, b, d)
	for i := range 3 {
		if _, err := a.Send(ctx, gid, fmt.Sprint("after d ", i), nil); err != nil {
			t.Fatal(err)
		}
		waitText(t, ctx, d, gid, fmt.Sprint("after d ", i))
	}
	// One more decision, at epoch 2, which d was there for.
	o := &op{desc: "leaf update", proposals: []mls.Proposal{}, done: make(chan error, 1)}
	if _, err := call(ctx, a.Node, func() (struct{}, error) {
		g := a.st.groups[string(gid)]
		g.ops = append(g.ops, o)
		a.tryCommit(g)
		return struct{}{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := waitOp(ctx, a.Node, o); err != nil {
		t.Fatal(err)
	}
	waitEpoch(t, ctx, d, gid, joined+1)

	ap := a.AddrInfo().ID
	epochs := func(n *testNode) []uint64 {
		t.Helper()
		resp, err := n.net.FetchCommits(ctx, ap, gossip.CommitsRequest{GroupID: gid, SinceEpoch: 0})
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, r := range resp.Commits {
			out = append(out, r.Epoch)
		}
		return out
	}
	if got := epochs(d); fmt.Sprint(got) != "[2]" {
		t.Errorf("d (joined at epoch 2) was served the decisions of epochs %v", got)
	}
	if got := epochs(b); fmt.Sprint(got) != "[1 2]" {
		t.Errorf("b (joined at epoch 1) was served the decisions of epochs %v", got)
	}
	messageEpochs := func(n *testNode) []uint64 {
		t.Helper()
		resp, err := n.net.FetchMessages(ctx, ap, gossip.MessagesRequest{GroupID: gid})
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, raw := range resp.Messages {
			var m mls.MLSMessage
			if err := m.Unmarshal(raw); err != nil || m.PrivateMessage == nil {
				t.Fatalf("served message does not parse: %v", err)
			}
			out = append(out, m.PrivateMessage.Epoch)
		}
		return out
	}
	if got := messageEpochs(d); fmt.Sprint(got) != "[2 2 2]" {
		t.Errorf("d was served messages of epochs %v", got)
	}
	if got := messageEpochs(b); fmt.Sprint(got) != "[1 1 1 1 1 2 2 2]" {
		t.Errorf("b was served messages of epochs %v", got)
	}
	if _, err := x.net.FetchMessages(ctx, ap, gossip.MessagesRequest{GroupID: gid}); !errors.Is(err, gossip.ErrNotFound) {
		t.Errorf("a non-member asking for messages: %v", err)
	}
	if _, err := x.net.FetchCommits(ctx, ap, gossip.CommitsRequest{GroupID: gid}); !errors.Is(err, gossip.ErrNotFound) {
		t.Errorf("a non-member asking for Commits: %v", err)
	}
}
