package mls

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// hexBytes is a byte string written as hex in the test-vector JSON. JSON
// null decodes to nil.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// loadVectors decodes testdata/<file> into v.
func loadVectors(t testing.TB, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatalf("reading vectors: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", file, err)
	}
}

// vectorTally counts passed cases of one vector file and logs the summary
// line required of every vector test.
type vectorTally struct {
	t      *testing.T
	file   string
	passed int
	total  int
}

func newVectorTally(t *testing.T, file string) *vectorTally {
	return &vectorTally{t: t, file: file}
}

// run runs one case as a subtest and counts it.
func (v *vectorTally) run(name string, f func(t *testing.T)) {
	v.total++
	if v.t.Run(name, f) {
		v.passed++
	}
}

// report logs the summary line and fails if any case failed.
func (v *vectorTally) report() {
	v.t.Helper()
	v.t.Logf("vectors %s: %d/%d cases passed", v.file, v.passed, v.total)
	if v.passed != v.total || v.total == 0 {
		v.t.Fail()
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
