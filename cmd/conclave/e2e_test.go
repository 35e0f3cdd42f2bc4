package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The end-to-end tests build the conclave binary and run it as separate
// processes on 127.0.0.1.

var build struct {
	once sync.Once
	dir  string
	err  error
}

// binary builds cmd/conclave once per test run and returns its directory.
func binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: builds the binary and runs daemons as separate processes")
	}
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "conclave-bin")
		if build.err != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(build.dir, "conclave"), ".").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// env is the environment of every process: the built binary first on the
// PATH, and the network kept on loopback with nothing that reaches further
// (the README's commands stay as they are; these settings come from the
// environment, as docs/config.md describes).
func testEnv(bin string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONCLAVE_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"CONCLAVE_LISTEN=/ip4/127.0.0.1/tcp/0",
		"CONCLAVE_MDNS=false",
		"CONCLAVE_DHT=off",
		"CONCLAVE_PORT_MAPPING=false",
		"CONCLAVE_AUTO_RELAY=false",
		"CONCLAVE_HOLE_PUNCHING=false",
	)
}

// daemonProc is a running `conclave daemon`.
type daemonProc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDaemon runs a daemon command line and waits for its ready line.
func startDaemon(t testing.TB, env []string, line string) *daemonProc {
	t.Helper()
	cmd := exec.Command("bash", "-c", "exec "+line)
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.HasPrefix(sc.Text(), "conclave daemon ready") {
				close(ready)
				signalled = true
			}
		}
		d.exited <- cmd.Wait()
	}()
	t.Cleanup(func() { d.stop(t) })
	select {
	case <-ready:
	case err := <-d.exited:
		d.exited <- err
		t.Fatalf("%s exited before it was ready: %v\n%s", line, err, d.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: not ready after 30s\n%s", line, d.stderr)
	}
	return d
}

// stop interrupts the daemon as Ctrl-C does and checks it exits cleanly.
func (d *daemonProc) stop(t testing.TB) {
	if d.cmd.ProcessState != nil {
		return
	}
	d.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-d.exited:
		if err != nil {
			t.Errorf("daemon exited with %v after SIGINT\n%s", err, d.stderr)
		}
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		t.Errorf("daemon did not stop within 30s of SIGINT\n%s", d.stderr)
	}
}

// quickstart returns the shell block of README.md's Quickstart section.
func quickstart(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "## Quickstart")
	if i < 0 {
		t.Fatal("README.md has no Quickstart section")
	}
	s = s[i:]
	i = strings.Index(s, "```sh\n")
	if i < 0 {
		t.Fatal("README.md's Quickstart has no sh block")
	}
	s = s[i+len("```sh\n"):]
	s = s[:strings.Index(s, "```")]
	return strings.Split(strings.TrimSpace(s), "\n")
}

var (
	assignRE = regexp.MustCompile(`^([A-Z_]+)=\$\((.*)\)$`)
	daemonRE = regexp.MustCompile(`^conclave --home (\S+) daemon$`)
	printsRE = regexp.MustCompile(`\s+# prints: (.*)$`)
)

// TestQuickstart runs README.md's Quickstart commands exactly, with /tmp
// replaced by a fresh directory: daemons as background processes (a
// daemon line for a home whose daemon runs stops it with SIGINT first,
// like Ctrl-C), every other line through bash. A "# prints: X" comment is
// checked; a step waiting for the network (a message or an invitation not
// there yet) is retried until it succeeds, within a bound.
func TestQuickstart(t *testing.T) {
	bin := binary(t)
	root, err := os.MkdirTemp("", "cq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	env := testEnv(bin)
	vars := map[string]string{}
	daemons := map[string]*daemonProc{}
	deadline := time.Now().Add(90 * time.Second)
	ran := 0

	for _, raw := range quickstart(t) {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "make build") {
			continue
		}
		line = strings.ReplaceAll(line, "/tmp/", root+"/")
		var want string
		if m := printsRE.FindStringSubmatch(line); m != nil {
			want = m[1]
		}
		line = strings.TrimSpace(regexp.MustCompile(`\s+#.*$`).ReplaceAllString(line, ""))
		ran++
		if m := daemonRE.FindStringSubmatch(line); m != nil {
			if d := daemons[m[1]]; d != nil {
				d.stop(t)
			}
			daemons[m[1]] = startDaemon(t, env, line)
			continue
		}
		script := line
		assign := ""
		if m := assignRE.FindStringSubmatch(line); m != nil {
			assign, script = m[1], m[2]
		}
		var exports strings.Builder
		for k, v := range vars {
			fmt.Fprintf(&exports, "%s=%q\n", k, v)
		}
		out := runStep(t, env, exports.String()+"set -e -o pipefail\n"+script, line, want, deadline)
		if assign != "" {
			vars[assign] = strings.TrimSpace(out)
			if vars[assign] == "" {
				t.Fatalf("%s: empty output", line)
			}
		}
	}
	if ran < 15 || len(daemons) != 3 {
		t.Fatalf("the Quickstart ran %d commands with %d daemons; it lost its flow", ran, len(daemons))
	}
}

