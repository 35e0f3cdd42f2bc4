package datastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
)

// enter takes the store's life lock for one operation; the caller releases
// it with s.life.RUnlock.
func (s *Store) enter() error {
	s.life.RLock()
	if s.closed {
		s.life.RUnlock()
		return ErrClosed
	}
	return nil
}

// Close makes buffered writes durable, closes the backend and releases the
// data directory. Operations after Close return ErrClosed.
func (s *Store) Close() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var syncErr error
	if !s.ro {
		if err := s.ds.Sync(context.Background(), ds.RawKey("/")); err != nil {
			syncErr = fmt.Errorf("datastore: sync on close: %w", err)
		}
	}
	return errors.Join(syncErr, s.release())
}

// Sync makes every buffered write durable.
func (s *Store) Sync(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	if s.ro {
		return nil
	}
	if err := s.ds.Sync(ctx, ds.RawKey("/")); err != nil {
		return fmt.Errorf("datastore: sync: %w", err)
	}
	return nil
}

// Compact asks the backend to rewrite its files so that deleted and
// overwritten values are dropped from them (Pebble: flush the memtable,
// then compact the whole key space to the bottom level). Deletion in an LSM
// tree is otherwise logical until compaction reaches the old value; see
// docs/storage.md for what remains (recycled WAL files, the file system).
// It is a no-op for the memory backend.
func (s *Store) Compact(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	if s.ro {
		return ErrReadOnly
	}
	if s.pdb == nil {
		return nil
	}
	if err := s.pdb.Flush(); err != nil {
		return fmt.Errorf("datastore: flush: %w", err)
	}
	if err := s.pdb.Compact(ctx, []byte("/"), []byte("0"), false); err != nil {
		return fmt.Errorf("datastore: compact: %w", err)
	}
	return nil
}

// batch is one atomic write: every put and delete lands, or none does.
type batch struct {
	s *Store
	b ds.Batch
}

func (s *Store) newBatch(ctx context.Context) (*batch, error) {
	if s.ro {
		return nil, ErrReadOnly
	}
	b, err := s.ds.Batch(ctx)
	if err != nil {
		return nil, fmt.Errorf("datastore: new batch: %w", err)
	}
	return &batch{s: s, b: b}, nil
}

func (w *batch) put(ctx context.Context, k kind, key string, payload []byte) error {
	if err := w.b.Put(ctx, ds.RawKey(key), w.s.keys.seal(k, key, payload)); err != nil {
		return fmt.Errorf("datastore: put %s: %w", key, err)
	}
	return nil
}

func (w *batch) del(ctx context.Context, key string) error {
	if err := w.b.Delete(ctx, ds.RawKey(key)); err != nil {
		return fmt.Errorf("datastore: delete %s: %w", key, err)
	}
	return nil
}

// commit applies the batch. A synced commit returns only once the batch is
// on stable storage (Pebble: the WAL is fsynced past it); a buffered one
// becomes durable with the next synced write, Sync or Close.
func (w *batch) commit(ctx context.Context, synced bool) error {
	if err := w.b.Commit(ctx); err != nil {
		return fmt.Errorf("datastore: commit: %w", err)
	}
	if synced {
		if err := w.s.ds.Sync(ctx, ds.RawKey("/")); err != nil {
			return fmt.Errorf("datastore: sync: %w", err)
		}
	}
	return nil
}

// get reads and opens the record at key, which must be of kind k.
func (s *Store) get(ctx context.Context, k kind, key string) ([]byte, error) {
	v, err := s.ds.Get(ctx, ds.RawKey(key))
	if errors.Is(err, ds.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("datastore: read %s: %w", key, err)
	}
	return s.openValue(k, key, v)
}

func (s *Store) openValue(k kind, key string, v []byte) ([]byte, error) {
	p, err := s.keys.open(k, key, v)
	if err != nil {
		return nil, &CorruptRecordError{Key: key, Record: k.String(), Err: err}
	}
	return p, nil
}

// decodeRecord opens and decodes one record, naming it in any error.
func decodeRecord[T any](s *Store, k kind, key string, v []byte, dec func([]byte) (T, error)) (T, error) {
	var zero T
	p, err := s.openValue(k, key, v)
	if err != nil {
		return zero, err
	}
	r, err := dec(p)
	if err != nil {
		return zero, &CorruptRecordError{Key: key, Record: k.String(), Err: err}
	}
	return r, nil
}

// getRecord reads, opens and decodes the record at key.
func getRecord[T any](ctx context.Context, s *Store, k kind, key string, dec func([]byte) (T, error)) (T, error) {
	var zero T
	v, err := s.ds.Get(ctx, ds.RawKey(key))
	if errors.Is(err, ds.ErrNotFound) {
		return zero, ErrNotFound
	}
	if err != nil {
		return zero, fmt.Errorf("datastore: read %s: %w", key, err)
	}
	return decodeRecord(s, k, key, v, dec)
}

