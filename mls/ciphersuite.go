package mls

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// CipherSuite identifies an MLS cipher suite (RFC 9420 §17.1): a KEM, KDF,
// AEAD, hash and signature algorithm. It is a plain value; all operations
// are methods on it.
type CipherSuite uint16

// The cipher suites of RFC 9420 §17.1, all supported.
const (
	MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519        CipherSuite = 0x0001
	MLS_128_DHKEMP256_AES128GCM_SHA256_P256             CipherSuite = 0x0002
	MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 CipherSuite = 0x0003
	MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448            CipherSuite = 0x0004
	MLS_256_DHKEMP521_AES256GCM_SHA512_P521             CipherSuite = 0x0005
	MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448     CipherSuite = 0x0006
	MLS_256_DHKEMP384_AES256GCM_SHA384_P384             CipherSuite = 0x0007
)

// Errors returned by cipher suite operations.
var (
	ErrUnsupportedCipherSuite = errors.New("mls: unsupported cipher suite")
	ErrDecryption             = errors.New("mls: decryption failed")
	ErrInvalidSignature       = errors.New("mls: invalid signature")
	ErrInvalidKey             = errors.New("mls: invalid key")
	ErrInvalidLength          = errors.New("mls: invalid length")
	// ErrNoRandomness reports a nil randomness source: the package never
	// falls back to a global one.
	ErrNoRandomness = errors.New("mls: no randomness source")
)

// readRandom fills b from rand.
func readRandom(rand io.Reader, b []byte) error {
	if rand == nil {
		return ErrNoRandomness
	}
	if _, err := io.ReadFull(rand, b); err != nil {
		return fmt.Errorf("mls: reading randomness: %w", err)
	}
	return nil
}

// labelPrefix is prepended to every label given to ExpandWithLabel,
// SignWithLabel and EncryptWithLabel (RFC 9420 §5.1.2, §5.1.3, §8).
const labelPrefix = "MLS 1.0 "

type hashAlg uint8

const (
	hashSHA256 hashAlg = iota + 1
	hashSHA384
	hashSHA512
)

type aeadAlg uint8

const (
	aeadAES128GCM aeadAlg = iota + 1
	aeadAES256GCM
	aeadChaCha20Poly1305
)

type sigAlg uint8

const (
	sigEd25519 sigAlg = iota + 1
	sigEd448
	sigP256
	sigP384
	sigP521
)

type kemAlg uint8

const (
	kemX25519 kemAlg = iota + 1
	kemX448
	kemP256
	kemP384
	kemP521
)

// suiteParams are the algorithms making up a cipher suite.
type suiteParams struct {
	name string
	hash hashAlg
	aead aeadAlg
	sig  sigAlg
	kem  kemAlg
}

func (cs CipherSuite) params() (suiteParams, bool) {
	switch cs {
	case MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519:
		return suiteParams{"MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519", hashSHA256, aeadAES128GCM, sigEd25519, kemX25519}, true
	case MLS_128_DHKEMP256_AES128GCM_SHA256_P256:
		return suiteParams{"MLS_128_DHKEMP256_AES128GCM_SHA256_P256", hashSHA256, aeadAES128GCM, sigP256, kemP256}, true
	case MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519:
		return suiteParams{"MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519", hashSHA256, aeadChaCha20Poly1305, sigEd25519, kemX25519}, true
	case MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448:
		return suiteParams{"MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448", hashSHA512, aeadAES256GCM, sigEd448, kemX448}, true
	case MLS_256_DHKEMP521_AES256GCM_SHA512_P521:
		return suiteParams{"MLS_256_DHKEMP521_AES256GCM_SHA512_P521", hashSHA512, aeadAES256GCM, sigP521, kemP521}, true
	case MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448:
		return suiteParams{"MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448", hashSHA512, aeadChaCha20Poly1305, sigEd448, kemX448}, true
	case MLS_256_DHKEMP384_AES256GCM_SHA384_P384:
		return suiteParams{"MLS_256_DHKEMP384_AES256GCM_SHA384_P384", hashSHA384, aeadAES256GCM, sigP384, kemP384}, true
	}
	return suiteParams{}, false
}

// Supported reports whether cs is one of the suites this package implements.
func (cs CipherSuite) Supported() bool {
	_, ok := cs.params()
	return ok
}

// String returns the RFC name of the suite, or its number if unknown.
func (cs CipherSuite) String() string {
	if p, ok := cs.params(); ok {
		return p.name
	}
	return fmt.Sprintf("CipherSuite(%#04x)", uint16(cs))
}

func (cs CipherSuite) check() error {
	if !cs.Supported() {
		return fmt.Errorf("%w: %#04x", ErrUnsupportedCipherSuite, uint16(cs))
	}
	return nil
}

