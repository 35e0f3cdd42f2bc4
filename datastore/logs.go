package datastore

import (
	"context"
	"fmt"
	"time"
)

// seqLog is a per-group, append-only sequence of records keyed by a store-
// assigned sequence number (1, 2, ...): the message log and the history.
// Appends are buffered: one batch per call, durable at the next synced
// write, Sync or Close.
type seqLog[T any] struct {
	s    *Store
	ns   string // nsLog or nsHistory
	kind kind
	enc  func(*T) []byte
	dec  func([]byte) (T, error)
	seq  func(*T) *uint64
}

func (l seqLog[T]) prefix(groupID []byte) string { return l.ns + l.s.keys.group(groupID) + "/" }

// nextSeq returns the next sequence number under prefix. The caller holds
// s.seqMu.
func (s *Store) nextSeqLocked(ctx context.Context, prefix string) (uint64, error) {
	if n, ok := s.nextSeq[prefix]; ok {
		return n, nil
	}
	next := uint64(1)
	err := s.scan(ctx, span{prefix: prefix, reverse: true, limit: 1, keysOnly: true}, func(key string, _ []byte) (bool, error) {
		last, err := parseHex64(key[len(prefix):])
		if err != nil {
			return false, &CorruptRecordError{Key: key, Record: "sequence", Err: err}
		}
		next = last + 1
		return false, nil
	})
	if err != nil {
		return 0, err
	}
	s.nextSeq[prefix] = next
	return next, nil
}

func (s *Store) forgetSeq(prefix string) {
	s.seqMu.Lock()
	delete(s.nextSeq, prefix)
	s.seqMu.Unlock()
}

// append assigns sequence numbers to entries (in place) and writes them in
// one buffered batch. locked, if set, runs first under the sequence lock;
// extra, if set, reports entries not to append (and may add index writes to
// the batch). The sequence lock is held through the
// commit so that entries become visible in sequence order, which is what
// makes "everything after cursor c" reads complete.
func (l seqLog[T]) append(ctx context.Context, groupID []byte, entries []T, locked func() error, extra func(b *batch, e *T) (skip bool, err error)) error {
	if len(groupID) == 0 {
		return invalidf("append without a group ID")
	}
	s := l.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	prefix := l.prefix(groupID)
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	if locked != nil {
		if err := locked(); err != nil {
			return err
		}
	}
	next, err := s.nextSeqLocked(ctx, prefix)
	if err != nil {
		return err
	}
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	n := next
	for i := range entries {
		e := &entries[i]
		*l.seq(e) = n
		if extra != nil {
			skip, err := extra(b, e)
			if err != nil {
				return err
			}
			if skip {
				*l.seq(e) = 0
				continue
			}
		}
		if err := b.put(ctx, l.kind, prefix+hex64(n), l.enc(e)); err != nil {
			return err
		}
		n++
	}
	if n == next {
		return nil
	}
	if err := b.commit(ctx, false); err != nil {
		return err
	}
	s.nextSeq[prefix] = n
	return nil
}

// read returns up to limit entries in a span of the group's log.
func (l seqLog[T]) read(ctx context.Context, groupID []byte, sp span) ([]T, error) {
	s := l.s
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.life.RUnlock()
	var out []T
	if sp.limit > 0 {
		out = make([]T, 0, min(sp.limit, 1024))
	}
	err := s.scan(ctx, sp, func(key string, v []byte) (bool, error) {
		r, err := decodeRecord(s, l.kind, key, v, l.dec)
		if err != nil {
			return false, err
		}
		out = append(out, r)
		return true, nil
	})
	return out, err
}

// after reads entries with sequence numbers greater than after, oldest first.
func (l seqLog[T]) after(ctx context.Context, groupID []byte, after uint64, limit int) ([]T, error) {
	p := l.prefix(groupID)
	sp := span{prefix: p, limit: limit}
	if after == ^uint64(0) {
		return nil, nil
	}
	sp.from = p + hex64(after+1)
	return l.read(ctx, groupID, sp)
}

