package node

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/gossip"
	"github.com/conclave-im/conclave/mls"
)

// TestRestartKeepsGroupsAndHistory: a node stopped and started again from
// its data directory has the same identity, its groups at the same epoch
// and authenticator, its history, and goes on chatting in both directions
// (its ratchets resume where they were, so no key is reused).
func TestRestartKeepsGroupsAndHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	dirB := t.TempDir()
	a := startNode(t, testOptions(t.TempDir()))
	b := startNode(t, testOptions(dirB))
	connectAll(t, ctx, a, b)
	gid := formGroup(t, ctx, a, b)
	waitTopicPeers(t, ctx, gid, a, b)
	if _, err := a.Send(ctx, gid, "before restart", nil); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, b, gid, "before restart")
	if _, err := b.Send(ctx, gid, "b before restart", nil); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, a, gid, "b before restart")
	before, err := b.Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	idB := b.ID()
	closeNode(t, b.Node)

	b2 := startNode(t, testOptions(dirB))
	if b2.ID() != idB {
		t.Fatalf("identity changed across restart: %s, was %s", b2.ID(), idB)
	}
	after, err := b2.Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	if after.Epoch != before.Epoch || !bytes.Equal(after.EpochAuthenticator, before.EpochAuthenticator) {
		t.Fatalf("group after restart at epoch %d, was %d (authenticator equal: %v)", after.Epoch, before.Epoch, bytes.Equal(after.EpochAuthenticator, before.EpochAuthenticator))
	}
	h, err := b2.History(ctx, gid, 10)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range h {
		if m.Type == ContentText {
			texts = append(texts, m.Text)
		}
	}
	if len(texts) != 2 || texts[0] != "before restart" || texts[1] != "b before restart" {
		t.Fatalf("history after restart: %q", texts)
	}

	connectAll(t, ctx, a, b2)
	waitTopicPeers(t, ctx, gid, a, b2)
	if _, err := b2.Send(ctx, gid, "b after restart", nil); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, a, gid, "b after restart")
	if _, err := a.Send(ctx, gid, "a after restart", nil); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, b2, gid, "a after restart")

	// Membership changes go on through consensus with the restarted member.
	c := startNode(t, testOptions(""))
	connectAll(t, ctx, a, b2, c)
	if err := b2.Invite(ctx, gid, c.ID()); err != nil {
		t.Fatalf("invite after restart: %v", err)
	}
	waitJoined(t, ctx, c, gid)
	waitEpoch(t, ctx, a, gid, 2)
	requireConverged(t, ctx, gid, 2, a, b2, c)
}

// TestPendingInvitation: without auto-accept a Welcome waits as an
// invitation, survives a restart, and joins on AcceptInvitation; a
// declined one deletes the KeyPackage it used.
func TestPendingInvitation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	dirB := t.TempDir()
	optsB := testOptions(dirB)
	optsB.AutoAccept = false
	a, b := startNode(t, testOptions("")), startNode(t, optsB)
	connectAll(t, ctx, a, b)
	gid, err := a.CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Invite(ctx, gid, b.ID()); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, ctx, b, "an invitation", func(e Event) bool { _, ok := e.(InvitationReceived); return ok })
	if inv := e.(InvitationReceived).Invitation; !bytes.Equal(inv.GroupID, gid) || inv.From != a.ID() {
		t.Fatalf("invitation %+v", inv)
	}
	if _, err := b.Group(ctx, gid); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("joined before accepting: %v", err)
	}
	closeNode(t, b.Node)

	b2 := startNode(t, optsB)
	invs, err := b2.Invitations(ctx)
	if err != nil || len(invs) != 1 || !bytes.Equal(invs[0].GroupID, gid) {
		t.Fatalf("invitations after restart: %+v, %v", invs, err)
	}
	if err := b2.AcceptInvitation(ctx, gid); err != nil {
		t.Fatal(err)
	}
	waitJoined(t, ctx, b2, gid)
	requireConverged(t, ctx, gid, 1, a, b2)
	if err := b2.AcceptInvitation(ctx, gid); !errors.Is(err, ErrNoInvitation) {
		t.Fatalf("second accept: %v", err)
	}

	// A second group, declined.
	gid2, err := a.CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	connectAll(t, ctx, a, b2)
	if err := a.Invite(ctx, gid2, b2.ID()); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, b2, "a second invitation", func(e Event) bool {
		i, ok := e.(InvitationReceived)
		return ok && bytes.Equal(i.Invitation.GroupID, gid2)
	})
	ref := welcomeRef(t, ctx, b2, gid2)
	if err := b2.DeclineInvitation(ctx, gid2); err != nil {
		t.Fatal(err)
	}
	if _, err := b2.store.KeyPackages().Get(ctx, ref); !errors.Is(err, datastore.ErrNotFound) {
		t.Fatalf("declined invitation's KeyPackage still stored: %v", err)
	}
	if invs, _ := b2.Invitations(ctx); len(invs) != 0 {
		t.Fatalf("invitations after decline: %+v", invs)
	}
}

