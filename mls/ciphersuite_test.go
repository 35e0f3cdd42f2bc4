package mls

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// testRand is a deterministic randomness source for tests: SHA-256 in
// counter mode over a seed.
type testRand struct {
	seed []byte
	ctr  uint64
	buf  []byte
}

func newTestRand(seed string) *testRand { return &testRand{seed: []byte(seed)} }

func (r *testRand) Read(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(r.buf) == 0 {
			h := sha256.New()
			h.Write(r.seed)
			h.Write([]byte{byte(r.ctr >> 56), byte(r.ctr >> 48), byte(r.ctr >> 40), byte(r.ctr >> 32),
				byte(r.ctr >> 24), byte(r.ctr >> 16), byte(r.ctr >> 8), byte(r.ctr)})
			r.ctr++
			r.buf = h.Sum(nil)
		}
		c := copy(p, r.buf)
		p, r.buf = p[c:], r.buf[c:]
	}
	return n, nil
}

var _ io.Reader = (*testRand)(nil)

var allSuites = []CipherSuite{1, 2, 3, 4, 5, 6, 7}

func TestVectorCryptoBasics(t *testing.T) {
	type vector struct {
		CipherSuite CipherSuite `json:"cipher_suite"`
		RefHash     struct {
			Label string
			Value hexBytes
			Out   hexBytes
		} `json:"ref_hash"`
		ExpandWithLabel struct {
			Secret  hexBytes
			Label   string
			Context hexBytes
			Length  int
			Out     hexBytes
		} `json:"expand_with_label"`
		DeriveSecret struct {
			Secret hexBytes
			Label  string
			Out    hexBytes
		} `json:"derive_secret"`
		DeriveTreeSecret struct {
			Secret     hexBytes
			Label      string
			Generation uint32
			Length     int
			Out        hexBytes
		} `json:"derive_tree_secret"`
		SignWithLabel struct {
			Priv, Pub, Content hexBytes
			Label              string
			Signature          hexBytes
		} `json:"sign_with_label"`
		EncryptWithLabel struct {
			Priv, Pub          hexBytes
			Label              string
			Context, Plaintext hexBytes
			KEMOutput          hexBytes `json:"kem_output"`
			Ciphertext         hexBytes
		} `json:"encrypt_with_label"`
	}
	var cases []vector
	loadVectors(t, "crypto-basics.json", &cases)
	tally := newVectorTally(t, "crypto-basics.json")
	for _, c := range cases {
		cs := c.CipherSuite
		tally.run(fmt.Sprintf("suite=%d", cs), func(t *testing.T) {
			if got := cs.RefHash(c.RefHash.Label, c.RefHash.Value); !bytes.Equal(got, c.RefHash.Out) {
				t.Errorf("RefHash = %x, want %x", got, c.RefHash.Out)
			}
			e := c.ExpandWithLabel
			if got, err := cs.ExpandWithLabel(e.Secret, e.Label, e.Context, e.Length); err != nil || !bytes.Equal(got, e.Out) {
				t.Errorf("ExpandWithLabel = %x, %v; want %x", got, err, e.Out)
			}
			ds := c.DeriveSecret
			if got, err := cs.DeriveSecret(ds.Secret, ds.Label); err != nil || !bytes.Equal(got, ds.Out) {
				t.Errorf("DeriveSecret = %x, %v; want %x", got, err, ds.Out)
			}
			dt := c.DeriveTreeSecret
			if got, err := cs.DeriveTreeSecret(dt.Secret, dt.Label, dt.Generation, dt.Length); err != nil || !bytes.Equal(got, dt.Out) {
				t.Errorf("DeriveTreeSecret = %x, %v; want %x", got, err, dt.Out)
			}

			s := c.SignWithLabel
			if err := cs.VerifyWithLabel(s.Pub, s.Label, s.Content, s.Signature); err != nil {
				t.Errorf("VerifyWithLabel(vector signature): %v", err)
			}
			if pub, err := cs.SignatureKeyPairFromPrivate(s.Priv); err != nil || !bytes.Equal(pub, s.Pub) {
				t.Errorf("SignatureKeyPairFromPrivate = %x, %v; want %x", pub, err, s.Pub)
			}
			sig, err := cs.SignWithLabel(newTestRand("sign"), s.Priv, s.Label, s.Content)
			if err != nil {
				t.Fatalf("SignWithLabel: %v", err)
			}
			if err := cs.VerifyWithLabel(s.Pub, s.Label, s.Content, sig); err != nil {
				t.Errorf("VerifyWithLabel(own signature): %v", err)
			}
			if err := cs.VerifyWithLabel(s.Pub, s.Label+"x", s.Content, sig); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("VerifyWithLabel with wrong label = %v, want ErrInvalidSignature", err)
			}

			h := c.EncryptWithLabel
			pt, err := cs.DecryptWithLabel(h.Priv, h.Label, h.Context, h.KEMOutput, h.Ciphertext)
			if err != nil || !bytes.Equal(pt, h.Plaintext) {
				t.Errorf("DecryptWithLabel(vector) = %x, %v; want %x", pt, err, h.Plaintext)
			}
			if pub, err := cs.HPKEPublicFromPrivate(h.Priv); err != nil || !bytes.Equal(pub, h.Pub) {
				t.Errorf("HPKEPublicFromPrivate = %x, %v; want %x", pub, err, h.Pub)
			}
			kem, ct, err := cs.EncryptWithLabel(newTestRand("hpke"), h.Pub, h.Label, h.Context, h.Plaintext)
			if err != nil {
				t.Fatalf("EncryptWithLabel: %v", err)
			}
			pt, err = cs.DecryptWithLabel(h.Priv, h.Label, h.Context, kem, ct)
			if err != nil || !bytes.Equal(pt, h.Plaintext) {
				t.Errorf("DecryptWithLabel(own) = %x, %v; want %x", pt, err, h.Plaintext)
			}
		})
	}
	tally.report()
}

