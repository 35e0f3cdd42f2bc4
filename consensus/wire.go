package consensus

import (
	"encoding/binary"
	"fmt"
)

// Limits enforced by every decoder before it allocates.
const (
	// MaxValueSize bounds a proposed value (a Commit and its Welcome).
	MaxValueSize = 16 << 20
	// MaxSignatureSize bounds one vote signature; it leaves room for
	// post-quantum signature schemes.
	MaxSignatureSize = 8 << 10
	// MaxMembers bounds the member set of an epoch and so the votes in a
	// certificate.
	MaxMembers = 1 << 20
)

// wireVersion is the first byte of every encoding this package produces.
const wireVersion = 1

// reader decodes big-endian fixed-width fields and length-prefixed byte
// strings, remembering the first error so callers check once at the end.
type reader struct {
	buf []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.buf) {
		r.fail("%s: need %d bytes, have %d", what, n, len(r.buf))
		return nil
	}
	b := r.buf[:n]
	r.buf = r.buf[n:]
	return b
}

func (r *reader) u8(what string) uint8 {
	b := r.take(1, what)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u16(what string) uint16 {
	b := r.take(2, what)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (r *reader) u32(what string) uint32 {
	b := r.take(4, what)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (r *reader) u64(what string) uint64 {
	b := r.take(8, what)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// ballot reads a ballot; the zero ballot must be all zeros so that every
// ballot has exactly one encoding.
func (r *reader) ballot(what string) Ballot {
	b := Ballot{Round: r.u32(what), Leaf: r.u32(what)}
	if r.err == nil && b.Round == 0 && b.Leaf != 0 {
		r.fail("%s: zero round with leaf %d", what, b.Leaf)
	}
	return b
}

// value reads a u32-length-prefixed byte string of at most max bytes. The
// result aliases the input.
func (r *reader) value(what string, max int) []byte {
	n := r.u32(what)
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(max) {
		r.fail("%s: length %d exceeds %d", what, n, max)
		return nil
	}
	return r.take(int(n), what)
}

// sig reads a u16-length-prefixed, non-empty signature. The result aliases
// the input.
func (r *reader) sig(what string) []byte {
	n := r.u16(what)
	if r.err != nil {
		return nil
	}
	if n == 0 || int(n) > MaxSignatureSize {
		r.fail("%s: length %d out of range 1..%d", what, n, MaxSignatureSize)
		return nil
	}
	return r.take(int(n), what)
}

func (r *reader) end(what string) error {
	if r.err == nil && len(r.buf) != 0 {
		r.fail("%s: %d trailing bytes", what, len(r.buf))
	}
	return r.err
}

func appendBallot(b []byte, x Ballot) []byte {
	b = binary.BigEndian.AppendUint32(b, x.Round)
	return binary.BigEndian.AppendUint32(b, x.Leaf)
}

func appendValue(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

func appendSig(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func checkBallotEncodable(what string, b Ballot) error {
	if b.Round == 0 && b.Leaf != 0 {
		return fmt.Errorf("%w: %s: zero round with leaf %d", ErrMalformed, what, b.Leaf)
	}
	return nil
}

func checkValueEncodable(what string, v []byte, allowEmpty bool) error {
	if len(v) > MaxValueSize {
		return fmt.Errorf("%w: %s: length %d exceeds %d", ErrMalformed, what, len(v), MaxValueSize)
	}
	if len(v) == 0 && !allowEmpty {
		return fmt.Errorf("%w: %s: empty", ErrMalformed, what)
	}
	return nil
}

func checkSigEncodable(what string, s []byte) error {
	if len(s) == 0 || len(s) > MaxSignatureSize {
		return fmt.Errorf("%w: %s: length %d out of range 1..%d", ErrMalformed, what, len(s), MaxSignatureSize)
	}
	return nil
}

func appendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