// span is a key range inside one prefix: keys k with prefix <= k, from <= k
// (when from is set) and k < to (when to is set).
type span struct {
	prefix   string // ends with "/"
	from, to string
	reverse  bool
	limit    int // 0: no limit
	keysOnly bool
}

// scan calls fn for each key (and value) in sp, in key order (or reverse),
// until fn returns false. Pebble is read with a bounded iterator, since
// go-datastore queries know only prefixes; other backends go through a
// go-datastore query with key filters.
func (s *Store) scan(ctx context.Context, sp span, fn func(key string, value []byte) (bool, error)) error {
	if s.pdb != nil {
		return s.scanPebble(ctx, sp, fn)
	}
	q := dsq.Query{Prefix: strings.TrimSuffix(sp.prefix, "/"), KeysOnly: sp.keysOnly, Limit: sp.limit}
	if sp.reverse {
		q.Orders = []dsq.Order{dsq.OrderByKeyDescending{}}
	} else {
		q.Orders = []dsq.Order{dsq.OrderByKey{}}
	}
	if sp.from != "" {
		q.Filters = append(q.Filters, dsq.FilterKeyCompare{Op: dsq.GreaterThanOrEqual, Key: sp.from})
	}
	if sp.to != "" {
		q.Filters = append(q.Filters, dsq.FilterKeyCompare{Op: dsq.LessThan, Key: sp.to})
	}
	res, err := s.ds.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("datastore: query %s: %w", sp.prefix, err)
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return fmt.Errorf("datastore: query %s: %w", sp.prefix, r.Error)
		}
		more, err := fn(r.Key, r.Value)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (s *Store) scanPebble(ctx context.Context, sp span, fn func(key string, value []byte) (bool, error)) error {
	lower, upper := []byte(sp.prefix), prefixEnd(sp.prefix)
	if sp.from != "" && sp.from > sp.prefix {
		lower = []byte(sp.from)
	}
	if sp.to != "" && bytes.Compare([]byte(sp.to), upper) < 0 {
		upper = []byte(sp.to)
	}
	if bytes.Compare(lower, upper) >= 0 {
		return nil
	}
	it, err := s.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("datastore: iterate %s: %w", sp.prefix, err)
	}
	valid, step := it.First, it.Next
	if sp.reverse {
		valid, step = it.Last, it.Prev
	}
	n := 0
	for ok := valid(); ok; ok = step() {
		var v []byte
		if !sp.keysOnly {
			if v, err = it.ValueAndErr(); err != nil {
				_ = it.Close()
				return fmt.Errorf("datastore: read %s: %w", it.Key(), err)
			}
		}
		// fn must not keep v: it is only valid until the iterator moves.
		more, err := fn(string(it.Key()), v)
		if err != nil || !more {
			_ = it.Close()
			return err
		}
		if n++; sp.limit > 0 && n >= sp.limit {
			break
		}
	}
	if err := it.Error(); err != nil {
		_ = it.Close()
		return fmt.Errorf("datastore: iterate %s: %w", sp.prefix, err)
	}
	return it.Close()
}

// existing reports which of keys (all under prefix) are stored. On Pebble
// one iterator serves every lookup, each a bloom-filtered prefix seek, which
// costs a fraction of a Get apiece.
func (s *Store) existing(ctx context.Context, prefix string, keys []string) (map[string]bool, error) {
	found := make(map[string]bool, len(keys))
	if len(keys) == 0 {
		return found, nil
	}
	if s.pdb == nil {
		for _, k := range keys {
			ok, err := s.ds.Has(ctx, ds.RawKey(k))
			if err != nil {
				return nil, fmt.Errorf("datastore: read %s: %w", k, err)
			}
			found[k] = ok
		}
		return found, nil
	}
	it, err := s.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte(prefix), UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("datastore: iterate %s: %w", prefix, err)
	}
	for _, k := range keys {
		if it.SeekPrefixGE([]byte(k)) && string(it.Key()) == k {
			found[k] = true
		}
	}
	if err := it.Error(); err != nil {
		_ = it.Close()
		return nil, fmt.Errorf("datastore: iterate %s: %w", prefix, err)
	}
	return found, it.Close()
}

// prefixEnd is the smallest key greater than every key with the prefix,
// which ends in "/" (0x2f): the same prefix ending in "0".
func prefixEnd(prefix string) []byte {
	end := []byte(prefix)
	end[len(end)-1]++
	return end
}

// pebbleLogger sends Pebble's log lines to slog. Pebble calls Fatalf for
// failures it cannot continue from (a failed fsync of the WAL or MANIFEST, a
// broken internal invariant) and expects the process to stop there, as its
// default logger does; continuing could acknowledge writes that are not on
// disk, so the process exits after logging.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("pebble: fatal: " + fmt.Sprintf(format, args...))
	os.Exit(70) // EX_SOFTWARE
}
