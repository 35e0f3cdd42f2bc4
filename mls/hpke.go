package mls

import (
	"crypto/ecdh"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
)

// HPKE (RFC 9180) in base mode through circl, with DeriveKeyPair written
// here: circl's version panics unless the seed has exactly the KEM's seed
// length, whereas MLS derives node keys from Nh-byte secrets (circl issue
// #486). Every key and encapsulation from a peer is length-checked before
// it reaches circl.

func (cs CipherSuite) kemAlg() kemAlg {
	p, _ := cs.params()
	return p.kem
}

func (k kemAlg) id() hpke.KEM {
	switch k {
	case kemX25519:
		return hpke.KEM_X25519_HKDF_SHA256
	case kemX448:
		return hpke.KEM_X448_HKDF_SHA512
	case kemP256:
		return hpke.KEM_P256_HKDF_SHA256
	case kemP384:
		return hpke.KEM_P384_HKDF_SHA384
	case kemP521:
		return hpke.KEM_P521_HKDF_SHA512
	}
	return 0
}

// kemHash is the hash of the KEM's own HKDF, which RFC 9180 fixes per KEM.
func (k kemAlg) kemHash() hashAlg {
	switch k {
	case kemX448, kemP521:
		return hashSHA512
	case kemP384:
		return hashSHA384
	}
	return hashSHA256
}

// privateKeySize is Nsk, publicKeySize Npk (= Nenc) of RFC 9180 §7.1.
func (k kemAlg) privateKeySize() int {
	switch k {
	case kemX25519, kemP256:
		return 32
	case kemX448:
		return 56
	case kemP384:
		return 48
	case kemP521:
		return 66
	}
	return 0
}

func (k kemAlg) publicKeySize() int {
	switch k {
	case kemX25519:
		return 32
	case kemX448:
		return 56
	case kemP256:
		return 65
	case kemP384:
		return 97
	case kemP521:
		return 133
	}
	return 0
}

func (k kemAlg) curve() ecdh.Curve {
	switch k {
	case kemP256:
		return ecdh.P256()
	case kemP384:
		return ecdh.P384()
	case kemP521:
		return ecdh.P521()
	}
	return nil
}

func (cs CipherSuite) hpkeSuite() (hpke.Suite, error) {
	p, ok := cs.params()
	if !ok {
		return hpke.Suite{}, cs.check()
	}
	var kdf hpke.KDF
	switch p.hash {
	case hashSHA256:
		kdf = hpke.KDF_HKDF_SHA256
	case hashSHA384:
		kdf = hpke.KDF_HKDF_SHA384
	case hashSHA512:
		kdf = hpke.KDF_HKDF_SHA512
	}
	var aead hpke.AEAD
	switch p.aead {
	case aeadAES128GCM:
		aead = hpke.AEAD_AES128GCM
	case aeadAES256GCM:
		aead = hpke.AEAD_AES256GCM
	case aeadChaCha20Poly1305:
		aead = hpke.AEAD_ChaCha20Poly1305
	}
	return hpke.NewSuite(p.kem.id(), kdf, aead), nil
}

// HPKEPublicKeySize returns Npk, the size of an HPKE public key and of a KEM
// output for the suite.
func (cs CipherSuite) HPKEPublicKeySize() int { return cs.kemAlg().publicKeySize() }

// HPKEPrivateKeySize returns Nsk, the size of a serialized HPKE private key.
func (cs CipherSuite) HPKEPrivateKeySize() int { return cs.kemAlg().privateKeySize() }

// kemLabeled implements LabeledExtract and LabeledExpand of RFC 9180 §4
// with the KEM's suite_id ("KEM" || I2OSP(kem_id, 2)).
type kemLabeled struct {
	hash   hashAlg
	prefix []byte // "HPKE-v1" || suite_id
}

func newKEMLabeled(k kemAlg) kemLabeled {
	prefix := append([]byte("HPKE-v1KEM"), 0, 0)
	binary.BigEndian.PutUint16(prefix[len(prefix)-2:], uint16(k.id()))
	return kemLabeled{hash: k.kemHash(), prefix: prefix}
}

