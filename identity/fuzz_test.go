package identity

import (
	"bytes"
	"errors"
	"testing"
)

// Every decoder of the package is fuzzed with a round-trip assertion: what
// parses must re-encode to exactly the input (or, for text that allows
// separators, to a canonical form that parses back to the same value).

func FuzzParseCredential(f *testing.F) {
	n := mustGenerate(f, "fuzz")
	for i, suite := range allSuites {
		f.Add(mustIssue(f, n, suite, leafKey(f, suite, string(rune('a'+i)))).Marshal())
	}
	f.Add([]byte{0xF0, 0xC1, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCredential(b)
		if err != nil {
			return
		}
		if got := c.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("round trip: parsed %x, re-encoded %x", b, got)
		}
		// A parsed credential is internally consistent: checked against its
		// own suite and key, only the signature can fail.
		id, err := c.Verify(c.CipherSuite(), c.LeafSignatureKey())
		if err != nil && !errors.Is(err, ErrBadCredentialSignature) {
			t.Fatalf("Verify of a parsed credential: %v", err)
		}
		if err == nil && id != c.Identity() {
			t.Fatalf("Verify returned %v, credential names %v", id, c.Identity())
		}
		back, err := CredentialFromMLS(c.MLS())
		if err != nil || !bytes.Equal(back.Marshal(), b) {
			t.Fatalf("MLS round trip: %v", err)
		}
	})
}

func FuzzParseNodeIdentity(f *testing.F) {
	good, _ := mustGenerate(f, "fuzz").MarshalBinary()
	f.Add(good)
	f.Add(good[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseNodeIdentity(b)
		if err != nil {
			return
		}
		got, _ := n.MarshalBinary()
		if !bytes.Equal(got, b) {
			t.Fatalf("round trip: parsed %x, re-encoded %x", b, got)
		}
	})
}

func FuzzParsePeerID(f *testing.F) {
	f.Add(mustGenerate(f, "fuzz").PeerID())
	f.Add("12D3KooW")
	f.Add("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParsePeerID(s)
		if err != nil {
			return
		}
		if got := id.PeerID(); got != s {
			t.Fatalf("round trip: parsed %q, re-encoded %q", s, got)
		}
	})
}

func FuzzParseSafetyCode(f *testing.F) {
	code := NewSafetyCode(mustGenerate(f, "a").ID(), mustGenerate(f, "b").ID())
	f.Add(code.String())
	f.Add(code.Digits())
	f.Add("12345-67890")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseSafetyCode(s)
		if err != nil {
			return
		}
		again, err := ParseSafetyCode(c.String())
		if err != nil || again != c {
			t.Fatalf("round trip: %q parsed to %q, which parses to %q, %v", s, c, again, err)
		}
		if got := c.Digits(); len(got) != SafetyCodeDigits {
			t.Fatalf("Digits() = %q", got)
		}
	})
}
