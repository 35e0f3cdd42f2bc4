package identity

import (
	"bytes"
	"errors"
	"testing"

	"github.com/conclave-im/conclave/mls"
)

var allSuites = []mls.CipherSuite{
	mls.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
	mls.MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
	mls.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
	mls.MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448,
	mls.MLS_256_DHKEMP521_AES256GCM_SHA512_P521,
	mls.MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448,
	mls.MLS_256_DHKEMP384_AES256GCM_SHA384_P384,
}

const suite1 = mls.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519

func leafKey(t testing.TB, suite mls.CipherSuite, seed string) []byte {
	t.Helper()
	_, pub, err := suite.GenerateSignatureKeyPair(newDetReader(seed))
	if err != nil {
		t.Fatalf("GenerateSignatureKeyPair(%v): %v", suite, err)
	}
	return pub
}

func mustIssue(t testing.TB, n *NodeIdentity, suite mls.CipherSuite, leaf []byte) Credential {
	t.Helper()
	c, err := n.IssueCredential(suite, leaf)
	if err != nil {
		t.Fatalf("IssueCredential: %v", err)
	}
	return c
}

func TestCredentialIssueVerifyAllSuites(t *testing.T) {
	n := mustGenerate(t, "alice")
	for _, suite := range allSuites {
		t.Run(suite.String(), func(t *testing.T) {
			leaf := leafKey(t, suite, "leaf "+suite.String())
			c := mustIssue(t, n, suite, leaf)
			id, err := c.Verify(suite, leaf)
			if err != nil || id != n.ID() {
				t.Fatalf("Verify = %v, %v; want %v", id, err, n.ID())
			}
			wire := c.Marshal()
			parsed, err := ParseCredential(wire)
			if err != nil {
				t.Fatalf("ParseCredential: %v", err)
			}
			if !bytes.Equal(parsed.Marshal(), wire) {
				t.Fatal("marshal after parse differs")
			}
			if id, err := parsed.Verify(suite, leaf); err != nil || id != n.ID() {
				t.Fatalf("Verify after parse = %v, %v", id, err)
			}
			li, err := VerifyLeaf(suite, c.MLS(), leaf)
			if err != nil || li.Assurance != Verified || li.ID != n.ID() {
				t.Fatalf("VerifyLeaf = %+v, %v", li, err)
			}
		})
	}
}

// TestCredentialWireLayout pins the encoding documented in docs/identity.md.
func TestCredentialWireLayout(t *testing.T) {
	n := mustGenerate(t, "alice")
	leaf := leafKey(t, suite1, "leaf")
	c := mustIssue(t, n, suite1, leaf)
	var want []byte
	want = append(want, 0xF0, 0xC1)       // credential_type
	want = append(want, 0x40, 3+33+33+66) // content length, 2-byte varint
	want = append(want, 0x01)             // version
	want = append(want, 0x00, 0x01)       // cipher_suite
	want = append(want, 0x20)
	want = append(want, n.ID().PublicKey()...)
	want = append(want, 0x20)
	want = append(want, leaf...)
	want = append(want, 0x40, 0x40)
	want = append(want, c.signature[:]...)
	if got := c.Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("Marshal =\n%x\nwant\n%x", got, want)
	}
	if got := c.Content(); !bytes.Equal(got, want[4:]) {
		t.Fatalf("Content = %x, want %x", got, want[4:])
	}
	var tbs []byte
	tbs = append(tbs, byte(len(credentialLabel)))
	tbs = append(tbs, "Conclave 1.0 LeafBinding"...)
	tbs = append(tbs, 0x01, 0x00, 0x01, 0x20)
	tbs = append(tbs, n.ID().PublicKey()...)
	tbs = append(tbs, 0x20)
	tbs = append(tbs, leaf...)
	if !n.ID().Verify(tbs, c.signature[:]) {
		t.Fatal("signature does not cover the documented LeafBindingTBS")
	}
}

