// Package depcheck holds the repository's dependency rules as a test: the
// protocol cores (mls/, consensus/) must stay free of networking and storage
// libraries so that they remain pure, deterministic and reusable.
package depcheck

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/conclave-im/conclave"

// forbidden lists import-path prefixes that a protocol core must never reach,
// directly or transitively.
var forbidden = []string{
	"github.com/libp2p/",
	"github.com/multiformats/",
	"github.com/ipfs/",
	"github.com/cockroachdb/pebble",
	module + "/gossip",
	module + "/datastore",
	module + "/node",
	module + "/cmd",
}

// rules maps each protocol core to the module packages it must not import.
var rules = map[string][]string{
	module + "/mls":       {module + "/consensus"},
	module + "/consensus": {module + "/mls"},
}

func TestProtocolCoresStayPure(t *testing.T) {
	for pkg, alsoForbidden := range rules {
		deps, ok := listDeps(t, pkg)
		if !ok {
			continue
		}
		for _, dep := range deps {
			for _, bad := range append(append([]string{}, forbidden...), alsoForbidden...) {
				if dep == bad || strings.HasPrefix(dep, bad) {
					t.Errorf("%s depends on %s, which a protocol core must not import", pkg, dep)
				}
			}
		}
	}
}

// listDeps returns the transitive dependencies of pkg. It tolerates packages
// that do not exist yet or do not compile (their own tests report that), so
// that the rule is checked on whatever imports resolve.
func listDeps(t *testing.T, pkg string) ([]string, bool) {
	t.Helper()
	out, err := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	var deps []string
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct{ ImportPath string }
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		if p.ImportPath != pkg {
			deps = append(deps, p.ImportPath)
		}
	}
	return deps, len(deps) > 0
}
