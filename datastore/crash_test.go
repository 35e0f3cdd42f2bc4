//go:build unix

package datastore

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash test: a child process (this test binary, re-executed) performs
// epoch transitions in a loop and is killed with SIGKILL at a random moment;
// the parent then reopens the store and checks that it holds exactly one
// completed epoch, consistent in every record, and nothing less than what
// the child had been told was durable. Repeated crashKills times.

const (
	crashChildEnv = "CONCLAVE_DATASTORE_CRASH_CHILD"
	crashSeedEnv  = "CONCLAVE_DATASTORE_CRASH_SEED"
	crashKeep     = 3 // KeepPastEpochs used by the child
)

var crashGroup = []byte("crash-group")

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	os.Exit(m.Run())
}

// crashState is the group state of an epoch: a deterministic function of the
// epoch whose length also varies with it, so a state torn between two epochs
// cannot pass for either.
func crashState(epoch uint64) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(epoch), byte(epoch >> 8), byte(epoch >> 16), 's'}))
	b := make([]byte, 1000+int(epoch*7919%20000))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func crashSecrets(epoch uint64) []byte { return []byte(fmt.Sprintf("secrets of epoch %d", epoch)) }
func crashCommit(epoch uint64) []byte  { return []byte(fmt.Sprintf("commit ending epoch %d", epoch)) }
func crashCert(epoch uint64) []byte    { return bytes.Repeat([]byte{byte(epoch)}, 64+int(epoch%50)) }

// crashChild runs in the child process: transitions until killed. It prints
// "ready" once the store is open and "done N" after each transition to epoch
// N has returned (and so is synced).
func crashChild(dir string) int {
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: dir, Logger: quiet})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 3
	}
	g := s.Groups()
	st, err := g.State(ctx, crashGroup)
	if err != nil {
		if err := g.Create(ctx, NewGroup{GroupID: crashGroup, State: crashState(0), EpochSecrets: crashSecrets(0)}); err != nil {
			fmt.Fprintln(os.Stderr, "child create:", err)
			return 3
		}
	}
	epoch := st.Epoch
	os.Stdout.WriteString("ready\n")
	for i := 0; i < 100000 && os.Getppid() != 1; i++ {
		if err := s.Consensus().SaveAcceptor(ctx, crashGroup, epoch, []byte(fmt.Sprintf("promise %d", epoch))); err != nil {
			fmt.Fprintln(os.Stderr, "child acceptor:", err)
			return 3
		}
		os.Stdout.WriteString("acceptor\n")
		err := g.Transition(ctx, EpochTransition{
			GroupID:        crashGroup,
			Decision:       Decision{Epoch: epoch, Commit: crashCommit(epoch), Certificate: crashCert(epoch)},
			State:          crashState(epoch + 1),
			EpochSecrets:   crashSecrets(epoch + 1),
			KeepPastEpochs: crashKeep,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child transition:", err)
			return 3
		}
		epoch++
		os.Stdout.WriteString("done " + strconv.FormatUint(epoch, 10) + "\n")
		// Buffered writes between transitions: a retained key and history.
		key := RatchetKey{KeyID: KeyID{Epoch: epoch, Leaf: 1, Generation: uint32(i)}, Key: []byte("k")}
		if err := g.Ratchet(ctx, RatchetUpdate{GroupID: crashGroup, Epoch: epoch, Retain: []RatchetKey{key}}); err != nil {
			fmt.Fprintln(os.Stderr, "child ratchet:", err)
			return 3
		}
		if err := s.History().Append(ctx, crashGroup, []HistoryEntry{{Epoch: epoch, Body: []byte("m")}, {Epoch: epoch, Body: []byte("n")}}); err != nil {
			fmt.Fprintln(os.Stderr, "child history:", err)
			return 3
		}
	}
	return 0
}

func TestCrashDuringEpochTransitions(t *testing.T) {
	kills := 200
	if testing.Short() {
		kills = 40 // -short: a quick smoke run; make test runs the full count
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(crashSeedEnv); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s: %v", crashSeedEnv, err)
		}
	}
	t.Logf("seed %d (replay with %s=%d)", seed, crashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	dir := crashDir(t)
	var lastDone uint64
	var ahead, midTransition int
	for kill := 0; kill < kills; kill++ {
		done, sawAcceptor := runAndKill(t, dir, time.Duration(rng.IntN(20000))*time.Microsecond)
		if done > lastDone {
			lastDone = done
		}
		if sawAcceptor {
			midTransition++
		}
		epoch := checkCrashedStore(t, dir, kill)
		switch {
		case epoch == lastDone:
		case epoch == lastDone+1:
			ahead++ // the kill came after the sync, before "done" was printed
			lastDone = epoch
		default:
			t.Fatalf("kill %d: store at epoch %d, but the child had completed epoch %d", kill, epoch, lastDone)
		}
	}
	t.Logf("%d kills, reached epoch %d; %d kills after an acceptor write and before the transition reported, %d with the transition durable but unreported", kills, lastDone, midTransition, ahead)
	if lastDone < uint64(kills)/4 {
		t.Fatalf("only %d transitions in %d runs: the child is not making progress", lastDone, kills)
	}
}

