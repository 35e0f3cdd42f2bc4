package consensus

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func sampleMessages() []Message {
	cert := &Certificate{Ballot: Ballot{3, 2}, Votes: []Vote{{1, []byte("sig-1")}, {2, []byte("sig-2")}}}
	return []Message{
		{Type: MsgPrepare, Epoch: 7, From: 2, Ballot: Ballot{3, 2}},
		{Type: MsgPromise, Epoch: 7, From: 1, Ballot: Ballot{3, 2}},
		{Type: MsgPromise, Epoch: 7, From: 1, Ballot: Ballot{3, 2}, AcceptedBallot: Ballot{1, 0}, Value: []byte("commit")},
		{Type: MsgNack, Epoch: 7, From: 1, Ballot: Ballot{2, 4}, Promised: Ballot{3, 2}},
		{Type: MsgAccept, Epoch: 7, From: 2, Ballot: Ballot{3, 2}, Value: []byte("commit")},
		{Type: MsgAccepted, Epoch: 7, From: 1, Ballot: Ballot{3, 2}, Signature: []byte("sig-1")},
		{Type: MsgDecide, Epoch: 7, From: 2, Ballot: Ballot{3, 2}, Value: []byte("commit"), Certificate: cert},
		{Type: MsgLearn, Epoch: 7, From: 1},
		{Type: MsgCommitted, Epoch: 7, From: 2, Ballot: Ballot{3, 2}, Digest: [32]byte{1, 2, 3}, Certificate: cert},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		t.Run(m.Type.String(), func(t *testing.T) {
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != m.Size() {
				t.Errorf("Size() = %d, encoding has %d bytes", m.Size(), len(b))
			}
			got, err := DecodeMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			again, err := got.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, again) {
				t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
			}
			if got.Type != m.Type || got.Epoch != m.Epoch || got.From != m.From || got.Ballot != m.Ballot ||
				got.AcceptedBallot != m.AcceptedBallot || got.Promised != m.Promised ||
				!bytes.Equal(got.Value, m.Value) || !bytes.Equal(got.Signature, m.Signature) || got.Digest != m.Digest {
				t.Fatalf("decoded %+v, want %+v", got, m)
			}
		})
	}
}

// TestMessageEncodingFixed pins the wire layout: a change here is a
// protocol version change.
func TestMessageEncodingFixed(t *testing.T) {
	m := Message{Type: MsgAccepted, Epoch: 1, From: 2, Ballot: Ballot{3, 4}, Signature: []byte{0xaa}}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	const want = "01" + "05" + "0000000000000001" + "00000002" + "00000003" + "00000004" + "0001" + "aa"
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("encoding %s, want %s", got, want)
	}
}

