package node

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/conclave-im/conclave/mls"
)

func fetchRef(t *testing.T, ctx context.Context, from, server *testNode) string {
	t.Helper()
	kp, err := from.net.FetchKeyPackage(ctx, server.AddrInfo().ID, uint16(server.prof.GroupCipherSuite()))
	if err != nil {
		t.Fatal(err)
	}
	var m mls.MLSMessage
	if err := m.Unmarshal(kp); err != nil || m.KeyPackage == nil {
		t.Fatalf("fetched KeyPackage does not parse: %v", err)
	}
	ref, err := m.KeyPackage.Ref()
	if err != nil {
		t.Fatal(err)
	}
	return string(ref)
}

// TestServedKeyPackageSurvivesRestart: a single-use KeyPackage handed out
// before a restart is never handed out again after it.
func TestServedKeyPackageSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	dirA := t.TempDir()
	a, b := startNode(t, testOptions(dirA)), startNode(t, testOptions(""))
	connectAll(t, ctx, a, b)
	first := fetchRef(t, ctx, b, a)
	closeNode(t, a.Node)

	a2 := startNode(t, testOptions(dirA))
	connectAll(t, ctx, a2, b)
	for i := range a2.prof.KeyPackages.PoolSize {
		if ref := fetchRef(t, ctx, b, a2); ref == first {
			t.Fatalf("fetch %d after the restart served the KeyPackage served before it", i)
		}
	}
}

// waitRefs re-checks n's stored KeyPackages on a short ticker (the pool
// emits no event) until ok accepts them.
func waitRefs(t *testing.T, ctx context.Context, n *testNode, what string, ok func(map[string]bool) bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !ok(storedRefs(t, ctx, n)) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: waiting for %s: %v", n.ID(), what, ctx.Err())
		}
	}
}

// TestKeyPackageRenewal: a running node renews its KeyPackages before they
// expire and deletes them, private keys included, once expired past the
// grace period, without a restart.
func TestKeyPackageRenewal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	clock := &offsetClock{}
	opts := testOptions("")
	opts.Clock = clock
	a := startNode(t, opts)
	before := storedRefs(t, ctx, a)
	kp := a.prof.KeyPackages

	clock.off.Store(int64(kp.Lifetime - kp.RenewBefore + time.Hour))
	waitRefs(t, ctx, a, "renewed KeyPackages", func(refs map[string]bool) bool {
		fresh := 0
		for r := range refs {
			if !before[r] {
				fresh++
			}
		}
		return fresh >= kp.PoolSize+1 // the pool and a last-resort one per suite
	})

	clock.off.Store(int64(kp.Lifetime + kp.ExpiredInitKeyGrace + 2*time.Hour))
	waitRefs(t, ctx, a, "expired KeyPackages deleted", func(refs map[string]bool) bool {
		for r := range before {
			if refs[r] {
				return false
			}
		}
		return true
	})
}

// outboxWelcomes counts the Welcomes n still has to deliver.
func outboxWelcomes(t *testing.T, ctx context.Context, n *testNode) int {
	t.Helper()
	items, err := n.store.Outbox().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := 0
	for _, it := range items {
		if it.Kind == outboxWelcome {
			c++
		}
	}
	return c
}

// TestWelcomeSurvivesRestart: a decided Welcome that could not reach the
// new member (offline) stays in the inviter's outbox across the inviter's
// restart and is delivered once the member is back.
func TestWelcomeSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	dirA, dirC := t.TempDir(), t.TempDir()
	optsA := testOptions(dirA)
	optsA.Profile.Delivery.WelcomeRetry = 100 * time.Millisecond
	a, b, c := startNode(t, optsA), startNode(t, testOptions("")), startNode(t, testOptions(dirC))
	connectAll(t, ctx, a, b, c)
	gid := formGroup(t, ctx, a, b)
	waitTopicPeers(t, ctx, gid, a, b)

	// Without b the Add cannot be decided: c goes offline in the meantime.
	cut(a, b)
	invited := make(chan error, 1)
	go func() { invited <- a.Invite(ctx, gid, c.ID()) }()
	waitEvent(t, ctx, a, "the Add proposed", func(e Event) bool {
		p, ok := e.(PendingChanged)
		return ok && len(p.Pending) == 1 && strings.HasPrefix(p.Pending[0].Waiting, "waiting for a majority")
	})
	closeNode(t, c.Node)
	heal(a, b)
	connectAll(t, ctx, a, b)
	if err := <-invited; err != nil {
		t.Fatalf("invite: %v", err)
	}
	if got := outboxWelcomes(t, ctx, a); got != 1 {
		t.Fatalf("%d Welcomes in the outbox, want 1", got)
	}
	closeNode(t, a.Node)

	a2, c2 := startNode(t, optsA), startNode(t, testOptions(dirC))
	connectAll(t, ctx, a2, c2)
	waitJoined(t, ctx, c2, gid)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for outboxWelcomes(t, ctx, a2) != 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("the delivered Welcome stays in the outbox: %v", ctx.Err())
		}
	}
	st, err := c2.Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := a2.Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != ref.Epoch || !bytes.Equal(st.EpochAuthenticator, ref.EpochAuthenticator) {
		t.Fatalf("c joined at epoch %d, a is at %d", st.Epoch, ref.Epoch)
	}
}

// TestOutdatedKeyPackagesReplaced: KeyPackages stored under a profile that
// required fewer group extensions are replaced at start, so that groups
// requiring the newer extensions can add this node.
func TestOutdatedKeyPackagesReplaced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	dir := t.TempDir()
	old := testOptions(dir)
	exts := old.Profile.Crypto.RequiredGroupExtensions
	if len(exts) == 0 {
		t.Fatal("the profile requires no group extension")
	}
	old.Profile.Crypto.RequiredGroupExtensions = exts[:len(exts)-1]
	a := startNode(t, old)
	before := storedRefs(t, ctx, a)
	closeNode(t, a.Node)

	a2 := startNode(t, testOptions(dir))
	after := storedRefs(t, ctx, a2)
	for r := range before {
		if after[r] {
			t.Fatalf("a KeyPackage without the required extensions survived the upgrade")
		}
	}
	b := startNode(t, testOptions(""))
	connectAll(t, ctx, a2, b)
	gid, err := b.CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Invite(ctx, gid, a2.ID()); err != nil {
		t.Fatalf("invite after the upgrade: %v", err)
	}
	waitJoined(t, ctx, a2, gid)
}
