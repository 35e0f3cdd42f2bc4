package gossip

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// nextEvent reads one event or fails the test.
func nextEvent(t *testing.T, ctx context.Context, ch <-chan PeerEvent) PeerEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("event channel closed early")
		}
		return ev
	case <-ctx.Done():
		t.Fatal("no event before the deadline")
	}
	return PeerEvent{}
}

// expectEvents reads events until each of want has arrived, and fails on
// any other event.
func expectEvents(t *testing.T, ctx context.Context, ch <-chan PeerEvent, want ...PeerEvent) {
	t.Helper()
	pending := make(map[PeerEvent]bool)
	for _, w := range want {
		pending[w] = true
	}
	for len(pending) > 0 {
		ev := nextEvent(t, ctx, ch)
		if !pending[ev] {
			t.Fatalf("unexpected event %v %s (waiting for %v)", ev.Type, ev.Peer, pending)
		}
		delete(pending, ev)
	}
}

// expectClosed waits for ch to be closed, failing on any event.
func expectClosed(t *testing.T, ctx context.Context, ch <-chan PeerEvent) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if ok {
			t.Fatalf("event %v %s after the end", ev.Type, ev.Peer)
		}
	case <-ctx.Done():
		t.Fatal("event channel not closed")
	}
}

// watcherGoroutines counts goroutines running the event forwarders.
func watcherGoroutines() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "gossip.(*Group).PeerEvents") || strings.Contains(g, "gossip.(*Group).WaitPeer") ||
			strings.Contains(g, "gossip.(*Network).PeerEvents") {
			n++
		}
	}
	return n
}

// noWatchers fails unless every forwarder goroutine has exited. Leave and
// Close wait for the forwarders, but a goroutine that has finished its work
// can still be on its way out, and that exit sends no event to wait on, so
// this re-checks briefly.
func noWatchers(t *testing.T) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2 * time.Second)
	for watcherGoroutines() > 0 {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%d event goroutines still running", watcherGoroutines())
		}
	}
}

func TestGroupPeerEvents(t *testing.T) {
	nets := newNets(t, 4, nil)
	a, b, c, d := nets[0], nets[1], nets[2], nets[3]
	for _, x := range nets[1:] {
		connect(t, a, x)
	}
	gid := []byte("peer-events")
	ga, err := a.Join(gid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Join(gid); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 30*time.Second)
	if err := ga.WaitPeer(ctx, b.ID()); err != nil {
		t.Fatal(err)
	}

	// A watcher sees who is there already, then every change.
	events, err := ga.PeerEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expectEvents(t, ctx, events, PeerEvent{Peer: b.ID(), Type: PeerJoined})
	gc, err := c.Join(gid)
	if err != nil {
		t.Fatal(err)
	}
	expectEvents(t, ctx, events, PeerEvent{Peer: c.ID(), Type: PeerJoined})
	if err := gc.Leave(); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, ctx, events, PeerEvent{Peer: c.ID(), Type: PeerLeft})
	// A peer that disconnects leaves the topic too.
	b.Close()
	expectEvents(t, ctx, events, PeerEvent{Peer: b.ID(), Type: PeerLeft})

	// A second watcher with its own context; cancelling it closes only
	// its channel.
	wctx, wcancel := context.WithCancel(ctx)
	other, err := ga.PeerEvents(wctx)
	if err != nil {
		t.Fatal(err)
	}
	wcancel()
	expectClosed(t, ctx, other)

	// WaitPeer blocks until the peer joins, and gives up with its context.
	waited := make(chan error, 1)
	go func() { waited <- ga.WaitPeer(ctx, d.ID()) }()
	short, scancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer scancel()
	if err := ga.WaitPeer(short, c.ID()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitPeer for an absent peer: %v, want DeadlineExceeded", err)
	}
	if _, err := d.Join(gid); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	expectEvents(t, ctx, events, PeerEvent{Peer: d.ID(), Type: PeerJoined})

	// Leave ends every watcher: channels close, waits return ErrClosed,
	// no goroutine stays behind, and new watchers are refused.
	for range 20 {
		if _, err := ga.PeerEvents(ctx); err != nil {
			t.Fatal(err)
		}
	}
	go func() { waited <- ga.WaitPeer(ctx, c.ID()) }()
	if n := watcherGoroutines(); n < 20 {
		t.Fatalf("%d event goroutines running, want at least 20", n) // the leak check below can see them
	}
	if err := ga.Leave(); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, ctx, events)
	if err := <-waited; !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitPeer across Leave: %v, want ErrClosed", err)
	}
	if _, err := ga.PeerEvents(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("PeerEvents after Leave: %v, want ErrClosed", err)
	}
	if err := ga.WaitPeer(ctx, d.ID()); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitPeer after Leave: %v, want ErrClosed", err)
	}
	noWatchers(t)

	// The topic can be joined again: Leave closed it cleanly.
	if _, err := a.Join(gid); err != nil {
		t.Fatal(err)
	}
}

