package node

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestCatchUpAfterOffline: a member is stopped while the others chat and
// change the membership (its vote is not needed: two of three are a
// majority). When it starts again and connects to one member, it fetches
// the decided Commit, checks its certificate, merges it, fetches the
// ciphertexts it missed and ends with every message exactly once, at the
// same epoch authenticator as the others.
func TestCatchUpAfterOffline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	dirC := t.TempDir()
	a, b, c := startNode(t, testOptions("")), startNode(t, testOptions("")), startNode(t, testOptions(dirC))
	connectAll(t, ctx, a, b, c)
	gid := formGroup(t, ctx, a, b, c)
	waitTopicPeers(t, ctx, gid, a, b, c)
	if _, err := a.Send(ctx, gid, "while c is here", nil); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, c, gid, "while c is here")
	closeNode(t, c.Node)

	const missed = 20
	for i := range missed {
		text := fmt.Sprintf("missed %d", i)
		if _, err := a.Send(ctx, gid, text, nil); err != nil {
			t.Fatal(err)
		}
		waitText(t, ctx, b, gid, text)
	}
	d := startNode(t, testOptions(""))
	connectAll(t, ctx, a, b, d)
	if err := b.Invite(ctx, gid, d.ID()); err != nil {
		t.Fatalf("invite while c is away: %v", err)
	}
	waitJoined(t, ctx, d, gid)
	waitEpoch(t, ctx, a, gid, 3)
	waitTopicPeers(t, ctx, gid, a, b, d)
	if _, err := b.Send(ctx, gid, "after d joined", nil); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, a, gid, "after d joined")

	c2 := startNode(t, testOptions(dirC))
	t.Logf("c=%s d=%s a=%s b=%s", c2.ID(), d.ID(), a.ID(), b.ID())
	connectAll(t, ctx, c2, a)
	waitEpoch(t, ctx, c2, gid, 3)
	waitText(t, ctx, c2, gid, "after d joined")
	requireConverged(t, ctx, gid, 3, a, b, c2, d)

	h, err := c2.History(ctx, gid, 1000)
	if err != nil {
		t.Fatal(err)
	}
	count := make(map[string]int)
	for _, m := range h {
		if m.Type == ContentText {
			count[m.Text]++
		}
	}
	for i := range missed {
		if n := count[fmt.Sprintf("missed %d", i)]; n != 1 {
			t.Errorf("message %d in c's history %d times", i, n)
		}
	}
	if count["while c is here"] != 1 || count["after d joined"] != 1 {
		t.Errorf("history counts: %v", count)
	}

	// c is a full member again: it can send and be read by the newcomer.
	connectAll(t, ctx, c2, b, d)
	waitTopicPeers(t, ctx, gid, a, b, c2, d)
	if _, err := c2.Send(ctx, gid, "c is back", nil); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, d, gid, "c is back")
}
