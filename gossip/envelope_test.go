package gossip

import (
	"bytes"
	"errors"
	"testing"
)

func TestEnvelopeParse(t *testing.T) {
	valid, err := Envelope{Kind: KindGroupMessage, Body: []byte("hello")}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      []byte
		max     int
		wantErr error
	}{
		{"valid", valid, 100, nil},
		{"empty", nil, 100, ErrMalformed},
		{"short header", valid[:5], 100, ErrMalformed},
		{"truncated body", valid[:len(valid)-1], 100, ErrMalformed},
		{"trailing byte", append(append([]byte{}, valid...), 0), 100, ErrMalformed},
		{"version 0", append([]byte{0}, valid[1:]...), 100, ErrBadVersion},
		{"version 2", append([]byte{2}, valid[1:]...), 100, ErrBadVersion},
		{"unknown kind", []byte{1, 0x7f, 0, 0, 0, 0}, 100, ErrUnknownKind},
		{"over limit", valid, 4, ErrTooLarge},
		{"declares 4 GiB", []byte{1, 1, 0xff, 0xff, 0xff, 0xff}, 1 << 30, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseEnvelope(tt.in, tt.max)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseEnvelope error = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				again, err := env.Marshal()
				if err != nil || !bytes.Equal(again, tt.in) {
					t.Fatalf("re-encoding gave %x, %v; want %x", again, err, tt.in)
				}
			}
			// The stream reader must agree with the slice parser on
			// everything except trailing bytes, which belong to the
			// next frame on a stream.
			_, rerr := ReadEnvelope(bytes.NewReader(tt.in), tt.max)
			if tt.name != "trailing byte" && (rerr == nil) != (err == nil) {
				t.Fatalf("ReadEnvelope error = %v, ParseEnvelope error = %v", rerr, err)
			}
		})
	}
}

func TestEnvelopeMarshalRejects(t *testing.T) {
	if _, err := (Envelope{Kind: Kind(0x7f)}).Marshal(); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("unknown kind: err = %v", err)
	}
}

// bodyCodecs decode and re-encode each body type, keyed by the kind that
// carries it.
var bodyCodecs = map[Kind]func([]byte) ([]byte, error){
	KindKeyPackageRequest: func(b []byte) ([]byte, error) {
		var v KeyPackageRequest
		err := v.Unmarshal(b)
		return v.Marshal(), err
	},
	KindWelcome: func(b []byte) ([]byte, error) {
		var v WelcomeMessage
		err := v.Unmarshal(b)
		return v.Marshal(), err
	},
	KindCommitsRequest: func(b []byte) ([]byte, error) {
		var v CommitsRequest
		err := v.Unmarshal(b)
		return v.Marshal(), err
	},
	KindCommits: func(b []byte) ([]byte, error) {
		var v CommitsResponse
		err := v.Unmarshal(b)
		return v.Marshal(), err
	},
	KindMessagesRequest: func(b []byte) ([]byte, error) {
		var v MessagesRequest
		err := v.Unmarshal(b)
		return v.Marshal(), err
	},
	KindMessages: func(b []byte) ([]byte, error) {
		var v MessagesResponse
		err := v.Unmarshal(b)
		return v.Marshal(), err
	},
	KindDirect: func(b []byte) ([]byte, error) {
		var v DirectMessage
		err := v.Unmarshal(b)
		return v.Marshal(), err
	},
	KindPayloadRequest: func(b []byte) ([]byte, error) {
		var v PayloadRequest
		err := v.Unmarshal(b)
		return v.Marshal(), err
	},
	KindPayloadRef: func(b []byte) ([]byte, error) {
		var v PayloadRef
		err := v.Unmarshal(b)
		return v.Marshal(), err
	},
	KindError: func(b []byte) ([]byte, error) {
		var v ErrorBody
		err := v.Unmarshal(b)
		return v.Marshal(), err
	},
}

