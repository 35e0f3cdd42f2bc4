package datastore

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The record payload encoding: fields in a fixed order, integers as
// fixed-width big-endian, byte strings as a 32-bit big-endian length and the
// bytes, booleans as one byte that must be 0 or 1. Fixed widths make every
// encoding canonical, so decode followed by encode gives back the same bytes.

// maxField bounds any one byte string in a record (64 MiB): far above any
// MLS group state, and small enough that a garbled length cannot ask for an
// absurd allocation (lengths are also checked against the bytes present).
const maxField = 64 << 20

var errTruncated = errors.New("truncated")

type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *encoder) i64(v int64)  { e.u64(uint64(v)) }
func (e *encoder) str(s string) { e.bytes([]byte(s)) }
func (e *encoder) raw(p []byte) { e.b = append(e.b, p...) }
func (e *encoder) bytes(p []byte) {
	e.u32(uint32(len(p)))
	e.b = append(e.b, p...)
}
func (e *encoder) bool(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

// decoder reads fields in order and remembers the first error, so record
// decoders read straight through and check once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.fail(errTruncated)
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8() uint8 {
	p := d.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

func (d *decoder) u16() uint16 {
	p := d.take(2)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint16(p)
}

func (d *decoder) u32() uint32 {
	p := d.take(4)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

func (d *decoder) u64() uint64 {
	p := d.take(8)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

func (d *decoder) i64() int64 { return int64(d.u64()) }

func (d *decoder) bool() bool {
	switch d.u8() {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail(errors.New("boolean is neither 0 nor 1"))
		return false
	}
}

// bytes returns a copy, so that records never alias datastore buffers.
func (d *decoder) bytes() []byte {
	n := d.u32()
	if d.err != nil {
		return nil
	}
	if n > maxField {
		d.fail(fmt.Errorf("field of %d bytes exceeds the %d-byte limit", n, maxField))
		return nil
	}
	p := d.take(int(n))
	if p == nil {
		return nil
	}
	return append([]byte{}, p...)
}

func (d *decoder) str() string { return string(d.bytes()) }

func (d *decoder) fixed(n int) []byte {
	p := d.take(n)
	if p == nil {
		return nil
	}
	return append([]byte{}, p...)
}

// finish reports the first error, or trailing bytes.
func (d *decoder) finish() error {
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%d trailing bytes", len(d.b))
	}
	return nil
}
