package identity

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var groupedCode = regexp.MustCompile(`^[0-9]{5}( [0-9]{5}){11}$`)

func TestSafetyCode(t *testing.T) {
	alice, bob, carol := mustGenerate(t, "alice").ID(), mustGenerate(t, "bob").ID(), mustGenerate(t, "carol").ID()
	ab, ba := NewSafetyCode(alice, bob), NewSafetyCode(bob, alice)
	if ab != ba {
		t.Fatalf("safety code depends on argument order: %v vs %v", ab, ba)
	}
	if !groupedCode.MatchString(ab.String()) {
		t.Fatalf("String() = %q, want 12 groups of 5 digits", ab.String())
	}
	if len(ab.Digits()) != SafetyCodeDigits || strings.ReplaceAll(ab.String(), " ", "") != ab.Digits() {
		t.Fatalf("Digits() = %q does not match String() %q", ab.Digits(), ab.String())
	}
	if NewSafetyCode(alice, carol) == ab || NewSafetyCode(bob, carol) == ab {
		t.Fatal("different pairs share a safety code")
	}
	// Each identity's fingerprint is one half of every code it is part of.
	fa, fb := alice.Fingerprint(), bob.Fingerprint()
	if len(strings.ReplaceAll(fa, " ", "")) != FingerprintDigits {
		t.Fatalf("Fingerprint() = %q, want %d digits", fa, FingerprintDigits)
	}
	lo, hi := fa, fb
	if hi < lo {
		lo, hi = hi, lo
	}
	if ab.String() != lo+" "+hi {
		t.Fatalf("code %q is not the sorted fingerprints %q, %q", ab, fa, fb)
	}
	self := NewSafetyCode(alice, alice)
	if self.String() != fa+" "+fa {
		t.Fatalf("code with oneself = %q", self)
	}
}

func TestParseSafetyCode(t *testing.T) {
	code := NewSafetyCode(mustGenerate(t, "alice").ID(), mustGenerate(t, "bob").ID())
	d := code.Digits()
	ok := []string{
		code.String(),
		d,
		d[:30] + "\n" + d[30:],
		"  " + strings.Join(strings.Fields(code.String()), "-") + "\r\n",
		strings.ReplaceAll(code.String(), " ", "\t"),
	}
	for _, s := range ok {
		got, err := ParseSafetyCode(s)
		if err != nil || got != code {
			t.Errorf("ParseSafetyCode(%q) = %v, %v; want %v", s, got, err, code)
		}
	}
	bad := []string{
		"",
		d[:59],
		d + "0",
		d[:10] + "a" + d[11:],
		d[:10] + "." + d[10:],
		d[:10] + "٣" + d[11:], // an Arabic-Indic digit is not accepted
		strings.Repeat("1", 1000),
	}
	for _, s := range bad {
		if got, err := ParseSafetyCode(s); !errors.Is(err, ErrInvalidSafetyCode) || got != (SafetyCode{}) {
			t.Errorf("ParseSafetyCode(%q) = %v, %v; want ErrInvalidSafetyCode", s, got, err)
		}
	}
}

func BenchmarkNewSafetyCode(b *testing.B) {
	alice, bob := mustGenerate(b, "alice").ID(), mustGenerate(b, "bob").ID()
	for b.Loop() {
		NewSafetyCode(alice, bob)
	}
}

func BenchmarkCredentialVerify(b *testing.B) {
	n := mustGenerate(b, "alice")
	leaf := leafKey(b, suite1, "leaf")
	wire := mustIssue(b, n, suite1, leaf).Marshal()
	for b.Loop() {
		c, err := ParseCredential(wire)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Verify(suite1, leaf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePeerID(b *testing.B) {
	s := mustGenerate(b, "alice").PeerID()
	for b.Loop() {
		if _, err := ParsePeerID(s); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSafetyCoderMatchesNewSafetyCode(t *testing.T) {
	self := mustGenerate(t, "self").ID()
	coder := NewSafetyCoder(self)
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		other := mustGenerate(t, name).ID()
		if got, want := coder.Code(other), NewSafetyCode(self, other); got != want {
			t.Fatalf("%s: SafetyCoder gives %s, NewSafetyCode %s", name, got, want)
		}
		if got, want := coder.Code(other), NewSafetyCode(other, self); got != want {
			t.Fatalf("%s: code depends on argument order", name)
		}
	}
}