// newest reads the n entries before sequence number before (0: the newest
// n), returned oldest first.
func (l seqLog[T]) newest(ctx context.Context, groupID []byte, before uint64, n int) ([]T, error) {
	if n <= 0 {
		return nil, invalidf("newest needs a positive count, got %d", n)
	}
	p := l.prefix(groupID)
	sp := span{prefix: p, reverse: true, limit: n}
	if before != 0 {
		sp.to = p + hex64(before)
	}
	out, err := l.read(ctx, groupID, sp)
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// MessageLog keeps each group's ciphertexts for the retention window, so
// that members who were away can catch up from this node. Appends are
// buffered; Trim enforces the retention window.
type MessageLog struct{ l seqLog[LogEntry] }

// MessageLog returns the message log.
func (s *Store) MessageLog() MessageLog {
	return MessageLog{seqLog[LogEntry]{
		s: s, ns: nsLog, kind: kindLogEntry,
		enc: (*LogEntry).marshal, dec: unmarshalLogEntry,
		seq: func(e *LogEntry) *uint64 { return &e.Seq },
	}}
}

// Append adds ciphertexts to a group's log in one buffered batch (durable
// at the next synced write, Sync or Close) and sets each entry's Seq. An
// entry whose MessageID is already in the log, or earlier in the same call,
// is a duplicate: it is not stored and its Seq is set to 0.
func (ml MessageLog) Append(ctx context.Context, groupID []byte, entries []LogEntry) error {
	s := ml.l.s
	if len(groupID) == 0 {
		return invalidf("append without a group ID")
	}
	bg := s.keys.group(groupID)
	var indexKeys []string
	for i := range entries {
		if len(entries[i].MessageID) != 0 {
			indexKeys = append(indexKeys, s.keys.logIndexKey(bg, entries[i].MessageID))
		}
	}
	var seen map[string]bool
	lookup := func() (err error) { // under the sequence lock, so no concurrent append slips in
		seen, err = s.existing(ctx, nsLogID+bg+"/", indexKeys)
		return err
	}
	next := 0
	return ml.l.append(ctx, groupID, entries, lookup, func(b *batch, e *LogEntry) (bool, error) {
		if len(e.MessageID) == 0 {
			return false, nil
		}
		ik := indexKeys[next]
		next++
		if seen[ik] {
			return true, nil
		}
		seen[ik] = true
		ix := logIndex{Seq: e.Seq}
		return false, b.put(ctx, kindLogIndex, ik, ix.marshal())
	})
}

// Has reports whether a message ID is in a group's log.
func (ml MessageLog) Has(ctx context.Context, groupID, messageID []byte) (bool, error) {
	s := ml.l.s
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.life.RUnlock()
	return s.has(ctx, s.keys.logIndexKey(s.keys.group(groupID), messageID))
}

// After returns up to limit entries with Seq greater than cursor, oldest
// first. Start with cursor 0 and pass the last Seq returned to continue:
// the catch-up read.
func (ml MessageLog) After(ctx context.Context, groupID []byte, cursor uint64, limit int) ([]LogEntry, error) {
	return ml.l.after(ctx, groupID, cursor, limit)
}

// Newest returns the newest n entries, oldest first.
func (ml MessageLog) Newest(ctx context.Context, groupID []byte, n int) ([]LogEntry, error) {
	return ml.l.newest(ctx, groupID, 0, n)
}

// Retention is the message log's retention window (docs/profile.md:
// Delivery.CiphertextRetention and Delivery.RetentionBytes).
type Retention struct {
	// Before: entries received before this time are deleted (zero: no age
	// limit).
	Before time.Time
	// MaxBytes: the oldest entries are deleted until the group's log takes at
	// most this many bytes as stored (0: no size limit).
	MaxBytes int64
}

// Trim enforces the retention window on a group's log: it deletes, oldest
// first, the entries that are too old or that do not fit in the byte budget,
// with their index entries, in one buffered batch, and returns how many it
// deleted.
func (ml MessageLog) Trim(ctx context.Context, groupID []byte, r Retention) (int, error) {
	s := ml.l.s
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.life.RUnlock()
	bg := s.keys.group(groupID)
	prefix := ml.l.prefix(groupID)
	// keepFrom: the oldest key that fits in the byte budget, found walking
	// back from the newest entry.
	keepFrom := ""
	if r.MaxBytes > 0 {
		var total int64
		err := s.scan(ctx, span{prefix: prefix, reverse: true}, func(key string, v []byte) (bool, error) {
			total += int64(len(key) + len(v))
			if total > r.MaxBytes {
				return false, nil
			}
			keepFrom = key
			return true, nil
		})
		if err != nil {
			return 0, err
		}
		if total <= r.MaxBytes {
			keepFrom = ""
		} else if keepFrom == "" {
			keepFrom = prefix + "~" // even the newest entry does not fit
		}
	}
	b, err := s.newBatch(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	err = s.scan(ctx, span{prefix: prefix}, func(key string, v []byte) (bool, error) {
		e, err := decodeRecord(s, kindLogEntry, key, v, unmarshalLogEntry)
		if err != nil {
			return false, err
		}
		overBudget := keepFrom != "" && key < keepFrom
		tooOld := !r.Before.IsZero() && e.ReceivedAt.Before(r.Before)
		if !overBudget && !tooOld {
			return false, nil
		}
		if err := b.del(ctx, key); err != nil {
			return false, err
		}
		if len(e.MessageID) != 0 {
			if err := b.del(ctx, s.keys.logIndexKey(bg, e.MessageID)); err != nil {
				return false, err
			}
		}
		n++
		return true, nil
	})
	if err != nil || n == 0 {
		return 0, err
	}
	return n, b.commit(ctx, false)
}

// History keeps each group's decrypted messages as the user sees them.
// Appends are buffered.
type History struct{ l seqLog[HistoryEntry] }

// History returns the history store.
func (s *Store) History() History {
	return History{seqLog[HistoryEntry]{
		s: s, ns: nsHistory, kind: kindHistory,
		enc: (*HistoryEntry).marshal, dec: unmarshalHistoryEntry,
		seq: func(e *HistoryEntry) *uint64 { return &e.Seq },
	}}
}

// Append adds decrypted messages to a group's history in one buffered batch
// (durable at the next synced write, Sync or Close) and sets each entry's
// Seq.
func (h History) Append(ctx context.Context, groupID []byte, entries []HistoryEntry) error {
	return h.l.append(ctx, groupID, entries, nil, nil)
}

// Newest returns the newest n messages, oldest first.
func (h History) Newest(ctx context.Context, groupID []byte, n int) ([]HistoryEntry, error) {
	return h.l.newest(ctx, groupID, 0, n)
}

// Before returns the n messages before sequence number seq, oldest first:
// scrolling back.
func (h History) Before(ctx context.Context, groupID []byte, seq uint64, n int) ([]HistoryEntry, error) {
	if seq == 0 {
		return nil, nil
	}
	return h.l.newest(ctx, groupID, seq, n)
}

// After returns up to limit messages with Seq greater than cursor, oldest
// first.
func (h History) After(ctx context.Context, groupID []byte, cursor uint64, limit int) ([]HistoryEntry, error) {
	return h.l.after(ctx, groupID, cursor, limit)
}

// Delete removes a group's whole history. Synced.
func (h History) Delete(ctx context.Context, groupID []byte) error {
	s := h.l.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	prefix := h.l.prefix(groupID)
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	if err := s.deleteSpan(ctx, b, span{prefix: prefix}); err != nil {
		return err
	}
	if err := b.commit(ctx, true); err != nil {
		return err
	}
	delete(s.nextSeq, prefix)
	return nil
}

// Outbox holds pending work that must survive a restart. Add is synced
// (the work must not be lost once accepted); Update and Remove are buffered
// (after a crash the work is retried, which the node makes idempotent).
type Outbox struct{ s *Store }

// Outbox returns the outbox.
func (s *Store) Outbox() Outbox { return Outbox{s} }

// Add stores a new item, assigns its ID and returns it. Synced. IDs
// increase from the highest stored one; once the outbox is empty, a restart
// may hand out an ID again.
func (o Outbox) Add(ctx context.Context, item OutboxItem) (uint64, error) {
	s := o.s
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.life.RUnlock()
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	id, err := s.nextSeqLocked(ctx, nsOutbox)
	if err != nil {
		return 0, err
	}
	item.ID = id
	if item.CreatedAt.IsZero() {
		item.CreatedAt = time.Now()
	}
	b, err := s.newBatch(ctx)
	if err != nil {
		return 0, err
	}
	if err := b.put(ctx, kindOutbox, outboxKey(id), item.marshal()); err != nil {
		return 0, err
	}
	if err := b.commit(ctx, true); err != nil {
		return 0, err
	}
	s.nextSeq[nsOutbox] = id + 1
	return id, nil
}

// Update replaces an existing item (attempt count, next try). Buffered.
// ErrNotFound if the item was removed.
func (o Outbox) Update(ctx context.Context, item OutboxItem) error {
	s := o.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	s.seqMu.Lock() // against a concurrent Remove
	defer s.seqMu.Unlock()
	if ok, err := s.has(ctx, outboxKey(item.ID)); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("datastore: outbox item %d: %w", item.ID, ErrNotFound)
	}
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	if err := b.put(ctx, kindOutbox, outboxKey(item.ID), item.marshal()); err != nil {
		return err
	}
	return b.commit(ctx, false)
}

// Remove deletes a finished item. Buffered; removing an absent item is not
// an error.
func (o Outbox) Remove(ctx context.Context, id uint64) error {
	s := o.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	if err := b.del(ctx, outboxKey(id)); err != nil {
		return err
	}
	return b.commit(ctx, false)
}

// List returns every pending item, oldest first.
func (o Outbox) List(ctx context.Context) ([]OutboxItem, error) {
	return listAll(ctx, o.s, nsOutbox, kindOutbox, unmarshalOutboxItem)
}