// runAndKill starts a child, waits for it to open the store, lets it run for
// delay and kills it. It returns the last epoch the child reported done and
// whether the last thing it reported was a synced acceptor write (so the kill
// fell inside the transition that followed, or just before it).
func runAndKill(t *testing.T, dir string, delay time.Duration) (uint64, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if l, ok := <-lines; !ok || l != "ready" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child did not start: %q %s", l, stderr.String())
	}
	timer := time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
	var done uint64
	last := ""
	for l := range lines {
		if n, ok := strings.CutPrefix(l, "done "); ok {
			done, _ = strconv.ParseUint(n, 10, 64)
		}
		last = l
	}
	timer.Stop()
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child exited by itself (%v): %s", err, stderr.String())
	}
	return done, last == "acceptor"
}

// checkCrashedStore opens the store after a kill and checks every invariant
// of the transition sequence. It returns the stored epoch.
func checkCrashedStore(t *testing.T, dir string, kill int) uint64 {
	t.Helper()
	ctx := context.Background()
	// Read-only: the check must not repair or otherwise change what the
	// crash left.
	s, err := Open(ctx, Options{Dir: dir, VerifyAll: true, ReadOnly: true, Logger: quiet})
	if err != nil {
		t.Fatalf("kill %d: store unreadable after the crash: %v", kill, err)
	}
	defer s.Close()
	g := s.Groups()
	st, err := g.State(ctx, crashGroup)
	if err != nil {
		t.Fatalf("kill %d: group state: %v", kill, err)
	}
	e := st.Epoch
	if !bytes.Equal(st.State, crashState(e)) {
		t.Fatalf("kill %d: state bytes of epoch %d are not epoch %d's (len %d)", kill, e, e, len(st.State))
	}
	retained, err := g.RetainedEpochs(ctx, crashGroup)
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for x := int64(e) - crashKeep; x <= int64(e); x++ {
		if x >= 0 {
			want = append(want, uint64(x))
		}
	}
	if !slices.Equal(retained, want) {
		t.Fatalf("kill %d: at epoch %d retained epochs %v, want %v", kill, e, retained, want)
	}
	for _, x := range retained {
		sec, err := g.EpochSecrets(ctx, crashGroup, x)
		if err != nil || !bytes.Equal(sec, crashSecrets(x)) {
			t.Fatalf("kill %d: secrets of epoch %d: %q, %v", kill, x, sec, err)
		}
	}
	decisions, err := g.Decisions(ctx, crashGroup, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(decisions)) != e {
		t.Fatalf("kill %d: %d decisions at epoch %d", kill, len(decisions), e)
	}
	for i, d := range decisions {
		if d.Epoch != uint64(i) || !bytes.Equal(d.Commit, crashCommit(d.Epoch)) || !bytes.Equal(d.Certificate, crashCert(d.Epoch)) {
			t.Fatalf("kill %d: decision %d does not match epoch %d", kill, i, d.Epoch)
		}
	}
	acc, err := s.Consensus().AcceptorEpochs(ctx, crashGroup)
	if err != nil {
		t.Fatal(err)
	}
	if len(acc) > 1 || (len(acc) == 1 && acc[0] != e) {
		t.Fatalf("kill %d: acceptor records %v at epoch %d", kill, acc, e)
	}
	bg := s.keys.group(crashGroup)
	if err := s.scan(ctx, span{prefix: ratchetPrefix(bg)}, func(key string, v []byte) (bool, error) {
		k, err := decodeRecord(s, kindRatchetKey, key, v, unmarshalRatchetKey)
		if err != nil {
			return false, err
		}
		if k.Epoch+crashKeep < e {
			t.Fatalf("kill %d: message key of epoch %d survives at epoch %d", kill, k.Epoch, e)
		}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	hist, err := s.History().After(ctx, crashGroup, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hist {
		if h.Seq != uint64(i+1) {
			t.Fatalf("kill %d: history has a gap at %d (seq %d)", kill, i+1, h.Seq)
		}
	}
	return e
}

// crashDir puts the store on tmpfs when the machine has one. A SIGKILL loses
// nothing that reached the kernel, so tmpfs tests exactly what a disk would
// under a process kill (atomicity and recovery of every write), while
// sparing the shared CI disk hundreds of fsync-heavy Pebble opens.
// Durability against power loss rests on Pebble's fsync of the WAL, which a
// process kill cannot test either way.
func crashDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "conclave-datastore-crash-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
