package datastore

import (
	"bytes"
	"testing"
	"time"
)

// Every record decoder round-trips: whatever it accepts re-encodes to the
// same bytes, so no two encodings mean the same record and nothing that was
// read is lost on the next write.

type marshaler interface{ marshal() []byte }

func fuzzRoundTrip[T any, P interface {
	*T
	marshaler
}](f *testing.F, dec func([]byte) (T, error), seeds ...T) {
	for _, s := range seeds {
		f.Add(P(&s).marshal())
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 5, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := dec(data)
		if err != nil {
			return
		}
		if out := P(&r).marshal(); !bytes.Equal(out, data) {
			t.Fatalf("round trip changed the bytes:\n in  %x\n out %x", data, out)
		}
	})
}

var fuzzTime = time.Unix(1764000000, 123456789)

func FuzzIdentity(f *testing.F) {
	fuzzRoundTrip(f, unmarshalIdentity, Identity{PrivateKey: []byte("priv"), PublicKey: []byte("pub"), CreatedAt: fuzzTime})
}

func FuzzKeyPackage(f *testing.F) {
	fuzzRoundTrip(f, unmarshalKeyPackage, KeyPackage{Ref: []byte("r"), KeyPackage: []byte("kp"), InitPrivateKey: []byte("i"), LeafPrivateKey: []byte("l"), SignaturePrivateKey: []byte("s"), CreatedAt: fuzzTime, LastResort: true})
	f.Add((&KeyPackage{Ref: []byte("r"), CreatedAt: fuzzTime, ServedAt: fuzzTime}).marshal())
}

func FuzzGroupState(f *testing.F) {
	fuzzRoundTrip(f, unmarshalGroupState, GroupState{GroupID: []byte("g"), Epoch: 9, State: []byte("state"), UpdatedAt: fuzzTime})
}

func FuzzEpochSecrets(f *testing.F) {
	fuzzRoundTrip(f, unmarshalEpochSecrets, epochSecrets{GroupID: []byte("g"), Epoch: 3, Secrets: []byte("s")})
}

func FuzzRatchetKey(f *testing.F) {
	fuzzRoundTrip(f, unmarshalRatchetKey, RatchetKey{KeyID: KeyID{Epoch: 1, Leaf: 2, Generation: 3}, Key: []byte("k")})
}

func FuzzDecision(f *testing.F) {
	fuzzRoundTrip(f, unmarshalDecision, Decision{GroupID: []byte("g"), Epoch: 4, Commit: []byte("c"), Welcome: []byte("w"), Certificate: []byte("cert"), DecidedAt: fuzzTime})
}

func FuzzAcceptor(f *testing.F) {
	fuzzRoundTrip(f, unmarshalAcceptor, acceptorRecord{GroupID: []byte("g"), Epoch: 4, State: []byte("promised")})
}

func FuzzLogEntry(f *testing.F) {
	fuzzRoundTrip(f, unmarshalLogEntry, LogEntry{Seq: 7, MessageID: []byte("m"), Epoch: 2, ReceivedAt: fuzzTime, Ciphertext: []byte("ct")})
}

func FuzzLogIndex(f *testing.F) {
	fuzzRoundTrip(f, unmarshalLogIndex, logIndex{Seq: 12})
}

func FuzzHistoryEntry(f *testing.F) {
	fuzzRoundTrip(f, unmarshalHistoryEntry, HistoryEntry{Seq: 1, MessageID: []byte("m"), Epoch: 2, Sender: []byte("alice"), SentAt: fuzzTime, ReceivedAt: fuzzTime, Body: []byte("hi")})
}

func FuzzOutboxItem(f *testing.F) {
	fuzzRoundTrip(f, unmarshalOutboxItem, OutboxItem{ID: 3, Kind: "publish", GroupID: []byte("g"), Payload: []byte("p"), CreatedAt: fuzzTime, Attempts: 2})
}

func FuzzContact(f *testing.F) {
	fuzzRoundTrip(f, unmarshalContact, Contact{PeerID: []byte("p"), Name: "Bob", IdentityKey: []byte("ik"), Verification: KeyChanged, SafetyCode: "123", AddedAt: fuzzTime})
}

func FuzzMeta(f *testing.F) {
	id := bytes.Repeat([]byte{7}, 16)
	fuzzRoundTrip(f, unmarshalMeta,
		meta{Version: SchemaVersion, StoreID: id, Mode: keyModeFile, KeyCheck: bytes.Repeat([]byte{1}, 32)},
		meta{Version: SchemaVersion, StoreID: id, Mode: keyModePassphrase, KDF: fastKDF, Salt: bytes.Repeat([]byte{2}, 16), WrappedKey: bytes.Repeat([]byte{3}, 72)},
	)
}

func FuzzKeyFile(f *testing.F) {
	fuzzRoundTrip(f, unmarshalKeyFile, keyFile{StoreID: bytes.Repeat([]byte{7}, 16), Key: bytes.Repeat([]byte{9}, 32)})
}

// FuzzSealedRecord feeds arbitrary values to the record opener (which must
// reject them without panicking, since only the data key can make a valid
// one) and checks that the envelope parser round-trips and that sealing any
// payload opens back to it.
func FuzzSealedRecord(f *testing.F) {
	ks, err := deriveKeys(bytes.Repeat([]byte{5}, dataKeySize))
	if err != nil {
		f.Fatal(err)
	}
	const key = "/v1/group/00/state"
	f.Add(ks.seal(kindGroupState, key, []byte("payload")), []byte("payload"))
	f.Add([]byte{1, 3}, []byte{})
	f.Fuzz(func(t *testing.T, value, payload []byte) {
		if env, err := parseEnvelope(value); err == nil && !bytes.Equal(env.bytes(), value) {
			t.Fatalf("envelope round trip changed the bytes")
		}
		if p, err := ks.open(kindGroupState, key, value); err == nil {
			// Only a value sealed under ks opens; re-sealing must open alike.
			if q, err := ks.open(kindGroupState, key, ks.seal(kindGroupState, key, p)); err != nil || !bytes.Equal(p, q) {
				t.Fatalf("re-sealed value does not open to the same payload")
			}
		}
		sealed := ks.seal(kindHistory, key, payload)
		got, err := ks.open(kindHistory, key, sealed)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("seal/open round trip: %v", err)
		}
		if _, err := ks.open(kindHistory, key+"x", sealed); err == nil {
			t.Fatal("a value opened under another key")
		}
	})
}
