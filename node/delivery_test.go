package node

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// waitNoTopicPeers waits until n sees nobody on the group's topic.
func waitNoTopicPeers(t testing.TB, ctx context.Context, n *testNode, gid []byte) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		peers, err := n.TopicPeers(ctx, gid)
		if err != nil {
			t.Fatal(err)
		}
		if len(peers) == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s still sees topic peers %v: %v", n.ID(), peers, ctx.Err())
		}
	}
}

func waitState(t testing.TB, ctx context.Context, n *testNode, id [MessageIDLen]byte, state DeliveryState) MessageStateChanged {
	t.Helper()
	e := waitEvent(t, ctx, n, "message state "+state.String(), func(e Event) bool {
		s, ok := e.(MessageStateChanged)
		return ok && s.ID == id && s.State == state
	})
	return e.(MessageStateChanged)
}

func historyState(t testing.TB, ctx context.Context, n *testNode, gid []byte, id [MessageIDLen]byte) Message {
	t.Helper()
	h, err := n.History(ctx, gid, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range h {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("message %x not in %s's history", id, n.ID())
	return Message{}
}

// TestDeliveryStates: an own message is sent once a member is online to
// take it; cut off from every member it stays pending with the reason, and
// a membership change says it waits for a majority. Healing sends the
// message and decides the change.
func TestDeliveryStates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	a, b, c := startNode(t, testOptions("")), startNode(t, testOptions("")), startNode(t, testOptions(""))
	d := startNode(t, testOptions(""))
	connectAll(t, ctx, a, b, c)
	gid := formGroup(t, ctx, a, b, c)
	waitTopicPeers(t, ctx, gid, a, b, c)

	m, err := a.Send(ctx, gid, "with everyone", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, a, m.ID, DeliverySent)
	waitText(t, ctx, b, gid, "with everyone")
	if got := historyState(t, ctx, a, gid, m.ID); got.State != DeliverySent || got.Waiting != "" {
		t.Fatalf("history state %v %q, want sent", got.State, got.Waiting)
	}

	cut(a, b, c)
	waitNoTopicPeers(t, ctx, a, gid)
	connectAll(t, ctx, a, d)
	alone, err := a.Send(ctx, gid, "while alone", nil)
	if err != nil {
		t.Fatal(err)
	}
	if alone.State != DeliveryPending || alone.Waiting != waitNoMember {
		t.Fatalf("Send returned %v %q, want pending %q", alone.State, alone.Waiting, waitNoMember)
	}
	if got := historyState(t, ctx, a, gid, alone.ID); got.State != DeliveryPending || got.Waiting != waitNoMember {
		t.Fatalf("history state %v %q, want pending %q", got.State, got.Waiting, waitNoMember)
	}

	invited := make(chan error, 1)
	go func() { invited <- a.Invite(ctx, gid, d.ID()) }()
	const majority = "waiting for a majority of members to be online (1 of 3 reachable, 2 needed)"
	waitEvent(t, ctx, a, "the invitation waiting for a majority", func(e Event) bool {
		p, ok := e.(PendingChanged)
		return ok && bytes.Equal(p.GroupID, gid) && len(p.Pending) == 1 &&
			strings.HasPrefix(p.Pending[0].Desc, "invite ") && p.Pending[0].Waiting == majority
	})
	st, err := a.Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Pending) != 1 || st.Pending[0].Waiting != majority || st.Pending[0].Since.IsZero() {
		t.Fatalf("group status pending %+v", st.Pending)
	}

	heal(a, b, c)
	connectAll(t, ctx, a, b, c)
	waitState(t, ctx, a, alone.ID, DeliverySent)
	if err := <-invited; err != nil {
		t.Fatalf("invitation after healing: %v", err)
	}
	waitInHistory(t, ctx, b, gid, "while alone")
	waitEvent(t, ctx, a, "nothing pending", func(e Event) bool {
		p, ok := e.(PendingChanged)
		return ok && bytes.Equal(p.GroupID, gid) && len(p.Pending) == 0
	})
}
