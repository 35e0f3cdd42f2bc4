package mls

import (
	"crypto/hmac"
	"fmt"
	"hash"
	"io"
)

// EpochSecrets are the secrets of one epoch, derived by the key schedule
// (RFC 9420 §8) from the previous epoch's init_secret, the commit_secret, the
// psk_secret and the new epoch's GroupContext. The epoch_secret itself is
// consumed by the derivation and not kept.
//
// Per the deletion schedule (§9.2) the holder should Erase the secrets it no
// longer needs: the joiner and welcome secrets once Welcomes are built, the
// init_secret once the next epoch is derived.
type EpochSecrets struct {
	Suite CipherSuite

	JoinerSecret  []byte
	WelcomeSecret []byte

	SenderDataSecret   []byte // "sender data": keys for PrivateMessage sender data
	EncryptionSecret   []byte // "encryption": root of the secret tree
	ExporterSecret     []byte // "exporter": MLS-Exporter
	ExternalSecret     []byte // "external": the external HPKE key pair
	ConfirmationKey    []byte // "confirm": confirmation tags
	MembershipKey      []byte // "membership": PublicMessage membership tags
	ResumptionPSK      []byte // "resumption"
	EpochAuthenticator []byte // "authentication"
	InitSecret         []byte // "init": the next epoch's init_secret
}

// zeroSecret returns s, or Nh zero bytes if s is nil (RFC 9420 §8: a missing
// commit_secret or psk_secret is the all-zero vector).
func zeroSecret(cs CipherSuite, s []byte) []byte {
	if s == nil {
		return make([]byte, cs.HashSize())
	}
	return s
}

// JoinerSecret computes
//
//	joiner_secret = ExpandWithLabel(Extract(init_secret, commit_secret), "joiner", GroupContext, Nh)
//
// for the new epoch's GroupContext gc. A nil commitSecret is the zero vector.
func JoinerSecret(gc *GroupContext, initSecret, commitSecret []byte) ([]byte, error) {
	cs := gc.CipherSuite
	if err := checkSuite(cs); err != nil {
		return nil, err
	}
	ctx, err := gc.Marshal()
	if err != nil {
		return nil, fmt.Errorf("mls: encoding group context: %w", err)
	}
	prk := cs.Extract(initSecret, zeroSecret(cs, commitSecret))
	defer clear(prk)
	return cs.ExpandWithLabel(prk, "joiner", ctx, cs.HashSize())
}

// WelcomeSecret computes welcome_secret = DeriveSecret(Extract(joiner_secret,
// psk_secret), "welcome"). New members need it before they know the
// GroupContext, to decrypt the GroupInfo of a Welcome. A nil pskSecret is the
// zero vector.
func WelcomeSecret(cs CipherSuite, joinerSecret, pskSecret []byte) ([]byte, error) {
	if err := checkSuite(cs); err != nil {
		return nil, err
	}
	prk := cs.Extract(joinerSecret, zeroSecret(cs, pskSecret))
	defer clear(prk)
	return cs.DeriveSecret(prk, "welcome")
}

// WelcomeKeyNonce derives the AEAD key and nonce that encrypt a Welcome's
// GroupInfo from the welcome_secret (RFC 9420 §12.4.3.1).
func WelcomeKeyNonce(cs CipherSuite, welcomeSecret []byte) (key, nonce []byte, err error) {
	if key, err = cs.ExpandWithLabel(welcomeSecret, "key", nil, cs.AEADKeySize()); err != nil {
		return nil, nil, err
	}
	if nonce, err = cs.ExpandWithLabel(welcomeSecret, "nonce", nil, cs.AEADNonceSize()); err != nil {
		return nil, nil, err
	}
	return key, nonce, nil
}