func TestVectorDeserialization(t *testing.T) {
	var cases []struct {
		Header hexBytes `json:"vlbytes_header"`
		Length uint64
	}
	loadVectors(t, "deserialization.json", &cases)
	tally := newVectorTally(t, "deserialization.json")
	for _, c := range cases {
		tally.run(fmt.Sprintf("%x", []byte(c.Header)), func(t *testing.T) {
			d := NewDecoder(c.Header)
			if got := d.Varint(); got != c.Length {
				t.Errorf("Varint = %d, want %d", got, c.Length)
			}
			if err := d.Finish(); err != nil {
				t.Errorf("Finish: %v", err)
			}
			var e Encoder
			e.Varint(c.Length)
			if !bytes.Equal(e.Bytes(), c.Header) {
				t.Errorf("encoded %d as %x, want %x", c.Length, e.Bytes(), []byte(c.Header))
			}
		})
	}
	tally.report()
}

func TestAEAD(t *testing.T) {
	for _, cs := range allSuites {
		key := bytes.Repeat([]byte{1}, cs.AEADKeySize())
		nonce := bytes.Repeat([]byte{2}, cs.AEADNonceSize())
		ct, err := cs.Seal(key, nonce, []byte("aad"), []byte("message"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != len("message")+cs.AEADOverhead() {
			t.Errorf("suite %d: ciphertext of %d bytes", cs, len(ct))
		}
		if pt, err := cs.Open(key, nonce, []byte("aad"), ct); err != nil || string(pt) != "message" {
			t.Errorf("suite %d: Open = %q, %v", cs, pt, err)
		}
		for name, f := range map[string]func() ([]byte, error){
			"flipped":   func() ([]byte, error) { return cs.Open(key, nonce, []byte("aad"), flip(ct, 0)) },
			"wrong aad": func() ([]byte, error) { return cs.Open(key, nonce, []byte("aaX"), ct) },
			"short":     func() ([]byte, error) { return cs.Open(key, nonce, []byte("aad"), ct[:5]) },
		} {
			if _, err := f(); !errors.Is(err, ErrDecryption) {
				t.Errorf("suite %d %s: %v, want ErrDecryption", cs, name, err)
			}
		}
		if _, err := cs.Open(key[1:], nonce, nil, ct); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("suite %d short key: %v", cs, err)
		}
		if _, err := cs.Seal(key, nonce[1:], nil, nil); !errors.Is(err, ErrInvalidLength) {
			t.Errorf("suite %d short nonce: %v", cs, err)
		}
	}
}

func TestCipherSuiteParameters(t *testing.T) {
	want := map[CipherSuite][3]int{1: {32, 16, 12}, 2: {32, 16, 12}, 3: {32, 32, 12}, 4: {64, 32, 12}, 5: {64, 32, 12}, 6: {64, 32, 12}, 7: {48, 32, 12}}
	for cs, w := range want {
		if got := [3]int{cs.HashSize(), cs.AEADKeySize(), cs.AEADNonceSize()}; got != w {
			t.Errorf("suite %d: Nh/Nk/Nn = %v, want %v", cs, got, w)
		}
		if !cs.Supported() || strings.HasPrefix(cs.String(), "CipherSuite(") {
			t.Errorf("suite %d not supported", cs)
		}
	}
	for _, cs := range []CipherSuite{0, 8, 0x0a0a} {
		if cs.Supported() || cs.HashSize() != 0 {
			t.Errorf("suite %#x claims support", uint16(cs))
		}
		if _, err := cs.Expand(nil, nil, 1); !errors.Is(err, ErrUnsupportedCipherSuite) {
			t.Errorf("suite %#x Expand: %v", uint16(cs), err)
		}
		if _, _, err := cs.DeriveKeyPair(nil); !errors.Is(err, ErrUnsupportedCipherSuite) {
			t.Errorf("suite %#x DeriveKeyPair: %v", uint16(cs), err)
		}
	}
	if _, err := CipherSuite(1).ExpandWithLabel(nil, "x", nil, 255*32+1); !errors.Is(err, ErrInvalidLength) {
		t.Errorf("over-long expand: %v", err)
	}
	if out, err := CipherSuite(1).Expand([]byte("prk"), nil, 255*32); err != nil || len(out) != 255*32 {
		t.Errorf("maximal expand: %d, %v", len(out), err)
	}
}

// TestKDFMatchesStandardLibrary compares MAC, Extract and Expand, fast
// path and general path, with crypto/hmac and crypto/hkdf.
func TestKDFMatchesStandardLibrary(t *testing.T) {
	sizes := []int{0, 1, 31, 32, 33, 64, 65, 127, 128, 129, 200, 255, 256, 257, 300}
	for _, cs := range []CipherSuite{1, 4, 7} {
		for _, kn := range sizes {
			for _, mn := range sizes {
				key := bytes.Repeat([]byte{byte(kn)}, kn)
				msg := bytes.Repeat([]byte{byte(mn + 1)}, mn)
				m := hmac.New(cs.newHash(), key)
				m.Write(msg)
				if want := m.Sum(nil); !bytes.Equal(cs.MAC(key, msg), want) || !bytes.Equal(cs.Extract(key, msg), want) {
					t.Errorf("suite %d: MAC with %d-byte key, %d-byte message differs from crypto/hmac", cs, kn, mn)
				}
				for _, n := range []int{1, 16, cs.HashSize(), cs.HashSize() + 1, 200} {
					got, err := cs.Expand(key, msg, n)
					if err != nil {
						t.Fatal(err)
					}
					want, err := hkdf.Expand(cs.newHash(), key, string(msg), n)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("suite %d: Expand(%d-byte prk, %d-byte info, %d) differs from crypto/hkdf", cs, kn, mn, n)
					}
				}
			}
		}
	}
}