func TestMessageDecodeRejects(t *testing.T) {
	valid := func(m Message) []byte {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	accept := valid(Message{Type: MsgAccept, Epoch: 1, From: 1, Ballot: Ballot{2, 1}, Value: []byte("v")})
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"unknown version", append([]byte{2}, accept[1:]...)},
		{"unknown type", append([]byte{1, 99}, accept[2:]...)},
		{"truncated header", accept[:10]},
		{"truncated value", accept[:len(accept)-1]},
		{"trailing byte", append(append([]byte{}, accept...), 0)},
		{"accept with zero ballot", func() []byte { b := append([]byte{}, accept...); copy(b[14:], make([]byte, 8)); return b }()},
		{"zero round with leaf", func() []byte {
			b := append([]byte{}, accept...)
			copy(b[14:], []byte{0, 0, 0, 0, 0, 0, 0, 9})
			return b
		}()},
		{"empty accept value", append(append([]byte{}, accept[:22]...), 0, 0, 0, 0)},
		{"learn with ballot", func() []byte {
			b := valid(Message{Type: MsgLearn, Epoch: 1, From: 1})
			b[17] = 1
			return b
		}()},
		{"prepare with zero ballot", func() []byte {
			b := valid(Message{Type: MsgPrepare, Epoch: 1, From: 1, Ballot: Ballot{2, 1}})
			copy(b[14:], make([]byte, 8))
			return b
		}()},
		{"promise value without ballot", func() []byte {
			b := valid(Message{Type: MsgPromise, Epoch: 1, From: 1, Ballot: Ballot{2, 1}, AcceptedBallot: Ballot{1, 1}, Value: []byte("v")})
			copy(b[22:], make([]byte, 8))
			return b
		}()},
		{"huge value length", func() []byte {
			b := append([]byte{}, accept[:22]...)
			return append(b, 0xff, 0xff, 0xff, 0xff)
		}()},
		{"empty signature", append(valid(Message{Type: MsgAccepted, Epoch: 1, From: 1, Ballot: Ballot{2, 1}, Signature: []byte{1}})[:22], 0, 0)},
		{"decide with unsorted votes", func() []byte {
			b := valid(Message{Type: MsgDecide, Epoch: 1, From: 1, Ballot: Ballot{2, 1}, Value: []byte("v"),
				Certificate: &Certificate{Ballot: Ballot{2, 1}, Votes: []Vote{{1, []byte{1}}, {2, []byte{1}}}}})
			b[len(b)-4] = 0 // the second vote's leaf becomes 0, below the first
			return b
		}()},
		{"decide vote count beyond input", func() []byte {
			b := valid(Message{Type: MsgDecide, Epoch: 1, From: 1, Ballot: Ballot{2, 1}, Value: []byte("v"),
				Certificate: &Certificate{Ballot: Ballot{2, 1}, Votes: []Vote{{1, []byte{1}}}}})
			b[27] = 0xff // high byte of the vote count
			return b
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeMessage(tt.data); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeMessage(%x) error %v, want ErrMalformed", tt.data, err)
			}
		})
	}
}

func TestMessageEncodeRejects(t *testing.T) {
	tests := []Message{
		{Type: 0, Ballot: Ballot{2, 1}},
		{Type: MsgPrepare},
		{Type: MsgLearn, Ballot: Ballot{2, 1}},
		{Type: MsgAccept, Ballot: Ballot{2, 1}},
		{Type: MsgAccepted, Ballot: Ballot{2, 1}},
		{Type: MsgPromise, Ballot: Ballot{2, 1}, Value: []byte("v")},
		{Type: MsgDecide, Ballot: Ballot{2, 1}, Value: []byte("v")},
		{Type: MsgCommitted, Ballot: Ballot{2, 1}},
		{Type: MsgDecide, Ballot: Ballot{2, 1}, Value: []byte("v"), Certificate: &Certificate{Ballot: Ballot{3, 1}, Votes: []Vote{{1, []byte{1}}}}},
		{Type: MsgDecide, Ballot: Ballot{2, 1}, Value: []byte("v"), Certificate: &Certificate{Ballot: Ballot{2, 1}, Votes: []Vote{{2, []byte{1}}, {1, []byte{1}}}}},
	}
	for _, m := range tests {
		if _, err := m.MarshalBinary(); !errors.Is(err, ErrMalformed) {
			t.Errorf("MarshalBinary(%+v) error %v, want ErrMalformed", m, err)
		}
	}
}

func TestUnmarshalCopiesInput(t *testing.T) {
	m := Message{Type: MsgAccept, Epoch: 1, From: 1, Ballot: Ballot{2, 1}, Value: []byte("value")}
	b, _ := m.MarshalBinary()
	got, err := DecodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if string(got.Value) != "value" {
		t.Fatalf("decoded value changed with the input buffer: %q", got.Value)
	}
}