// welcomeRef returns the ref of the KeyPackage a pending invitation uses.
func welcomeRef(t *testing.T, ctx context.Context, n *testNode, gid []byte) []byte {
	t.Helper()
	ref, err := call(ctx, n.Node, func() ([]byte, error) {
		inv := n.st.invitations[string(gid)]
		var m mls.MLSMessage
		if err := m.Unmarshal(inv.welcome); err != nil {
			return nil, err
		}
		ref, ok := n.st.pool.findWelcomeKeyPackage(m.Welcome)
		if !ok {
			return nil, errors.New("no KeyPackage for the Welcome")
		}
		return ref, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// TestKeyPackageServing: each single-use KeyPackage is handed out once,
// one peer is rate-limited per the profile, the last-resort KeyPackage is
// served when the pool is empty, and joining deletes the init key.
func TestKeyPackageServing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	a, b := startNode(t, testOptions("")), startNode(t, testOptions(""))
	connectAll(t, ctx, a, b)
	cs := uint16(a.prof.GroupCipherSuite())
	seen := make(map[string]bool)
	for i := range a.prof.KeyPackages.ServeLimit {
		kp, err := b.net.FetchKeyPackage(ctx, a.AddrInfo().ID, cs)
		if err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
		var m mls.MLSMessage
		if err := m.Unmarshal(kp); err != nil || m.KeyPackage == nil {
			t.Fatalf("fetched KeyPackage does not parse: %v", err)
		}
		if err := m.KeyPackage.Verify(); err != nil {
			t.Fatal(err)
		}
		ref, _ := m.KeyPackage.Ref()
		if seen[string(ref)] {
			t.Fatalf("fetch %d handed out a single-use KeyPackage twice", i)
		}
		seen[string(ref)] = true
	}
	if _, err := b.net.FetchKeyPackage(ctx, a.AddrInfo().ID, cs); !errors.Is(err, gossip.ErrBusy) {
		t.Fatalf("fetch over the per-peer limit: %v", err)
	}
	if _, err := b.net.FetchKeyPackage(ctx, a.AddrInfo().ID, 0x7777); !errors.Is(err, gossip.ErrNotFound) {
		t.Fatalf("fetch for an unknown suite: %v", err)
	}

	// Joining deletes the KeyPackage's private keys from the store.
	c := startNode(t, testOptions(""))
	connectAll(t, ctx, a, c)
	before := storedRefs(t, ctx, c)
	gid, err := a.CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Invite(ctx, gid, c.ID()); err != nil {
		t.Fatal(err)
	}
	waitJoined(t, ctx, c, gid)
	after := storedRefs(t, ctx, c)
	gone := 0
	for ref := range before {
		if !after[ref] {
			gone++
		}
	}
	if gone != 1 {
		t.Fatalf("%d KeyPackages deleted by the join, want exactly the one used", gone)
	}
}

func storedRefs(t *testing.T, ctx context.Context, n *testNode) map[string]bool {
	t.Helper()
	kps, err := n.store.KeyPackages().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]bool)
	for _, kp := range kps {
		out[string(kp.Ref)] = true
	}
	return out
}

// TestRestartBetweenStagingAndDecision: a member that validated (staged) a
// received Commit, stored its state and restarted before the decision
// processes the same Commit again when it is proposed, and the group moves
// to the next epoch. (With the Commit in a PrivateMessage the restarted
// member's handshake key for it was used up and the group stalled.)
func TestRestartBetweenStagingAndDecision(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	dirB := t.TempDir()
	a := startNode(t, testOptions(t.TempDir()))
	b := startNode(t, testOptions(dirB))
	connectAll(t, ctx, a, b)
	gid := formGroup(t, ctx, a, b)
	waitTopicPeers(t, ctx, gid, a, b)

	type prepared struct{ commit, value []byte }
	p, err := call(ctx, a.Node, func() (prepared, error) {
		g := a.st.groups[string(gid)]
		commit, value, err := a.prepareCommit(g, []mls.Proposal{})
		return prepared{commit, value}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	staged, err := call(ctx, b.Node, func() (int, error) {
		g := b.st.groups[string(gid)]
		if err := b.validateValue(g, g.cur, p.value); err != nil {
			return 0, err
		}
		return len(g.cur.staged), b.saveState(g)
	})
	if err != nil || staged != 1 {
		t.Fatalf("staging the Commit at b: %d staged, %v", staged, err)
	}
	closeNode(t, b.Node)

	b2 := startNode(t, testOptions(dirB))
	connectAll(t, ctx, a, b2)
	waitTopicPeers(t, ctx, gid, a, b2)
	o := &op{desc: "leaf update", proposals: []mls.Proposal{}, done: make(chan error, 1)}
	if _, err := call(ctx, a.Node, func() (struct{}, error) {
		return struct{}{}, a.proposePrepared(a.st.groups[string(gid)], o, p.commit, p.value)
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-o.done:
		if err != nil {
			t.Fatalf("the prepared Commit: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the Commit staged before b's restart was never decided: the group stalled")
	}
	requireConverged(t, ctx, gid, 2, a, b2)
}