func TestCredentialVerifyRejects(t *testing.T) {
	alice, mallory := mustGenerate(t, "alice"), mustGenerate(t, "mallory")
	leaf := leafKey(t, suite1, "leaf")
	otherLeaf := leafKey(t, suite1, "other leaf")
	c := mustIssue(t, alice, suite1, leaf)

	// Mallory's credential for Alice's leaf key, then relabelled as Alice's.
	forged := mustIssue(t, mallory, suite1, leaf)
	forged.identity = alice.ID()
	// A valid credential whose signature bytes were altered.
	tampered := c
	tampered.signature[10] ^= 0x80
	// A credential for the same key under another suite.
	chacha := mls.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519
	otherSuite := mustIssue(t, alice, chacha, leaf)

	tests := []struct {
		name  string
		c     Credential
		suite mls.CipherSuite
		leaf  []byte
		want  error
	}{
		{"other leaf key", c, suite1, otherLeaf, ErrCredentialKeyMismatch},
		{"truncated leaf key", c, suite1, leaf[:31], ErrCredentialKeyMismatch},
		{"other suite", c, chacha, leaf, ErrCredentialSuiteMismatch},
		{"issued for other suite", otherSuite, suite1, leaf, ErrCredentialSuiteMismatch},
		{"identity swapped", forged, suite1, leaf, ErrBadCredentialSignature},
		{"signature tampered", tampered, suite1, leaf, ErrBadCredentialSignature},
		{"zero credential", Credential{}, suite1, leaf, ErrMalformedCredential},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.c.Verify(tc.suite, tc.leaf)
			if !errors.Is(err, tc.want) || !id.IsZero() {
				t.Fatalf("Verify = %v, %v; want %v", id, err, tc.want)
			}
			if _, err := VerifyLeaf(tc.suite, tc.c.MLS(), tc.leaf); !errors.Is(err, tc.want) && !errors.Is(err, ErrMalformedCredential) {
				t.Fatalf("VerifyLeaf = %v; want %v", err, tc.want)
			}
		})
	}
	// Every single-bit flip of the signature is caught.
	for i := range len(c.signature) * 8 {
		bad := c
		bad.signature[i/8] ^= 1 << (i % 8)
		if _, err := bad.Verify(suite1, leaf); !errors.Is(err, ErrBadCredentialSignature) {
			t.Fatalf("signature bit %d flipped: Verify = %v", i, err)
		}
	}
}

func TestIssueCredentialRejects(t *testing.T) {
	n := mustGenerate(t, "alice")
	tests := []struct {
		name  string
		suite mls.CipherSuite
		leaf  []byte
	}{
		{"unsupported suite", 0x0042, leafKey(t, suite1, "leaf")},
		{"Ed25519 key for a P-256 suite", mls.MLS_128_DHKEMP256_AES128GCM_SHA256_P256, leafKey(t, suite1, "leaf")},
		{"short key", suite1, make([]byte, 31)},
		{"the identity key itself", suite1, n.ID().PublicKey()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := n.IssueCredential(tc.suite, tc.leaf); err == nil {
				t.Fatalf("IssueCredential = %x, want an error", c.Marshal())
			}
		})
	}
}

func TestParseCredentialRejects(t *testing.T) {
	n := mustGenerate(t, "alice")
	leaf := leafKey(t, suite1, "leaf")
	good := mustIssue(t, n, suite1, leaf).Marshal()
	sig := good[len(good)-64:]
	// build assembles a credential from parts, so each case changes one.
	build := func(typ uint16, version byte, suite uint16, idKey, leafKey, sig []byte) []byte {
		var body mls.Encoder
		body.Uint8(version)
		body.Uint16(suite)
		body.Opaque(idKey)
		body.Opaque(leafKey)
		body.Opaque(sig)
		var e mls.Encoder
		e.Uint16(typ)
		e.Opaque(body.Bytes())
		return e.Bytes()
	}
	id := n.ID().PublicKey()
	p256Key := leafKey(t, mls.MLS_128_DHKEMP256_AES128GCM_SHA256_P256, "p256")
	smallOrder := make([]byte, 32)
	smallOrder[0] = 1
	nonMinimalShort := append([]byte{0xF0, 0xC1, 0x40, 0x05}, 1, 0, 1, 0, 0)

	if got := build(0xF0C1, 1, 1, id, leaf, sig); !bytes.Equal(got, good) {
		t.Fatalf("test builder disagrees with Marshal:\n%x\n%x", got, good)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformedCredential},
		{"type only", good[:2], ErrMalformedCredential},
		{"truncated", good[:len(good)-1], ErrMalformedCredential},
		{"trailing byte", append(bytes.Clone(good), 0), ErrMalformedCredential},
		{"basic credential", []byte{0x00, 0x01, 0x03, 'b', 'o', 'b'}, ErrUnsupportedCredentialType},
		{"other private-use type", build(0xF0C2, 1, 1, id, leaf, sig), ErrUnsupportedCredentialType},
		{"version 0", build(0xF0C1, 0, 1, id, leaf, sig), ErrMalformedCredential},
		{"version 2", build(0xF0C1, 2, 1, id, leaf, sig), ErrMalformedCredential},
		{"suite 0", build(0xF0C1, 1, 0, id, leaf, sig), ErrMalformedCredential},
		{"suite 0xF0C1", build(0xF0C1, 1, 0xF0C1, id, leaf, sig), ErrMalformedCredential},
		{"identity key 31 bytes", build(0xF0C1, 1, 1, id[:31], leaf, sig), ErrMalformedCredential},
		{"identity key of small order", build(0xF0C1, 1, 1, smallOrder, leaf, sig), ErrInvalidPublicKey},
		{"leaf key empty", build(0xF0C1, 1, 1, id, nil, sig), ErrMalformedCredential},
		{"P-256 leaf key in an Ed25519 suite", build(0xF0C1, 1, 1, id, p256Key, sig), ErrMalformedCredential},
		{"leaf key is the identity key", build(0xF0C1, 1, 1, id, id, sig), ErrMalformedCredential},
		{"signature 63 bytes", build(0xF0C1, 1, 1, id, leaf, sig[:63]), ErrMalformedCredential},
		{"signature 65 bytes", build(0xF0C1, 1, 1, id, leaf, append(bytes.Clone(sig), 0)), ErrMalformedCredential},
		{"content length not minimal", nonMinimalShort, mls.ErrNonMinimalVarint},
		{"oversized vector", append([]byte{0xF0, 0xC1, 0x80, 0x01, 0x00, 0x00}, make([]byte, 1<<16)...), mls.ErrLengthTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCredential(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseCredential = %v; want %v", err, tc.want)
			}
			if !c.identity.IsZero() {
				t.Fatal("non-zero credential returned with an error")
			}
		})
	}
}