func (l kemLabeled) extract(salt []byte, label string, ikm []byte) []byte {
	msg := make([]byte, 0, len(l.prefix)+len(label)+len(ikm))
	msg = append(append(append(msg, l.prefix...), label...), ikm...)
	return hmacSum(l.hash, salt, msg)
}

func (l kemLabeled) expand(prk []byte, label string, info []byte, length int) ([]byte, error) {
	msg := make([]byte, 2, 2+len(l.prefix)+len(label)+len(info))
	binary.BigEndian.PutUint16(msg, uint16(length))
	msg = append(append(append(msg, l.prefix...), label...), info...)
	return hkdfExpand(l.hash, prk, msg, length)
}

// DeriveKeyPair is RFC 9180 §7.1.3 DeriveKeyPair for the suite's KEM. It
// accepts input keying material of any length. The private key is returned
// in SerializePrivateKey form and the public key in SerializePublicKey form.
func (cs CipherSuite) DeriveKeyPair(ikm []byte) (priv, pub []byte, err error) {
	if err := cs.check(); err != nil {
		return nil, nil, err
	}
	k := cs.kemAlg()
	l := newKEMLabeled(k)
	prk := l.extract(nil, "dkp_prk", ikm)
	nsk := k.privateKeySize()
	if c := k.curve(); c != nil {
		bitmask := byte(0xff)
		if k == kemP521 {
			bitmask = 0x01
		}
		for ctr := 0; ctr <= 255; ctr++ {
			cand, err := l.expand(prk, "candidate", []byte{byte(ctr)}, nsk)
			if err != nil {
				return nil, nil, err
			}
			cand[0] &= bitmask
			// NewPrivateKey rejects zero and values not below the group order,
			// which is exactly the rejection test of RFC 9180.
			sk, err := c.NewPrivateKey(cand)
			if err != nil {
				continue
			}
			return cand, sk.PublicKey().Bytes(), nil
		}
		return nil, nil, fmt.Errorf("%w: DeriveKeyPair found no valid scalar", ErrInvalidKey)
	}
	sk, err := l.expand(prk, "sk", nil, nsk)
	if err != nil {
		return nil, nil, err
	}
	pub, err = cs.HPKEPublicFromPrivate(sk)
	if err != nil {
		return nil, nil, err
	}
	return sk, pub, nil
}

// HPKEPublicFromPrivate returns the public key of a serialized HPKE private
// key.
func (cs CipherSuite) HPKEPublicFromPrivate(priv []byte) ([]byte, error) {
	sk, err := cs.parseHPKEPrivate(priv)
	if err != nil {
		return nil, err
	}
	pub, err := sk.Public().MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return pub, nil
}

func (cs CipherSuite) parseHPKEPrivate(priv []byte) (kem.PrivateKey, error) {
	if err := cs.check(); err != nil {
		return nil, err
	}
	k := cs.kemAlg()
	if len(priv) != k.privateKeySize() {
		return nil, fmt.Errorf("%w: HPKE private key of %d bytes, want %d", ErrInvalidKey, len(priv), k.privateKeySize())
	}
	sk, err := k.id().Scheme().UnmarshalBinaryPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return sk, nil
}

func (cs CipherSuite) parseHPKEPublic(pub []byte) (kem.PublicKey, error) {
	if err := cs.check(); err != nil {
		return nil, err
	}
	k := cs.kemAlg()
	if len(pub) != k.publicKeySize() {
		return nil, fmt.Errorf("%w: HPKE public key of %d bytes, want %d", ErrInvalidKey, len(pub), k.publicKeySize())
	}
	pk, err := k.id().Scheme().UnmarshalBinaryPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return pk, nil
}

// ValidateHPKEPublicKey reports whether pub is a well-formed HPKE public key
// for the suite.
func (cs CipherSuite) ValidateHPKEPublicKey(pub []byte) error {
	_, err := cs.parseHPKEPublic(pub)
	return err
}

