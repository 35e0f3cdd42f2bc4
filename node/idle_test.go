package node

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/conclave-im/conclave/mls"
)

// idleOptions: leaf updates every hour, eviction after four idle hours,
// and (unless a test wants it) no away detection, so that a test moving
// its clock forward in jumps counts the jumps as watched time. A nil clock
// is the system clock: a node on it never reaches its update interval
// within a test, so it is a member that stops updating.
func idleOptions(dir string, clock Clock) Options {
	o := testOptions(dir)
	o.Profile.Commits.LeafUpdateInterval = time.Hour
	o.Profile.Membership.IdleEviction = 4 * time.Hour
	o.Profile.Membership.IdleAwayGap = 0
	o.Clock = clock
	return o
}

// factAbout returns what n's facts say about member m in the group, and
// n's time.
func factAbout(t *testing.T, ctx context.Context, n, m *testNode, gid []byte) (memberFact, time.Time) {
	t.Helper()
	type out struct {
		mf  memberFact
		now time.Time
	}
	r, err := call(ctx, n.Node, func() (out, error) {
		g, ok := n.st.groups[string(gid)]
		if !ok {
			return out{}, ErrUnknownGroup
		}
		leaf, ok := n.memberLeaf(g, m.Identity())
		if !ok {
			return out{}, ErrNotMember
		}
		mf, ok := n.facts(g).byLeaf[leaf]
		if !ok {
			return out{}, errors.New("no facts about the member")
		}
		return out{*mf, n.clock.Now()}, nil
	})
	if err != nil {
		t.Fatalf("%s's facts about %s: %v", n.ID(), m.ID(), err)
	}
	return r.mf, r.now
}

// waitFresh waits until n has seen m's leaf updated at or after since
// (re-checking on every event of n).
func waitFresh(t *testing.T, ctx context.Context, n, m *testNode, gid []byte, since time.Time) {
	t.Helper()
	for {
		if mf, _ := factAbout(t, ctx, n, m, gid); !mf.idleSince.Before(since) {
			return
		}
		select {
		case <-n.events:
		case <-ctx.Done():
			t.Fatalf("%s: waiting for %s's leaf update: %v", n.ID(), m.ID(), ctx.Err())
		}
	}
}

func waitRemoved(t *testing.T, ctx context.Context, n *testNode, gid []byte, peerID string) EpochChanged {
	t.Helper()
	return waitEvent(t, ctx, n, "removal of "+peerID, func(e Event) bool {
		c, ok := e.(EpochChanged)
		return ok && bytes.Equal(c.GroupID, gid) && len(c.Removed) == 1 && c.Removed[0] == peerID
	}).(EpochChanged)
}

func requireMembers(t *testing.T, ctx context.Context, n *testNode, gid []byte, want ...*testNode) {
	t.Helper()
	st, err := n.Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != len(want) {
		t.Fatalf("%s sees %d members, want %d", n.ID(), len(st.Members), len(want))
	}
	for _, w := range want {
		found := false
		for _, m := range st.Members {
			found = found || m.PeerID == w.ID()
		}
		if !found {
			t.Fatalf("%s: %s is not a member any more", n.ID(), w.ID())
		}
	}
}

