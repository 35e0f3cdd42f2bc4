package node

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"testing"
	"time"
)

// BenchmarkCatchUpFromLog measures a member catching up on 10,000 messages
// that reached the group while it was offline: from its connection to a
// member that kept them until all of them are in its history. Unlike
// BenchmarkCatchUp, a third member was online while the messages were
// sent (it leaves before the measurement), so the sender considers them
// delivered and does not publish them again when the member comes back:
// everything comes through catch-up.
// -benchtime 1x is one catch-up.
func BenchmarkCatchUpFromLog(b *testing.B) {
	missed := *catchUpMessages
	for range b.N {
		b.StopTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		dir := b.TempDir()
		a, m, c := startNode(b, testOptions("")), startNode(b, testOptions("")), startNode(b, testOptions(dir))
		connectAll(b, ctx, a, m, c)
		gid := formGroup(b, ctx, a, m, c)
		waitTopicPeers(b, ctx, gid, a, m, c)
		closeNode(b, c.Node)
		for i := range missed {
			if _, err := a.Send(ctx, gid, fmt.Sprint(i), nil); err != nil {
				b.Fatal(err)
			}
		}
		waitAllSent(b, ctx, a, gid)
		closeNode(b, m.Node)

		optsC := testOptions(dir)
		optsC.EventBuffer = 2 * missed
		c2 := startNode(b, optsC)
		stopProfile := startCatchUpProfile(b)
		b.StartTimer()
		connectAll(b, ctx, c2, a)
		waitReceived(b, ctx, c2, gid, missed)
		b.StopTimer()
		stopProfile()
		if got := countTexts(b, ctx, c2, gid); got != missed {
			b.Fatalf("history holds %d messages after catch-up, want %d", got, missed)
		}
		closeNode(b, a.Node)
		closeNode(b, c2.Node)
		cancel()
	}
}

// catchUpProfile, if set, receives a CPU profile of the measured part of
// BenchmarkCatchUpFromLog alone (-cpuprofile covers the setup too, which
// sends the 10,000 messages).
var catchUpMessages = flag.Int("catchup.messages", 10000, "messages BenchmarkCatchUpFromLog catches up on")

var catchUpProfile = flag.String("catchup.cpuprofile", "", "write a CPU profile of the catch-up phase of BenchmarkCatchUpFromLog to this file")

func startCatchUpProfile(t testing.TB) (stop func()) {
	if *catchUpProfile == "" {
		return func() {}
	}
	f, err := os.Create(*catchUpProfile)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}
}

// waitAllSent waits until n has handed every message it sent in the group
// to the network. The node emits no event for that (only for messages
// that had to wait), so this re-checks on a short ticker, bounded by ctx.
func waitAllSent(t testing.TB, ctx context.Context, n *testNode, gid []byte) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		left, err := call(ctx, n.Node, func() (int, error) {
			g, err := n.activeGroup(gid)
			if err != nil {
				return 0, err
			}
			return len(g.unsent), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: %d messages still unsent: %v", n.ID(), left, ctx.Err())
		}
	}
}

// waitReceived waits until n has received count distinct messages of the
// group (its own not counted).
func waitReceived(t testing.TB, ctx context.Context, n *testNode, gid []byte, count int) {
	t.Helper()
	seen := make(map[[MessageIDLen]byte]bool)
	for len(seen) < count {
		select {
		case e := <-n.events:
			if m, ok := e.(MessageReceived); ok && bytes.Equal(m.Message.GroupID, gid) && !m.Message.Own {
				seen[m.Message.ID] = true
			}
		case <-ctx.Done():
			t.Fatalf("%s: %d of %d messages received: %v", n.ID(), len(seen), count, ctx.Err())
		}
	}
}

// countTexts counts the text messages in n's history of the group.
func countTexts(t testing.TB, ctx context.Context, n *testNode, gid []byte) int {
	t.Helper()
	h, err := n.History(ctx, gid, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, m := range h {
		if m.Type == ContentText {
			count++
		}
	}
	return count
}
