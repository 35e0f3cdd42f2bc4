package main

import (
	"bytes"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestTimeoutExitCode: a command whose outcome does not arrive within
// --timeout exits with the "network did not let it complete" code and says
// the daemon goes on, instead of a bare context error.
func TestTimeoutExitCode(t *testing.T) {
	home := t.TempDir()
	sock := filepath.Join(home, socketFileName)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // a daemon waiting for the group to decide
		case <-r.Context().Done():
		case <-release:
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { close(release); srv.Close() })

	var out, errOut bytes.Buffer
	code := run([]string{"--home", home, "--timeout", "200ms", "group", "remove", "ab12", "12D3KooWGzY6Ld8vLoN5gTzYmYuBdzPZRufw2ZJvMiTksbAR35Hx"}, strings.NewReader(""), &out, &errOut)
	if code != exitUnavailable {
		t.Fatalf("exit code %d, want %d; stderr: %s", code, exitUnavailable, errOut.String())
	}
	if !strings.Contains(errOut.String(), "no outcome within --timeout 200ms") {
		t.Fatalf("stderr lacks the explanation: %s", errOut.String())
	}
}
