package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/conclave-im/conclave/consensus"
	"github.com/conclave-im/conclave/gossip"
)

// TestHostileInput: a non-member that knows the group ID publishes and
// sends malformed and forged payloads of every kind the node reads. Nothing
// changes the group, nothing crashes, catch-up refuses to serve it, and the
// members go on chatting.
func TestHostileInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	a, b, x := startNode(t, testOptions("")), startNode(t, testOptions("")), startNode(t, testOptions(""))
	connectAll(t, ctx, a, b, x)
	gid := formGroup(t, ctx, a, b)
	before, err := a.Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}

	forged := consensus.Message{Type: consensus.MsgDecide, Epoch: 1, From: 0, Ballot: consensus.Ballot{Round: 2, Leaf: 0},
		Value:       commitValue{Commit: []byte{0, 1, 2}}.marshal(),
		Certificate: &consensus.Certificate{Ballot: consensus.Ballot{Round: 2, Leaf: 0}, Votes: []consensus.Vote{{Leaf: 0, Signature: make([]byte, 64)}, {Leaf: 1, Signature: make([]byte, 64)}}}}
	forgedBytes, err := forged.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	payloads := [][]byte{
		{},
		{0x7f, 1, 2, 3},
		{tagMLS},
		append([]byte{tagMLS}, make([]byte, 300)...),
		{tagDecide, 1, 6},
		append([]byte{tagDecide}, forgedBytes...),
		append([]byte{tagDecide}, forgedBytes[:len(forgedBytes)-3]...),
	}
	topic, err := x.net.Join(gid)
	if err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, ctx, gid, a, b)
	for _, p := range payloads {
		for _, kind := range []gossip.Kind{gossip.KindGroupMessage, gossip.KindConsensus} {
			if err := topic.Publish(ctx, kind, p); err != nil {
				t.Fatal(err)
			}
		}
		// Direct messages are acknowledged (the stream worked) and dropped.
		if err := x.net.SendDirect(ctx, a.AddrInfo().ID, gid, p); err != nil {
			t.Fatalf("direct: %v", err)
		}
		if err := x.net.SendWelcome(ctx, a.AddrInfo().ID, gid, p); err == nil {
			t.Fatalf("a malformed Welcome %x was accepted", p)
		}
	}
	if _, err := x.net.FetchCommits(ctx, a.AddrInfo().ID, gossip.CommitsRequest{GroupID: gid}); !errors.Is(err, gossip.ErrNotFound) {
		t.Fatalf("catch-up served a non-member: %v", err)
	}
	if _, err := x.net.FetchMessages(ctx, a.AddrInfo().ID, gossip.MessagesRequest{GroupID: gid}); !errors.Is(err, gossip.ErrNotFound) {
		t.Fatalf("catch-up served a non-member: %v", err)
	}

	if _, err := a.Send(ctx, gid, "still fine", nil); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, b, gid, "still fine")
	after, err := a.Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	if after.Epoch != before.Epoch || len(after.Members) != len(before.Members) {
		t.Fatalf("hostile input changed the group: %+v -> %+v", before, after)
	}
	requireConverged(t, ctx, gid, before.Epoch, a, b)
}
