package mls

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestCodecRoundTrip(t *testing.T) {
	var e Encoder
	e.Uint8(0xab)
	e.Uint16(0x1234)
	e.Uint32(0xdeadbeef)
	e.Uint64(0x0102030405060708)
	e.Bool(true)
	e.Optional(false)
	e.Opaque([]byte("hello"))
	e.Raw([]byte{9, 9})
	e.Vector(func(e *Encoder) {
		e.Uint16(7)
		e.Opaque(bytes.Repeat([]byte{1}, 100)) // forces a 2-byte inner prefix
	})
	b, err := e.Result()
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(b)
	if d.Uint8() != 0xab || d.Uint16() != 0x1234 || d.Uint32() != 0xdeadbeef || d.Uint64() != 0x0102030405060708 {
		t.Fatal("integers differ")
	}
	if !d.Bool() || d.Optional() {
		t.Fatal("bool/optional differ")
	}
	if string(d.Opaque()) != "hello" || !bytes.Equal(d.Raw(2), []byte{9, 9}) {
		t.Fatal("opaque/raw differ")
	}
	v := d.Vector()
	if v.Uint16() != 7 || len(v.Opaque()) != 100 || !v.Empty() {
		t.Fatal("vector body differs")
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
}

func TestCodecVectorPrefixSizes(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 16383, 16384, 70000} {
		var e Encoder
		e.Vector(func(e *Encoder) { e.Raw(make([]byte, n)) })
		var want Encoder
		want.Opaque(make([]byte, n))
		if !bytes.Equal(e.Bytes(), want.Bytes()) {
			t.Errorf("Vector of %d bytes differs from Opaque", n)
		}
	}
}

func TestCodecEncodeTooLong(t *testing.T) {
	var e Encoder
	e.Varint(1 << 30)
	if _, err := e.Result(); !errors.Is(err, ErrEncoding) {
		t.Errorf("Varint(2^30): %v, want ErrEncoding", err)
	}
}

// TestDecodeErrors checks that every kind of malformed input yields the
// right sentinel (errors.Is) inside a *DecodeError with the offset of the
// problem (errors.As).
func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		decode func(d *Decoder)
		want   error
		offset int
	}{
		{"truncated uint16", []byte{1}, func(d *Decoder) { d.Uint16() }, ErrTruncated, 0},
		{"truncated uint32", []byte{0, 0, 0}, func(d *Decoder) { d.Uint32() }, ErrTruncated, 0},
		{"truncated uint64 after byte", []byte{5, 0, 0}, func(d *Decoder) { d.Uint8(); d.Uint64() }, ErrTruncated, 1},
		{"truncated opaque body", []byte{3, 'a', 'b'}, func(d *Decoder) { d.Opaque() }, ErrTruncated, 0},
		{"truncated varint", []byte{0x40}, func(d *Decoder) { d.Varint() }, ErrTruncated, 1},
		{"truncated 4-byte varint", []byte{0x80, 0, 0x40}, func(d *Decoder) { d.Varint() }, ErrTruncated, 1},
		{"trailing data", []byte{1, 2}, func(d *Decoder) { d.Uint8() }, ErrTrailingData, 1},
		{"trailing data in vector", []byte{2, 7, 8}, func(d *Decoder) { v := d.Vector(); v.Uint8(); v.Finish() }, ErrTrailingData, 2},
		{"non-minimal 2-byte varint", []byte{0x40, 0x3f}, func(d *Decoder) { d.Varint() }, ErrNonMinimalVarint, 0},
		{"non-minimal 4-byte varint", []byte{0x80, 0, 0x3f, 0xff}, func(d *Decoder) { d.Varint() }, ErrNonMinimalVarint, 0},
		{"varint prefix 11", []byte{0xc0, 0, 0, 0, 0, 0, 0, 1}, func(d *Decoder) { d.Varint() }, ErrInvalidValue, 0},
		{"length over limit", []byte{0xbf, 0xff, 0xff, 0xff}, func(d *Decoder) { d.Opaque() }, ErrLengthTooLarge, 0},
		{"bool 2", []byte{2}, func(d *Decoder) { d.Bool() }, ErrInvalidValue, 0},
		{"optional marker 7", []byte{0, 7}, func(d *Decoder) { d.Uint8(); d.Optional() }, ErrInvalidValue, 1},
		{"raw negative", []byte{1}, func(d *Decoder) { d.Raw(-1) }, ErrTruncated, 0},
		{"odd uint16 list", []byte{3, 0, 1, 0}, func(d *Decoder) { unmarshalUint16s[CipherSuite](d) }, ErrTruncated, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(tc.in)
			tc.decode(d)
			err := d.Finish()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("%T is not a *DecodeError", err)
			}
			if de.Offset != tc.offset {
				t.Errorf("offset %d, want %d", de.Offset, tc.offset)
			}
			if !strings.HasPrefix(err.Error(), "mls: ") {
				t.Errorf("message %q lacks the package prefix", err)
			}
		})
	}
}

func TestDecodeFirstErrorWins(t *testing.T) {
	d := NewDecoder([]byte{0x40, 0x01, 5})
	d.Varint() // non-minimal
	d.Uint64() // would be truncated
	if err := d.Err(); !errors.Is(err, ErrNonMinimalVarint) {
		t.Fatalf("got %v", err)
	}
	if d.Uint8() != 0 || d.Opaque() != nil {
		t.Error("reads after an error must return zero values")
	}
}

func TestDecodeMaxLength(t *testing.T) {
	var e Encoder
	e.Opaque(make([]byte, 100))
	d := NewDecoder(e.Bytes())
	d.SetMaxLength(99)
	d.Opaque()
	if err := d.Finish(); !errors.Is(err, ErrLengthTooLarge) {
		t.Fatalf("got %v, want ErrLengthTooLarge", err)
	}
	d = NewDecoder(e.Bytes())
	d.SetMaxLength(100)
	d.Opaque()
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeOpaqueCopies(t *testing.T) {
	in := []byte{2, 'h', 'i'}
	out := NewDecoder(in).Opaque()
	in[1] = 'X'
	if string(out) != "hi" {
		t.Error("Opaque must copy, not alias the input")
	}
}
