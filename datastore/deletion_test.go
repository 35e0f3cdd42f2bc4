package datastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The deletion schedule (RFC 9420 §9.2, §16.8): an init key is deleted when
// its Welcome has been processed, a message key when it has been used, and an
// epoch's secrets when the epoch leaves the retention window. Each check
// reads the raw underlying datastore, opens every record with the data key
// and searches all stored plaintext, so "deleted" means gone, not merely
// unreferenced.
func TestDeletionSchedule(t *testing.T) {
	for _, backend := range []Backend{BackendMemory, BackendPebble} {
		t.Run(backend.String(), func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(ctx, Options{Backend: backend, Dir: t.TempDir(), Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			g := s.Groups()
			gid := []byte("deletion-group")

			// Init key: gone once Join processed the Welcome.
			initKey := pattern("init-private-key", 32)
			ref := []byte("kp-ref")
			if err := s.KeyPackages().Put(ctx, KeyPackage{Ref: ref, InitPrivateKey: initKey, LeafPrivateKey: pattern("leaf", 32)}); err != nil {
				t.Fatal(err)
			}
			if len(containsAnywhere(t, s, initKey)) != 1 {
				t.Fatal("init key not stored before the join")
			}
			if err := g.Join(ctx, NewGroup{GroupID: gid, Epoch: 0, State: []byte("state-0"), EpochSecrets: pattern("epoch-secrets-0", 64), KeyPackageRef: ref}); err != nil {
				t.Fatal(err)
			}
			if where := containsAnywhere(t, s, initKey); len(where) != 0 {
				t.Fatalf("init key still stored after the Welcome was processed: %v", where)
			}
			if _, ok := rawEntries(t, s)[s.keys.keyPackageKey(ref)]; ok {
				t.Fatal("KeyPackage record still in the datastore")
			}

			// Used ratchet keys: gone once used.
			var keys []RatchetKey
			for gen := uint32(0); gen < 3; gen++ {
				keys = append(keys, RatchetKey{KeyID: KeyID{Epoch: 0, Leaf: 1, Generation: gen}, Key: pattern(fmt.Sprintf("message-key-%d", gen), 32)})
			}
			if err := g.Ratchet(ctx, RatchetUpdate{GroupID: gid, Epoch: 0, Retain: keys}); err != nil {
				t.Fatal(err)
			}
			if err := g.Ratchet(ctx, RatchetUpdate{GroupID: gid, Epoch: 0, Used: []KeyID{keys[1].KeyID}}); err != nil {
				t.Fatal(err)
			}
			if where := containsAnywhere(t, s, keys[1].Key); len(where) != 0 {
				t.Fatalf("used message key still stored: %v", where)
			}
			for _, k := range []RatchetKey{keys[0], keys[2]} {
				if len(containsAnywhere(t, s, k.Key)) != 1 {
					t.Fatalf("unused message key %v missing", k.KeyID)
				}
			}

			// Epoch secrets (and message keys) past the retention window.
			const keep = 2
			for e := uint64(0); e < 5; e++ {
				tr := transition(gid, e, keep)
				tr.EpochSecrets = pattern(fmt.Sprintf("epoch-secrets-%d", e+1), 64)
				if err := g.Transition(ctx, tr); err != nil {
					t.Fatal(err)
				}
				cur := e + 1
				for x := uint64(0); x <= cur; x++ {
					secret := pattern(fmt.Sprintf("epoch-secrets-%d", x), 64)
					n := len(containsAnywhere(t, s, secret))
					retained := x+keep >= cur
					if retained && n != 1 {
						t.Errorf("at epoch %d: secrets of retained epoch %d found %d times", cur, x, n)
					}
					if !retained && n != 0 {
						t.Errorf("at epoch %d: secrets of epoch %d, past the window, still stored", cur, x)
					}
				}
				if cur > keep && len(containsAnywhere(t, s, keys[0].Key)) != 0 {
					t.Errorf("at epoch %d: message key of epoch 0 still stored", cur)
				}
			}

			if backend == BackendPebble {
				checkPebbleFiles(t, s)
			}
		})
	}
}

// checkPebbleFiles looks for the sealed bytes of deleted records in Pebble's
// files. Deletion in Pebble is a tombstone until compaction drops the old
// value; after Compact no table (.sst) may hold it. The write-ahead log may:
// Pebble recycles WAL files and overwrites them only as new writes arrive,
// which docs/storage.md states; the test logs what it finds there.
func checkPebbleFiles(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	gid := []byte("pebble-files")
	secret := pattern("lingering-secret", 64)
	if err := s.Groups().Create(ctx, NewGroup{GroupID: gid, State: []byte("s"), EpochSecrets: secret}); err != nil {
		t.Fatal(err)
	}
	key := secretsKey(s.keys.group(gid), 0)
	sealed := rawEntries(t, s)[key]
	if len(sealed) < sealOverhead+32 {
		t.Fatalf("sealed value of %s missing", key)
	}
	fingerprint := sealed[sealHeader : sealHeader+32]
	// Flush so the value is in a table, then supersede and delete it.
	if err := s.pdb.Flush(); err != nil {
		t.Fatal(err)
	}
	if found := filesContaining(t, s.dir, fingerprint); !hasSuffix(found, ".sst") {
		t.Fatalf("sealed value not found in any table after flush (found in %v): the check would prove nothing", found)
	}
	for e := uint64(0); e < 3; e++ {
		if err := s.Groups().Transition(ctx, transition(gid, e, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Groups().EpochSecrets(ctx, gid, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("epoch 0 secrets still readable: %v", err)
	}
	t.Logf("before Compact the deleted value is in: %v", filesContaining(t, s.dir, fingerprint))
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	// Obsolete tables are removed in the background; Close waits for that.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	found := filesContaining(t, s.dir, fingerprint)
	if hasSuffix(found, ".sst") {
		t.Fatalf("after Compact a table still holds the deleted value: %v", found)
	}
	t.Logf("after Compact the deleted value is in: %v (tables: none)", found)
}

func filesContaining(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil // removed by a background compaction meanwhile
		}
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			found = append(found, filepath.Base(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func hasSuffix(names []string, suffix string) bool {
	for _, n := range names {
		if strings.HasSuffix(n, suffix) {
			return true
		}
	}
	return false
}
