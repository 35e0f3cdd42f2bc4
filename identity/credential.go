package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/conclave-im/conclave/mls"
)

// CredentialTypeConclave is the MLS credential type of Conclave credentials,
// taken from the private-use range 0xF000-0xFFFF of RFC 9420 §17.5. Its
// content is a single opaque<V> (the shape of a basic credential's
// identity), so other implementations can carry it without understanding it.
const CredentialTypeConclave mls.CredentialType = 0xF0C1

// credentialVersion is the version byte at the start of the content. It
// fixes the identity key type (Ed25519) and the signed structure.
const credentialVersion = 1

// credentialLabel separates the binding signature from everything else the
// identity key signs (libp2p handshakes and records use their own labels).
const credentialLabel = "Conclave 1.0 LeafBinding"

// maxCredentialVector bounds every vector in a credential; the largest
// legitimate content (a P-521 leaf key) is well under it.
const maxCredentialVector = 512

// Credential is a Conclave credential: the statement, signed by a node's
// identity key, that a given MLS signature key of a given cipher suite
// belongs to that node. It is issued for each fresh per-membership signature
// key. The content is
//
//	struct {
//	    uint8       version = 1;
//	    CipherSuite cipher_suite;
//	    opaque      identity_key<V>;        // Ed25519, 32 bytes
//	    opaque      leaf_signature_key<V>;  // the suite's SignaturePublicKey
//	    opaque      binding_signature<V>;   // Ed25519, 64 bytes
//	} ConclaveCredential;
//
// and the binding signature is Ed25519 by identity_key over
//
//	struct {
//	    opaque      label<V> = "Conclave 1.0 LeafBinding";
//	    uint8       version;
//	    CipherSuite cipher_suite;
//	    opaque      identity_key<V>;
//	    opaque      leaf_signature_key<V>;
//	} LeafBindingTBS;
//
// A Credential is immutable and always well formed; its signature is
// checked by Verify.
type Credential struct {
	suite     mls.CipherSuite
	identity  ID
	leafKey   []byte
	signature [ed25519.SignatureSize]byte
}

// IssueCredential binds leafSignatureKey, a fresh MLS signature public key
// of suite, to the node identity.
func (n *NodeIdentity) IssueCredential(suite mls.CipherSuite, leafSignatureKey []byte) (Credential, error) {
	if !n.valid() {
		return Credential{}, errNoKey
	}
	if !suite.Supported() {
		return Credential{}, fmt.Errorf("identity: issuing credential: %w: %v", mls.ErrUnsupportedCipherSuite, suite)
	}
	if err := suite.ValidateSignaturePublicKey(leafSignatureKey); err != nil {
		return Credential{}, fmt.Errorf("identity: issuing credential: leaf signature key: %w", err)
	}
	if bytes.Equal(leafSignatureKey, n.id.key[:]) {
		return Credential{}, errors.New("identity: issuing credential: the leaf signature key must be a fresh key, not the identity key")
	}
	c := Credential{suite: suite, identity: n.id, leafKey: bytes.Clone(leafSignatureKey)}
	copy(c.signature[:], n.sign(c.tbs()))
	return c, nil
}

// CipherSuite returns the cipher suite the credential was issued for.
func (c Credential) CipherSuite() mls.CipherSuite { return c.suite }

// Identity returns the identity the credential claims. It is proven only
// once Verify succeeds.
func (c Credential) Identity() ID { return c.identity }

// LeafSignatureKey returns a copy of the signature key the credential binds.
func (c Credential) LeafSignatureKey() []byte { return bytes.Clone(c.leafKey) }

// Verify checks that the credential binds leafSignatureKey of suite to its
// identity, and returns that identity. The caller passes the signature key
// of the leaf that carries the credential (and the group's suite), so a
// credential copied into someone else's leaf is rejected.
func (c Credential) Verify(suite mls.CipherSuite, leafSignatureKey []byte) (ID, error) {
	if c.identity.IsZero() {
		return ID{}, fmt.Errorf("%w: empty credential", ErrMalformedCredential)
	}
	if c.suite != suite {
		return ID{}, fmt.Errorf("%w: issued for %v, leaf is in %v", ErrCredentialSuiteMismatch, c.suite, suite)
	}
	if !bytes.Equal(c.leafKey, leafSignatureKey) {
		return ID{}, ErrCredentialKeyMismatch
	}
	if !ed25519.Verify(c.identity.key[:], c.tbs(), c.signature[:]) {
		return ID{}, fmt.Errorf("%w: claimed identity %s", ErrBadCredentialSignature, c.identity.PeerID())
	}
	return c.identity, nil
}

