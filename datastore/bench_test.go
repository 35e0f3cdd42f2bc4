//go:build unix

package datastore

import (
	"context"
	"crypto/rand"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time. On the shared 2-core
// machines wall time mostly measures the wait for a CPU, so the benchmarks
// also report CPU per operation (Pebble's background flushes and compactions
// included, since they are part of the cost).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration, ops int, unit string) {
	used := cpuTime() - start
	b.ReportMetric(float64(used.Nanoseconds())/float64(ops), "cpu-ns/"+unit)
}

// Sizes assumed for a 1,000-member group (docs/performance.md explains them).
const (
	benchStateSize   = 400 << 10 // MLS group state: ratchet tree of 1,000 leaves and 999 parents, group context, own keys
	benchSecretsSize = 4 << 10   // one epoch's secret-tree heads
	benchCommitSize  = 8 << 10   // a Commit with an UpdatePath
	benchCertSize    = 501 * 68  // quorum of 501 (leaf index, Ed25519 signature) pairs
	benchMessageSize = 300       // one short PrivateMessage / decrypted text
)

func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(context.Background(), Options{Dir: b.TempDir(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func randomBytes(n int) []byte {
	p := make([]byte, n)
	_, _ = rand.Read(p)
	return p
}

// BenchmarkEpochTransition: one synced epoch transition of a 1,000-member
// group: new 400 KiB state, new epoch secrets, the decision (Commit and
// certificate) recorded, the secrets of the epoch leaving a 3-epoch window
// and the ended epoch's acceptor record deleted, then fsync.
func BenchmarkEpochTransition(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	gid := []byte("bench-group")
	state, secrets := randomBytes(benchStateSize), randomBytes(benchSecretsSize)
	commit, cert := randomBytes(benchCommitSize), randomBytes(benchCertSize)
	if err := s.Groups().Create(ctx, NewGroup{GroupID: gid, State: state, EpochSecrets: secrets}); err != nil {
		b.Fatal(err)
	}
	var epoch uint64
	b.SetBytes(benchStateSize)
	cpu0 := cpuTime()
	for b.Loop() {
		if err := s.Groups().Transition(ctx, EpochTransition{
			GroupID:        gid,
			Decision:       Decision{Epoch: epoch, Commit: commit, Certificate: cert},
			State:          state,
			EpochSecrets:   secrets,
			KeepPastEpochs: 3,
		}); err != nil {
			b.Fatal(err)
		}
		epoch++
	}
	reportCPU(b, cpu0, int(epoch), "op")
}

func benchEntries(n int) []HistoryEntry {
	body := randomBytes(benchMessageSize)
	out := make([]HistoryEntry, n)
	for i := range out {
		out[i] = HistoryEntry{MessageID: randomBytes(32), Epoch: 1, Sender: []byte("12D3KooWSenderPeerIDxxxxxxxxxxxxxxxxxxxxxxxx"), SentAt: time.Now(), ReceivedAt: time.Now(), Body: body}
	}
	return out
}

// BenchmarkHistoryAppend: decrypted messages appended in batches of 100
// (buffered: no fsync per batch). Reports messages per second.
func BenchmarkHistoryAppend(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	gid := []byte("bench-group")
	const batch = 100
	entries := benchEntries(batch)
	n := 0
	cpu0 := cpuTime()
	for b.Loop() {
		if err := s.History().Append(ctx, gid, entries); err != nil {
			b.Fatal(err)
		}
		n += batch
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
	reportCPU(b, cpu0, n, "msg")
}

// BenchmarkMessageLogAppend: ciphertexts appended in batches of 100 with
// duplicate detection by message ID (buffered). Reports messages per second.
func BenchmarkMessageLogAppend(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	gid := []byte("bench-group")
	const batch = 100
	ct := randomBytes(benchMessageSize)
	entries := make([]LogEntry, batch)
	n := 0
	cpu0 := cpuTime()
	for b.Loop() {
		for i := range entries {
			entries[i] = LogEntry{MessageID: randomBytes(32), Epoch: 1, ReceivedAt: time.Now(), Ciphertext: ct}
		}
		if err := s.MessageLog().Append(ctx, gid, entries); err != nil {
			b.Fatal(err)
		}
		n += batch
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
	reportCPU(b, cpu0, n, "msg")
}

// fillHistory appends total messages to a group and flushes them to Pebble's
// tables, as they would be after normal use.
func fillHistory(b *testing.B, s *Store, gid []byte, total int) {
	b.Helper()
	ctx := context.Background()
	entries := benchEntries(1000)
	for i := 0; i < total; i += len(entries) {
		if err := s.History().Append(ctx, gid, entries); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	if err := s.pdb.Flush(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHistoryNewest100: the newest 100 messages of a group with
// 100,000 messages (with a second group of 100,000 beside it).
func BenchmarkHistoryNewest100(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	gid := []byte("bench-group")
	fillHistory(b, s, gid, 100_000)
	fillHistory(b, s, []byte("other-group"), 100_000)
	n := 0
	cpu0 := cpuTime()
	for b.Loop() {
		got, err := s.History().Newest(ctx, gid, 100)
		if err != nil || len(got) != 100 || got[99].Seq != 100_000 {
			b.Fatalf("Newest: %d entries, %v", len(got), err)
		}
		n++
	}
	reportCPU(b, cpu0, n, "op")
}

// BenchmarkMessageLogCatchUp100: one catch-up page of 100 ciphertexts from a
// cursor in the middle of a 100,000-message log.
func BenchmarkMessageLogCatchUp100(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	gid := []byte("bench-group")
	ct := randomBytes(benchMessageSize)
	entries := make([]LogEntry, 1000)
	for i := 0; i < 100; i++ {
		for j := range entries {
			entries[j] = LogEntry{MessageID: []byte(fmt.Sprintf("m-%d-%d", i, j)), ReceivedAt: time.Now(), Ciphertext: ct}
		}
		if err := s.MessageLog().Append(ctx, gid, entries); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.pdb.Flush(); err != nil {
		b.Fatal(err)
	}
	n := 0
	cpu0 := cpuTime()
	for b.Loop() {
		got, err := s.MessageLog().After(ctx, gid, 50_000, 100)
		if err != nil || len(got) != 100 || got[0].Seq != 50_001 {
			b.Fatalf("After: %d entries, %v", len(got), err)
		}
		n++
	}
	reportCPU(b, cpu0, n, "op")
}