// TestIdleEviction: of three members, b stops (and so stops updating its
// leaf). Once a and c have watched it idle for IdleEviction, both propose
// its removal; consensus decides one Commit and the other proposal is
// dropped. a and c, which keep updating, are never evicted.
func TestIdleEviction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	clock := &offsetClock{}
	a, b, c := startNode(t, idleOptions("", clock)), startNode(t, idleOptions("", nil)), startNode(t, idleOptions("", clock))
	connectAll(t, ctx, a, b, c)
	gid := formGroup(t, ctx, a, b, c)
	waitTopicPeers(t, ctx, gid, a, b, c)
	closeNode(t, b.Node)

	// Two hours on, a and c refresh their leaves; b does not.
	base := time.Now()
	clock.off.Store(int64(2 * time.Hour))
	for _, n := range []*testNode{a, c} {
		for _, m := range []*testNode{a, c} {
			waitFresh(t, ctx, n, m, gid, base.Add(2*time.Hour))
		}
	}
	requireMembers(t, ctx, a, gid, a, b, c)

	// Five hours on, b has been idle for more than four: it is removed,
	// once, by whichever Commit consensus decides.
	clock.off.Store(int64(5 * time.Hour))
	for _, n := range []*testNode{a, c} {
		waitRemoved(t, ctx, n, gid, b.ID())
	}
	waitInHistory(t, ctx, a, gid, "removed "+b.ID())
	requireMembers(t, ctx, a, gid, a, c)
	requireMembers(t, ctx, c, gid, a, c)

	// Active members stay: three more jumps of two hours, past the
	// eviction limit several times over, each answered by leaf updates.
	for i := 1; i <= 3; i++ {
		off := 5*time.Hour + time.Duration(i)*2*time.Hour
		clock.off.Store(int64(off))
		for _, n := range []*testNode{a, c} {
			for _, m := range []*testNode{a, c} {
				waitFresh(t, ctx, n, m, gid, base.Add(off))
			}
		}
		requireMembers(t, ctx, a, gid, a, c)
		requireMembers(t, ctx, c, gid, a, c)
	}
}

// TestIdleRestart: a node stopped for longer than IdleEviction does not
// evict the members it could not watch when it starts again (its downtime
// is left out), and its facts (join epochs) survive the restart; once it
// has watched a member idle for IdleEviction while running, it evicts it.
func TestIdleRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	clock := &offsetClock{}
	dir := t.TempDir()
	a, b := startNode(t, idleOptions(dir, clock)), startNode(t, idleOptions("", nil))
	connectAll(t, ctx, a, b)
	gid := formGroup(t, ctx, a, b)
	waitTopicPeers(t, ctx, gid, a, b)
	closeNode(t, a.Node)

	clock.off.Store(int64(5 * time.Hour))
	a = startNode(t, idleOptions(dir, clock))
	connectAll(t, ctx, a, b)
	mf, now := factAbout(t, ctx, a, b, gid)
	if mf.joined != 1 || !mf.joinedKnown {
		t.Fatalf("after the restart b joined at %d (known %v), want 1", mf.joined, mf.joinedKnown)
	}
	if idle := now.Sub(mf.idleSince); idle >= time.Hour {
		t.Fatalf("after five hours stopped, b counts as idle for %v", idle)
	}
	// a's own update is due; it is decided without evicting b.
	ev := waitEvent(t, ctx, b, "a's leaf update", func(e Event) bool {
		c, ok := e.(EpochChanged)
		return ok && bytes.Equal(c.GroupID, gid) && c.Epoch == 2
	}).(EpochChanged)
	if len(ev.Removed) != 0 {
		t.Fatalf("the restarted node evicted %v", ev.Removed)
	}

	// Five hours watched while running: b is evicted.
	clock.off.Store(int64(10 * time.Hour))
	waitEvent(t, ctx, b, "b's eviction", func(e Event) bool {
		l, ok := e.(GroupLeft)
		return ok && bytes.Equal(l.GroupID, gid)
	})
	requireMembers(t, ctx, a, gid, a)
}

// TestIdleAwayGap: a pause of the node's clock longer than IdleAwayGap (a
// suspended laptop) is time the node was away and does not count towards
// anyone's idleness.
func TestIdleAwayGap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	clock := &offsetClock{}
	optsA := idleOptions("", clock)
	optsA.Profile.Membership.IdleAwayGap = time.Hour
	a, b := startNode(t, optsA), startNode(t, idleOptions("", nil))
	connectAll(t, ctx, a, b)
	gid := formGroup(t, ctx, a, b)
	waitTopicPeers(t, ctx, gid, a, b)
	before, err := a.Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}

	clock.off.Store(int64(5 * time.Hour))
	// a's leaf update follows the tick that saw the gap.
	waitEpoch(t, ctx, a, gid, before.Epoch+1)
	mf, now := factAbout(t, ctx, a, b, gid)
	if idle := now.Sub(mf.idleSince); idle >= time.Hour {
		t.Fatalf("after a five-hour pause b counts as idle for %v", idle)
	}
	requireMembers(t, ctx, a, gid, a, b)
}

