package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conclave-im/conclave/internal/testnet"
)

// tnRun runs one conclave command in this process.
func tnRun(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestTestnetCLI drives `conclave testnet` as an operator would: up in the
// background, status, a node's own CLI through --home, partition and heal,
// stop and start, bad input, down.
func TestTestnetCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tn")

	if code, _, errOut := tnRun("testnet", "status", "--dir", dir); code != exitNotRunning ||
		!strings.Contains(errOut, "testnet not running") || !strings.Contains(errOut, "start it with `conclave testnet up --dir "+dir+"`") {
		t.Fatalf("status without a testnet: exit %d, %q", code, errOut)
	}

	pr, pw := io.Pipe()
	var upErr bytes.Buffer
	upDone := make(chan int, 1)
	go func() {
		code := run([]string{"testnet", "up", "-n", "3", "--dir", dir}, strings.NewReader(""), pw, &upErr)
		pw.Close()
		upDone <- code
	}()
	var banner []string
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() { // reads on to the end, so up never blocks on its output
			if !signalled {
				banner = append(banner, sc.Text())
				if strings.HasPrefix(sc.Text(), "Stop with Ctrl-C") {
					close(ready)
					signalled = true
				}
			}
		}
	}()
	select {
	case <-ready:
	case code := <-upDone:
		t.Fatalf("testnet up exited with %d before it was ready: %s", code, upErr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("testnet up not ready after 60s: %s", upErr.String())
	}
	text := strings.Join(banner, "\n")
	if !strings.HasPrefix(text, "conclave testnet ready: 3 nodes in "+dir) || !strings.Contains(text, filepath.Join(dir, "node3", "conclave.sock")) {
		t.Fatalf("banner:\n%s", text)
	}

	// Every conclave command works against a node with --home.
	code, out, errOut := tnRun("--home", filepath.Join(dir, "node2"), "id", "--peer")
	if code != exitOK || !strings.HasPrefix(out, "12D3KooW") {
		t.Fatalf("conclave --home node2 id --peer: exit %d, %q %q", code, out, errOut)
	}
	code, out, _ = tnRun("testnet", "status", "--dir", dir, "--json")
	var st testnet.Status
	if code != exitOK || json.Unmarshal([]byte(out), &st) != nil || len(st.Nodes) != 3 || st.Nodes[1].PeerID != strings.TrimSpace(tnRunOK(t, "--home", filepath.Join(dir, "node2"), "id", "--peer")) {
		t.Fatalf("testnet status --json: exit %d, %s", code, out)
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"partition", "1,4"}, exitUsage, "there is no node 4: the testnet has nodes 1 to 3"},
		{[]string{"partition", "1,2", "2,3"}, exitUsage, "sides 1 and 2 overlap: node 2 is on both"},
		{[]string{"partition", "1,x"}, exitUsage, `"x" is not a node number`},
		{[]string{"partition"}, exitUsage, "wants the sides"},
		{[]string{"stop", "7"}, exitUsage, "there is no node 7"},
		{[]string{"stop", "seven"}, exitUsage, `"seven" is not a node number`},
		{[]string{"start", "1"}, exitUsage, "node1 is already running"},
	} {
		code, _, errOut := tnRun(append(append([]string{"testnet"}, tc.args...), "--dir", dir)...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("testnet %v: exit %d, %q; want %d and %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}

	out = tnRunOK(t, "testnet", "partition", "1", "2,3", "--dir", dir)
	if !strings.Contains(out, "partitioned into 1 | 2,3") || !strings.Contains(out, "node1  running  1     nobody") {
		t.Fatalf("partition output:\n%s", out)
	}
	out = tnRunOK(t, "testnet", "heal", "--dir", dir)
	if !strings.Contains(out, "network: whole") || !strings.Contains(out, "node1  running  -     2,3") {
		t.Fatalf("heal output:\n%s", out)
	}
	if out := tnRunOK(t, "testnet", "stop", "3", "--dir", dir); !strings.Contains(out, "stopped node3") {
		t.Fatalf("stop output: %s", out)
	}
	if code, _, errOut := tnRun("--home", filepath.Join(dir, "node3"), "status"); code != exitNotRunning ||
		!strings.Contains(errOut, "start it with `conclave testnet start 3 --dir "+dir+"`") {
		t.Fatalf("status of a stopped node: exit %d, %s", code, errOut)
	}
	if out := tnRunOK(t, "testnet", "start", "3", "--dir", dir); !strings.Contains(out, "started node3 (connected to node 1,2)") {
		t.Fatalf("start output: %s", out)
	}

	// wait: a group only node1 holds agrees at once; a wrong ID is refused.
	code, gid, errOut := tnRun("--home", filepath.Join(dir, "node1"), "group", "create")
	if code != exitOK {
		t.Fatalf("group create: exit %d: %s", code, errOut)
	}
	gid = strings.TrimSpace(gid)
	if out := tnRunOK(t, "testnet", "wait", gid[:6], "--dir", dir); !strings.HasPrefix(out, "node 1 agree on group "+gid+": epoch 0, 1 members") {
		t.Fatalf("wait output: %s", out)
	}
	if code, _, errOut := tnRun("testnet", "wait", "beef", "--dir", dir); code != exitUsage || !strings.Contains(errOut, "no running node holds group beef") {
		t.Fatalf("wait for an unknown group: exit %d, %q", code, errOut)
	}

	// A script: checked whole before it runs, then run step by step.
	script := filepath.Join(t.TempDir(), "s.tn")
	if err := os.WriteFile(script, []byte("node1 create g\nnode1 invite g node2\nnode2 accept g\nnode2 send g \"from 2\"\nnode1 expect g \"from 2\"\nwait g\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := tnRunOK(t, "testnet", "script", script, "--dir", dir); !strings.Contains(out, `s.tn:5: node1 expect g "from 2": `) ||
		!strings.Contains(out, "s.tn:6: wait g: node 1,2 agree: epoch 1, 2 members") || !strings.HasSuffix(out, "script done\n") {
		t.Fatalf("script transcript:\n%s", out)
	}
	if err := os.WriteFile(script, []byte("heal\nnode1 create g\nnode1 expect h x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := tnRun("testnet", "script", script, "--dir", dir); code != exitUsage || out != "" ||
		!strings.Contains(errOut, `s.tn:3: group "h" is not created by an earlier line`) {
		t.Fatalf("a script that does not parse: exit %d, %q, %q", code, out, errOut)
	}

	// A second testnet on the same directory is refused.
	if code, _, errOut := tnRun("testnet", "up", "--dir", dir); code != exitAddrInUse || !strings.Contains(errOut, "already running") {
		t.Fatalf("second up: exit %d, %q", code, errOut)
	}

	if out := tnRunOK(t, "testnet", "down", "--dir", dir); !strings.Contains(out, "testnet stopped") {
		t.Fatalf("down output: %s", out)
	}
	select {
	case code := <-upDone:
		if code != exitOK {
			t.Fatalf("testnet up exited with %d after down: %s", code, upErr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("testnet up still runs after down")
	}
	if code, _, errOut := tnRun("testnet", "up", "--reset", "--dir", filepath.Dir(dir)); code != exitUsage || !strings.Contains(errOut, "not a testnet directory") {
		t.Fatalf("reset of the parent directory: exit %d, %q", code, errOut)
	}
}

// tnRunOK runs a command that must succeed and returns its output.
func tnRunOK(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := tnRun(args...)
	if code != exitOK {
		t.Fatalf("conclave %v: exit %d: %s", args, code, errOut)
	}
	return out
}