// DeriveEpochSecrets runs the key schedule for the epoch whose GroupContext
// is gc, from the previous epoch's init_secret (or a fresh random one for a
// new group), the commit_secret and the psk_secret (nil for the zero vector).
func DeriveEpochSecrets(gc *GroupContext, initSecret, commitSecret, pskSecret []byte) (*EpochSecrets, error) {
	joiner, err := JoinerSecret(gc, initSecret, commitSecret)
	if err != nil {
		return nil, err
	}
	return EpochSecretsFromJoiner(gc, joiner, pskSecret)
}

// EpochSecretsFromJoiner runs the key schedule from the joiner_secret, as a
// new member does after decrypting a Welcome. The result keeps joinerSecret.
func EpochSecretsFromJoiner(gc *GroupContext, joinerSecret, pskSecret []byte) (*EpochSecrets, error) {
	cs := gc.CipherSuite
	if err := checkSuite(cs); err != nil {
		return nil, err
	}
	if len(joinerSecret) != cs.HashSize() {
		return nil, fmt.Errorf("%w: joiner secret of %d bytes, want %d", ErrInvalidLength, len(joinerSecret), cs.HashSize())
	}
	ctx, err := gc.Marshal()
	if err != nil {
		return nil, fmt.Errorf("mls: encoding group context: %w", err)
	}
	prk := cs.Extract(joinerSecret, zeroSecret(cs, pskSecret))
	defer clear(prk)
	s := &EpochSecrets{Suite: cs, JoinerSecret: joinerSecret}
	if s.WelcomeSecret, err = cs.DeriveSecret(prk, "welcome"); err != nil {
		return nil, err
	}
	epochSecret, err := cs.ExpandWithLabel(prk, "epoch", ctx, cs.HashSize())
	if err != nil {
		return nil, err
	}
	defer clear(epochSecret)
	for _, d := range []struct {
		label string
		out   *[]byte
	}{
		{"sender data", &s.SenderDataSecret},
		{"encryption", &s.EncryptionSecret},
		{"exporter", &s.ExporterSecret},
		{"external", &s.ExternalSecret},
		{"confirm", &s.ConfirmationKey},
		{"membership", &s.MembershipKey},
		{"resumption", &s.ResumptionPSK},
		{"authentication", &s.EpochAuthenticator},
		{"init", &s.InitSecret},
	} {
		if *d.out, err = cs.DeriveSecret(epochSecret, d.label); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func checkSuite(cs CipherSuite) error {
	if !cs.Supported() {
		return fmt.Errorf("%w: %v", ErrUnsupportedCipherSuite, cs)
	}
	return nil
}

// Export is MLS-Exporter(label, context, length) (RFC 9420 §8.5):
// ExpandWithLabel(DeriveSecret(exporter_secret, label), "exported",
// Hash(context), length).
func (s *EpochSecrets) Export(label string, context []byte, length int) ([]byte, error) {
	cs := s.Suite
	secret, err := cs.DeriveSecret(s.ExporterSecret, label)
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	return cs.ExpandWithLabel(secret, "exported", cs.Hash(context), length)
}

// ExternalKeyPair derives the epoch's external HPKE key pair from the
// external_secret (RFC 9420 §8). The public key goes into GroupInfo's
// external_pub extension; the private key opens external joins.
func (s *EpochSecrets) ExternalKeyPair() (priv, pub []byte, err error) {
	return s.Suite.DeriveKeyPair(s.ExternalSecret)
}

// NewSecretTree returns the epoch's secret tree for a ratchet tree of
// leafCount leaves.
func (s *EpochSecrets) NewSecretTree(cfg *Config, leafCount uint32) (*SecretTree, error) {
	return NewSecretTree(cfg, s.Suite, s.EncryptionSecret, leafCount)
}

// NewProtector returns the Protector of the epoch described by gc, with a
// fresh secret tree of leafCount leaves.
func (s *EpochSecrets) NewProtector(cfg *Config, gc *GroupContext, leafCount uint32) (*Protector, error) {
	if gc.CipherSuite != s.Suite {
		return nil, fmt.Errorf("mls: group context for %v, epoch secrets for %v", gc.CipherSuite, s.Suite)
	}
	tree, err := s.NewSecretTree(cfg, leafCount)
	if err != nil {
		return nil, err
	}
	return NewProtector(cfg, gc, s.SenderDataSecret, s.MembershipKey, tree)
}

// Erase overwrites every secret with zeros. Protectors and secret trees
// made from s keep their own copies and stay usable.
func (s *EpochSecrets) Erase() {
	for _, b := range [][]byte{
		s.JoinerSecret, s.WelcomeSecret, s.SenderDataSecret, s.EncryptionSecret,
		s.ExporterSecret, s.ExternalSecret, s.ConfirmationKey, s.MembershipKey,
		s.ResumptionPSK, s.EpochAuthenticator, s.InitSecret,
	} {
		clear(b)
	}
}

// externalInitLabel is the HPKE exporter context of external init (RFC
// 9420 §8.3).
const externalInitLabel = "MLS 1.0 external init secret"

// ExternalInit is the joiner's half of an external join (RFC 9420 §8.3): it
// sets up an HPKE context to the group's external_pub and exports the
// init_secret the joiner uses for the new epoch. kemOutput goes into the
// ExternalInit proposal.
func ExternalInit(cs CipherSuite, rand io.Reader, externalPub []byte) (kemOutput, initSecret []byte, err error) {
	suite, err := cs.hpkeSuite()
	if err != nil {
		return nil, nil, err
	}
	pk, err := cs.parseHPKEPublic(externalPub)
	if err != nil {
		return nil, nil, err
	}
	sender, err := suite.NewSender(pk, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: external init: %w", err)
	}
	enc, ctx, err := sender.Setup(rand)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: external init: %w", err)
	}
	return enc, ctx.Export([]byte(externalInitLabel), uint(cs.HashSize())), nil
}

// ExternalInitSecret is the members' half of an external join: it recovers
// the init_secret from the kem_output of an ExternalInit proposal with the
// external private key of the epoch (ExternalKeyPair). A kem_output that
// does not decapsulate yields ErrDecryption.
func ExternalInitSecret(cs CipherSuite, externalPriv, kemOutput []byte) ([]byte, error) {
	suite, err := cs.hpkeSuite()
	if err != nil {
		return nil, err
	}
	sk, err := cs.parseHPKEPrivate(externalPriv)
	if err != nil {
		return nil, err
	}
	if len(kemOutput) != cs.HPKEPublicKeySize() {
		return nil, fmt.Errorf("%w: external init KEM output of %d bytes, want %d", ErrDecryption, len(kemOutput), cs.HPKEPublicKeySize())
	}
	receiver, err := suite.NewReceiver(sk, nil)
	if err != nil {
		return nil, fmt.Errorf("mls: external init: %w", err)
	}
	ctx, err := receiver.Setup(kemOutput)
	if err != nil {
		return nil, fmt.Errorf("%w: external init: %v", ErrDecryption, err)
	}
	return ctx.Export([]byte(externalInitLabel), uint(cs.HashSize())), nil
}

// labelKDF computes ExpandWithLabel for outputs of at most Nh bytes (one
// HKDF-Expand block, as every secret-tree and sender-data derivation is)
// allocating nothing but the output: it computes HMAC (RFC 2104) directly
// over one reusable hash, where crypto/hmac allocates two hashes and their
// saved states for every key. Message protection derives five such values
// per message under ever-changing secrets, so this is most of its
// non-signature cost. A labelKDF is not safe for concurrent use.
type labelKDF struct {
	cs    CipherSuite
	h     hash.Hash
	block []byte // the key XOR ipad, then XOR opad
	buf   []byte // the encoded KDFLabel, then the inner hash
}

func newLabelKDF(cs CipherSuite) *labelKDF {
	h := cs.newHash()()
	return &labelKDF{cs: cs, h: h, block: make([]byte, h.BlockSize()), buf: make([]byte, 0, 128)}
}

// expand returns ExpandWithLabel(secret, label, context, length).
func (k *labelKDF) expand(secret []byte, label string, context []byte, length int) ([]byte, error) {
	nh := k.cs.HashSize()
	if length > nh || len(secret) > len(k.block) || len(labelPrefix)+len(label) >= 1<<6 || len(context) >= 1<<14 {
		return k.cs.ExpandWithLabel(secret, label, context, length)
	}
	// T(1) = HMAC(secret, KDFLabel || 0x01).
	e := Encoder{buf: k.buf[:0]}
	e.Uint16(uint16(length))
	e.Varint(uint64(len(labelPrefix) + len(label)))
	e.buf = append(e.buf, labelPrefix...)
	e.buf = append(e.buf, label...)
	e.Opaque(context)
	e.Uint8(1)

	copy(k.block, secret)
	clear(k.block[len(secret):])
	for i := range k.block {
		k.block[i] ^= 0x36
	}
	k.h.Reset()
	k.h.Write(k.block)
	k.h.Write(e.buf)
	inner := k.h.Sum(e.buf[:0])
	for i := range k.block {
		k.block[i] ^= 0x36 ^ 0x5c
	}
	k.h.Reset()
	k.h.Write(k.block)
	k.h.Write(inner)
	out := k.h.Sum(make([]byte, 0, nh))
	clear(k.block)
	clear(inner)
	k.buf = inner[:0]
	return out[:length:length], nil
}

// treeSecret is DeriveTreeSecret(secret, label, generation, length).
func (k *labelKDF) treeSecret(secret []byte, label string, generation uint32, length int) ([]byte, error) {
	ctx := [4]byte{byte(generation >> 24), byte(generation >> 16), byte(generation >> 8), byte(generation)}
	return k.expand(secret, label, ctx[:], length)
}

// labelExpander computes ExpandWithLabel repeatedly under one fixed secret
// with a single keyed HMAC, whose keyed state is saved after first use:
// each expansion then costs two hash blocks instead of four. The Protector
// keeps one for the epoch's sender_data_secret. Outputs longer than Nh fall
// back to the general ExpandWithLabel.
type labelExpander struct {
	cs     CipherSuite
	secret []byte
	mac    hash.Hash
	used   bool // mac has been written to since it was keyed
	info   []byte
}

func newLabelExpander(cs CipherSuite, secret []byte) *labelExpander {
	return &labelExpander{cs: cs, secret: secret, mac: hmac.New(cs.newHash(), secret), info: make([]byte, 0, 128)}
}

// expand returns ExpandWithLabel(secret, label, context, length).
func (x *labelExpander) expand(label string, context []byte, length int) ([]byte, error) {
	if length > x.cs.HashSize() || len(labelPrefix)+len(label) >= 1<<6 || len(context) >= 1<<14 {
		return x.cs.ExpandWithLabel(x.secret, label, context, length)
	}
	// HKDF-Expand of at most one block: T(1) = HMAC(secret, info || 0x01),
	// with info the encoded KDFLabel.
	e := Encoder{buf: x.info[:0]}
	e.Uint16(uint16(length))
	e.Varint(uint64(len(labelPrefix) + len(label)))
	e.buf = append(e.buf, labelPrefix...)
	e.buf = append(e.buf, label...)
	e.Opaque(context)
	e.Uint8(1)
	x.info = e.buf
	// A fresh HMAC is already in its keyed state; resetting it would
	// snapshot that state first, which costs more than the expansion.
	if x.used {
		x.mac.Reset()
	}
	x.used = true
	x.mac.Write(e.buf)
	out := x.mac.Sum(make([]byte, 0, x.cs.HashSize()))
	return out[:length:length], nil
}
