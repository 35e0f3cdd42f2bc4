package node

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestContentRoundTrip(t *testing.T) {
	id := [MessageIDLen]byte{1, 2, 3}
	reply := bytes.Repeat([]byte{9}, MessageIDLen)
	tests := []struct {
		name string
		c    Content
	}{
		{"text", Content{Type: ContentText, ID: id, SentAt: time.UnixMilli(1_790_000_000_123), Body: []byte("hello")}},
		{"reply", Content{Type: ContentText, ID: id, SentAt: time.UnixMilli(1), ReplyTo: reply, Body: []byte("re: hello")}},
		{"empty body", Content{Type: ContentText, ID: id, SentAt: time.UnixMilli(0)}},
		{"unknown type keeps its bytes", Content{Type: 0x1234, ID: id, SentAt: time.UnixMilli(5), Body: []byte{0xff, 0xfe}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var got Content
			if err := got.Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			if got.Type != tt.c.Type || got.ID != tt.c.ID || !got.SentAt.Equal(tt.c.SentAt) || !bytes.Equal(got.ReplyTo, tt.c.ReplyTo) || !bytes.Equal(got.Body, tt.c.Body) {
				t.Fatalf("got %+v, want %+v", got, tt.c)
			}
			again, _ := got.Marshal()
			if !bytes.Equal(again, b) {
				t.Fatal("re-encoding differs")
			}
		})
	}
}

func TestContentRejects(t *testing.T) {
	good, _ := (&Content{Type: ContentText, SentAt: time.UnixMilli(1), Body: []byte("hi")}).Marshal()
	withVersion := func(v byte) []byte { b := bytes.Clone(good); b[0] = v; return b }
	badReply := bytes.Clone(good)
	badReply[contentHeaderLen-1] = 3
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short header", good[:10]},
		{"unknown version", withVersion(2)},
		{"reply-to of 3 bytes", badReply},
		{"truncated body", good[:len(good)-1]},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"invalid UTF-8 text", func() []byte {
			b, _ := (&Content{Type: ContentText, Body: []byte{0xff}}).Marshal()
			return b
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Content
			if err := c.Unmarshal(tt.b); !errors.Is(err, ErrMalformedContent) {
				t.Fatalf("Unmarshal = %v, want ErrMalformedContent", err)
			}
		})
	}
	if _, err := (&Content{ReplyTo: []byte{1}}).Marshal(); err == nil {
		t.Fatal("a reply-to of one byte was encoded")
	}
}

func TestCommitValueRoundTrip(t *testing.T) {
	for _, v := range []commitValue{{Commit: []byte{1, 2, 3}}, {Commit: []byte{1}, Welcome: []byte{4, 5}}} {
		b := v.marshal()
		var got commitValue
		if err := got.unmarshal(b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Commit, v.Commit) || !bytes.Equal(got.Welcome, v.Welcome) || !bytes.Equal(got.marshal(), b) {
			t.Fatalf("got %+v, want %+v", got, v)
		}
	}
	for _, b := range [][]byte{nil, {1}, {2, 0, 0, 0, 1, 7, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 1, 7, 0, 0, 0, 1}} {
		var v commitValue
		if err := v.unmarshal(b); err == nil {
			t.Errorf("unmarshal(%x) accepted", b)
		}
	}
}

// FuzzContent: whatever parses re-encodes to the same bytes.
func FuzzContent(f *testing.F) {
	b, _ := (&Content{Type: ContentText, SentAt: time.UnixMilli(1), ReplyTo: make([]byte, MessageIDLen), Body: []byte("hi")}).Marshal()
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Content
		if c.Unmarshal(b) != nil {
			return
		}
		again, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x became %x", b, again)
		}
	})
}

// FuzzCommitValue: whatever parses re-encodes to the same bytes.
func FuzzCommitValue(f *testing.F) {
	f.Add(commitValue{Commit: []byte{1}, Welcome: []byte{2}}.marshal())
	f.Add(commitValue{Commit: []byte{1}}.marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		var v commitValue
		if v.unmarshal(b) != nil {
			return
		}
		if again := v.marshal(); !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x became %x", b, again)
		}
	})
}
