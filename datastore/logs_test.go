package datastore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestMessageLog(t *testing.T) {
	for _, backend := range []Backend{BackendMemory, BackendPebble} {
		t.Run(backend.String(), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			s, err := Open(ctx, Options{Backend: backend, Dir: dir, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			ml := s.MessageLog()
			gid, other := []byte("log-group"), []byte("other")
			t0 := time.Unix(1700000000, 0)
			var batch []LogEntry
			for i := 0; i < 250; i++ {
				batch = append(batch, LogEntry{MessageID: []byte(fmt.Sprintf("m%d", i)), Epoch: uint64(i / 100), ReceivedAt: t0.Add(time.Duration(i) * time.Second), Ciphertext: []byte(fmt.Sprintf("ct%d", i))})
			}
			// A duplicate inside the call and the other group's traffic.
			batch = append(batch, LogEntry{MessageID: []byte("m7"), Ciphertext: []byte("dup")})
			if err := ml.Append(ctx, gid, batch); err != nil {
				t.Fatal(err)
			}
			if batch[0].Seq != 1 || batch[249].Seq != 250 || batch[250].Seq != 0 {
				t.Fatalf("sequence numbers: first %d, last %d, duplicate %d", batch[0].Seq, batch[249].Seq, batch[250].Seq)
			}
			if err := ml.Append(ctx, other, []LogEntry{{MessageID: []byte("m1"), Ciphertext: []byte("x")}}); err != nil {
				t.Fatal(err)
			}
			dup := []LogEntry{{MessageID: []byte("m3"), Ciphertext: []byte("again")}, {Ciphertext: []byte("no id")}}
			if err := ml.Append(ctx, gid, dup); err != nil {
				t.Fatal(err)
			}
			if dup[0].Seq != 0 || dup[1].Seq != 251 {
				t.Fatalf("re-append: seqs %d %d, want 0 251", dup[0].Seq, dup[1].Seq)
			}
			if ok, err := ml.Has(ctx, gid, []byte("m249")); err != nil || !ok {
				t.Fatalf("Has: %v %v", ok, err)
			}
			if backend == BackendPebble {
				s.Close()
				if s, err = Open(ctx, Options{Dir: dir, Logger: quiet}); err != nil {
					t.Fatal(err)
				}
				ml = s.MessageLog()
			}
			defer s.Close()

			// Catch-up by cursor sees every entry exactly once, in order.
			var cursor uint64
			var seen int
			for {
				page, err := ml.After(ctx, gid, cursor, 64)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				for _, e := range page {
					if e.Seq != cursor+1 {
						t.Fatalf("gap: cursor %d then seq %d", cursor, e.Seq)
					}
					cursor = e.Seq
					seen++
				}
			}
			if seen != 251 {
				t.Fatalf("catch-up saw %d entries, want 251", seen)
			}
			newest, err := ml.Newest(ctx, gid, 3)
			if err != nil || len(newest) != 3 || newest[0].Seq != 249 || newest[2].Seq != 251 || string(newest[0].Ciphertext) != "ct248" {
				t.Fatalf("Newest: %+v, %v", newest, err)
			}
			// Sequence numbers continue after a reopen.
			more := []LogEntry{{Ciphertext: []byte("after reopen")}}
			if err := ml.Append(ctx, gid, more); err != nil || more[0].Seq != 252 {
				t.Fatalf("append after reopen: seq %d, %v", more[0].Seq, err)
			}
			// Retention: drop what was received before t0+100s.
			n, err := ml.Trim(ctx, gid, Retention{Before: t0.Add(100 * time.Second)})
			if err != nil || n != 100 {
				t.Fatalf("Trim: %d, %v", n, err)
			}
			if ok, _ := ml.Has(ctx, gid, []byte("m50")); ok {
				t.Fatal("index entry of a trimmed message survived")
			}
			first, err := ml.After(ctx, gid, 0, 1)
			if err != nil || len(first) != 1 || first[0].Seq != 101 {
				t.Fatalf("oldest after Trim: %+v, %v", first, err)
			}
			if o, err := ml.After(ctx, other, 0, 10); err != nil || len(o) != 1 {
				t.Fatalf("other group's log: %d, %v", len(o), err)
			}
			// Byte budget: keep what fits, newest first.
			var size int64
			var sizes []int64
			if err := s.scan(ctx, span{prefix: ml.l.prefix(gid), reverse: true}, func(k string, v []byte) (bool, error) {
				size += int64(len(k) + len(v))
				sizes = append(sizes, size)
				return true, nil
			}); err != nil {
				t.Fatal(err)
			}
			n, err = ml.Trim(ctx, gid, Retention{MaxBytes: sizes[49]})
			if err != nil || n != len(sizes)-50 {
				t.Fatalf("Trim to %d bytes: %d deleted, %v; want %d", sizes[49], n, err, len(sizes)-50)
			}
			rest, err := ml.After(ctx, gid, 0, 0)
			if err != nil || len(rest) != 50 || rest[49].Seq != 252 {
				t.Fatalf("after the byte trim: %d entries, %v", len(rest), err)
			}
			if n, err := ml.Trim(ctx, gid, Retention{MaxBytes: 1}); err != nil || n != 50 {
				t.Fatalf("Trim to 1 byte: %d, %v", n, err)
			}
		})
	}
}

func TestHistoryPaging(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	h := s.History()
	gid := []byte("h")
	var entries []HistoryEntry
	for i := 1; i <= 30; i++ {
		entries = append(entries, HistoryEntry{Sender: []byte("alice"), Body: []byte(fmt.Sprintf("msg %d", i)), SentAt: time.Unix(int64(i), 0)})
	}
	if err := h.Append(ctx, gid, entries); err != nil {
		t.Fatal(err)
	}
	last, err := h.Newest(ctx, gid, 10)
	if err != nil || len(last) != 10 || last[0].Seq != 21 || last[9].Seq != 30 || string(last[9].Body) != "msg 30" {
		t.Fatalf("Newest: %v", err)
	}
	prev, err := h.Before(ctx, gid, last[0].Seq, 10)
	if err != nil || len(prev) != 10 || prev[0].Seq != 11 || prev[9].Seq != 20 {
		t.Fatalf("Before: %+v, %v", prev, err)
	}
	start, err := h.Before(ctx, gid, 3, 10)
	if err != nil || len(start) != 2 || start[0].Seq != 1 {
		t.Fatalf("Before near the start: %+v, %v", start, err)
	}
	after, err := h.After(ctx, gid, 28, 10)
	if err != nil || len(after) != 2 || after[0].Seq != 29 {
		t.Fatalf("After: %+v, %v", after, err)
	}
	if _, err := h.Newest(ctx, gid, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Newest(0): %v", err)
	}
}

func TestOutbox(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDir(t, dir)
	o := s.Outbox()
	var ids []uint64
	for i := 0; i < 3; i++ {
		id, err := o.Add(ctx, OutboxItem{Kind: "publish", GroupID: []byte("g"), Payload: []byte(fmt.Sprintf("p%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if ids[0] != 1 || ids[2] != 3 {
		t.Fatalf("ids %v", ids)
	}
	if err := o.Remove(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	item := OutboxItem{ID: ids[1], Kind: "publish", Payload: []byte("p1"), Attempts: 2, NotBefore: time.Unix(1900000000, 0)}
	if err := o.Update(ctx, item); err != nil {
		t.Fatal(err)
	}
	if err := o.Update(ctx, OutboxItem{ID: ids[0]}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update of a removed item: %v", err)
	}
	s.Close()
	s = openDir(t, dir)
	defer s.Close()
	items, err := s.Outbox().List(ctx)
	if err != nil || len(items) != 2 || items[0].ID != ids[1] || items[0].Attempts != 2 || items[1].ID != ids[2] {
		t.Fatalf("List after reopen: %+v, %v", items, err)
	}
	id, err := s.Outbox().Add(ctx, OutboxItem{Kind: "welcome"})
	if err != nil || id != 4 {
		t.Fatalf("Add after reopen: %d, %v", id, err)
	}
}

// Concurrent appends get distinct, gap-free sequence numbers, and a reader
// following the log by cursor never skips an entry.
func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gid := []byte("busy")
	const writers, batches, per = 4, 25, 10
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func() {
			for b := 0; b < batches; b++ {
				entries := make([]LogEntry, per)
				for i := range entries {
					entries[i] = LogEntry{MessageID: []byte(fmt.Sprintf("w%d-b%d-%d", w, b, i)), Ciphertext: []byte("c")}
				}
				if err := s.MessageLog().Append(ctx, gid, entries); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var cursor uint64
	finished := 0
	for finished < writers || cursor < writers*batches*per {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
			finished++
		default:
		}
		page, err := s.MessageLog().After(ctx, gid, cursor, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if e.Seq != cursor+1 {
				t.Fatalf("reader skipped from %d to %d", cursor, e.Seq)
			}
			cursor = e.Seq
		}
	}
	if cursor != writers*batches*per {
		t.Fatalf("reader saw %d entries, want %d", cursor, writers*batches*per)
	}
	// The same messages arriving concurrently (gossip and catch-up at once)
	// are stored once.
	for w := 0; w < writers; w++ {
		go func() {
			entries := make([]LogEntry, 20)
			for i := range entries {
				entries[i] = LogEntry{MessageID: []byte(fmt.Sprintf("shared-%d", i)), Ciphertext: []byte("c")}
			}
			errs <- s.MessageLog().Append(ctx, gid, entries)
		}()
	}
	for w := 0; w < writers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	rest, err := s.MessageLog().After(ctx, gid, cursor, 0)
	if err != nil || len(rest) != 20 {
		t.Fatalf("concurrent duplicates: %d entries stored, want 20 (%v)", len(rest), err)
	}
}
