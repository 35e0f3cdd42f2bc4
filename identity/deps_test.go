package identity

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStaysLight keeps networking and storage libraries out of the package
// (its tests may import libp2p to cross-check peer IDs; the package may not).
func TestStaysLight(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/conclave-im/conclave/identity").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/libp2p/", "github.com/multiformats/", "github.com/ipfs/", "github.com/mr-tron/"} {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("identity depends on %s", dep)
			}
		}
	}
}