// SameClient reports whether two credentials represent the same client
// (RFC 9750 §7): in Conclave a client is a node, so this holds exactly when
// both name the same identity key. Verify both first.
func SameClient(a, b Credential) bool {
	return !a.identity.IsZero() && a.identity == b.identity
}

func (c Credential) tbs() []byte {
	var e mls.Encoder
	e.Opaque([]byte(credentialLabel))
	e.Uint8(credentialVersion)
	e.Uint16(uint16(c.suite))
	e.Opaque(c.identity.key[:])
	e.Opaque(c.leafKey)
	return e.Bytes()
}

// Content returns the credential content, the bytes inside the MLS
// Credential's opaque vector.
func (c Credential) Content() []byte {
	var e mls.Encoder
	e.Uint8(credentialVersion)
	e.Uint16(uint16(c.suite))
	e.Opaque(c.identity.key[:])
	e.Opaque(c.leafKey)
	e.Opaque(c.signature[:])
	return e.Bytes()
}

// Marshal returns the complete MLS Credential encoding: the uint16
// credential type CredentialTypeConclave, then the content as opaque<V>.
func (c Credential) Marshal() []byte {
	var e mls.Encoder
	e.Uint16(uint16(CredentialTypeConclave))
	e.Opaque(c.Content())
	return e.Bytes()
}

// MLS returns the credential as an mls.Credential, with the content in the
// Identity field: Conclave's content is one opaque<V>, exactly where a
// basic credential keeps its identity.
func (c Credential) MLS() mls.Credential {
	return mls.Credential{Type: CredentialTypeConclave, Identity: c.Content()}
}

// ParseCredential strictly decodes a complete MLS Credential of type
// CredentialTypeConclave, as written by Marshal.
func ParseCredential(b []byte) (Credential, error) {
	d := mls.NewDecoder(b)
	d.SetMaxLength(maxCredentialVector)
	t := mls.CredentialType(d.Uint16())
	content := d.Opaque()
	if err := d.Finish(); err != nil {
		return Credential{}, fmt.Errorf("%w: %w", ErrMalformedCredential, err)
	}
	if t != CredentialTypeConclave {
		return Credential{}, fmt.Errorf("%w: %#04x is not a Conclave credential", ErrUnsupportedCredentialType, uint16(t))
	}
	return ParseCredentialContent(content)
}

// ParseCredentialContent strictly decodes the content of a Conclave
// credential, as returned by Content. Every field is checked except the
// signature, which Verify checks against the leaf.
func ParseCredentialContent(b []byte) (Credential, error) {
	d := mls.NewDecoder(b)
	d.SetMaxLength(maxCredentialVector)
	version := d.Uint8()
	suite := mls.CipherSuite(d.Uint16())
	identityKey := d.Opaque()
	leafKey := d.Opaque()
	sig := d.Opaque()
	if err := d.Finish(); err != nil {
		return Credential{}, fmt.Errorf("%w: %w", ErrMalformedCredential, err)
	}
	if version != credentialVersion {
		return Credential{}, fmt.Errorf("%w: unknown version %d", ErrMalformedCredential, version)
	}
	if !suite.Supported() {
		return Credential{}, fmt.Errorf("%w: %w: %v", ErrMalformedCredential, mls.ErrUnsupportedCipherSuite, suite)
	}
	id, err := IDFromPublicKey(identityKey)
	if err != nil {
		return Credential{}, fmt.Errorf("%w: %w", ErrMalformedCredential, err)
	}
	if err := suite.ValidateSignaturePublicKey(leafKey); err != nil {
		return Credential{}, fmt.Errorf("%w: leaf signature key: %w", ErrMalformedCredential, err)
	}
	if bytes.Equal(leafKey, identityKey) {
		return Credential{}, fmt.Errorf("%w: the leaf signature key is the identity key", ErrMalformedCredential)
	}
	if len(sig) != ed25519.SignatureSize {
		return Credential{}, fmt.Errorf("%w: signature of %d bytes, want %d", ErrMalformedCredential, len(sig), ed25519.SignatureSize)
	}
	c := Credential{suite: suite, identity: id, leafKey: leafKey}
	copy(c.signature[:], sig)
	return c, nil
}