// GenerateHPKEKeyPair creates an HPKE key pair from Nsk bytes of rand, via
// DeriveKeyPair, so that the result depends only on rand.
func (cs CipherSuite) GenerateHPKEKeyPair(rand io.Reader) (priv, pub []byte, err error) {
	if err := cs.check(); err != nil {
		return nil, nil, err
	}
	ikm := make([]byte, cs.kemAlg().privateKeySize())
	if err := readRandom(rand, ikm); err != nil {
		return nil, nil, err
	}
	return cs.DeriveKeyPair(ikm)
}

// SealHPKE is RFC 9180 SealBase(pub, info, aad, plaintext), taking the
// ephemeral key's randomness from rand.
func (cs CipherSuite) SealHPKE(rand io.Reader, pub, info, aad, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	suite, err := cs.hpkeSuite()
	if err != nil {
		return nil, nil, err
	}
	if rand == nil {
		// circl would silently fall back to crypto/rand.
		return nil, nil, ErrNoRandomness
	}
	pk, err := cs.parseHPKEPublic(pub)
	if err != nil {
		return nil, nil, err
	}
	sender, err := suite.NewSender(pk, info)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE: %w", err)
	}
	enc, sealer, err := sender.Setup(rand)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE setup: %w", err)
	}
	ct, err := sealer.Seal(plaintext, aad)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE seal: %w", err)
	}
	return enc, ct, nil
}

// OpenHPKE is RFC 9180 OpenBase(kemOutput, priv, info, aad, ciphertext). Any
// failure caused by the peer's data is ErrDecryption.
func (cs CipherSuite) OpenHPKE(priv, kemOutput, info, aad, ciphertext []byte) ([]byte, error) {
	suite, err := cs.hpkeSuite()
	if err != nil {
		return nil, err
	}
	sk, err := cs.parseHPKEPrivate(priv)
	if err != nil {
		return nil, err
	}
	if len(kemOutput) != cs.kemAlg().publicKeySize() {
		return nil, fmt.Errorf("%w: KEM output of %d bytes, want %d", ErrDecryption, len(kemOutput), cs.kemAlg().publicKeySize())
	}
	if len(ciphertext) < cs.AEADOverhead() {
		return nil, fmt.Errorf("%w: HPKE ciphertext shorter than the tag", ErrDecryption)
	}
	receiver, err := suite.NewReceiver(sk, info)
	if err != nil {
		return nil, fmt.Errorf("mls: HPKE: %w", err)
	}
	opener, err := receiver.Setup(kemOutput)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE setup: %v", ErrDecryption, err)
	}
	pt, err := opener.Open(ciphertext, aad)
	if err != nil {
		return nil, ErrDecryption
	}
	return pt, nil
}

// encryptContext is EncryptContext{"MLS 1.0 "+label, context} (RFC 9420
// §5.1.3).
func encryptContext(label string, context []byte) []byte {
	e := Encoder{buf: make([]byte, 0, 4+len(labelPrefix)+len(label)+4+len(context))}
	e.Varint(uint64(len(labelPrefix) + len(label)))
	e.buf = append(e.buf, labelPrefix...)
	e.buf = append(e.buf, label...)
	e.Opaque(context)
	return e.buf
}

// EncryptWithLabel is SealBase(pub, EncryptContext{label, context}, "",
// plaintext) (RFC 9420 §5.1.3).
func (cs CipherSuite) EncryptWithLabel(rand io.Reader, pub []byte, label string, context, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	return cs.SealHPKE(rand, pub, encryptContext(label, context), nil, plaintext)
}

// DecryptWithLabel is OpenBase(kemOutput, priv, EncryptContext{label,
// context}, "", ciphertext).
func (cs CipherSuite) DecryptWithLabel(priv []byte, label string, context, kemOutput, ciphertext []byte) ([]byte, error) {
	return cs.OpenHPKE(priv, kemOutput, encryptContext(label, context), nil, ciphertext)
}
