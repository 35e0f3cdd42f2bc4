package datastore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
)

func TestIdentityKeyPackagesContactsRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDir(t, dir)

	if _, err := s.Identity().Get(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before Create: %v, want ErrNotFound", err)
	}
	id := Identity{PrivateKey: pattern("idpriv", 64), PublicKey: pattern("idpub", 32), CreatedAt: time.Unix(1700000000, 5)}
	if err := s.Identity().Create(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.Identity().Create(ctx, id); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v, want ErrExists", err)
	}
	kp := KeyPackage{Ref: []byte("ref-1"), KeyPackage: []byte("kp"), InitPrivateKey: pattern("init", 32), LeafPrivateKey: []byte("leaf"), SignaturePrivateKey: []byte("sig"), NotAfter: time.Unix(1800000000, 0)}
	if err := s.KeyPackages().Put(ctx, kp); err != nil {
		t.Fatal(err)
	}
	c := Contact{PeerID: []byte("peer-a"), Name: "Alice", IdentityKey: []byte("ik"), Verification: Verified, SafetyCode: "12345 67890", VerifiedAt: time.Unix(1750000000, 0)}
	if err := s.Contacts().Put(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openDir(t, dir)
	defer s.Close()
	gotID, err := s.Identity().Get(ctx)
	if err != nil || !bytes.Equal(gotID.PrivateKey, id.PrivateKey) || !gotID.CreatedAt.Equal(id.CreatedAt) {
		t.Fatalf("identity after reopen: %+v, %v", gotID, err)
	}
	gotKP, err := s.KeyPackages().Get(ctx, kp.Ref)
	if err != nil || !bytes.Equal(gotKP.InitPrivateKey, kp.InitPrivateKey) || !gotKP.NotAfter.Equal(kp.NotAfter) {
		t.Fatalf("KeyPackage after reopen: %+v, %v", gotKP, err)
	}
	kps, err := s.KeyPackages().List(ctx)
	if err != nil || len(kps) != 1 {
		t.Fatalf("KeyPackages().List: %d, %v", len(kps), err)
	}
	gotC, err := s.Contacts().Get(ctx, c.PeerID)
	if err != nil || gotC.Name != "Alice" || gotC.Verification != Verified || gotC.SafetyCode != c.SafetyCode {
		t.Fatalf("contact after reopen: %+v, %v", gotC, err)
	}
	if err := s.Contacts().Delete(ctx, c.PeerID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Contacts().Get(ctx, c.PeerID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("contact after Delete: %v", err)
	}
	if err := s.KeyPackages().Delete(ctx, kp.Ref); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KeyPackages().Get(ctx, kp.Ref); !errors.Is(err, ErrNotFound) {
		t.Fatalf("KeyPackage after Delete: %v", err)
	}
}

func TestKeyLayoutHidesIdentifiers(t *testing.T) {
	ctx := context.Background()
	s := openMem(t)
	gid := []byte("GROUP-ID-VISIBLE?")
	if err := s.Groups().Create(ctx, NewGroup{GroupID: gid, State: []byte("STATE-BYTES")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Contacts().Put(ctx, Contact{PeerID: []byte("PEER-ID-VISIBLE?")}); err != nil {
		t.Fatal(err)
	}
	for k, v := range rawEntries(t, s) {
		for _, id := range []string{"GROUP-ID-VISIBLE?", "PEER-ID-VISIBLE?", "STATE-BYTES"} {
			if strings.Contains(k, id) || (k != metaKey && bytes.Contains(v, []byte(id))) {
				t.Errorf("raw record %s reveals %q", k, id)
			}
		}
	}
}

func TestSecondOpenOfDirectoryIsLocked(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir)
	_, err := Open(context.Background(), Options{Dir: dir, Logger: quiet})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "datastore.lock") {
		t.Errorf("lock error does not name the lock file: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir) // released by Close
	s.Close()
}

func TestClosedStore(t *testing.T) {
	s := openMem(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Identity().Get(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestKeyFileIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "conclave")
	s := openDir(t, dir)
	s.Close()
	info, err := os.Stat(filepath.Join(dir, keyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %v, want 0600", perm)
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm()&0o077 != 0 {
		t.Errorf("data directory mode %v, %v: want no group/other access", info.Mode().Perm(), err)
	}
}

func TestPassphrase(t *testing.T) {
	ctx := context.Background()
	raw := newRaw()
	s := openRaw(t, raw, "correct horse")
	if err := s.Identity().Create(ctx, Identity{PrivateKey: []byte("secret")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before := dump(t, raw)

	tests := []struct {
		name string
		pass string
		want error
	}{
		{"wrong", "wrong horse", ErrWrongPassphrase},
		{"missing", "", ErrPassphraseRequired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(ctx, Options{datastore: raw, Passphrase: []byte(tc.pass), KDF: fastKDF, Logger: quiet})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
			if after := dump(t, raw); !equalDumps(before, after) {
				t.Fatal("a refused Open changed the store")
			}
		})
	}
	s = openRaw(t, raw, "correct horse")
	defer s.Close()
	if id, err := s.Identity().Get(ctx); err != nil || string(id.PrivateKey) != "secret" {
		t.Fatalf("identity after failed opens: %+v, %v", id, err)
	}
}

func TestWrongPassphraseOnDiskChangesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func(pass string) (*Store, error) {
		return Open(ctx, Options{Dir: dir, Passphrase: []byte(pass), KDF: fastKDF, Logger: quiet})
	}
	s, err := open("pass-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Groups().Create(ctx, NewGroup{GroupID: []byte("g"), State: []byte("st")}); err != nil {
		t.Fatal(err)
	}
	before := rawEntries(t, s)
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, keyFileName)); !os.IsNotExist(err) {
		t.Fatalf("a passphrase store left a key file: %v", err)
	}
	if _, err := open("pass-2"); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := Open(ctx, Options{Dir: dir, Logger: quiet}); !errors.Is(err, ErrPassphraseRequired) {
		t.Fatalf("no passphrase: %v", err)
	}
	s, err = open("pass-1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if after := rawEntries(t, s); !equalDumps(before, after) {
		t.Fatal("records changed after refused opens")
	}
}

func TestChangePassphrase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, Options{Dir: dir, KDF: fastKDF, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Identity().Create(ctx, Identity{PrivateKey: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	if err := s.ChangePassphrase(ctx, []byte("new pass")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, keyFileName)); !os.IsNotExist(err) {
		t.Fatalf("key file still there after setting a passphrase: %v", err)
	}
	if _, err := Open(ctx, Options{Dir: dir, Logger: quiet}); !errors.Is(err, ErrPassphraseRequired) {
		t.Fatalf("open without passphrase: %v", err)
	}
	s, err = Open(ctx, Options{Dir: dir, Passphrase: []byte("new pass"), KDF: fastKDF, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Identity().Get(ctx); err != nil {
		t.Fatal(err)
	}
	// A key file left by a switch interrupted between the metadata write
	// and the removal is removed by the next Open with the passphrase.
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, keyFileName), []byte("stale key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(ctx, Options{Dir: dir, Passphrase: []byte("new pass"), KDF: fastKDF, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, keyFileName)); !os.IsNotExist(err) {
		t.Fatalf("stale key file survived: %v", err)
	}
	// And back to a key file.
	if err := s.ChangePassphrase(ctx, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, Options{Dir: dir, Passphrase: []byte("new pass"), Logger: quiet}); !errors.Is(err, ErrNoPassphraseSet) {
		t.Fatalf("open with stale passphrase: %v", err)
	}
	s = openDir(t, dir)
	defer s.Close()
	if _, err := s.Identity().Get(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestKeyFileProblems(t *testing.T) {
	ctx := context.Background()
	dirA, dirB := t.TempDir(), t.TempDir()
	openDir(t, dirA).Close()
	openDir(t, dirB).Close()
	keyA, _ := os.ReadFile(filepath.Join(dirA, keyFileName))

	// Another store's key file.
	if err := os.WriteFile(filepath.Join(dirB, keyFileName), keyA, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Options{Dir: dirB, Logger: quiet}); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("foreign key file: %v, want ErrKeyMismatch", err)
	}
	// A damaged key file.
	bad := bytes.Clone(keyA)
	bad[20] ^= 1
	if err := os.WriteFile(filepath.Join(dirB, keyFileName), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	var ue *UnreadableStoreError
	if _, err := Open(ctx, Options{Dir: dirB, Logger: quiet}); !errors.As(err, &ue) || !strings.Contains(err.Error(), "To recover") {
		t.Fatalf("damaged key file: %v", err)
	}
	// A missing key file.
	os.Remove(filepath.Join(dirB, keyFileName))
	if _, err := Open(ctx, Options{Dir: dirB, Logger: quiet}); !errors.As(err, &ue) || !strings.Contains(err.Error(), keyFileName) {
		t.Fatalf("missing key file: %v", err)
	}
}

func TestOpenRefusesUnreadableMetadata(t *testing.T) {
	ctx := context.Background()
	good := func() ([]byte, ds.Batching) {
		raw := newRaw()
		s := openRaw(t, raw, "p")
		if err := s.Identity().Create(ctx, Identity{PrivateKey: []byte("k")}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		m, err := raw.Get(ctx, ds.RawKey(metaKey))
		if err != nil {
			t.Fatal(err)
		}
		return m, raw
	}
	newer := func() []byte {
		m, _ := good()
		mm, err := unmarshalMeta(m)
		if err != nil {
			t.Fatal(err)
		}
		mm.Version = SchemaVersion + 1
		return mm.marshal()
	}()
	tests := []struct {
		name   string
		meta   func(m []byte) []byte // nil deletes it
		wantIs error
		want   string
	}{
		{"garbled", func(m []byte) []byte { m[12] ^= 0x40; return m }, ErrCorrupt, "metadata record is corrupt"},
		{"truncated", func(m []byte) []byte { return m[:len(m)/2] }, ErrCorrupt, "metadata record is corrupt"},
		{"missing", nil, ErrCorrupt, "metadata record is missing"},
		{"newer schema", func([]byte) []byte { return newer }, ErrSchemaVersion, "this build reads schema 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, raw := good()
			if tc.meta == nil {
				raw.Delete(ctx, ds.RawKey(metaKey))
			} else {
				raw.Put(ctx, ds.RawKey(metaKey), tc.meta(m))
			}
			before := dump(t, raw)
			_, err := Open(ctx, Options{datastore: raw, Passphrase: []byte("p"), KDF: fastKDF, Logger: quiet})
			var ue *UnreadableStoreError
			if !errors.As(err, &ue) || !errors.Is(err, tc.wantIs) {
				t.Fatalf("Open: %v, want *UnreadableStoreError matching %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "To recover") {
				t.Errorf("error %q does not say %q and how to recover", err, tc.want)
			}
			if !equalDumps(before, dump(t, raw)) {
				t.Error("refused Open changed the store")
			}
		})
	}
}

func dump(t testing.TB, raw ds.Batching) map[string][]byte {
	t.Helper()
	s := &Store{ds: raw}
	out := map[string][]byte{}
	if err := s.scan(context.Background(), span{prefix: "/"}, func(k string, v []byte) (bool, error) {
		out[k] = bytes.Clone(v)
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func equalDumps(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := Open(ctx, Options{Dir: dir, ReadOnly: true, Logger: quiet}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read-only open of an empty directory: %v", err)
	}
	s := openDir(t, dir)
	if err := s.Identity().Create(ctx, Identity{PrivateKey: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := Open(ctx, Options{Dir: dir, ReadOnly: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Identity().Get(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Contacts().Put(ctx, Contact{PeerID: []byte("p")}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write to a read-only store: %v", err)
	}
	if _, err := Open(ctx, Options{Backend: BackendMemory, ReadOnly: true}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("read-only memory store: %v", err)
	}
}
