package mls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"io"
	"math/big"

	"github.com/cloudflare/circl/sign/ed25519"
	"github.com/cloudflare/circl/sign/ed448"
)

// Signature keys are byte strings in the formats of the MLS test vectors:
// EdDSA keys are the RFC 8032 seed and public key; ECDSA private keys are
// the big-endian scalar of the curve's fixed length and public keys the
// uncompressed SEC 1 point. ECDSA signatures are DER-encoded.

func (cs CipherSuite) sigAlg() sigAlg {
	p, _ := cs.params()
	return p.sig
}

func (a sigAlg) curve() elliptic.Curve {
	switch a {
	case sigP256:
		return elliptic.P256()
	case sigP384:
		return elliptic.P384()
	case sigP521:
		return elliptic.P521()
	}
	return nil
}

// scalarSize is the byte length of an ECDSA private key.
func (a sigAlg) scalarSize() int {
	switch a {
	case sigP256:
		return 32
	case sigP384:
		return 48
	case sigP521:
		return 66
	}
	return 0
}

func (a sigAlg) digest(msg []byte) []byte {
	switch a {
	case sigP384:
		h := sha512.Sum384(msg)
		return h[:]
	case sigP521:
		h := sha512.Sum512(msg)
		return h[:]
	}
	h := sha256.Sum256(msg)
	return h[:]
}

// Signer holds a parsed signature private key so that repeated signing does
// not pay for parsing (for EdDSA, deriving the public key costs as much as
// a signature).
type Signer struct {
	cs      CipherSuite
	ed25519 ed25519.PrivateKey
	ed448   ed448.PrivateKey
	ecdsa   *ecdsa.PrivateKey
	pub     []byte
}

// NewSigner parses a signature private key for the suite.
func (cs CipherSuite) NewSigner(priv []byte) (*Signer, error) {
	if err := cs.check(); err != nil {
		return nil, err
	}
	s := &Signer{cs: cs}
	switch alg := cs.sigAlg(); alg {
	case sigEd25519:
		if len(priv) != ed25519.SeedSize {
			return nil, fmt.Errorf("%w: Ed25519 private key of %d bytes", ErrInvalidKey, len(priv))
		}
		s.ed25519 = ed25519.NewKeyFromSeed(priv)
		s.pub = append([]byte(nil), s.ed25519[ed25519.SeedSize:]...)
	case sigEd448:
		if len(priv) != ed448.SeedSize {
			return nil, fmt.Errorf("%w: Ed448 private key of %d bytes", ErrInvalidKey, len(priv))
		}
		s.ed448 = ed448.NewKeyFromSeed(priv)
		s.pub = append([]byte(nil), s.ed448[ed448.SeedSize:]...)
	default:
		// Some implementations serialize the scalar without its leading zero
		// bytes (the P-521 key of message-protection.json has 65 bytes, not
		// 66); accept those by restoring the fixed-length big-endian form.
		if len(priv) == 0 || len(priv) > alg.scalarSize() {
			return nil, fmt.Errorf("%w: ECDSA private key of %d bytes", ErrInvalidKey, len(priv))
		}
		if len(priv) < alg.scalarSize() {
			padded := make([]byte, alg.scalarSize())
			copy(padded[len(padded)-len(priv):], priv)
			priv = padded
		}
		k, err := ecdsa.ParseRawPrivateKey(alg.curve(), priv)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
		}
		pub, err := k.PublicKey.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
		}
		s.ecdsa, s.pub = k, pub
	}
	return s, nil
}

// CipherSuite returns the suite the key belongs to.
func (s *Signer) CipherSuite() CipherSuite { return s.cs }

// Public returns the signature public key.
func (s *Signer) Public() []byte { return append([]byte(nil), s.pub...) }

// Sign signs msg directly, without a label. Ed25519 and Ed448 are pure
// EdDSA and ignore rand. ECDSA uses the randomness of the standard library,
// which since Go 1.26 ignores any caller-supplied reader.
func (s *Signer) Sign(rand io.Reader, msg []byte) ([]byte, error) {
	switch {
	case s.ed25519 != nil:
		return ed25519.Sign(s.ed25519, msg), nil
	case s.ed448 != nil:
		return ed448.Sign(s.ed448, msg, ""), nil
	case s.ecdsa != nil:
		return ecdsa.SignASN1(rand, s.ecdsa, s.cs.sigAlg().digest(msg))
	}
	return nil, fmt.Errorf("%w: empty signer", ErrInvalidKey)
}

// SignWithLabel signs SignContent{"MLS 1.0 "+label, content} (RFC 9420
// §5.1.2).
func (s *Signer) SignWithLabel(rand io.Reader, label string, content []byte) ([]byte, error) {
	return s.Sign(rand, signContent(label, content))
}