func TestHardStateRoundTrip(t *testing.T) {
	for _, hs := range []HardState{
		{},
		{Epoch: 4, Promised: Ballot{5, 1}},
		{Epoch: 4, Promised: Ballot{5, 1}, Accepted: Ballot{2, 3}, Value: []byte("commit")},
	} {
		b, err := hs.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got HardState
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if got.Epoch != hs.Epoch || got.Promised != hs.Promised || got.Accepted != hs.Accepted || !bytes.Equal(got.Value, hs.Value) {
			t.Fatalf("got %+v, want %+v", got, hs)
		}
	}
	for _, bad := range []HardState{
		{Promised: Ballot{1, 1}, Accepted: Ballot{2, 1}, Value: []byte("v")}, // accepted above promised
		{Promised: Ballot{2, 1}, Accepted: Ballot{2, 1}},                     // accepted without value
		{Promised: Ballot{2, 1}, Value: []byte("v")},                         // value without ballot
	} {
		if _, err := bad.MarshalBinary(); !errors.Is(err, ErrMalformed) {
			t.Errorf("MarshalBinary(%+v) error %v, want ErrMalformed", bad, err)
		}
	}
	if err := new(HardState).UnmarshalBinary([]byte{1, 2, 3}); !errors.Is(err, ErrMalformed) {
		t.Errorf("corrupt state: error %v, want ErrMalformed", err)
	}
}

func TestCertificateRoundTrip(t *testing.T) {
	c := Certificate{Ballot: Ballot{3, 2}, Votes: []Vote{{1, []byte("a")}, {5, []byte("bb")}}}
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Certificate
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	again, _ := got.MarshalBinary()
	if !bytes.Equal(b, again) {
		t.Fatalf("re-encoding differs")
	}
	if err := got.UnmarshalBinary(b[:len(b)-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated certificate: error %v, want ErrMalformed", err)
	}
}

// Fuzz targets: anything that decodes must encode back to the same bytes,
// and nothing may panic.

func FuzzMessage(f *testing.F) {
	for _, m := range sampleMessages() {
		b, _ := m.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMessage(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode error %v is not ErrMalformed", err)
			}
			return
		}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("round trip differs:\n in  %x\n out %x", data, b)
		}
	})
}

func FuzzCertificate(f *testing.F) {
	c := Certificate{Ballot: Ballot{3, 2}, Votes: []Vote{{1, []byte("a")}, {5, []byte("bb")}}}
	b, _ := c.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Certificate
		if err := c.UnmarshalBinary(data); err != nil {
			return
		}
		b, err := c.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded certificate does not encode: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("round trip differs:\n in  %x\n out %x", data, b)
		}
	})
}

func FuzzHardState(f *testing.F) {
	for _, hs := range []HardState{{}, {Epoch: 4, Promised: Ballot{5, 1}, Accepted: Ballot{2, 3}, Value: []byte("commit")}} {
		b, _ := hs.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var hs HardState
		if err := hs.UnmarshalBinary(data); err != nil {
			return
		}
		b, err := hs.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded state does not encode: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("round trip differs:\n in  %x\n out %x", data, b)
		}
	})
}

// FuzzStep feeds a live instance a sequence of messages cut from the input
// (each prefixed by a one-byte length; a zero length means a Tick): nothing
// may panic, and the instance must only ever produce encodable states that
// keep Promised >= Accepted, and encodable messages.
func FuzzStep(f *testing.F) {
	var seed []byte
	for _, m := range sampleMessages() {
		b, _ := m.MarshalBinary()
		if len(b) < 256 {
			seed = append(append(seed, byte(len(b))), b...)
		}
		f.Add(append([]byte{byte(len(b))}, b...))
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		in := newTestInstance(t, 1, []uint32{0, 1, 2, 3, 4}, 7)
		if err := in.Propose([]byte("mine")); err != nil {
			t.Fatal(err)
		}
		check := func() {
			rd := in.Ready()
			if rd.State != nil {
				if _, err := rd.State.MarshalBinary(); err != nil {
					t.Fatalf("instance produced an unencodable state: %v", err)
				}
			}
			for _, env := range rd.Messages {
				if _, err := env.Message.MarshalBinary(); err != nil {
					t.Fatalf("instance produced an unencodable %v: %v", env.Message.Type, err)
				}
			}
			in.Advance()
		}
		check()
		for len(data) > 0 {
			n := int(data[0])
			data = data[1:]
			if n == 0 {
				in.Tick()
				check()
				continue
			}
			if n > len(data) {
				return
			}
			m, err := DecodeMessage(data[:n])
			data = data[n:]
			if err != nil {
				continue
			}
			_ = in.Step(m)
			check()
		}
	})
}
