package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// NodeIdentity is a node's long-term identity key pair. The private key
// never leaves the value except through MarshalBinary (for the datastore,
// which encrypts it at rest) and Ed25519PrivateKey (for the libp2p host);
// formatting or logging a NodeIdentity shows only its peer ID.
type NodeIdentity struct {
	// priv is behind a pointer because fmt cannot call Format on a value
	// nested in another type's unexported field and would print its bytes;
	// below the top level it prints a pointer as an address instead.
	priv *ed25519.PrivateKey
	id   ID
}

// Generate creates a node identity from 32 bytes of rand. The key depends
// only on those bytes, so a seeded reader gives a reproducible identity.
func Generate(rand io.Reader) (*NodeIdentity, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("identity: reading randomness: %w", err)
	}
	return fromSeed(seed)
}

func fromSeed(seed []byte) (*NodeIdentity, error) {
	priv := ed25519.NewKeyFromSeed(seed)
	// A clamped scalar times the base point always has large order, so
	// this cannot fail for a real seed; it is checked all the same so that
	// every ID in the program went through the same validation.
	id, err := IDFromPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &NodeIdentity{priv: &priv, id: id}, nil
}

// ID returns the public identity.
func (n *NodeIdentity) ID() ID { return n.id }

// PeerID returns the libp2p peer ID of the identity.
func (n *NodeIdentity) PeerID() string { return n.id.PeerID() }

// Ed25519PrivateKey returns a copy of the private key (seed followed by the
// public key, the layout libp2p's UnmarshalEd25519PrivateKey expects), for
// the one caller that needs it: the libp2p host, whose peer ID must be this
// identity. Do not store or log it.
func (n *NodeIdentity) Ed25519PrivateKey() ed25519.PrivateKey {
	if !n.valid() {
		return nil
	}
	return bytes.Clone(*n.priv)
}

// valid reports whether n came from Generate or ParseNodeIdentity (and not
// from a zero NodeIdentity{} literal).
func (n *NodeIdentity) valid() bool { return n != nil && n.priv != nil }

// sign signs msg with the identity key. It stays unexported so that the
// identity key signs nothing but Conclave's labeled structures.
func (n *NodeIdentity) sign(msg []byte) []byte {
	return ed25519.Sign(*n.priv, msg)
}

// String shows the peer ID only.
func (n NodeIdentity) String() string { return "NodeIdentity(" + n.id.PeerID() + ")" }

// Format prints String for every verb, so that no fmt verb (%d, %x, %#v,
// ...) prints the private key.
func (n NodeIdentity) Format(f fmt.State, _ rune) { io.WriteString(f, n.String()) }

// LogValue keeps slog from printing the private key.
func (n NodeIdentity) LogValue() slog.Value {
	return slog.GroupValue(slog.String("peer_id", n.id.PeerID()))
}

var errNoKey = errors.New("identity: empty NodeIdentity (use Generate or ParseNodeIdentity)")

// The stored form of a node identity:
//
//	uint8  version = 1
//	opaque seed[32]        Ed25519 private key seed
//	opaque public_key[32]  the matching public key
//
// The public key is redundant on purpose: a corrupted seed would otherwise
// load as a different, valid identity and silently change the peer ID.
const (
	nodeIdentityVersion = 1
	nodeIdentitySize    = 1 + ed25519.SeedSize + ed25519.PublicKeySize
)

// MarshalBinary returns the stored form of the identity. It contains the
// private key: keep it only in encrypted storage.
func (n *NodeIdentity) MarshalBinary() ([]byte, error) {
	if !n.valid() {
		return nil, errNoKey
	}
	b := make([]byte, 0, nodeIdentitySize)
	b = append(b, nodeIdentityVersion)
	b = append(b, n.priv.Seed()...)
	b = append(b, n.id.key[:]...)
	return b, nil
}

// ParseNodeIdentity decodes the stored form written by MarshalBinary.
func ParseNodeIdentity(b []byte) (*NodeIdentity, error) {
	if len(b) != nodeIdentitySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrMalformedNodeIdentity, len(b), nodeIdentitySize)
	}
	if b[0] != nodeIdentityVersion {
		return nil, fmt.Errorf("%w: unknown version %d", ErrMalformedNodeIdentity, b[0])
	}
	n, err := fromSeed(b[1 : 1+ed25519.SeedSize])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedNodeIdentity, err)
	}
	if !bytes.Equal(n.id.key[:], b[1+ed25519.SeedSize:]) {
		return nil, fmt.Errorf("%w: private and public key do not match (corrupt data)", ErrMalformedNodeIdentity)
	}
	return n, nil
}
