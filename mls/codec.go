package mls

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors reported while decoding wire data. They are wrapped in a
// *DecodeError that records where in the input the problem was found.
var (
	ErrTruncated        = errors.New("mls: truncated input")
	ErrTrailingData     = errors.New("mls: trailing data after structure")
	ErrNonMinimalVarint = errors.New("mls: variable-length integer not minimally encoded")
	ErrLengthTooLarge   = errors.New("mls: length exceeds limit")
	ErrInvalidValue     = errors.New("mls: invalid value")
)

// DefaultMaxLength is the largest vector length a Decoder accepts unless
// told otherwise with SetMaxLength. Messages larger than this are not
// expected in a group messenger and would only serve to exhaust memory.
const DefaultMaxLength = 16 << 20

// maxVarint is the largest value the MLS variable-length integer can hold
// (RFC 9420 §2.1.2: 30 bits).
const maxVarint = 1<<30 - 1

// DecodeError reports a decoding failure at a byte offset of the input.
// Err is one of the ErrXxx sentinels or a more specific error recorded by a
// wire type through Decoder.Fail.
type DecodeError struct {
	Offset int
	Err    error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("%v (at byte %d)", e.Err, e.Offset)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// ErrEncoding reports a value that cannot be represented on the wire, such
// as a vector longer than the variable-length integer can describe.
var ErrEncoding = errors.New("mls: value cannot be encoded")

// Encoder serializes values in the TLS presentation language with the MLS
// variable-length vectors. The zero value is ready to use. Errors are
// sticky: after the first one, writes are ignored and Err reports it.
type Encoder struct {
	buf []byte
	err error
}

// Bytes returns the encoded bytes so far.
func (e *Encoder) Bytes() []byte { return e.buf }

// Err returns the first encoding error, if any.
func (e *Encoder) Err() error { return e.err }

// Result returns the encoded bytes, or the first encoding error.
func (e *Encoder) Result() ([]byte, error) {
	if e.err != nil {
		return nil, e.err
	}
	return e.buf, nil
}

// Uint8 writes v.
func (e *Encoder) Uint8(v uint8) { e.buf = append(e.buf, v) }

// Uint16 writes v big-endian.
func (e *Encoder) Uint16(v uint16) { e.buf = binary.BigEndian.AppendUint16(e.buf, v) }

// Uint32 writes v big-endian.
func (e *Encoder) Uint32(v uint32) { e.buf = binary.BigEndian.AppendUint32(e.buf, v) }

// Uint64 writes v big-endian.
func (e *Encoder) Uint64(v uint64) { e.buf = binary.BigEndian.AppendUint64(e.buf, v) }

// Bool writes v as one byte, 0 or 1.
func (e *Encoder) Bool(v bool) {
	if v {
		e.Uint8(1)
	} else {
		e.Uint8(0)
	}
}

// Optional writes the presence marker of an optional<T>; the caller writes
// the value after it when present is true.
func (e *Encoder) Optional(present bool) { e.Bool(present) }

// Varint writes v as an MLS variable-length integer (RFC 9420 §2.1.2).
func (e *Encoder) Varint(v uint64) {
	switch {
	case v < 1<<6:
		e.buf = append(e.buf, byte(v))
	case v < 1<<14:
		e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(v)|0x4000)
	case v <= maxVarint:
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(v)|0x80000000)
	default:
		e.fail(fmt.Errorf("%w: length %d exceeds the variable-length integer range", ErrEncoding, v))
	}
}

// Opaque writes b as opaque<V>: a variable-length integer length, then b.
func (e *Encoder) Opaque(b []byte) {
	e.Varint(uint64(len(b)))
	e.buf = append(e.buf, b...)
}

// Raw writes b with no length prefix.
func (e *Encoder) Raw(b []byte) { e.buf = append(e.buf, b...) }

