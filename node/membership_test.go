package node

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// formGroup has a create a group and invite the others one by one, and
// waits until everyone is at the last epoch.
func formGroup(t testing.TB, ctx context.Context, a *testNode, others ...*testNode) []byte {
	t.Helper()
	gid, err := a.CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range others {
		if err := a.Invite(ctx, gid, o.ID()); err != nil {
			t.Fatalf("invite %s: %v", o.ID(), err)
		}
		waitJoined(t, ctx, o, gid)
	}
	epoch := uint64(len(others))
	for _, o := range others[:len(others)-1] {
		waitEpoch(t, ctx, o, gid, epoch)
	}
	return gid
}

// TestRemove: a member removed through a decided Commit leaves the group,
// cannot read what is sent afterwards, and the others go on at one epoch.
func TestRemove(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	a, b, c := startNode(t, testOptions("")), startNode(t, testOptions("")), startNode(t, testOptions(""))
	connectAll(t, ctx, a, b, c)
	gid := formGroup(t, ctx, a, b, c)

	// b commits c's removal (a member other than the creator may remove).
	if err := b.Remove(ctx, gid, c.ID()); err != nil {
		t.Fatalf("remove: %v", err)
	}
	waitEvent(t, ctx, c, "leaving the group", func(e Event) bool {
		l, ok := e.(GroupLeft)
		return ok && bytes.Equal(l.GroupID, gid) && l.Epoch == 3
	})
	waitEpoch(t, ctx, a, gid, 3)
	requireConverged(t, ctx, gid, 3, a, b)
	if st, err := a.Group(ctx, gid); err != nil || len(st.Members) != 2 {
		t.Fatalf("after removal a sees %+v (%v)", st.Members, err)
	}
	if _, err := c.Group(ctx, gid); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("removed member still has the group: %v", err)
	}
	if _, err := c.Send(ctx, gid, "still here?", nil); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("removed member could send: %v", err)
	}

	waitTopicPeers(t, ctx, gid, a, b)
	if _, err := a.Send(ctx, gid, "after removal", nil); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, b, gid, "after removal")
	// c left the topic and holds no state of the group: nothing it could
	// have received decrypts. Its history ends with what it saw as member.
	h, err := c.History(ctx, gid, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range h {
		if m.Text == "after removal" {
			t.Fatal("removed member has a message sent after its removal")
		}
	}
	if err := a.Remove(ctx, gid, c.ID()); !errors.Is(err, ErrNotMember) {
		t.Fatalf("removing a non-member: %v", err)
	}
}

// TestConcurrentInvites: two members invite two different peers at the
// same moment. Consensus decides one Commit for the epoch; the loser's Add
// is carried into the next epoch automatically, so both are added, and
// every member ends on the same epoch chain.
func TestConcurrentInvites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	a, b, c, d := startNode(t, testOptions("")), startNode(t, testOptions("")), startNode(t, testOptions("")), startNode(t, testOptions(""))
	connectAll(t, ctx, a, b, c, d)
	gid := formGroup(t, ctx, a, b)
	waitTopicPeers(t, ctx, gid, a, b)

	errs := make(chan error, 2)
	go func() { errs <- a.Invite(ctx, gid, c.ID()) }()
	go func() { errs <- b.Invite(ctx, gid, d.ID()) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("invite: %v", err)
		}
	}
	joined := map[*testNode]uint64{c: waitJoined(t, ctx, c, gid), d: waitJoined(t, ctx, d, gid)}
	if joined[c] == joined[d] {
		t.Fatalf("both joined at epoch %d: two Commits decided for one epoch?", joined[c])
	}
	for _, n := range []*testNode{a, b, c, d} {
		if joined[n] < 3 {
			waitEpoch(t, ctx, n, gid, 3)
		}
	}
	requireConverged(t, ctx, gid, 3, a, b, c, d)

	waitTopicPeers(t, ctx, gid, a, b, c, d)
	if _, err := d.Send(ctx, gid, "hi all", nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{a, b, c} {
		waitText(t, ctx, n, gid, "hi all")
	}
}

// TestLeave: a member asks to leave; another member commits its removal
// after CommitPendingAfter, through consensus, and the rest go on.
func TestLeave(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	opts := func() Options {
		o := testOptions("")
		o.Profile.Commits.CommitPendingAfter = 200 * time.Millisecond
		return o
	}
	a, b, c := startNode(t, opts()), startNode(t, opts()), startNode(t, opts())
	connectAll(t, ctx, a, b, c)
	gid := formGroup(t, ctx, a, b, c)
	waitTopicPeers(t, ctx, gid, a, b, c)

	if err := c.Leave(ctx, gid); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if _, err := c.Group(ctx, gid); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("left member still has the group: %v", err)
	}
	waitEvent(t, ctx, a, "c's removal", func(e Event) bool {
		ch, ok := e.(EpochChanged)
		return ok && bytes.Equal(ch.GroupID, gid) && len(ch.Removed) == 1 && ch.Removed[0] == c.ID()
	})
	waitEvent(t, ctx, b, "c's removal", func(e Event) bool {
		ch, ok := e.(EpochChanged)
		return ok && bytes.Equal(ch.GroupID, gid) && len(ch.Removed) == 1
	})
	requireConverged(t, ctx, gid, 3, a, b)
	if _, err := b.Send(ctx, gid, "bye c", nil); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, a, gid, "bye c")
}

// offsetClock is the system clock shifted by a settable offset.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time                   { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) NewTicker(d time.Duration) Ticker { return SystemClock{}.NewTicker(d) }

// TestLeafUpdate: a member whose leaf has not been refreshed for
// LeafUpdateInterval (by its injected clock) commits an update through
// consensus; the others merge it and everyone stays converged.
func TestLeafUpdate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	clock := &offsetClock{}
	optsB := testOptions("")
	optsB.Clock = clock
	a, b := startNode(t, testOptions("")), startNode(t, optsB)
	connectAll(t, ctx, a, b)
	gid := formGroup(t, ctx, a, b)
	waitTopicPeers(t, ctx, gid, a, b)
	before, err := a.Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}

	clock.off.Store(int64(b.prof.Commits.LeafUpdateInterval + time.Hour))
	ev := waitEvent(t, ctx, a, "b's leaf update", func(e Event) bool {
		c, ok := e.(EpochChanged)
		return ok && bytes.Equal(c.GroupID, gid) && c.Epoch == before.Epoch+1
	}).(EpochChanged)
	if len(ev.Added) != 0 || len(ev.Removed) != 0 {
		t.Fatalf("a leaf update changed the membership: %+v", ev)
	}
	waitEpoch(t, ctx, b, gid, before.Epoch+1)
	requireConverged(t, ctx, gid, before.Epoch+1, a, b)
	// One update per interval: nothing more until the clock moves again.
	if _, err := a.Send(ctx, gid, "after update", nil); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, b, gid, "after update")
	requireConverged(t, ctx, gid, before.Epoch+1, a, b)
}
