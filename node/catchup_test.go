package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/conclave-im/conclave/gossip"
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

// TestCatchUpOfflineDuringTwoChanges: a member is stopped while the others
// change the membership twice and send 100 messages, from four senders,
// in the two new epochs. Restarted from its data directory and connected
// to everyone, it learns both Commits (checking their certificates),
// reaches the newest epoch, and has each of the 100 messages exactly once,
// each sender's in the order sent, although every member serves it the
// same messages.
func TestCatchUpOfflineDuringTwoChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dirC := t.TempDir()
	a, b, c := startNode(t, testOptions("")), startNode(t, testOptions("")), startNode(t, testOptions(dirC))
	d, e := startNode(t, testOptions("")), startNode(t, testOptions(""))
	connectAll(t, ctx, a, b, c)
	gid := formGroup(t, ctx, a, b, c) // epoch 2
	waitTopicPeers(t, ctx, gid, a, b, c)
	if _, err := b.Send(ctx, gid, "before", nil); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, c, gid, "before")
	closeNode(t, c.Node)

	connectAll(t, ctx, a, b, d, e)
	if err := a.Invite(ctx, gid, d.ID()); err != nil { // epoch 3: two of three voters are up
		t.Fatal(err)
	}
	waitJoined(t, ctx, d, gid)
	waitEpoch(t, ctx, b, gid, 3)
	waitTopicPeers(t, ctx, gid, a, b, d)
	var texts []string
	send := func(from *testNode, text string) {
		t.Helper()
		if _, err := from.Send(ctx, gid, text, nil); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, text)
	}
	senders := map[*testNode]string{a: "a", b: "b", d: "d"}
	for i := range 50 {
		from := []*testNode{a, b, d}[i%3]
		send(from, fmt.Sprintf("%s %d", senders[from], i))
	}
	if err := b.Invite(ctx, gid, e.ID()); err != nil { // epoch 4: three of four voters are up
		t.Fatal(err)
	}
	waitJoined(t, ctx, e, gid)
	for _, n := range []*testNode{a, d} {
		waitEpoch(t, ctx, n, gid, 4)
	}
	waitTopicPeers(t, ctx, gid, a, b, d, e)
	senders[e] = "e"
	for i := 50; i < 100; i++ {
		from := []*testNode{a, b, d, e}[i%4]
		send(from, fmt.Sprintf("%s %d", senders[from], i))
	}

	c2 := startNode(t, testOptions(dirC))
	connectAll(t, ctx, c2, a, b, d, e)
	waitEpoch(t, ctx, c2, gid, 4)
	waitReceived(t, ctx, c2, gid, len(texts))
	requireConverged(t, ctx, gid, 4, a, b, c2, d, e)

	h, err := c2.History(ctx, gid, 1000)
	if err != nil {
		t.Fatal(err)
	}
	count := make(map[string]int)
	last := make(map[string]int) // sender -> index of its last message seen
	for _, m := range h {
		if m.Type != ContentText {
			continue
		}
		count[m.Text]++
		var who string
		var i int
		if _, err := fmt.Sscanf(m.Text, "%s %d", &who, &i); err != nil {
			continue
		}
		if prev, ok := last[who]; ok && i < prev {
			t.Errorf("%s's message %d after its message %d", who, i, prev)
		}
		last[who] = i
	}
	for _, text := range append(texts, "before") {
		if count[text] != 1 {
			t.Errorf("%q in c's history %d times", text, count[text])
		}
	}
	if len(count) != len(texts)+1 {
		t.Errorf("c's history holds %d distinct texts, want %d", len(count), len(texts)+1)
	}

	// c keeps where it stands with each member across a restart, so the
	// next catch-up with a asks only for what a logged since.
	ap := a.AddrInfo().ID
	waitCursorAtEnd(t, ctx, c2, a, gid)
	closeNode(t, c2.Node)
	if _, err := a.Send(ctx, gid, "one more", nil); err != nil {
		t.Fatal(err)
	}
	c3 := startNode(t, testOptions(dirC))
	stored, err := c3.store.SyncCursors().Get(ctx, gid, []byte(ap))
	if err != nil {
		t.Fatalf("cursor for a after the restart: %v", err)
	}
	sc, err := call(ctx, a.Node, func() (servingScope, error) { return a.servingScope(c3.AddrInfo().ID, gid) })
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.serveMessages(ctx, sc, gossip.MessagesRequest{GroupID: gid, Cursor: stored.Cursor})
	if err != nil || len(resp.Messages) != 1 || resp.More {
		t.Fatalf("after c's cursor a has %d messages (more: %v, %v), want only the new one", len(resp.Messages), resp.More, err)
	}
	connectAll(t, ctx, c3, a)
	waitText(t, ctx, c3, gid, "one more")
}

