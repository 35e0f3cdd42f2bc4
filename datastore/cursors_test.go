package datastore

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestSyncCursors(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	sc := s.SyncCursors()
	gid, other := []byte("group"), []byte("other")
	peerA, peerB := []byte("12D3KooWpeerA"), []byte("12D3KooWpeerB")

	if _, err := sc.Get(ctx, gid, peerA); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before Put: %v", err)
	}
	if err := sc.Put(ctx, gid, SyncCursor{Peer: peerA, Cursor: []byte("c1"), UpdatedAt: fuzzTime}); err != nil {
		t.Fatal(err)
	}
	if err := sc.Put(ctx, gid, SyncCursor{Peer: peerA, Cursor: []byte("c2")}); err != nil {
		t.Fatal(err)
	}
	if err := sc.Put(ctx, gid, SyncCursor{Peer: peerB, Cursor: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	if err := sc.Put(ctx, other, SyncCursor{Peer: peerA, Cursor: []byte("o")}); err != nil {
		t.Fatal(err)
	}
	got, err := sc.Get(ctx, gid, peerA)
	if err != nil || string(got.Cursor) != "c2" || !bytes.Equal(got.Peer, peerA) {
		t.Fatalf("Get after replace: %+v, %v", got, err)
	}
	list, err := sc.List(ctx, gid)
	if err != nil || len(list) != 2 {
		t.Fatalf("List: %+v, %v", list, err)
	}

	// Keys do not show the group or the peer.
	for k := range rawEntries(t, s) {
		if strings.Contains(k, "group") || strings.Contains(k, "peerA") {
			t.Fatalf("key %q shows an identifier", k)
		}
	}

	if err := sc.Delete(ctx, gid, peerB); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Get(ctx, gid, peerB); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if err := sc.Delete(ctx, gid, peerB); err != nil {
		t.Fatalf("deleting an absent cursor: %v", err)
	}

	// Leaving the group deletes its cursors, not another group's.
	if err := s.Groups().Create(ctx, NewGroup{GroupID: gid, State: []byte("s")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Groups().Delete(ctx, gid); err != nil {
		t.Fatal(err)
	}
	if list, err := sc.List(ctx, gid); err != nil || len(list) != 0 {
		t.Fatalf("cursors after Groups.Delete: %+v, %v", list, err)
	}
	if _, err := sc.Get(ctx, other, peerA); err != nil {
		t.Fatalf("other group's cursor: %v", err)
	}

	rep, err := s.Verify(ctx)
	if err != nil || len(rep.Damaged) != 0 {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
}

func TestSyncCursorsRefuseBadInput(t *testing.T) {
	ctx := context.Background()
	sc := openMem(t).SyncCursors()
	for name, c := range map[string]struct {
		gid []byte
		cur SyncCursor
	}{
		"no group":    {nil, SyncCursor{Peer: []byte("p"), Cursor: []byte("c")}},
		"no peer":     {[]byte("g"), SyncCursor{Cursor: []byte("c")}},
		"long cursor": {[]byte("g"), SyncCursor{Peer: []byte("p"), Cursor: make([]byte, maxCursor+1)}},
	} {
		if err := sc.Put(ctx, c.gid, c.cur); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzSyncCursor(f *testing.F) {
	fuzzRoundTrip(f, unmarshalSyncCursor, SyncCursor{Peer: []byte("p"), Cursor: []byte("cursor"), UpdatedAt: fuzzTime}, SyncCursor{Peer: []byte("p")})
}
