package datastore

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	ds "github.com/ipfs/go-datastore"
)

// seedStore fills a store with one record of each critical kind and returns
// the keys by name.
func seedStore(t *testing.T, s *Store) map[string]string {
	t.Helper()
	ctx := context.Background()
	gid := []byte("corrupt-group")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Identity().Create(ctx, Identity{PrivateKey: []byte("id")}))
	must(s.Groups().Create(ctx, NewGroup{GroupID: gid, State: bytes.Repeat([]byte("s"), 100), EpochSecrets: []byte("e0")}))
	must(s.Groups().Create(ctx, NewGroup{GroupID: []byte("second"), State: []byte("t")}))
	must(s.Contacts().Put(ctx, Contact{PeerID: []byte("p"), Name: "P"}))
	must(s.History().Append(ctx, gid, []HistoryEntry{{Body: []byte("hi")}}))
	bg := s.keys.group(gid)
	return map[string]string{
		"identity": nsIdentity,
		"state":    stateKey(bg),
		"second":   stateKey(s.keys.group([]byte("second"))),
		"secrets":  secretsKey(bg, 0),
		"contact":  s.keys.contactKey([]byte("p")),
		"history":  nsHistory + bg + "/" + hex64(1),
	}
}

func TestCorruptRecordsAreNamed(t *testing.T) {
	ctx := context.Background()
	damage := []struct {
		name string
		f    func(v []byte, other []byte) []byte
	}{
		{"truncated", func(v, _ []byte) []byte { return v[:len(v)-5] }},
		{"truncated to header", func(v, _ []byte) []byte { return v[:10] }},
		{"garbled ciphertext", func(v, _ []byte) []byte { v[len(v)/2] ^= 0x01; return v }},
		{"garbled nonce", func(v, _ []byte) []byte { v[5] ^= 0x80; return v }},
		{"wrong kind tag", func(v, _ []byte) []byte { v[1] = byte(kindContact); return v }},
		{"unknown format", func(v, _ []byte) []byte { v[0] = 9; return v }},
		{"swapped from another key", func(_, other []byte) []byte { return other }},
		{"empty", func([]byte, []byte) []byte { return nil }},
	}
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			raw := newRaw()
			s := openRaw(t, raw, "p")
			keys := seedStore(t, s)
			gid := []byte("corrupt-group")
			key := keys["state"]
			v, _ := raw.Get(ctx, ds.RawKey(key))
			other, _ := raw.Get(ctx, ds.RawKey(keys["second"]))
			if err := raw.Put(ctx, ds.RawKey(key), d.f(bytes.Clone(v), bytes.Clone(other))); err != nil {
				t.Fatal(err)
			}
			_, err := s.Groups().State(ctx, gid)
			var ce *CorruptRecordError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("State: %v, want *CorruptRecordError", err)
			}
			if ce.Key != key || ce.Record != "group state" || !strings.Contains(err.Error(), key) {
				t.Fatalf("error does not name the record: %v", err)
			}
			// Writes that need the state refuse too, and change nothing.
			if err := s.Groups().Transition(ctx, transition(gid, 0, 1)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Transition over a corrupt state: %v", err)
			}
			rep, err := s.Verify(ctx)
			if err != nil || len(rep.Damaged) != 1 || rep.Damaged[0].Key != key {
				t.Fatalf("Verify: %+v, %v", rep, err)
			}
			s.Close()
			_, err = Open(ctx, Options{datastore: raw, Passphrase: []byte("p"), KDF: fastKDF, Logger: quiet})
			var ue *UnreadableStoreError
			if !errors.As(err, &ue) || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "To recover") {
				t.Fatalf("Open of a store with a damaged group state: %v", err)
			}
		})
	}
}

func TestOpenChecksBulkRecordsOnlyWhenAsked(t *testing.T) {
	ctx := context.Background()
	raw := newRaw()
	s := openRaw(t, raw, "p")
	keys := seedStore(t, s)
	s.Close()
	v, _ := raw.Get(ctx, ds.RawKey(keys["history"]))
	v[len(v)-1] ^= 1
	raw.Put(ctx, ds.RawKey(keys["history"]), v)

	s = openRaw(t, raw, "p")
	_, err := s.History().Newest(ctx, []byte("corrupt-group"), 5)
	var ce *CorruptRecordError
	if !errors.As(err, &ce) || ce.Key != keys["history"] || ce.Record != "history" {
		t.Fatalf("reading damaged history: %v", err)
	}
	s.Close()
	_, err = Open(ctx, Options{datastore: raw, Passphrase: []byte("p"), KDF: fastKDF, VerifyAll: true, Logger: quiet})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), keys["history"]) {
		t.Fatalf("Open with VerifyAll: %v", err)
	}
}

func TestUnknownKeysAreReported(t *testing.T) {
	ctx := context.Background()
	raw := newRaw()
	s := openRaw(t, raw, "p")
	s.Close()
	raw.Put(ctx, ds.RawKey("/v1/mystery/1"), []byte("x"))
	_, err := Open(ctx, Options{datastore: raw, Passphrase: []byte("p"), KDF: fastKDF, Logger: quiet})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "/v1/mystery/1") {
		t.Fatalf("Open with an unknown key: %v", err)
	}
}

// On Pebble, Open skips the bulk namespaces without reading them, yet still
// checks every critical record and notices keys outside the layout.
func TestOpenVerifiesPebbleStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDir(t, dir)
	gid := []byte("g")
	if err := s.Groups().Create(ctx, NewGroup{GroupID: gid, State: []byte("s")}); err != nil {
		t.Fatal(err)
	}
	if err := s.History().Append(ctx, gid, []HistoryEntry{{Body: []byte("a")}, {Body: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Contacts().Put(ctx, Contact{PeerID: []byte("p")}); err != nil {
		t.Fatal(err)
	}
	histKey := nsHistory + s.keys.group(gid) + "/" + hex64(1)
	contactKey := s.keys.contactKey([]byte("p"))
	damage := func(key string) {
		t.Helper()
		v, err := s.ds.Get(ctx, ds.RawKey(key))
		if err != nil {
			t.Fatal(err)
		}
		v[len(v)-1] ^= 1
		if err := s.ds.Put(ctx, ds.RawKey(key), v); err != nil {
			t.Fatal(err)
		}
	}
	damage(histKey)
	s.Close()
	s = openDir(t, dir) // damaged history: found when read, not at Open
	rep, err := s.Verify(ctx)
	if err != nil || len(rep.Damaged) != 1 || rep.Damaged[0].Key != histKey {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
	damage(contactKey)
	if err := s.ds.Put(ctx, ds.RawKey("/v1/zzz/1"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, Options{Dir: dir, Logger: quiet})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), contactKey) || !strings.Contains(err.Error(), "/v1/zzz/1") || strings.Contains(err.Error(), histKey) {
		t.Fatalf("Open: %v", err)
	}
}
