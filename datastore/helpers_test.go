package datastore

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
)

// fastKDF keeps Argon2id cheap in tests; the parameters are still stored and
// honoured like real ones.
var fastKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newRaw returns an in-memory go-datastore that a test can hand to Open
// several times and inspect directly.
func newRaw() ds.Batching { return dssync.MutexWrap(ds.NewMapDatastore()) }

func openRaw(t testing.TB, raw ds.Batching, pass string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{datastore: raw, Passphrase: []byte(pass), KDF: fastKDF, Logger: quiet})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func openMem(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Backend: BackendMemory, Logger: quiet})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openDir(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

// rawEntries returns every key and value in the underlying datastore.
func rawEntries(t testing.TB, s *Store) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := s.scan(context.Background(), span{prefix: "/"}, func(k string, v []byte) (bool, error) {
		out[k] = bytes.Clone(v)
		return true, nil
	})
	if err != nil {
		t.Fatalf("raw scan: %v", err)
	}
	return out
}

// plaintexts opens every sealed record in the store with its data key, so a
// test can search all stored content for a secret.
func plaintexts(t testing.TB, s *Store) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for k, v := range rawEntries(t, s) {
		if k == metaKey {
			continue
		}
		kd, ok := recordKindOf(k)
		if !ok {
			t.Fatalf("unknown key %s", k)
		}
		p, err := s.keys.open(kd, k, v)
		if err != nil {
			t.Fatalf("open %s: %v", k, err)
		}
		out[k] = p
	}
	return out
}

// containsAnywhere reports which records hold secret in their plaintext.
func containsAnywhere(t testing.TB, s *Store, secret []byte) []string {
	t.Helper()
	var where []string
	for k, p := range plaintexts(t, s) {
		if bytes.Contains(p, secret) {
			where = append(where, k)
		}
	}
	return where
}

// pattern returns n deterministic bytes derived from a label, recognisable in
// a scan and unlikely to occur by chance.
func pattern(label string, n int) []byte {
	out := make([]byte, 0, n)
	seed := []byte("conclave-test-" + label + ":")
	for len(out) < n {
		out = append(out, seed...)
	}
	return out[:n]
}