// A reader that lags holds at most one event per peer, plus the one its
// forwarder is trying to hand over, and still ends in the right state.
func TestGroupPeerEventsSlowReader(t *testing.T) {
	nets := newNets(t, 3, nil)
	a := nets[0]
	for _, x := range nets[1:] {
		connect(t, a, x)
	}
	gid := []byte("slow-reader")
	ga, err := a.Join(gid)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 30*time.Second)
	slow, err := ga.PeerEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := ga.PeerEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// nets[1] joins and leaves twice, then both join and stay.
	for range 2 {
		g, err := nets[1].Join(gid)
		if err != nil {
			t.Fatal(err)
		}
		expectEvents(t, ctx, fast, PeerEvent{Peer: nets[1].ID(), Type: PeerJoined})
		if err := g.Leave(); err != nil {
			t.Fatal(err)
		}
		expectEvents(t, ctx, fast, PeerEvent{Peer: nets[1].ID(), Type: PeerLeft})
	}
	for _, x := range nets[1:] {
		if _, err := x.Join(gid); err != nil {
			t.Fatal(err)
		}
		expectEvents(t, ctx, fast, PeerEvent{Peer: x.ID(), Type: PeerJoined})
	}
	present := make(map[peer.ID]bool)
	got := 0
	for !present[nets[1].ID()] || !present[nets[2].ID()] {
		ev := nextEvent(t, ctx, slow)
		present[ev.Peer] = ev.Type == PeerJoined
		got++
	}
	if got > 3 {
		t.Fatalf("slow reader got %d events for 2 peers, want at most 3", got)
	}
	select {
	case ev := <-slow:
		t.Fatalf("extra event %v %s", ev.Type, ev.Peer)
	default:
	}
}

func TestNetworkPeerEvents(t *testing.T) {
	nets := newNets(t, 3, nil)
	a, b, c := nets[0], nets[1], nets[2]
	connect(t, a, b)
	ctx := testCtx(t, 30*time.Second)
	events, err := a.PeerEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expectEvents(t, ctx, events, PeerEvent{Peer: b.ID(), Type: PeerConnected})
	connect(t, c, a)
	expectEvents(t, ctx, events, PeerEvent{Peer: c.ID(), Type: PeerConnected})
	a.Block(b.ID())
	expectEvents(t, ctx, events, PeerEvent{Peer: b.ID(), Type: PeerDisconnected})
	c.Close()
	expectEvents(t, ctx, events, PeerEvent{Peer: c.ID(), Type: PeerDisconnected})

	wctx, wcancel := context.WithCancel(ctx)
	other, err := a.PeerEvents(wctx)
	if err != nil {
		t.Fatal(err)
	}
	wcancel()
	expectClosed(t, ctx, other)

	if n := watcherGoroutines(); n < 1 {
		t.Fatal("the event goroutine is not visible to the leak check")
	}
	a.Close()
	expectClosed(t, ctx, events)
	if _, err := a.PeerEvents(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("PeerEvents after Close: %v, want ErrClosed", err)
	}
	noWatchers(t)
}

func TestPeerQueue(t *testing.T) {
	var q peerQueue
	if _, ok := q.peek(); ok {
		t.Fatal("empty queue has an event")
	}
	p1, p2 := peer.ID("p1"), peer.ID("p2")
	q.put(PeerEvent{Peer: p1, Type: PeerConnected})
	q.put(PeerEvent{Peer: p2, Type: PeerConnected})
	q.put(PeerEvent{Peer: p1, Type: PeerDisconnected}) // replaces p1's event in place
	q.put(PeerEvent{Peer: p1, Type: PeerConnected, Limited: true})
	want := []PeerEvent{{Peer: p1, Type: PeerConnected, Limited: true}, {Peer: p2, Type: PeerConnected}}
	for _, w := range want {
		got, ok := q.peek()
		if !ok || got != w {
			t.Fatalf("peek = %v, %v; want %v", got, ok, w)
		}
		q.pop()
	}
	if _, ok := q.peek(); ok || len(q.last) != 0 {
		t.Fatal("queue not empty after popping everything")
	}
}