// Vector writes a variable-length vector whose body is produced by body.
func (e *Encoder) Vector(body func(e *Encoder)) {
	// The length prefix is not known until body has run. Write the body in
	// place, then shift it right by the size of the prefix.
	start := len(e.buf)
	body(e)
	n := len(e.buf) - start
	var prefix int
	switch {
	case n < 1<<6:
		prefix = 1
	case n < 1<<14:
		prefix = 2
	case n <= maxVarint:
		prefix = 4
	default:
		e.fail(fmt.Errorf("%w: vector of %d bytes exceeds the variable-length integer range", ErrEncoding, n))
		return
	}
	e.buf = append(e.buf, make([]byte, prefix)...)
	copy(e.buf[start+prefix:], e.buf[start:start+n])
	switch prefix {
	case 1:
		e.buf[start] = byte(n)
	case 2:
		binary.BigEndian.PutUint16(e.buf[start:], uint16(n)|0x4000)
	case 4:
		binary.BigEndian.PutUint32(e.buf[start:], uint32(n)|0x80000000)
	}
}

// Fail records an encoding error; the first one wins.
func (e *Encoder) Fail(err error) { e.fail(err) }

func (e *Encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// decodeState is shared between a Decoder and the sub-decoders of its
// vectors, so that the first error anywhere stops the whole decode.
type decodeState struct {
	err    error
	maxLen int
}

// Decoder reads values in the TLS presentation language strictly: reading
// past the end, non-minimal variable-length integers, lengths over the limit
// and invalid enum or presence values are errors. Errors are sticky and
// shared with sub-decoders; once one is recorded, reads return zero values.
type Decoder struct {
	buf  []byte
	off  int // position within buf
	base int // offset of buf[0] within the top-level input, for error reports
	st   *decodeState
}

// NewDecoder returns a Decoder over b with the DefaultMaxLength limit.
func NewDecoder(b []byte) *Decoder {
	return &Decoder{buf: b, st: &decodeState{maxLen: DefaultMaxLength}}
}

// SetMaxLength sets the largest vector length accepted by this decoder and
// every sub-decoder sharing its state.
func (d *Decoder) SetMaxLength(n int) { d.st.maxLen = n }

// Err returns the first error recorded so far.
func (d *Decoder) Err() error { return d.st.err }

// Fail records err at the current position unless an error is already
// recorded. Wire types use it to report semantic problems (bad enum values).
func (d *Decoder) Fail(err error) {
	if d.st.err != nil {
		return
	}
	var de *DecodeError
	if errors.As(err, &de) {
		d.st.err = err
		return
	}
	d.st.err = &DecodeError{Offset: d.base + d.off, Err: err}
}

// Empty reports whether no bytes remain in this (sub-)decoder.
func (d *Decoder) Empty() bool { return d.off >= len(d.buf) }

// Remaining returns the number of unread bytes in this (sub-)decoder.
func (d *Decoder) Remaining() int { return len(d.buf) - d.off }

// Offset returns the current position relative to the top-level input.
func (d *Decoder) Offset() int { return d.base + d.off }

// Finish returns the first error, or ErrTrailingData if bytes remain. On a
// sub-decoder the trailing-data error is recorded for the whole decode.
func (d *Decoder) Finish() error {
	if d.st.err == nil && !d.Empty() {
		d.Fail(ErrTrailingData)
	}
	return d.st.err
}

// take returns the next n bytes, or nil and records ErrTruncated.
func (d *Decoder) take(n int) []byte {
	if d.st.err != nil {
		return nil
	}
	if n < 0 || n > len(d.buf)-d.off {
		d.Fail(ErrTruncated)
		return nil
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b
}

// Uint8 reads one byte.
func (d *Decoder) Uint8() uint8 {
	b := d.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

// Uint16 reads a big-endian uint16.
func (d *Decoder) Uint16() uint16 {
	b := d.take(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

// Uint32 reads a big-endian uint32.
func (d *Decoder) Uint32() uint32 {
	b := d.take(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// Uint64 reads a big-endian uint64.
func (d *Decoder) Uint64() uint64 {
	b := d.take(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// Bool reads a byte that must be 0 or 1.
func (d *Decoder) Bool() bool {
	off := d.off
	v := d.Uint8()
	if v > 1 {
		d.off = off
		d.Fail(fmt.Errorf("%w: boolean byte %#x", ErrInvalidValue, v))
		return false
	}
	return v == 1
}

// Optional reads the presence marker of an optional<T>, which must be 0 or 1.
func (d *Decoder) Optional() bool {
	off := d.off
	v := d.Uint8()
	if v > 1 {
		d.off = off
		d.Fail(fmt.Errorf("%w: optional presence marker %#x", ErrInvalidValue, v))
		return false
	}
	return v == 1
}

// Varint reads an MLS variable-length integer (RFC 9420 §2.1.2), which must
// use the shortest encoding of its value.
func (d *Decoder) Varint() uint64 {
	if d.st.err != nil {
		return 0
	}
	start := d.off
	first := d.Uint8()
	if d.st.err != nil {
		return 0
	}
	var v uint64
	switch first >> 6 {
	case 0:
		return uint64(first)
	case 1:
		b := d.take(1)
		if b == nil {
			return 0
		}
		v = uint64(first&0x3f)<<8 | uint64(b[0])
		if v < 1<<6 {
			d.off = start
			d.Fail(ErrNonMinimalVarint)
			return 0
		}
	case 2:
		b := d.take(3)
		if b == nil {
			return 0
		}
		v = uint64(first&0x3f)<<24 | uint64(b[0])<<16 | uint64(b[1])<<8 | uint64(b[2])
		if v < 1<<14 {
			d.off = start
			d.Fail(ErrNonMinimalVarint)
			return 0
		}
	default:
		d.off = start
		d.Fail(fmt.Errorf("%w: variable-length integer prefix 0b11", ErrInvalidValue))
		return 0
	}
	return v
}

// length reads a vector length and checks it against the limit and the
// bytes available.
func (d *Decoder) length() (int, bool) {
	start := d.off
	n := d.Varint()
	if d.st.err != nil {
		return 0, false
	}
	if n > uint64(d.st.maxLen) {
		d.off = start
		d.Fail(fmt.Errorf("%w: vector of %d bytes, limit %d", ErrLengthTooLarge, n, d.st.maxLen))
		return 0, false
	}
	if int(n) > len(d.buf)-d.off {
		d.off = start
		d.Fail(fmt.Errorf("%w: vector of %d bytes, %d available", ErrTruncated, n, len(d.buf)-d.off))
		return 0, false
	}
	return int(n), true
}

// Opaque reads an opaque<V> and returns a copy of its bytes. An empty vector
// decodes to an empty, non-nil slice.
func (d *Decoder) Opaque() []byte {
	n, ok := d.length()
	if !ok {
		return nil
	}
	b := d.take(n)
	return append(make([]byte, 0, n), b...)
}

// Raw reads n bytes with no length prefix and returns a copy.
func (d *Decoder) Raw(n int) []byte {
	b := d.take(n)
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, n), b...)
}

// Vector reads a vector's length and returns a sub-decoder over its body.
// The sub-decoder shares the error state; on error it is empty.
func (d *Decoder) Vector() *Decoder {
	n, ok := d.length()
	if !ok {
		return &Decoder{base: d.base + d.off, st: d.st}
	}
	sub := &Decoder{buf: d.buf[d.off : d.off+n], base: d.base + d.off, st: d.st}
	d.off += n
	return sub
}

// More reports whether a loop over the items of a vector should continue:
// bytes remain and no error has been recorded.
func (d *Decoder) More() bool { return d.st.err == nil && !d.Empty() }

// unmarshaler is implemented by every wire type.
type unmarshaler interface{ unmarshal(d *Decoder) }

// marshaler is implemented by every wire type.
type marshaler interface{ marshal(e *Encoder) }

// decodeAll decodes exactly one value from b; trailing bytes are an error.
func decodeAll(b []byte, v unmarshaler) error {
	d := NewDecoder(b)
	v.unmarshal(d)
	return d.Finish()
}

// encode serializes v.
func encode(v marshaler) ([]byte, error) {
	var e Encoder
	v.marshal(&e)
	return e.Result()
}