func signContent(label string, content []byte) []byte {
	e := Encoder{buf: make([]byte, 0, 4+len(labelPrefix)+len(label)+4+len(content))}
	e.Varint(uint64(len(labelPrefix) + len(label)))
	e.buf = append(e.buf, labelPrefix...)
	e.buf = append(e.buf, label...)
	e.Opaque(content)
	return e.buf
}

// GenerateSignatureKeyPair creates a signature key pair using randomness
// from rand only.
func (cs CipherSuite) GenerateSignatureKeyPair(rand io.Reader) (priv, pub []byte, err error) {
	if err := cs.check(); err != nil {
		return nil, nil, err
	}
	switch alg := cs.sigAlg(); alg {
	case sigEd25519, sigEd448:
		n := ed25519.SeedSize
		if alg == sigEd448 {
			n = ed448.SeedSize
		}
		priv = make([]byte, n)
		if err := readRandom(rand, priv); err != nil {
			return nil, nil, err
		}
	default:
		// Rejection sampling of a scalar in [1, n-1], so that the key depends
		// only on rand (crypto/ecdsa ignores caller randomness since Go 1.26).
		n := alg.curve().Params().N
		size := alg.scalarSize()
		for {
			priv = make([]byte, size)
			if err := readRandom(rand, priv); err != nil {
				return nil, nil, err
			}
			if alg == sigP521 {
				priv[0] &= 0x01
			}
			k := new(big.Int).SetBytes(priv)
			if k.Sign() > 0 && k.Cmp(n) < 0 {
				break
			}
		}
	}
	s, err := cs.NewSigner(priv)
	if err != nil {
		return nil, nil, err
	}
	return priv, s.pub, nil
}

// SignatureKeyPairFromPrivate returns the public key of priv.
func (cs CipherSuite) SignatureKeyPairFromPrivate(priv []byte) (pub []byte, err error) {
	s, err := cs.NewSigner(priv)
	if err != nil {
		return nil, err
	}
	return s.pub, nil
}

// SignWithLabel signs SignContent{"MLS 1.0 "+label, content} with priv.
// Callers that sign repeatedly should keep a Signer from NewSigner.
func (cs CipherSuite) SignWithLabel(rand io.Reader, priv []byte, label string, content []byte) ([]byte, error) {
	s, err := cs.NewSigner(priv)
	if err != nil {
		return nil, err
	}
	return s.SignWithLabel(rand, label, content)
}

// Verify checks a signature over msg directly, without a label. Any
// failure, including a malformed key or signature, is ErrInvalidSignature.
func (cs CipherSuite) Verify(pub, msg, signature []byte) error {
	if err := cs.check(); err != nil {
		return err
	}
	ok := false
	switch alg := cs.sigAlg(); alg {
	case sigEd25519:
		ok = len(pub) == ed25519.PublicKeySize && len(signature) == ed25519.SignatureSize &&
			ed25519.Verify(ed25519.PublicKey(pub), msg, signature)
	case sigEd448:
		ok = len(pub) == ed448.PublicKeySize && len(signature) == ed448.SignatureSize &&
			ed448.Verify(ed448.PublicKey(pub), msg, signature, "")
	default:
		k, err := ecdsa.ParseUncompressedPublicKey(alg.curve(), pub)
		if err != nil {
			return fmt.Errorf("%w: %w: %v", ErrInvalidSignature, ErrInvalidKey, err)
		}
		ok = ecdsa.VerifyASN1(k, alg.digest(msg), signature)
	}
	if !ok {
		return ErrInvalidSignature
	}
	return nil
}

// VerifyWithLabel checks a signature made by SignWithLabel. Any failure is
// ErrInvalidSignature.
func (cs CipherSuite) VerifyWithLabel(pub []byte, label string, content, signature []byte) error {
	return cs.Verify(pub, signContent(label, content), signature)
}

// ValidateSignaturePublicKey reports whether pub is a well-formed signature
// public key for the suite.
func (cs CipherSuite) ValidateSignaturePublicKey(pub []byte) error {
	if err := cs.check(); err != nil {
		return err
	}
	switch alg := cs.sigAlg(); alg {
	case sigEd25519:
		if len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 public key of %d bytes", ErrInvalidKey, len(pub))
		}
	case sigEd448:
		if len(pub) != ed448.PublicKeySize {
			return fmt.Errorf("%w: Ed448 public key of %d bytes", ErrInvalidKey, len(pub))
		}
	default:
		if _, err := ecdsa.ParseUncompressedPublicKey(alg.curve(), pub); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidKey, err)
		}
	}
	return nil
}
