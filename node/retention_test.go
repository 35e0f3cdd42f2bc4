package node

import (
	"context"
	"testing"
	"time"
)

// TestRetention: a running node deletes the ciphertexts and decided
// Commits it keeps for catch-up once they are older than the profile's
// retention window, keeping the newest decision.
func TestRetention(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	clock := &offsetClock{}
	opts := testOptions("")
	opts.Clock = clock
	a, b, c := startNode(t, opts), startNode(t, testOptions("")), startNode(t, testOptions(""))
	connectAll(t, ctx, a, b, c)
	gid := formGroup(t, ctx, a, b, c)
	waitTopicPeers(t, ctx, gid, a, b)
	if _, err := b.Send(ctx, gid, "old news", nil); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, a, gid, "old news")
	count := func() (msgs int, epochs map[uint64]bool) {
		es, err := a.store.MessageLog().After(ctx, gid, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		ds, err := a.store.Groups().Decisions(ctx, gid, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		epochs = make(map[uint64]bool)
		for _, d := range ds {
			epochs[d.Epoch] = true
		}
		return len(es), epochs
	}
	if m, e := count(); m == 0 || !e[0] || !e[1] {
		t.Fatalf("before the window passed: %d ciphertexts, decisions of epochs %v; want some and 0, 1", m, e)
	}

	// The jump also makes a commit a leaf update (a decision inside the
	// window): the one to keep of the old ones is epoch 1, the newest.
	clock.off.Store(int64(a.prof.Delivery.CiphertextRetention + 2*retentionInterval))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		m, e := count()
		if m == 0 && !e[0] && e[1] {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("after the window: %d ciphertexts, decisions of epochs %v; want none and epoch 1 kept: %v", m, e, ctx.Err())
		}
	}
}
