package identity

import (
	"crypto/sha256"
	"testing"
)

// detReader is a deterministic byte stream (SHA-256 in counter mode over a
// seed) so that tests produce the same keys on every run.
type detReader struct {
	seed    []byte
	counter uint64
	buf     []byte
}

func newDetReader(seed string) *detReader { return &detReader{seed: []byte(seed)} }

func (r *detReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(r.buf) == 0 {
			h := sha256.New()
			h.Write(r.seed)
			var c [8]byte
			for i := range c {
				c[i] = byte(r.counter >> (8 * i))
			}
			h.Write(c[:])
			r.buf = h.Sum(nil)
			r.counter++
		}
		k := copy(p[n:], r.buf)
		r.buf = r.buf[k:]
		n += k
	}
	return n, nil
}

func mustGenerate(t testing.TB, seed string) *NodeIdentity {
	t.Helper()
	n, err := Generate(newDetReader(seed))
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return n
}
