package datastore

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// A sealed record value is
//
//	format (1 byte, 1) | kind (1 byte) | nonce (24 bytes) | XChaCha20-Poly1305 ciphertext and tag
//
// with associated data binding the format, the kind and the record's key, so
// that a value copied to another key, or relabelled as another kind, fails
// to open. Random 192-bit nonces need no counter state to survive crashes.
const (
	sealFormat   = 1
	sealHeader   = 2 + chacha20poly1305.NonceSizeX
	sealOverhead = sealHeader + chacha20poly1305.Overhead
	dataKeySize  = 32
)

var (
	sealADPrefix    = []byte("conclave/datastore/record/v1\x00")
	keyWrapADPrefix = []byte("conclave/datastore/keywrap/v1\x00")
	keyCheckLabel   = []byte("conclave/datastore/keycheck/v1\x00")
)

// keys holds what the data key derives: the record sealing AEAD and the key
// that blinds identifiers inside record keys.
type keys struct {
	aead  cipher.AEAD
	blind []byte
}

func deriveKeys(dataKey []byte) (*keys, error) {
	sealKey, err := hkdf.Key(sha256.New, dataKey, nil, "conclave datastore seal v1", chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("datastore: derive sealing key: %w", err)
	}
	blindKey, err := hkdf.Key(sha256.New, dataKey, nil, "conclave datastore blind v1", 32)
	if err != nil {
		return nil, fmt.Errorf("datastore: derive blinding key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(sealKey)
	if err != nil {
		return nil, fmt.Errorf("datastore: sealing cipher: %w", err)
	}
	return &keys{aead: aead, blind: blindKey}, nil
}

func sealAD(k kind, key string) []byte {
	ad := make([]byte, 0, len(sealADPrefix)+2+len(key))
	ad = append(ad, sealADPrefix...)
	ad = append(ad, sealFormat, byte(k))
	return append(ad, key...)
}

// seal encrypts a record payload for the given key.
func (ks *keys) seal(k kind, key string, payload []byte) []byte {
	out := make([]byte, sealHeader, sealOverhead+len(payload))
	out[0] = sealFormat
	out[1] = byte(k)
	nonce := out[2:sealHeader]
	// Since Go 1.24 crypto/rand.Read never returns an error.
	_, _ = rand.Read(nonce)
	return ks.aead.Seal(out, nonce, payload, sealAD(k, key))
}

// envelope is the parsed header of a sealed value.
type envelope struct {
	format     byte
	kind       kind
	nonce      []byte
	ciphertext []byte
}

func parseEnvelope(v []byte) (envelope, error) {
	if len(v) < sealOverhead {
		return envelope{}, fmt.Errorf("value of %d bytes is shorter than the %d-byte seal overhead (truncated)", len(v), sealOverhead)
	}
	return envelope{format: v[0], kind: kind(v[1]), nonce: v[2:sealHeader], ciphertext: v[sealHeader:]}, nil
}

func (e envelope) bytes() []byte {
	out := []byte{e.format, byte(e.kind)}
	out = append(out, e.nonce...)
	return append(out, e.ciphertext...)
}

var errAuth = errors.New("authentication failed (garbled, truncated, moved from another key, or sealed under another data key)")

// open decrypts a sealed value read from key, which must hold a record of
// kind want.
func (ks *keys) open(want kind, key string, v []byte) ([]byte, error) {
	env, err := parseEnvelope(v)
	if err != nil {
		return nil, err
	}
	if env.format != sealFormat {
		return nil, fmt.Errorf("unknown record format %d", env.format)
	}
	if env.kind != want {
		return nil, fmt.Errorf("holds a %s record, expected %s", env.kind, want)
	}
	p, err := ks.aead.Open(nil, env.nonce, env.ciphertext, sealAD(want, key))
	if err != nil {
		return nil, errAuth
	}
	return p, nil
}

// blindID maps an identifier (group ID, peer ID, KeyPackageRef) to the
// 128-bit keyed hash used in record keys, so that the key space does not
// reveal which groups or contacts exist. The label separates namespaces.
func (ks *keys) blindID(label string, id []byte) string {
	m := hmac.New(sha256.New, ks.blind)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write(id)
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// KDFParams are the Argon2id parameters that derive the key-wrapping key from
// a passphrase. The zero value selects DefaultKDFParams.
type KDFParams struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // lanes
}

// DefaultKDFParams follow RFC 9106's second recommended option (t=3, 64 MiB,
// p=4): about a quarter of a second on a laptop, paid once per Open.
var DefaultKDFParams = KDFParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 4}

// Bounds that a stored parameter set must respect, so that a garbled store
// cannot make Open spend hours or terabytes.
const (
	maxKDFTime      = 64
	maxKDFMemoryKiB = 4 << 20 // 4 GiB
)

func (p KDFParams) orDefault() KDFParams {
	if p == (KDFParams{}) {
		return DefaultKDFParams
	}
	return p
}

func (p KDFParams) validate() error {
	if p.Time == 0 || p.Time > maxKDFTime {
		return fmt.Errorf("argon2id time %d outside 1..%d", p.Time, maxKDFTime)
	}
	if p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxKDFMemoryKiB {
		return fmt.Errorf("argon2id memory %d KiB outside %d..%d", p.MemoryKiB, 8*uint32(p.Threads), maxKDFMemoryKiB)
	}
	if p.Threads == 0 {
		return errors.New("argon2id threads must be at least 1")
	}
	return nil
}

func (p KDFParams) kek(passphrase, salt []byte) []byte {
	return argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize)
}

// wrapKey seals the data key under a passphrase-derived key. The associated
// data binds the store ID and the KDF parameters, so neither can be swapped.
func wrapKey(dataKey, passphrase []byte, p KDFParams, salt, storeID []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(p.kek(passphrase, salt))
	if err != nil {
		return nil, fmt.Errorf("datastore: key-wrapping cipher: %w", err)
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+dataKeySize+chacha20poly1305.Overhead)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("datastore: random nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, dataKey, keyWrapAD(p, salt, storeID)), nil
}

func unwrapKey(wrapped, passphrase []byte, p KDFParams, salt, storeID []byte) ([]byte, error) {
	if len(wrapped) != chacha20poly1305.NonceSizeX+dataKeySize+chacha20poly1305.Overhead {
		return nil, fmt.Errorf("wrapped data key has %d bytes", len(wrapped))
	}
	aead, err := chacha20poly1305.NewX(p.kek(passphrase, salt))
	if err != nil {
		return nil, fmt.Errorf("datastore: key-wrapping cipher: %w", err)
	}
	nonce := wrapped[:chacha20poly1305.NonceSizeX]
	key, err := aead.Open(nil, nonce, wrapped[chacha20poly1305.NonceSizeX:], keyWrapAD(p, salt, storeID))
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	return key, nil
}

func keyWrapAD(p KDFParams, salt, storeID []byte) []byte {
	e := encoder{b: append([]byte{}, keyWrapADPrefix...)}
	e.bytes(storeID)
	e.bytes(salt)
	e.u32(p.Time)
	e.u32(p.MemoryKiB)
	e.u8(p.Threads)
	return e.b
}

// keyCheck lets Open tell a key file that belongs to another store from a
// store full of corrupt records.
func keyCheck(dataKey, storeID []byte) []byte {
	m := hmac.New(sha256.New, dataKey)
	m.Write(keyCheckLabel)
	m.Write(storeID)
	return m.Sum(nil)
}
