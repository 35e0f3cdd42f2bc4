package node

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/gossip"
	"github.com/conclave-im/conclave/profile"
)

// testProfile is the default profile with a small KeyPackage pool, so that
// test nodes start quickly.
func testProfile() profile.Profile {
	p := profile.Default()
	p.KeyPackages.PoolSize = 3
	p.KeyPackages.RefillBelow = 1
	return p
}

func testLogger() *slog.Logger {
	if os.Getenv("NODE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testOptions keeps the node on 127.0.0.1 with nothing that reaches
// further (mDNS, DHT, relays, port mapping). An empty dir means an
// in-memory store.
func testOptions(dir string) Options {
	ds := datastore.Options{Backend: datastore.BackendMemory, Logger: testLogger()}
	if dir != "" {
		ds = datastore.Options{Dir: dir, Logger: testLogger()}
	}
	return Options{
		Datastore: ds,
		Profile:   testProfile(),
		Network: gossip.Config{
			ListenAddrs:         []string{"/ip4/127.0.0.1/tcp/0"},
			DisableMDNS:         true,
			DisablePortMapping:  true,
			DisableAutoRelay:    true,
			DisableHolePunching: true,
			DHT:                 gossip.DHTOff,
		},
		AutoAccept: true,
		Logger:     testLogger(),
	}
}

// testNode is a started node with a subscription opened before anything
// happened to it.
type testNode struct {
	*Node
	events <-chan Event
}

func startNode(t testing.TB, opts Options) *testNode {
	t.Helper()
	n, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeNode(t, n) })
	ev, _, err := n.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &testNode{Node: n, events: ev}
}

func closeNode(t testing.TB, n *Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

func connectAll(t testing.TB, ctx context.Context, nodes ...*testNode) {
	t.Helper()
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			if err := a.Connect(ctx, b.AddrInfo()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// waitEvent reads n's events until match accepts one.
func waitEvent(t testing.TB, ctx context.Context, n *testNode, what string, match func(Event) bool) Event {
	t.Helper()
	for {
		select {
		case e := <-n.events:
			if match(e) {
				return e
			}
		case <-ctx.Done():
			t.Fatalf("%s: waiting for %s: %v", n.ID(), what, ctx.Err())
			return nil
		}
	}
}

// waitJoined waits until n joined the group and returns the epoch it
// joined at.
func waitJoined(t testing.TB, ctx context.Context, n *testNode, gid []byte) uint64 {
	t.Helper()
	e := waitEvent(t, ctx, n, "joining the group", func(e Event) bool {
		j, ok := e.(GroupJoined)
		return ok && bytes.Equal(j.GroupID, gid)
	})
	return e.(GroupJoined).Epoch
}

func waitEpoch(t testing.TB, ctx context.Context, n *testNode, gid []byte, epoch uint64) {
	t.Helper()
	waitEvent(t, ctx, n, "the epoch change", func(e Event) bool {
		c, ok := e.(EpochChanged)
		return ok && bytes.Equal(c.GroupID, gid) && c.Epoch >= epoch
	})
}

func waitText(t testing.TB, ctx context.Context, n *testNode, gid []byte, text string) Message {
	t.Helper()
	e := waitEvent(t, ctx, n, "message "+text, func(e Event) bool {
		m, ok := e.(MessageReceived)
		return ok && bytes.Equal(m.Message.GroupID, gid) && m.Message.Text == text
	})
	return e.(MessageReceived).Message
}

// waitTopicPeers waits until every node knows every other node is on the
// group's topic, woken by the topic's peer events.
func waitTopicPeers(t testing.TB, ctx context.Context, gid []byte, nodes ...*testNode) {
	t.Helper()
	for _, a := range nodes {
		topic, err := call(ctx, a.Node, func() (*gossip.Group, error) {
			g, err := a.activeGroup(gid)
			if err != nil {
				return nil, err
			}
			return g.topic, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range nodes {
			if b == a {
				continue
			}
			if err := topic.WaitPeer(ctx, b.AddrInfo().ID); err != nil {
				t.Fatalf("%s: waiting for %s on the topic: %v", a.ID(), b.ID(), err)
			}
		}
	}
}

// requireConverged checks that every node is at the same epoch with the
// same epoch authenticator and the same member list.
func requireConverged(t testing.TB, ctx context.Context, gid []byte, epoch uint64, nodes ...*testNode) {
	t.Helper()
	var ref GroupStatus
	for i, n := range nodes {
		st, err := n.Group(ctx, gid)
		if err != nil {
			t.Fatal(err)
		}
		if st.Epoch != epoch {
			t.Fatalf("%s at epoch %d, want %d", n.ID(), st.Epoch, epoch)
		}
		if len(st.EpochAuthenticator) == 0 {
			t.Fatalf("%s: empty epoch authenticator", n.ID())
		}
		if i == 0 {
			ref = st
			continue
		}
		if !bytes.Equal(st.EpochAuthenticator, ref.EpochAuthenticator) {
			t.Fatalf("%s: epoch authenticator differs from %s's", n.ID(), nodes[0].ID())
		}
		if len(st.Members) != len(ref.Members) {
			t.Fatalf("%s sees %d members, %s sees %d", n.ID(), len(st.Members), nodes[0].ID(), len(ref.Members))
		}
		for j := range st.Members {
			if st.Members[j].PeerID != ref.Members[j].PeerID || st.Members[j].Leaf != ref.Members[j].Leaf {
				t.Fatalf("member lists differ: %+v vs %+v", st.Members, ref.Members)
			}
		}
	}
}

// waitInHistory waits until text is in n's history of the group; it
// re-checks on every event n emits (events consumed earlier by other waits
// do not matter).
func waitInHistory(t testing.TB, ctx context.Context, n *testNode, gid []byte, text string) {
	t.Helper()
	for {
		h, err := n.History(ctx, gid, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range h {
			if m.Text == text {
				return
			}
		}
		select {
		case <-n.events:
		case <-ctx.Done():
			t.Fatalf("%s: waiting for %q in the history: %v", n.ID(), text, ctx.Err())
		}
	}
}