func TestVerifyLeafCredentialTypes(t *testing.T) {
	n := mustGenerate(t, "alice")
	leaf := leafKey(t, suite1, "leaf")
	c := mustIssue(t, n, suite1, leaf)

	li, err := VerifyLeaf(suite1, mls.NewBasicCredential([]byte("alice@example")), leaf)
	if err != nil || li.Assurance != Unverified || !li.ID.IsZero() || string(li.Claimed) != "alice@example" {
		t.Fatalf("basic credential: %+v, %v", li, err)
	}
	if li.Assurance.String() != "unverified identity" {
		t.Errorf("Unverified.String() = %q", li.Assurance.String())
	}
	x509 := mls.Credential{Type: mls.CredentialTypeX509, Certificates: [][]byte{{0x30}}}
	if _, err := VerifyLeaf(suite1, x509, leaf); !errors.Is(err, ErrUnsupportedCredentialType) {
		t.Fatalf("x509 credential: %v", err)
	}
	garbage := mls.Credential{Type: CredentialTypeConclave, Identity: []byte{1, 2, 3}}
	if _, err := VerifyLeaf(suite1, garbage, leaf); !errors.Is(err, ErrMalformedCredential) {
		t.Fatalf("malformed Conclave credential: %v", err)
	}
	back, err := CredentialFromMLS(c.MLS())
	if err != nil || !bytes.Equal(back.Marshal(), c.Marshal()) {
		t.Fatalf("CredentialFromMLS(MLS()) = %v", err)
	}
	if _, err := CredentialFromMLS(mls.NewBasicCredential([]byte("x"))); !errors.Is(err, ErrUnsupportedCredentialType) {
		t.Fatalf("CredentialFromMLS(basic) = %v", err)
	}
}

func TestSameClient(t *testing.T) {
	alice, bob := mustGenerate(t, "alice"), mustGenerate(t, "bob")
	a1 := mustIssue(t, alice, suite1, leafKey(t, suite1, "a1"))
	a2 := mustIssue(t, alice, suite1, leafKey(t, suite1, "a2"))
	b1 := mustIssue(t, bob, suite1, leafKey(t, suite1, "b1"))
	if !SameClient(a1, a2) {
		t.Error("two credentials of one identity are not the same client")
	}
	if SameClient(a1, b1) || SameClient(Credential{}, Credential{}) {
		t.Error("different or empty credentials reported as the same client")
	}
}

func TestCheckSuccessor(t *testing.T) {
	alice, bob := mustGenerate(t, "alice"), mustGenerate(t, "bob")
	verify := func(n *NodeIdentity, leafSeed string) LeafIdentity {
		leaf := leafKey(t, suite1, leafSeed)
		li, err := VerifyLeaf(suite1, mustIssue(t, n, suite1, leaf).MLS(), leaf)
		if err != nil {
			t.Fatal(err)
		}
		return li
	}
	basic := func(name string) LeafIdentity {
		li, err := VerifyLeaf(suite1, mls.NewBasicCredential([]byte(name)), nil)
		if err != nil {
			t.Fatal(err)
		}
		return li
	}
	tests := []struct {
		name     string
		old, new LeafIdentity
		ok       bool
	}{
		{"same identity, new signature key", verify(alice, "a1"), verify(alice, "a2"), true},
		{"another identity", verify(alice, "a1"), verify(bob, "b1"), false},
		{"basic, same name", basic("carol"), basic("carol"), true},
		{"basic, another name", basic("carol"), basic("dave"), false},
		{"verified to basic", verify(alice, "a1"), basic(alice.PeerID()), false},
		{"basic to verified", basic(alice.PeerID()), verify(alice, "a1"), false},
		{"zero identities", LeafIdentity{}, LeafIdentity{}, false},
	}
	for _, tc := range tests {
		err := CheckSuccessor(tc.old, tc.new)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrNotSuccessor)) {
			t.Errorf("%s: CheckSuccessor = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
