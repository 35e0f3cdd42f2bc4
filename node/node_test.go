package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/conclave-im/conclave/identity"
)

// TestThreeNodesChat: three nodes on real libp2p hosts over loopback form a
// group through two decided invitations and chat in every direction; every
// member ends at the same epoch authenticator.
func TestThreeNodesChat(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	a, b, c := startNode(t, testOptions("")), startNode(t, testOptions("")), startNode(t, testOptions(""))
	connectAll(t, ctx, a, b, c)

	gid, err := a.CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Invite(ctx, gid, b.ID()); err != nil {
		t.Fatalf("invite b: %v", err)
	}
	waitJoined(t, ctx, b, gid)
	if err := a.Invite(ctx, gid, c.ID()); err != nil {
		t.Fatalf("invite c: %v", err)
	}
	waitJoined(t, ctx, c, gid)
	waitEpoch(t, ctx, b, gid, 2)
	requireConverged(t, ctx, gid, 2, a, b, c)

	st, err := c.Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Members {
		if m.Assurance != identity.Verified || m.PeerID == "" {
			t.Errorf("member %+v not verified", m)
		}
	}

	waitTopicPeers(t, ctx, gid, a, b, c)
	for _, sender := range []*testNode{a, b, c} {
		text := "hello from " + sender.ID()
		sent, err := sender.Send(ctx, gid, text, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []*testNode{a, b, c} {
			if r == sender {
				continue
			}
			got := waitText(t, ctx, r, gid, text)
			if got.Sender != sender.ID() || got.ID != sent.ID || got.Epoch != 2 {
				t.Errorf("%s received %+v, sent %+v", r.ID(), got, sent)
			}
		}
	}
	// A reply carries its reference.
	first, err := a.History(ctx, gid, 100)
	if err != nil {
		t.Fatal(err)
	}
	var hello Message
	for _, m := range first {
		if m.Type == ContentText {
			hello = m
			break
		}
	}
	if _, err := c.Send(ctx, gid, "re", hello.ID[:]); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*testNode{a, b} {
		if got := waitText(t, ctx, r, gid, "re"); string(got.ReplyTo) != string(hello.ID[:]) {
			t.Errorf("reply-to %x, want %x", got.ReplyTo, hello.ID)
		}
	}

	// Every history holds the four messages and the two membership events
	// (the joiners see only what happened since they joined).
	for _, n := range []*testNode{a, b, c} {
		h, err := n.History(ctx, gid, 100)
		if err != nil {
			t.Fatal(err)
		}
		texts, events := 0, 0
		for _, m := range h {
			switch m.Type {
			case ContentText:
				texts++
			case ContentEvent:
				events++
			}
		}
		if texts != 4 {
			t.Errorf("%s history has %d messages, want 4: %+v", n.ID(), texts, h)
		}
		if n == a && events != 2 {
			t.Errorf("a's history has %d membership events, want 2", events)
		}
	}
	requireConverged(t, ctx, gid, 2, a, b, c)
}

// TestBurstInOrder: messages sent in a burst each arrive exactly once and
// in the order sent, although gossip may reorder them on the way.
func TestBurstInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	a, b := startNode(t, testOptions("")), startNode(t, testOptions(""))
	connectAll(t, ctx, a, b)
	gid := formGroup(t, ctx, a, b)
	waitTopicPeers(t, ctx, gid, a, b)
	const count = 50
	for i := range count {
		if _, err := a.Send(ctx, gid, fmt.Sprint(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	seen := make(map[string]int)
	var order []string
	for len(order) < count {
		m := waitEvent(t, ctx, b, "the burst", func(e Event) bool { _, ok := e.(MessageReceived); return ok }).(MessageReceived).Message
		seen[m.Text]++
		order = append(order, m.Text)
	}
	for i, s := range order {
		if s != fmt.Sprint(i) {
			t.Fatalf("delivery order %v", order)
		}
	}
	h, err := b.History(ctx, gid, 1000)
	if err != nil {
		t.Fatal(err)
	}
	inHistory := make(map[string]int)
	for _, m := range h {
		if m.Type == ContentText {
			inHistory[m.Text]++
		}
	}
	for i := range count {
		if s := fmt.Sprint(i); seen[s] != 1 || inHistory[s] != 1 {
			t.Errorf("message %s received %d times, %d times in the history", s, seen[s], inHistory[s])
		}
	}
}