// waitCursorAtEnd waits until n's stored cursor with server points at the
// last entry of server's log of the group. Nothing signals a stored
// cursor, so this re-checks on a short ticker, bounded by ctx.
func waitCursorAtEnd(t testing.TB, ctx context.Context, n, server *testNode, gid []byte) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		es, err := server.store.MessageLog().Newest(ctx, gid, 1)
		if err != nil || len(es) != 1 {
			t.Fatalf("server's log: %v, %v", es, err)
		}
		stored, err := n.store.SyncCursors().Get(ctx, gid, []byte(server.AddrInfo().ID))
		if err == nil {
			if c, err := parseMessageCursor(stored.Cursor); err == nil && c.seq == es[0].Seq {
				return
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: cursor with %s never reached the end of its log (%v)", n.ID(), server.ID(), err)
		}
	}
}

// TestPeriodicSyncRecoversMissedGossip: a member that stays connected but
// misses messages on the topic (here its node drops them unread) gets them
// from the periodic sync, without a new connection.
func TestPeriodicSyncRecoversMissedGossip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := func() Options {
		o := testOptions("")
		o.Profile.Delivery.CommitSyncInterval = 300 * time.Millisecond
		return o
	}
	a, b, c := startNode(t, opts()), startNode(t, opts()), startNode(t, opts())
	connectAll(t, ctx, a, b, c)
	gid := formGroup(t, ctx, a, b, c)
	waitTopicPeers(t, ctx, gid, a, b, c)
	conns := func() map[string]bool {
		out := make(map[string]bool)
		for _, cn := range b.net.Host().Network().Conns() {
			out[cn.ID()] = true
		}
		return out
	}
	before := conns()

	// b stops reading the topic while a's messages arrive (they reach c,
	// so they count as sent and are never published again), then drops
	// its subscription with the unread messages and subscribes again: its
	// gossip layer has seen them and does not ask for them again.
	if _, err := call(ctx, b.Node, func() (struct{}, error) {
		g := b.st.groups[string(gid)]
		g.stopReader()
		g.stopReader = nil
		return struct{}{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	const missed = 30
	for i := range missed {
		text := fmt.Sprintf("missed %d", i)
		if _, err := a.Send(ctx, gid, text, nil); err != nil {
			t.Fatal(err)
		}
		waitText(t, ctx, c, gid, text)
	}
	if _, err := call(ctx, b.Node, func() (struct{}, error) {
		g := b.st.groups[string(gid)]
		b.detach(g)
		return struct{}{}, b.attachGroup(g)
	}); err != nil {
		t.Fatal(err)
	}
	waitReceived(t, ctx, b, gid, missed)
	if got := countTexts(t, ctx, b, gid); got != missed {
		t.Fatalf("b's history holds %d messages, want %d", got, missed)
	}
	after := conns()
	for id := range after {
		if !before[id] {
			t.Fatalf("b opened a new connection (%s); the messages must come without one", id)
		}
	}
	// And b is a full member on the topic again.
	waitTopicPeers(t, ctx, gid, a, b, c)
	if _, err := b.Send(ctx, gid, "b is back", nil); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, a, gid, "b is back")
}
