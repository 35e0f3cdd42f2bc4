package mls

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
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