func (cs CipherSuite) hashAlg() hashAlg {
	p, _ := cs.params()
	return p.hash
}

// newHash returns a fresh hash for the suite. Unknown suites fall back to
// SHA-256 so that no method panics; callers that can fail check Supported.
func (cs CipherSuite) newHash() func() hash.Hash {
	return cs.hashAlg().new()
}

// HashSize returns Nh, the output size of the suite's hash and KDF.
func (cs CipherSuite) HashSize() int {
	switch cs.hashAlg() {
	case hashSHA384:
		return 48
	case hashSHA512:
		return 64
	case hashSHA256:
		return 32
	}
	return 0
}

// AEADKeySize returns Nk, the AEAD key size.
func (cs CipherSuite) AEADKeySize() int {
	p, _ := cs.params()
	switch p.aead {
	case aeadAES128GCM:
		return 16
	case aeadAES256GCM, aeadChaCha20Poly1305:
		return 32
	}
	return 0
}

// AEADNonceSize returns Nn, the AEAD nonce size.
func (cs CipherSuite) AEADNonceSize() int {
	if !cs.Supported() {
		return 0
	}
	return 12
}

// AEADOverhead returns the size of the AEAD authentication tag.
func (cs CipherSuite) AEADOverhead() int {
	if !cs.Supported() {
		return 0
	}
	return 16
}

// Hash returns the suite's hash of data.
func (cs CipherSuite) Hash(data []byte) []byte {
	switch cs.hashAlg() {
	case hashSHA384:
		h := sha512.Sum384(data)
		return h[:]
	case hashSHA512:
		h := sha512.Sum512(data)
		return h[:]
	}
	h := sha256.Sum256(data)
	return h[:]
}

// MAC returns HMAC(key, data) with the suite's hash.
func (cs CipherSuite) MAC(key, data []byte) []byte {
	return hmacSum(cs.hashAlg(), key, data)
}

// Extract is HKDF-Extract(salt, ikm) with the suite's hash.
func (cs CipherSuite) Extract(salt, ikm []byte) []byte {
	return hmacSum(cs.hashAlg(), salt, ikm)
}

// Expand is HKDF-Expand(prk, info, length) with the suite's hash.
func (cs CipherSuite) Expand(prk, info []byte, length int) ([]byte, error) {
	if err := cs.check(); err != nil {
		return nil, err
	}
	return hkdfExpand(cs.hashAlg(), prk, info, length)
}

func (a hashAlg) size() int {
	switch a {
	case hashSHA384:
		return 48
	case hashSHA512:
		return 64
	}
	return 32
}

func (a hashAlg) blockSize() int {
	if a == hashSHA384 || a == hashSHA512 {
		return 128
	}
	return 64
}

func (a hashAlg) new() func() hash.Hash {
	switch a {
	case hashSHA384:
		return sha512.New384
	case hashSHA512:
		return sha512.New
	}
	return sha256.New
}

// sumInto writes the hash of data to out and returns its length.
func (a hashAlg) sumInto(out *[64]byte, data []byte) int {
	switch a {
	case hashSHA384:
		s := sha512.Sum384(data)
		return copy(out[:], s[:])
	case hashSHA512:
		s := sha512.Sum512(data)
		return copy(out[:], s[:])
	}
	s := sha256.Sum256(data)
	return copy(out[:], s[:])
}

// hmacFastMax bounds the message that hmacSmall hashes from a stack buffer.
const hmacFastMax = 256

// hmacSmall computes HMAC(key, msg || tail) for a key no longer than the
// hash block and a message of at most hmacFastMax bytes with one-shot hash
// calls on a stack buffer. Key derivation runs several of these per message,
// and crypto/hmac's allocations would cost more than the hashing itself.
func hmacSmall(a hashAlg, out *[64]byte, key, msg, tail []byte) int {
	var buf [128 + hmacFastMax]byte
	bs := a.blockSize()
	for i := 0; i < bs; i++ {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		buf[i] = k ^ 0x36
	}
	n := bs + copy(buf[bs:], msg)
	n += copy(buf[n:], tail)
	var inner [64]byte
	nh := a.sumInto(&inner, buf[:n])
	for i := 0; i < bs; i++ {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		buf[i] = k ^ 0x5c
	}
	copy(buf[bs:], inner[:nh])
	return a.sumInto(out, buf[:bs+nh])
}

// hmacSum returns HMAC(key, msg).
func hmacSum(a hashAlg, key, msg []byte) []byte {
	if len(key) <= a.blockSize() && len(msg) <= hmacFastMax {
		var out [64]byte
		n := hmacSmall(a, &out, key, msg, nil)
		return append([]byte(nil), out[:n]...)
	}
	m := hmac.New(a.new(), key)
	m.Write(msg)
	return m.Sum(nil)
}