// runStep runs one shell step. It retries while the step fails because
// something has not arrived yet (exit code 6, not found) or its output
// lacks want, until deadline.
func runStep(t *testing.T, env []string, script, line, want string, deadline time.Time) string {
	t.Helper()
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		cmd := exec.CommandContext(ctx, "bash", "-c", script)
		cmd.Env = env
		cmd.WaitDelay = time.Second // a conclave child still holding the pipes
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		var ee *exec.ExitError
		retry := false
		switch {
		case err == nil && strings.Contains(stdout.String(), want):
			t.Logf("$ %s\n%s", line, stdout.String())
			return stdout.String()
		case err == nil:
			retry = true
		case errors.As(err, &ee) && ee.ExitCode() == exitNotFound:
			retry = true
		}
		if !retry || time.Now().After(deadline) {
			t.Fatalf("$ %s\nerr %v, want output containing %q\nstdout:\n%s\nstderr:\n%s", line, err, want, stdout.String(), stderr.String())
		}
		// Wait for the daemon to make progress; the step is cheap and
		// bounded by deadline.
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDaemonErrors checks the exit codes and messages of the failures a
// user meets first.
func TestDaemonErrors(t *testing.T) {
	bin := binary(t)
	root, err := os.MkdirTemp("", "ce")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	env := testEnv(bin)
	run := func(args ...string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "conclave"), args...)
		cmd.Env = env
		cmd.WaitDelay = time.Second
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, out.String()
	}
	home := filepath.Join(root, "a")

	code, out := run("--home", home, "status")
	if code != exitNotRunning || !strings.Contains(out, "daemon not running") || !strings.Contains(out, "start it with `conclave daemon`") {
		t.Errorf("status without a daemon: exit %d, %q", code, out)
	}

	d := startDaemon(t, env, "conclave --home "+home+" daemon")
	code, out = run("--home", home, "daemon")
	if code != exitDataDir || !strings.Contains(out, "in use") {
		t.Errorf("second daemon on one data directory: exit %d, %q", code, out)
	}
	code, out = run("--home", filepath.Join(root, "b"), "daemon", "--api-socket", filepath.Join(home, socketFileName))
	if code != exitAddrInUse {
		t.Errorf("second daemon on a live socket: exit %d, %q", code, out)
	}
	code, out = run("--home", home, "group", "info", "ffffffff")
	if code != exitNotFound {
		t.Errorf("unknown group: exit %d, %q", code, out)
	}
	code, out = run("--home", home, "group", "invite", "ffffffff")
	if code != exitUsage {
		t.Errorf("missing argument: exit %d, %q", code, out)
	}
	code, out = run("--home", home, "invites", "accept", "--wait", "300ms", "ffffffff")
	if code != exitNotFound || !strings.Contains(out, "no invitation to group ffffffff arrived within 300ms") {
		t.Errorf("accept of an invitation that never comes: exit %d, %q", code, out)
	}
	code, out = run("--home", home, "invites", "accept", "--wait", "0", "ffffffff")
	if code != exitNotFound || !strings.Contains(out, "no pending invitation") {
		t.Errorf("accept without waiting: exit %d, %q", code, out)
	}
	code, out = run("--home", home, "--json", "status")
	if code != 0 || !strings.Contains(out, `"peer_id"`) {
		t.Errorf("status --json: exit %d, %q", code, out)
	}
	d.stop(t)

	c := filepath.Join(root, "c")
	os.MkdirAll(c, 0o700)
	tests := []struct {
		name   string
		config string
		args   []string
		code   int
		msg    string
	}{
		{"unknown key", "listn = /ip4/127.0.0.1/tcp/0\n", nil, exitUsage, `unknown key "listn"`},
		{"bad value", "auto-accept = maybe\n", nil, exitUsage, "auto-accept"},
		{"bad line", "just words\n", nil, exitUsage, "key = value"},
		{"bad log level", "", []string{"--log-level", "loud"}, exitUsage, "log-level"},
		{"public API address", "", []string{"--api-tcp", "0.0.0.0:7419"}, exitUsage, "loopback"},
		{"bad dht", "", []string{"--dht", "sometimes"}, exitUsage, "dht"},
		{"unknown flag", "", []string{"--colour"}, exitUsage, "unknown flag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(c, configFileName), []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out := run(append([]string{"--home", c, "daemon"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.msg) {
				t.Errorf("exit %d, %q; want %d and %q", code, out, tc.code, tc.msg)
			}
		})
	}
}

// TestMetricsAndTCPAPI starts a daemon with metrics and the TCP API on and
// reads both: metrics without a token, the API only with the token from the
// data directory.
func TestMetricsAndTCPAPI(t *testing.T) {
	bin := binary(t)
	root, err := os.MkdirTemp("", "cm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	metrics, apiAddr := free(), free()
	home := filepath.Join(root, "m")
	startDaemon(t, testEnv(bin), "conclave --home "+home+" daemon --metrics "+metrics+" --api-tcp "+apiAddr)

	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("metrics: %s\n%.300s", resp.Status, body)
	}

	resp, err = http.Get("http://" + apiAddr + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("TCP API without token: %s", resp.Status)
	}
	fi, err := os.Stat(filepath.Join(home, tokenFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v", fi, err)
	}
	cmd := exec.Command(filepath.Join(bin, "conclave"), "--home", home, "--api-addr", apiAddr, "--json", "id")
	cmd.Env = testEnv(bin)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"peer_id"`) {
		t.Fatalf("CLI over TCP: %v\n%s", err, out)
	}
}
