package identity

import (
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"strings"
)

// Safety codes let two people check, by reading digits to each other or
// comparing screens, that each holds the other's real identity key and no
// one in between substituted a key. The design follows Signal's safety
// numbers: each identity has a 30-digit fingerprint derived by an iterated
// hash of its key, and the safety code of two identities is their two
// fingerprints, the numerically smaller first, so both sides compute the
// same code. docs/identity.md gives the algorithm and its strength.
const (
	// FingerprintDigits is the length of one identity's fingerprint.
	FingerprintDigits = 30
	// SafetyCodeDigits is the length of a safety code.
	SafetyCodeDigits = 2 * FingerprintDigits

	// safetyCodeVersion changes whenever the derivation changes, so that
	// codes from different derivations never compare equal by accident.
	safetyCodeVersion = 1
	// safetyCodeLabel separates this hash from every other use of the key.
	safetyCodeLabel = "Conclave safety code"
	// fingerprintIterations makes each guess of a brute-force search cost
	// this many SHA-512 computations.
	fingerprintIterations = 5200

	digitGroup = 5
)

// fingerprintDigits returns the 30 ASCII digits of id's fingerprint:
//
//	h = SHA-512(opaque label<V> || uint16 version || key)
//	repeat 5199 times: h = SHA-512(h || key)
//
// then six 5-digit groups, group i being the big-endian 40-bit integer
// h[5i:5i+5] modulo 100000.
func fingerprintDigits(id ID) [FingerprintDigits]byte {
	buf := make([]byte, 0, sha512.Size+len(id.key))
	buf = append(buf, byte(len(safetyCodeLabel)))
	buf = append(buf, safetyCodeLabel...)
	buf = binary.BigEndian.AppendUint16(buf, safetyCodeVersion)
	buf = append(buf, id.key[:]...)
	h := sha512.Sum512(buf)
	for range fingerprintIterations - 1 {
		buf = append(append(buf[:0], h[:]...), id.key[:]...)
		h = sha512.Sum512(buf)
	}
	var out [FingerprintDigits]byte
	for g := range FingerprintDigits / digitGroup {
		var v uint64
		for _, b := range h[5*g : 5*g+5] {
			v = v<<8 | uint64(b)
		}
		v %= 100000
		for i := digitGroup - 1; i >= 0; i-- {
			out[g*digitGroup+i] = byte('0' + v%10)
			v /= 10
		}
	}
	return out
}

// Fingerprint returns the identity's fingerprint, 30 digits in six groups
// of five ("12345 67890 ..."), for `conclave id`. It is one half of every
// safety code that involves this identity.
func (id ID) Fingerprint() string {
	d := fingerprintDigits(id)
	return groupDigits(d[:])
}

// SafetyCode is the code two identities compare. It is a comparable value;
// the zero SafetyCode is invalid.
type SafetyCode struct {
	digits [SafetyCodeDigits]byte
}

// NewSafetyCode returns the safety code of two identities. The order of the
// arguments does not matter.
func NewSafetyCode(a, b ID) SafetyCode {
	return combineFingerprints(fingerprintDigits(a), fingerprintDigits(b))
}

// SafetyCoder computes the safety codes between one identity (a node's own)
// and others. Each fingerprint costs thousands of hash iterations, so the
// own half is computed once rather than for every code shown.
type SafetyCoder struct {
	self [FingerprintDigits]byte
}

// NewSafetyCoder returns a SafetyCoder for self.
func NewSafetyCoder(self ID) *SafetyCoder {
	return &SafetyCoder{self: fingerprintDigits(self)}
}

// Code returns the safety code of self and other; it equals
// NewSafetyCode(self, other).
func (s *SafetyCoder) Code(other ID) SafetyCode {
	return combineFingerprints(s.self, fingerprintDigits(other))
}

// combineFingerprints puts the smaller fingerprint first, so that both
// sides see the same code.
func combineFingerprints(fa, fb [FingerprintDigits]byte) SafetyCode {
	if string(fb[:]) < string(fa[:]) {
		fa, fb = fb, fa
	}
	var c SafetyCode
	copy(c.digits[:], fa[:])
	copy(c.digits[FingerprintDigits:], fb[:])
	return c
}

// String returns the code as twelve groups of five digits separated by
// spaces.
func (c SafetyCode) String() string { return groupDigits(c.digits[:]) }

// Digits returns the 60 digits without separators.
func (c SafetyCode) Digits() string { return string(c.digits[:]) }

// ParseSafetyCode reads a code typed or pasted by a user: exactly 60 digits,
// with any spaces, tabs, newlines or dashes between them.
func ParseSafetyCode(s string) (SafetyCode, error) {
	var c SafetyCode
	n := 0
	for i := range len(s) {
		switch ch := s[i]; {
		case ch >= '0' && ch <= '9':
			if n == SafetyCodeDigits {
				return SafetyCode{}, fmt.Errorf("%w: more than %d digits", ErrInvalidSafetyCode, SafetyCodeDigits)
			}
			c.digits[n] = ch
			n++
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '-':
		default:
			return SafetyCode{}, fmt.Errorf("%w: unexpected character at %d", ErrInvalidSafetyCode, i)
		}
	}
	if n != SafetyCodeDigits {
		return SafetyCode{}, fmt.Errorf("%w: %d digits, want %d", ErrInvalidSafetyCode, n, SafetyCodeDigits)
	}
	return c, nil
}

func groupDigits(d []byte) string {
	var sb strings.Builder
	sb.Grow(len(d) + len(d)/digitGroup)
	for i := 0; i < len(d); i += digitGroup {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.Write(d[i : i+digitGroup])
	}
	return sb.String()
}