// CredentialFromMLS extracts a Conclave credential from an mls.Credential
// of type CredentialTypeConclave (content in Identity, as MLS writes it).
func CredentialFromMLS(mc mls.Credential) (Credential, error) {
	if mc.Type != CredentialTypeConclave {
		return Credential{}, fmt.Errorf("%w: %#04x is not a Conclave credential", ErrUnsupportedCredentialType, uint16(mc.Type))
	}
	return ParseCredentialContent(mc.Identity)
}

// Assurance says how much a leaf's claimed identity can be trusted.
type Assurance uint8

const (
	// Unverified: a basic credential. Its identity bytes are a claim that
	// nothing checks; the UI must say so.
	Unverified Assurance = iota + 1
	// Verified: a Conclave credential whose binding signature checked out.
	// The leaf belongs to the node with this peer ID (whether that peer ID
	// is the person the user thinks is a matter for safety codes).
	Verified
)

func (a Assurance) String() string {
	switch a {
	case Verified:
		return "verified"
	case Unverified:
		return "unverified identity"
	default:
		return fmt.Sprintf("Assurance(%d)", uint8(a))
	}
}

// LeafIdentity is what a leaf's credential says about its owner.
type LeafIdentity struct {
	Assurance Assurance
	// ID is the proven identity when Assurance is Verified, zero otherwise.
	ID ID
	// Claimed is the identity of a basic credential, as sent (not proven).
	Claimed []byte
}

// VerifyLeaf checks the credential of a leaf whose signature key is
// leafSignatureKey in a group of the given suite. Conclave credentials are
// verified; basic credentials are accepted for interoperability and
// reported as Unverified; every other type is ErrUnsupportedCredentialType.
func VerifyLeaf(suite mls.CipherSuite, cred mls.Credential, leafSignatureKey []byte) (LeafIdentity, error) {
	switch cred.Type {
	case CredentialTypeConclave:
		c, err := CredentialFromMLS(cred)
		if err != nil {
			return LeafIdentity{}, err
		}
		id, err := c.Verify(suite, leafSignatureKey)
		if err != nil {
			return LeafIdentity{}, err
		}
		return LeafIdentity{Assurance: Verified, ID: id}, nil
	case mls.CredentialTypeBasic:
		return LeafIdentity{Assurance: Unverified, Claimed: bytes.Clone(cred.Identity)}, nil
	default:
		return LeafIdentity{}, fmt.Errorf("%w: %#04x", ErrUnsupportedCredentialType, uint16(cred.Type))
	}
}

// CheckSuccessor checks that a leaf's new credential, already checked with
// VerifyLeaf, may replace its old one (RFC 9420 §5.3.1): a member may
// change its signature key and credential in an Update or a Commit, but
// never into another client. A Conclave credential must name the same
// identity, a basic one the same identity bytes, and the assurance may not
// change in either direction.
func CheckSuccessor(old, updated LeafIdentity) error {
	switch {
	case old.Assurance == Verified && updated.Assurance == Verified && old.ID == updated.ID && !old.ID.IsZero():
		return nil
	case old.Assurance == Unverified && updated.Assurance == Unverified && bytes.Equal(old.Claimed, updated.Claimed):
		return nil
	}
	return fmt.Errorf("%w: %s replaced by %s", ErrNotSuccessor, old.describe(), updated.describe())
}

func (li LeafIdentity) describe() string {
	switch li.Assurance {
	case Verified:
		return li.ID.PeerID()
	case Unverified:
		return fmt.Sprintf("unverified %q", li.Claimed)
	default:
		return "no identity"
	}
}