// hkdfExpand implements RFC 5869 HKDF-Expand.
func hkdfExpand(a hashAlg, prk, info []byte, length int) ([]byte, error) {
	nh := a.size()
	if length < 0 || length > 255*nh {
		return nil, fmt.Errorf("%w: HKDF-Expand output of %d bytes", ErrInvalidLength, length)
	}
	if length <= nh && len(prk) <= a.blockSize() && len(info)+1 <= hmacFastMax {
		// One block: T(1) = HMAC(prk, info || 0x01).
		var out [64]byte
		one := [1]byte{1}
		hmacSmall(a, &out, prk, info, one[:])
		return append(make([]byte, 0, length), out[:length]...), nil
	}
	out := make([]byte, 0, length+nh)
	m := hmac.New(a.new(), prk)
	var t []byte
	for ctr := byte(1); len(out) < length; ctr++ {
		m.Reset()
		m.Write(t)
		m.Write(info)
		m.Write([]byte{ctr})
		out = m.Sum(out)
		t = out[len(out)-nh:]
	}
	return out[:length:length], nil
}

// ExpandWithLabel is RFC 9420 §8's KDF.Expand(secret, KDFLabel, length),
// where KDFLabel carries the length, "MLS 1.0 "+label and context.
func (cs CipherSuite) ExpandWithLabel(secret []byte, label string, context []byte, length int) ([]byte, error) {
	if length < 0 || length > 0xffff {
		return nil, fmt.Errorf("%w: ExpandWithLabel output of %d bytes", ErrInvalidLength, length)
	}
	info := make([]byte, 0, 2+2+len(labelPrefix)+len(label)+4+len(context))
	e := Encoder{buf: info}
	e.Uint16(uint16(length))
	e.Varint(uint64(len(labelPrefix) + len(label)))
	e.buf = append(e.buf, labelPrefix...)
	e.buf = append(e.buf, label...)
	e.Opaque(context)
	if e.err != nil {
		return nil, e.err
	}
	return cs.Expand(secret, e.buf, length)
}

// DeriveSecret is ExpandWithLabel(secret, label, "", Nh).
func (cs CipherSuite) DeriveSecret(secret []byte, label string) ([]byte, error) {
	return cs.ExpandWithLabel(secret, label, nil, cs.HashSize())
}

// DeriveTreeSecret is ExpandWithLabel(secret, label, generation, length)
// with the generation encoded as a uint32 (RFC 9420 §9).
func (cs CipherSuite) DeriveTreeSecret(secret []byte, label string, generation uint32, length int) ([]byte, error) {
	ctx := [4]byte{byte(generation >> 24), byte(generation >> 16), byte(generation >> 8), byte(generation)}
	return cs.ExpandWithLabel(secret, label, ctx[:], length)
}

// RefHash is Hash(RefHashInput{label, value}) (RFC 9420 §5.2). The label is
// used as given, e.g. "MLS 1.0 KeyPackage Reference".
func (cs CipherSuite) RefHash(label string, value []byte) []byte {
	e := Encoder{buf: make([]byte, 0, 8+len(label)+len(value))}
	e.Opaque([]byte(label))
	e.Opaque(value)
	return cs.Hash(e.buf)
}

// newAEAD returns the suite's AEAD keyed with key.
func (cs CipherSuite) newAEAD(key []byte) (cipher.AEAD, error) {
	if err := cs.check(); err != nil {
		return nil, err
	}
	if len(key) != cs.AEADKeySize() {
		return nil, fmt.Errorf("%w: AEAD key of %d bytes, want %d", ErrInvalidKey, len(key), cs.AEADKeySize())
	}
	p, _ := cs.params()
	if p.aead == aeadChaCha20Poly1305 {
		return chacha20poly1305.New(key)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts and authenticates plaintext with the suite's AEAD.
func (cs CipherSuite) Seal(key, nonce, aad, plaintext []byte) ([]byte, error) {
	a, err := cs.newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, fmt.Errorf("%w: nonce of %d bytes, want %d", ErrInvalidLength, len(nonce), a.NonceSize())
	}
	return a.Seal(nil, nonce, plaintext, aad), nil
}

// Open authenticates and decrypts ciphertext with the suite's AEAD. A
// ciphertext that fails authentication yields ErrDecryption.
func (cs CipherSuite) Open(key, nonce, aad, ciphertext []byte) ([]byte, error) {
	a, err := cs.newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, fmt.Errorf("%w: nonce of %d bytes, want %d", ErrInvalidLength, len(nonce), a.NonceSize())
	}
	if len(ciphertext) < a.Overhead() {
		return nil, fmt.Errorf("%w: ciphertext shorter than the authentication tag", ErrDecryption)
	}
	pt, err := a.Open(nil, nonce, ciphertext, aad)
	if err != nil {
		return nil, ErrDecryption
	}
	return pt, nil
}
