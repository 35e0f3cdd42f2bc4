package identity

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestGenerateDeterministic(t *testing.T) {
	a, b := mustGenerate(t, "same"), mustGenerate(t, "same")
	if a.ID() != b.ID() {
		t.Fatal("the same randomness gave different identities")
	}
	if c := mustGenerate(t, "other"); c.ID() == a.ID() {
		t.Fatal("different randomness gave the same identity")
	}
}

func TestGenerateShortRandomness(t *testing.T) {
	_, err := Generate(io.LimitReader(newDetReader("x"), 31))
	if err == nil || !strings.HasPrefix(err.Error(), "identity: ") {
		t.Fatalf("Generate with 31 bytes of randomness = %v, want an identity: error", err)
	}
}

func TestNodeIdentityMarshalRoundTrip(t *testing.T) {
	n := mustGenerate(t, "stored")
	b, err := n.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != nodeIdentitySize || b[0] != nodeIdentityVersion {
		t.Fatalf("stored form %x: want %d bytes starting with version %d", b, nodeIdentitySize, nodeIdentityVersion)
	}
	got, err := ParseNodeIdentity(b)
	if err != nil {
		t.Fatalf("ParseNodeIdentity: %v", err)
	}
	if got.ID() != n.ID() || !bytes.Equal(got.Ed25519PrivateKey(), n.Ed25519PrivateKey()) {
		t.Fatal("round trip changed the identity")
	}
	again, _ := got.MarshalBinary()
	if !bytes.Equal(again, b) {
		t.Fatalf("re-marshal %x != %x", again, b)
	}
}

func TestParseNodeIdentityRejects(t *testing.T) {
	good, _ := mustGenerate(t, "stored").MarshalBinary()
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	other, _ := mustGenerate(t, "other").MarshalBinary()
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"version 0", mutate(func(b []byte) []byte { b[0] = 0; return b })},
		{"version 2", mutate(func(b []byte) []byte { b[0] = 2; return b })},
		{"flipped seed bit", mutate(func(b []byte) []byte { b[5] ^= 1; return b })},
		{"flipped public key bit", mutate(func(b []byte) []byte { b[40] ^= 1; return b })},
		{"public key of another identity", mutate(func(b []byte) []byte { copy(b[33:], other[33:]); return b })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := ParseNodeIdentity(tc.in)
			if !errors.Is(err, ErrMalformedNodeIdentity) || n != nil {
				t.Fatalf("ParseNodeIdentity = %v, %v; want nil, ErrMalformedNodeIdentity", n, err)
			}
		})
	}
}

// TestNodeIdentityNeverPrintsPrivateKey formats and logs an identity in
// every common way and checks that no form of the private key appears.
func TestNodeIdentityNeverPrintsPrivateKey(t *testing.T) {
	n := mustGenerate(t, "secret")
	priv := n.Ed25519PrivateKey()
	seed := priv.Seed()
	secrets := []string{
		hex.EncodeToString(seed), strings.ToUpper(hex.EncodeToString(seed)),
		base64.StdEncoding.EncodeToString(seed), base64.RawURLEncoding.EncodeToString(seed),
		hex.EncodeToString(priv), base64.StdEncoding.EncodeToString(priv),
		string(seed[:8]), fmt.Sprint(seed[:4]), fmt.Sprint([]byte(priv)[:4]),
	}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		outputs = append(outputs, fmt.Sprintf(verb, n), fmt.Sprintf(verb, *n))
		nested := struct {
			v NodeIdentity
			p *NodeIdentity
			s []NodeIdentity
		}{*n, n, []NodeIdentity{*n}}
		outputs = append(outputs, fmt.Sprintf(verb, nested), fmt.Sprintf(verb, &nested))
	}
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&logs, nil), slog.NewTextHandler(&logs, nil)} {
		l := slog.New(h)
		l.Info("identity", "node", n, "ptr", n)
		l.Info("identity", slog.Any("node", n))
	}
	outputs = append(outputs, logs.String())
	for _, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Fatalf("formatted identity %q contains private key material %q", out, s)
			}
		}
	}
	if !strings.Contains(logs.String(), n.PeerID()) {
		t.Errorf("logs do not show the peer ID: %s", logs.String())
	}
}

func TestZeroNodeIdentity(t *testing.T) {
	var n NodeIdentity
	if _, err := n.MarshalBinary(); err == nil {
		t.Error("MarshalBinary of a zero NodeIdentity succeeded")
	}
	if _, err := n.IssueCredential(suite1, make([]byte, 32)); err == nil {
		t.Error("IssueCredential of a zero NodeIdentity succeeded")
	}
	if n.Ed25519PrivateKey() != nil || !n.ID().IsZero() {
		t.Error("zero NodeIdentity has a key")
	}
	if got := fmt.Sprint(n); got != "NodeIdentity(<no identity>)" {
		t.Errorf("zero NodeIdentity prints as %q", got)
	}
}
