package node

import (
	"context"
	"testing"
	"time"
)

// cut blocks every connection between a and the others (both directions).
func cut(a *testNode, others ...*testNode) {
	for _, o := range others {
		a.net.Block(o.AddrInfo().ID)
		o.net.Block(a.AddrInfo().ID)
	}
}

func heal(a *testNode, others ...*testNode) {
	for _, o := range others {
		a.net.Unblock(o.AddrInfo().ID)
		o.net.Unblock(a.AddrInfo().ID)
	}
}

// TestMinorityPartition: a member cut off from the rest keeps sending in
// its epoch but cannot commit; the majority commits an invitation; after
// the partition heals the cut-off member learns the decided Commit, its own
// losing invitation is carried into the next epoch and decided, everyone
// agrees on one epoch chain, and what it sent while cut off reaches the
// others.
func TestMinorityPartition(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	a, b, c := startNode(t, testOptions("")), startNode(t, testOptions("")), startNode(t, testOptions(""))
	d, e := startNode(t, testOptions("")), startNode(t, testOptions(""))
	connectAll(t, ctx, a, b, c)
	gid := formGroup(t, ctx, a, b, c)
	waitTopicPeers(t, ctx, gid, a, b, c)

	cut(c, a, b)
	connectAll(t, ctx, c, e)
	connectAll(t, ctx, a, b, d)

	if _, err := c.Send(ctx, gid, "from the minority", nil); err != nil {
		t.Fatal(err)
	}
	cInvite := make(chan error, 1)
	go func() { cInvite <- c.Invite(ctx, gid, e.ID()) }()

	if err := a.Invite(ctx, gid, d.ID()); err != nil {
		t.Fatalf("majority invite: %v", err)
	}
	waitJoined(t, ctx, d, gid)
	waitEpoch(t, ctx, b, gid, 3)
	if st, err := c.Group(ctx, gid); err != nil || st.Epoch != 2 {
		t.Fatalf("the cut-off member moved on alone: %+v, %v", st, err)
	}
	select {
	case err := <-cInvite:
		t.Fatalf("the cut-off member's invitation finished without a quorum: %v", err)
	default:
	}

	heal(c, a, b)
	connectAll(t, ctx, c, a, b, d)
	if err := <-cInvite; err != nil {
		t.Fatalf("invitation carried over after healing: %v", err)
	}
	if got := waitJoined(t, ctx, e, gid); got != 4 {
		t.Fatalf("e joined at epoch %d, want 4", got)
	}
	for _, n := range []*testNode{a, b, c, d} {
		waitEpoch(t, ctx, n, gid, 4)
	}
	requireConverged(t, ctx, gid, 4, a, b, c, d, e)
	for _, n := range []*testNode{a, b} {
		waitInHistory(t, ctx, n, gid, "from the minority")
	}
}