func sampleBodies() map[Kind][]byte {
	gid := []byte("group-0123456789abcdef0123456789")
	return map[Kind][]byte{
		KindKeyPackageRequest: KeyPackageRequest{CipherSuite: 1}.Marshal(),
		KindWelcome:           WelcomeMessage{GroupID: gid, Welcome: []byte("welcome")}.Marshal(),
		KindCommitsRequest:    CommitsRequest{GroupID: gid, SinceEpoch: 7, Limit: 10}.Marshal(),
		KindCommits: CommitsResponse{Commits: []CommitRecord{
			{Epoch: 7, Commit: []byte("c7"), Certificate: []byte("q7")},
			{Epoch: 8, Commit: []byte("c8"), Certificate: nil},
		}, More: true}.Marshal(),
		KindMessagesRequest: MessagesRequest{GroupID: gid, Cursor: []byte{1, 2}, Limit: 3}.Marshal(),
		KindMessages:        MessagesResponse{Messages: [][]byte{[]byte("a"), {}}, Next: []byte{9}}.Marshal(),
		KindDirect:          DirectMessage{GroupID: gid, Payload: []byte("vote")}.Marshal(),
		KindPayloadRequest:  PayloadRequest{Hash: Hash{1, 2, 3}}.Marshal(),
		KindPayloadRef:      PayloadRef{Kind: KindGroupMessage, Size: 1 << 20, Hash: Hash{4}}.Marshal(),
		KindError:           ErrorBody{Code: CodeNotFound, Message: "none"}.Marshal(),
	}
}

func TestBodiesRoundTrip(t *testing.T) {
	for kind, body := range sampleBodies() {
		t.Run(kind.String(), func(t *testing.T) {
			out, err := bodyCodecs[kind](body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, body) {
				t.Fatalf("round trip changed %x to %x", body, out)
			}
			// Every strict prefix is malformed, and so is any trailing byte.
			for i := 0; i < len(body); i++ {
				if _, err := bodyCodecs[kind](body[:i]); !errors.Is(err, ErrMalformed) {
					t.Fatalf("prefix of %d bytes: err = %v, want ErrMalformed", i, err)
				}
			}
			if _, err := bodyCodecs[kind](append(append([]byte{}, body...), 0)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("trailing byte: err = %v", err)
			}
		})
	}
}

func TestBodiesReject(t *testing.T) {
	tests := []struct {
		name string
		kind Kind
		body []byte
	}{
		{"empty group id", KindDirect, DirectMessage{Payload: []byte("x")}.Marshal()},
		{"long group id", KindDirect, DirectMessage{GroupID: make([]byte, 256)}.Marshal()},
		{"bool 2", KindCommits, []byte{0, 0, 0, 0, 2}},
		{"huge count", KindMessages, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0}},
		{"ref to ref", KindPayloadRef, PayloadRef{Kind: KindPayloadRef}.Marshal()},
		{"ref to stream kind", KindPayloadRef, PayloadRef{Kind: KindWelcome}.Marshal()},
		{"long cursor", KindMessagesRequest, MessagesRequest{GroupID: []byte{1}, Cursor: make([]byte, maxCursorLen+1)}.Marshal()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := bodyCodecs[tt.kind](tt.body); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestTopicAndRendezvous(t *testing.T) {
	a, b := []byte("group-a"), []byte("group-b")
	if Topic(a) == Topic(b) || Topic(a) != Topic([]byte("group-a")) {
		t.Fatal("topics must be a function of the group ID")
	}
	if bytes.Contains([]byte(Topic(a)), a) {
		t.Fatal("topic reveals the group ID")
	}
	if RendezvousKey(a).Equals(RendezvousKey(b)) || !RendezvousKey(a).Equals(RendezvousKey([]byte("group-a"))) {
		t.Fatal("rendezvous keys must be a function of the group ID")
	}
}

func FuzzEnvelope(f *testing.F) {
	for kind, body := range sampleBodies() {
		b, _ := Envelope{Kind: kind, Body: body}.Marshal()
		f.Add(b)
	}
	f.Add([]byte{1, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := ParseEnvelope(b, 1<<20)
		if err != nil {
			return
		}
		out, err := env.Marshal()
		if err != nil {
			t.Fatalf("re-encoding a parsed envelope: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip changed %x to %x", b, out)
		}
	})
}

func FuzzBodies(f *testing.F) {
	for kind, body := range sampleBodies() {
		f.Add(uint8(kind), body)
	}
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		codec, ok := bodyCodecs[Kind(kind)]
		if !ok {
			return
		}
		out, err := codec(b)
		if err != nil {
			return
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("%v: round trip changed %x to %x", Kind(kind), b, out)
		}
	})
}