// TestMemberJoinedEpoch: the creator knows every member's join epoch; a
// later joiner knows its own and later ones exactly, and those present
// before it as "at or before" its join epoch.
func TestMemberJoinedEpoch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	a, b, c, d := startNode(t, testOptions("")), startNode(t, testOptions("")), startNode(t, testOptions("")), startNode(t, testOptions(""))
	connectAll(t, ctx, a, b, c)
	gid := formGroup(t, ctx, a, b, c)
	type want struct {
		epoch uint64
		known bool
	}
	tests := []struct {
		at, of *testNode
		want   want
	}{
		{a, a, want{0, true}}, {a, b, want{1, true}}, {a, c, want{2, true}},
		{b, a, want{1, false}}, {b, b, want{1, false}}, {b, c, want{2, true}},
		{c, a, want{2, false}}, {c, b, want{2, false}}, {c, c, want{2, false}},
		{a, d, want{0, false}}, // not a member
	}
	for _, tt := range tests {
		got, err := call(ctx, tt.at.Node, func() (want, error) {
			g := tt.at.st.groups[string(gid)]
			e, k := tt.at.memberJoinedEpoch(g, tt.of.Identity())
			return want{e, k}, nil
		})
		if err != nil || got != tt.want {
			t.Errorf("%s says %s joined at %+v (%v), want %+v", tt.at.ID(), tt.of.ID(), got, err, tt.want)
		}
	}
}

func TestMemberFactsRecord(t *testing.T) {
	f := &memberFacts{
		epoch:    7,
		savedAt:  time.UnixMilli(1_790_000_000_000),
		settings: GroupSettings{Name: "n", Topic: "t"},
		byLeaf: map[mls.LeafIndex]*memberFact{
			0: {sigKey: []byte{1, 2, 3}, joined: 0, joinedKnown: true, idleSince: time.UnixMilli(1_789_000_000_000)},
			3: {sigKey: bytes.Repeat([]byte{9}, 32), joined: 5, idleSince: time.UnixMilli(1_789_999_000_000)},
		},
	}
	b := f.marshal()
	got, err := parseFactsRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.epoch != f.epoch || !got.savedAt.Equal(f.savedAt) || got.settings != f.settings || len(got.byLeaf) != 2 {
		t.Fatalf("got %+v", got)
	}
	for l, mf := range f.byLeaf {
		g := got.byLeaf[l]
		if g == nil || !bytes.Equal(g.sigKey, mf.sigKey) || g.joined != mf.joined || g.joinedKnown != mf.joinedKnown || !g.idleSince.Equal(mf.idleSince) {
			t.Fatalf("leaf %d: got %+v, want %+v", l, g, mf)
		}
	}
	if !bytes.Equal(got.marshal(), b) {
		t.Fatal("re-encoding differs")
	}
	for i := range b {
		if _, err := parseFactsRecord(b[:i]); err == nil {
			t.Fatalf("a record cut to %d of %d bytes parsed", i, len(b))
		}
	}
	if _, err := parseFactsRecord(append(bytes.Clone(b), 0)); err == nil {
		t.Fatal("a record with a trailing byte parsed")
	}
}

// FuzzMemberFactsRecord: a stored record that parses re-encodes to the
// same bytes.
func FuzzMemberFactsRecord(f *testing.F) {
	rec := &memberFacts{epoch: 3, savedAt: time.UnixMilli(5), byLeaf: map[mls.LeafIndex]*memberFact{
		1: {sigKey: []byte{7}, joined: 2, joinedKnown: true, idleSince: time.UnixMilli(4)},
	}}
	f.Add(rec.marshal())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseFactsRecord(b)
		if err != nil {
			return
		}
		if again := got.marshal(); !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x -> %x", b, again)
		}
	})
}
