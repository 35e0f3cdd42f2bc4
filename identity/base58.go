package identity

import (
	"errors"
	"fmt"
)

// base58btc, the alphabet of Bitcoin addresses and libp2p peer IDs.
const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

var base58Index = func() [256]int8 {
	var t [256]int8
	for i := range t {
		t[i] = -1
	}
	for i := range len(base58Alphabet) {
		t[base58Alphabet[i]] = int8(i)
	}
	return t
}()

var errBase58 = errors.New("not base58btc")

// base58Encode encodes b; each leading zero byte becomes a leading '1'.
// Inputs here are a few dozen bytes, so the quadratic schoolbook
// conversion is simplest.
func base58Encode(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	// Digits in base 58, least significant first.
	digits := make([]byte, 0, len(b)*138/100+1)
	for _, v := range b[zeros:] {
		carry := int(v)
		for i := range digits {
			carry += int(digits[i]) << 8
			digits[i] = byte(carry % 58)
			carry /= 58
		}
		for carry > 0 {
			digits = append(digits, byte(carry%58))
			carry /= 58
		}
	}
	out := make([]byte, zeros+len(digits))
	for i := range zeros {
		out[i] = '1'
	}
	for i, d := range digits {
		out[len(out)-1-i] = base58Alphabet[d]
	}
	return string(out)
}

// base58Decode decodes s. The encoding is unique (no padding, no
// alternative alphabets), so a decoded value re-encodes to s.
func base58Decode(s string) ([]byte, error) {
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	// Bytes in base 256, least significant first.
	val := make([]byte, 0, len(s)*733/1000+1)
	for i := zeros; i < len(s); i++ {
		d := base58Index[s[i]]
		if d < 0 {
			return nil, fmt.Errorf("%w: character %q at %d", errBase58, s[i], i)
		}
		carry := int(d)
		for j := range val {
			carry += int(val[j]) * 58
			val[j] = byte(carry)
			carry >>= 8
		}
		for carry > 0 {
			val = append(val, byte(carry))
			carry >>= 8
		}
	}
	out := make([]byte, zeros+len(val))
	for i, v := range val {
		out[len(out)-1-i] = v
	}
	return out, nil
}
