package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// leEncode returns the 32-byte little-endian encoding of y with the x sign
// bit set to sign.
func leEncode(y *big.Int, sign byte) []byte {
	be := y.FillBytes(make([]byte, 32))
	le := make([]byte, 32)
	for i := range be {
		le[i] = be[31-i]
	}
	le[31] |= sign << 7
	return le
}

func TestIDFromPublicKey(t *testing.T) {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	valid := mustGenerate(t, "valid").ID().PublicKey()
	// A valid key with y replaced by y+p: the same point, non-canonically.
	nonCanonical := func() []byte {
		le := bytes.Clone(valid)
		sign := le[31] >> 7
		le[31] &= 0x7f
		be := make([]byte, 32)
		for i := range le {
			be[i] = le[31-i]
		}
		y := new(big.Int).SetBytes(be)
		y.Add(y, p)
		if y.BitLen() > 255 {
			return nil
		}
		return leEncode(y, sign)
	}()
	tests := []struct {
		name string
		key  []byte
		ok   bool
	}{
		{"generated key", valid, true},
		{"RFC 8032 test 1 key", mustHex(t, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"), true},
		{"empty", nil, false},
		{"31 bytes", valid[:31], false},
		{"33 bytes", append(bytes.Clone(valid), 0), false},
		// The small-order points of edwards25519 (orders 1, 2, 4 and 8).
		{"neutral element (order 1)", leEncode(big.NewInt(1), 0), false},
		{"y = p-1 (order 2)", leEncode(new(big.Int).Sub(p, big.NewInt(1)), 0), false},
		{"y = 0 (order 4)", leEncode(big.NewInt(0), 0), false},
		{"y = 0, x negative (order 4)", leEncode(big.NewInt(0), 1), false},
		{"order 8 point a", mustHex(t, "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"), false},
		{"order 8 point a, other sign", mustHex(t, "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"), false},
		{"order 8 point b", mustHex(t, "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), false},
		{"order 8 point b, other sign", mustHex(t, "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"), false},
		// Non-canonical encodings: y >= p.
		{"y = p (non-canonical 0)", leEncode(p, 0), false},
		{"y = p+1 (non-canonical 1)", leEncode(new(big.Int).Add(p, big.NewInt(1)), 0), false},
		{"neutral element with x sign bit", leEncode(big.NewInt(1), 1), false},
		{"y = 2 is not on the curve", leEncode(big.NewInt(2), 0), false},
	}
	if nonCanonical != nil {
		tests = append(tests, struct {
			name string
			key  []byte
			ok   bool
		}{"valid point, y+p", nonCanonical, false})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := IDFromPublicKey(tc.key)
			if tc.ok {
				if err != nil {
					t.Fatalf("IDFromPublicKey: %v", err)
				}
				if !bytes.Equal(id.PublicKey(), tc.key) {
					t.Fatalf("PublicKey() = %x, want %x", id.PublicKey(), tc.key)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPublicKey) {
				t.Fatalf("IDFromPublicKey(%x) = %v, want ErrInvalidPublicKey", tc.key, err)
			}
			if !id.IsZero() {
				t.Fatalf("non-zero ID returned with an error")
			}
		})
	}
}

// TestIDFromPublicKeyAcceptsRealKeys checks that the point validation never
// rejects a key produced by crypto/ed25519.
func TestIDFromPublicKeyAcceptsRealKeys(t *testing.T) {
	r := newDetReader("many keys")
	for i := range 200 {
		seed := make([]byte, ed25519.SeedSize)
		r.Read(seed)
		pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		if _, err := IDFromPublicKey(pub); err != nil {
			t.Fatalf("key %d (%x): %v", i, pub, err)
		}
	}
}

func TestPeerIDRoundTrip(t *testing.T) {
	for _, seed := range []string{"a", "b", "c", "d"} {
		id := mustGenerate(t, seed).ID()
		s := id.PeerID()
		if !strings.HasPrefix(s, "12D3KooW") {
			t.Errorf("peer ID %q lacks the Ed25519 prefix 12D3KooW", s)
		}
		got, err := ParsePeerID(s)
		if err != nil {
			t.Fatalf("ParsePeerID(%q): %v", s, err)
		}
		if got != id {
			t.Fatalf("ParsePeerID(%q) = %v, want %v", s, got, id)
		}
		if id.String() != s {
			t.Errorf("String() = %q, want the peer ID", id.String())
		}
	}
}

func TestParsePeerIDRejects(t *testing.T) {
	good := mustGenerate(t, "good").PeerID()
	smallOrder := base58Encode(append(bytes.Clone(peerIDPrefix), leEncode(big.NewInt(1), 0)...))
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"too long", strings.Repeat("1", 65)},
		{"invalid character 0", "0" + good[1:]},
		{"invalid character l", good[:10] + "l" + good[11:]},
		{"non-ASCII", good[:10] + "é" + good[12:]},
		{"truncated", good[:len(good)-1]},
		{"extra character", good + "1"},
		{"leading zero byte", "1" + good},
		{"sha256 multihash (RSA-style peer ID)", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"},
		{"secp256k1 peer ID", "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY"},
		{"small-order key", smallOrder},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if id, err := ParsePeerID(tc.in); !errors.Is(err, ErrInvalidPeerID) {
				t.Fatalf("ParsePeerID(%q) = %v, %v; want ErrInvalidPeerID", tc.in, id, err)
			}
		})
	}
}

func TestBase58KnownVectors(t *testing.T) {
	// From Bitcoin Core's base58_encode_decode.json.
	tests := []struct{ hex, b58 string }{
		{"", ""},
		{"61", "2g"},
		{"626262", "a3gV"},
		{"636363", "aPEr"},
		{"73696d706c792061206c6f6e6720737472696e67", "2cFupjhnEsSn59qHXstmK2ffpLv2"},
		{"00eb15231dfceb60925886b67d065299925915aeb172c06647", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L"},
		{"516b6fcd0f", "ABnLTmg"},
		{"bf4f89001e670274dd", "3SEo3LWLoPntC"},
		{"572e4794", "3EFU7m"},
		{"ecac89cad93923c02321", "EJDM8drfXA6uyA"},
		{"10c8511e", "Rt5zm"},
		{"00000000000000000000", "1111111111"},
	}
	for _, tc := range tests {
		b := mustHex(t, tc.hex)
		if got := base58Encode(b); got != tc.b58 {
			t.Errorf("base58Encode(%s) = %q, want %q", tc.hex, got, tc.b58)
		}
		got, err := base58Decode(tc.b58)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("base58Decode(%q) = %x, %v; want %s", tc.b58, got, err, tc.hex)
		}
	}
}

func TestIDVerify(t *testing.T) {
	n := mustGenerate(t, "signer")
	msg := []byte("message")
	sig := n.sign(msg)
	if !n.ID().Verify(msg, sig) {
		t.Fatal("valid signature rejected")
	}
	if n.ID().Verify([]byte("other"), sig) {
		t.Fatal("signature accepted for another message")
	}
	if (ID{}).Verify(msg, sig) {
		t.Fatal("zero ID verified a signature")
	}
}
