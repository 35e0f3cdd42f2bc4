package identity

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"math/big"
)

// ID is the public identity of a Conclave node: its Ed25519 identity key.
// The libp2p peer ID is a direct encoding of this key, so an ID and a peer
// ID convert into each other without any lookup. ID is a comparable value
// and can be used as a map key; the zero ID is invalid and never returned
// by the constructors with a nil error.
type ID struct {
	key [ed25519.PublicKeySize]byte
}

// IDFromPublicKey returns the ID of an Ed25519 public key. The key must be a
// canonical encoding of a curve point of large order: small-order keys are
// rejected because signatures under them can be forged by anyone, so such a
// key proves nothing about who holds it.
func IDFromPublicKey(pub []byte) (ID, error) {
	if len(pub) != ed25519.PublicKeySize {
		return ID{}, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidPublicKey, len(pub), ed25519.PublicKeySize)
	}
	if err := checkEdwardsPoint(pub); err != nil {
		return ID{}, err
	}
	var id ID
	copy(id.key[:], pub)
	return id, nil
}

// PublicKey returns a copy of the Ed25519 identity key.
func (id ID) PublicKey() ed25519.PublicKey {
	return bytes.Clone(id.key[:])
}

// IsZero reports whether id is the zero ID (no identity).
func (id ID) IsZero() bool { return id == ID{} }

// Verify reports whether sig is a valid Ed25519 signature by id over msg.
func (id ID) Verify(msg, sig []byte) bool {
	return !id.IsZero() && ed25519.Verify(id.key[:], msg, sig)
}

// String returns the peer ID.
func (id ID) String() string { return id.PeerID() }

// LogValue logs an ID as its peer ID.
func (id ID) LogValue() slog.Value { return slog.StringValue(id.PeerID()) }

// The libp2p peer ID of an Ed25519 key is the base58btc encoding of an
// identity multihash whose digest is the protobuf-encoded libp2p PublicKey
// message {Type: Ed25519 (1), Data: key}. The key fits the 42-byte limit
// under which libp2p inlines keys instead of hashing them, so the peer ID
// carries the key itself and ParsePeerID can recover it.
var peerIDPrefix = []byte{
	0x00,       // multihash code: identity
	0x24,       // multihash digest length: 36
	0x08, 0x01, // protobuf field 1 (Type), varint: KeyType Ed25519 = 1
	0x12, 0x20, // protobuf field 2 (Data), length-delimited: 32 bytes
}

const peerIDBytes = 6 + ed25519.PublicKeySize

// PeerID returns the libp2p peer ID of the identity in its usual text form
// ("12D3KooW...").
func (id ID) PeerID() string {
	if id.IsZero() {
		return "<no identity>"
	}
	b := make([]byte, 0, peerIDBytes)
	b = append(b, peerIDPrefix...)
	b = append(b, id.key[:]...)
	return base58Encode(b)
}

// maxPeerIDText bounds the input ParsePeerID looks at; a 38-byte peer ID is
// 52 base58 characters.
const maxPeerIDText = 64

// ParsePeerID returns the ID whose peer ID is s. Only the base58btc form of
// an Ed25519 peer ID is accepted; other key types and hashed peer IDs are
// rejected, as they cannot be Conclave identities.
func ParsePeerID(s string) (ID, error) {
	if len(s) == 0 || len(s) > maxPeerIDText {
		return ID{}, fmt.Errorf("%w: %d characters", ErrInvalidPeerID, len(s))
	}
	b, err := base58Decode(s)
	if err != nil {
		return ID{}, fmt.Errorf("%w: %w", ErrInvalidPeerID, err)
	}
	if len(b) != peerIDBytes || !bytes.HasPrefix(b, peerIDPrefix) {
		return ID{}, fmt.Errorf("%w: not an inlined Ed25519 key", ErrInvalidPeerID)
	}
	id, err := IDFromPublicKey(b[len(peerIDPrefix):])
	if err != nil {
		return ID{}, fmt.Errorf("%w: %w", ErrInvalidPeerID, err)
	}
	return id, nil
}

// Curve25519 constants for checkEdwardsPoint.
var (
	edP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	// edD is -121665/121666 mod p, the twisted Edwards curve constant.
	edD = func() *big.Int {
		num := new(big.Int).Sub(edP, big.NewInt(121665))
		den := new(big.Int).ModInverse(big.NewInt(121666), edP)
		return num.Mul(num, den).Mod(num, edP)
	}()
	bigOne = big.NewInt(1)
)

// checkEdwardsPoint checks that pub is the canonical encoding of a point on
// edwards25519 whose order is not a divisor of 8. It works on the
// y-coordinate alone: x² is a rational function of y², and so is the y of
// a doubled point, so no square root is needed.
func checkEdwardsPoint(pub []byte) error {
	le := bytes.Clone(pub)
	sign := le[31] >> 7
	le[31] &= 0x7f
	for i, j := 0, len(le)-1; i < j; i, j = i+1, j-1 {
		le[i], le[j] = le[j], le[i]
	}
	y := new(big.Int).SetBytes(le)
	if y.Cmp(edP) >= 0 {
		return fmt.Errorf("%w: non-canonical point encoding", ErrInvalidPublicKey)
	}
	x2, ok := edXSquared(y)
	if !ok {
		return fmt.Errorf("%w: not a curve point", ErrInvalidPublicKey)
	}
	if x2.Sign() == 0 && sign == 1 {
		return fmt.Errorf("%w: non-canonical point encoding", ErrInvalidPublicKey)
	}
	if x2.Sign() != 0 && big.Jacobi(x2, edP) != 1 {
		return fmt.Errorf("%w: not a curve point", ErrInvalidPublicKey)
	}
	// Three doublings reach the neutral element (y = 1) exactly when the
	// point's order divides 8.
	for range 3 {
		y, ok = edDoubleY(y, x2)
		if !ok {
			return fmt.Errorf("%w: not a curve point", ErrInvalidPublicKey)
		}
		if x2, ok = edXSquared(y); !ok {
			return fmt.Errorf("%w: not a curve point", ErrInvalidPublicKey)
		}
	}
	if y.Cmp(bigOne) == 0 {
		return fmt.Errorf("%w: point of small order", ErrInvalidPublicKey)
	}
	return nil
}

// edXSquared returns x² = (y² - 1) / (d·y² + 1) mod p for a point on
// -x² + y² = 1 + d·x²·y².
func edXSquared(y *big.Int) (*big.Int, bool) {
	y2 := new(big.Int).Mul(y, y)
	y2.Mod(y2, edP)
	u := new(big.Int).Sub(y2, bigOne)
	v := new(big.Int).Mul(edD, y2)
	v.Add(v, bigOne).Mod(v, edP)
	inv := new(big.Int).ModInverse(v, edP)
	if inv == nil {
		return nil, false
	}
	u.Mul(u, inv).Mod(u, edP)
	return u, true
}

// edDoubleY returns the y-coordinate of 2P: (y² + x²) / (1 - d·x²·y²).
func edDoubleY(y, x2 *big.Int) (*big.Int, bool) {
	y2 := new(big.Int).Mul(y, y)
	y2.Mod(y2, edP)
	num := new(big.Int).Add(y2, x2)
	num.Mod(num, edP)
	den := new(big.Int).Mul(edD, x2)
	den.Mul(den, y2)
	den.Sub(bigOne, den).Mod(den, edP)
	inv := new(big.Int).ModInverse(den, edP)
	if inv == nil {
		return nil, false
	}
	return num.Mul(num, inv).Mod(num, edP), true
}
