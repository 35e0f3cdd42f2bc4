package datastore

import (
	"context"
	"fmt"
	"time"
)

// SyncCursor is where a catch-up with one serving peer stands in one group:
// the cursor that peer's message log last returned (opaque here; the node
// defines it), so that the next catch-up with that peer asks only for what
// is new.
type SyncCursor struct {
	Peer      []byte // the serving peer's ID
	Cursor    []byte
	UpdatedAt time.Time
}

// maxCursor bounds a stored cursor (the sync protocol allows 1,024 bytes).
const maxCursor = 1024

func (r *SyncCursor) marshal() []byte {
	var e encoder
	e.bytes(r.Peer)
	e.bytes(r.Cursor)
	putTime(&e, r.UpdatedAt)
	return e.b
}

func unmarshalSyncCursor(p []byte) (SyncCursor, error) {
	d := decoder{b: p}
	r := SyncCursor{Peer: d.bytes(), Cursor: d.bytes(), UpdatedAt: getTime(&d)}
	if d.err == nil && (len(r.Peer) == 0 || len(r.Cursor) > maxCursor) {
		d.fail(fmt.Errorf("sync cursor with a peer of %d bytes and a cursor of %d bytes", len(r.Peer), len(r.Cursor)))
	}
	return r, d.finish()
}

// SyncCursors keeps one SyncCursor per group and serving peer. Writes are
// buffered: a cursor lost in a crash is an older one, and the node only
// fetches some messages again (it drops duplicates by message ID). A
// group's cursors go with Groups.Delete.
type SyncCursors struct{ s *Store }

// SyncCursors returns the sync cursor store.
func (s *Store) SyncCursors() SyncCursors { return SyncCursors{s} }

func (ks *keys) syncCursorKey(bg string, peer []byte) string {
	return syncCursorPrefix(bg) + ks.blindID("peer", peer)
}

func syncCursorPrefix(bg string) string { return nsSyncCursor + bg + "/" }

// Put creates or replaces the cursor of c.Peer in a group. Buffered.
func (sc SyncCursors) Put(ctx context.Context, groupID []byte, c SyncCursor) error {
	if len(groupID) == 0 || len(c.Peer) == 0 {
		return invalidf("sync cursor without a group or a peer")
	}
	if len(c.Cursor) > maxCursor {
		return invalidf("sync cursor of %d bytes, at most %d", len(c.Cursor), maxCursor)
	}
	s := sc.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	if err := b.put(ctx, kindSyncCursor, s.keys.syncCursorKey(s.keys.group(groupID), c.Peer), c.marshal()); err != nil {
		return err
	}
	return b.commit(ctx, false)
}

// Get returns the cursor of a serving peer in a group, or ErrNotFound.
func (sc SyncCursors) Get(ctx context.Context, groupID, peer []byte) (SyncCursor, error) {
	s := sc.s
	if err := s.enter(); err != nil {
		return SyncCursor{}, err
	}
	defer s.life.RUnlock()
	return getRecord(ctx, s, kindSyncCursor, s.keys.syncCursorKey(s.keys.group(groupID), peer), unmarshalSyncCursor)
}

// List returns a group's cursors (in no particular order).
func (sc SyncCursors) List(ctx context.Context, groupID []byte) ([]SyncCursor, error) {
	return listAll(ctx, sc.s, syncCursorPrefix(sc.s.keys.group(groupID)), kindSyncCursor, unmarshalSyncCursor)
}

// Delete removes the cursor of a serving peer in a group (the node then
// starts over with that peer). Buffered; deleting an absent cursor is not
// an error.
func (sc SyncCursors) Delete(ctx context.Context, groupID, peer []byte) error {
	s := sc.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	if err := b.del(ctx, s.keys.syncCursorKey(s.keys.group(groupID), peer)); err != nil {
		return err
	}
	return b.commit(ctx, false)
}
