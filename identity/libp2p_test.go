package identity

// This file alone imports go-libp2p, to check that the standard-library
// peer ID derivation in id.go agrees with libp2p's own.

import (
	"bytes"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mr-tron/base58/base58"
)

func TestPeerIDMatchesLibp2p(t *testing.T) {
	r := newDetReader("libp2p cross-check")
	for i := range 64 {
		n, err := Generate(r)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := crypto.UnmarshalEd25519PublicKey(n.ID().PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		want, err := peer.IDFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		if got := n.PeerID(); got != want.String() {
			t.Fatalf("identity %d: PeerID() = %s, libp2p says %s", i, got, want)
		}
		// The host key the node gives libp2p has the same peer ID.
		priv, err := crypto.UnmarshalEd25519PrivateKey(n.Ed25519PrivateKey())
		if err != nil {
			t.Fatal(err)
		}
		if hostID, err := peer.IDFromPrivateKey(priv); err != nil || hostID != want {
			t.Fatalf("identity %d: host peer ID %s, %v; want %s", i, hostID, err, want)
		}
		// libp2p recovers the key from our peer ID string, and we from its.
		decoded, err := peer.Decode(n.PeerID())
		if err != nil {
			t.Fatal(err)
		}
		extracted, err := decoded.ExtractPublicKey()
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := extracted.Raw()
		if !bytes.Equal(raw, n.ID().PublicKey()) {
			t.Fatalf("identity %d: libp2p extracted %x, want %x", i, raw, n.ID().PublicKey())
		}
		if id, err := ParsePeerID(want.String()); err != nil || id != n.ID() {
			t.Fatalf("identity %d: ParsePeerID(libp2p's %s) = %v, %v", i, want, id, err)
		}
	}
}

func TestParsePeerIDRejectsOtherKeyTypes(t *testing.T) {
	r := newDetReader("other key types")
	for _, kt := range []int{crypto.Secp256k1, crypto.ECDSA, crypto.RSA} {
		bits := 0
		if kt == crypto.RSA {
			bits = 2048
		}
		_, pub, err := crypto.GenerateKeyPairWithReader(kt, bits, r)
		if err != nil {
			t.Fatalf("key type %d: %v", kt, err)
		}
		pid, err := peer.IDFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParsePeerID(pid.String()); !errors.Is(err, ErrInvalidPeerID) {
			t.Errorf("ParsePeerID(%s) of key type %d = %v, want ErrInvalidPeerID", pid, kt, err)
		}
	}
}

func TestBase58MatchesReference(t *testing.T) {
	r := newDetReader("base58")
	for n := range 80 {
		b := make([]byte, n)
		r.Read(b)
		for z := 0; z < n && z < 3; z++ {
			b[z] = 0 // leading zeros are the tricky part
		}
		want := base58.Encode(b)
		if got := base58Encode(b); got != want {
			t.Fatalf("base58Encode(%x) = %q, want %q", b, got, want)
		}
		back, err := base58Decode(want)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("base58Decode(%q) = %x, %v; want %x", want, back, err, b)
		}
	}
}
