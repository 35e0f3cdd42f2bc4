package gossip

import (
	"context"
	"fmt"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
)

// PeerEventType says what happened to a peer.
type PeerEventType uint8

// Peer event types. Group.PeerEvents reports PeerJoined and PeerLeft;
// Network.PeerEvents reports PeerConnected and PeerDisconnected.
const (
	PeerJoined       PeerEventType = 1 // the peer subscribed to the group's topic
	PeerLeft         PeerEventType = 2 // the peer unsubscribed or disconnected
	PeerConnected    PeerEventType = 3 // the node has a connection to the peer
	PeerDisconnected PeerEventType = 4 // the node's last connection to the peer closed
)

func (t PeerEventType) String() string {
	switch t {
	case PeerJoined:
		return "joined"
	case PeerLeft:
		return "left"
	case PeerConnected:
		return "connected"
	case PeerDisconnected:
		return "disconnected"
	}
	return fmt.Sprintf("PeerEventType(%d)", uint8(t))
}

// PeerEvent reports a change in a peer's presence on a group's topic or in
// its connection to this node.
type PeerEvent struct {
	Peer peer.ID
	Type PeerEventType
	// Limited is set on PeerConnected when every connection to the peer is
	// relayed (limited in time and data): direct protocols may use it, but
	// large transfers should wait for a direct connection.
	Limited bool
}

// PeerEvents reports the peers on the group's topic: first a PeerJoined for
// every peer already there, then every join and leave. The channel is
// closed when ctx ends, the group is left or the network closes.
//
// Memory is bounded by the topic's peers, not by the reader's speed: while
// the reader lags, a join and a leave of the same peer that it has not yet
// received cancel out, so it may miss a peer that came and went but never
// sees a stale state. Events of one peer arrive in order.
func (g *Group) PeerEvents(ctx context.Context) (<-chan PeerEvent, error) {
	h, err := g.eventHandler()
	if err != nil {
		return nil, err
	}
	ch := make(chan PeerEvent)
	go func() {
		defer g.watchers.Done()
		defer h.Cancel()
		defer close(ch)
		ctx, cancel := g.bound(ctx)
		defer cancel()
		for {
			ev, err := h.NextPeerEvent(ctx)
			if err != nil {
				return
			}
			select {
			case ch <- topicEvent(ev):
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// WaitPeer waits until p is subscribed to the group's topic (at once if it
// already is). It returns ErrClosed if the group is left first.
func (g *Group) WaitPeer(ctx context.Context, p peer.ID) error {
	h, err := g.eventHandler()
	if err != nil {
		return err
	}
	defer g.watchers.Done()
	defer h.Cancel()
	bctx, cancel := g.bound(ctx)
	defer cancel()
	for {
		ev, err := h.NextPeerEvent(bctx)
		if err != nil {
			if ctx.Err() == nil {
				return ErrClosed
			}
			return fmt.Errorf("gossip: waiting for %s on the group's topic: %w", p, ctx.Err())
		}
		if ev.Peer == p && ev.Type == pubsub.PeerJoin {
			return nil
		}
	}
}

// eventHandler registers a watcher of the topic's peer events. The caller
// must call h.Cancel and then g.watchers.Done; leave waits for them before
// closing the topic, which pubsub refuses while handlers are registered.
func (g *Group) eventHandler() (*pubsub.TopicEventHandler, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.left {
		return nil, ErrClosed
	}
	h, err := g.topic.EventHandler()
	if err != nil {
		return nil, fmt.Errorf("gossip: topic events: %w", err)
	}
	g.watchers.Add(1)
	return h, nil
}

// bound returns a context that also ends when the group is left.
func (g *Group) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(g.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

func topicEvent(ev pubsub.PeerEvent) PeerEvent {
	if ev.Type == pubsub.PeerJoin {
		return PeerEvent{Peer: ev.Peer, Type: PeerJoined}
	}
	return PeerEvent{Peer: ev.Peer, Type: PeerLeft}
}

// PeerEvents reports the node's connections: first a PeerConnected for
// every peer connected now, then a PeerConnected when the node goes from
// no connection to a peer to at least one, and a PeerDisconnected when the
// last one closes. The channel is closed when ctx ends or the network
// closes.
//
// Memory is bounded by the number of peers, not by the reader's speed:
// while the reader lags, only the latest state of each peer is kept. A
// PeerConnected can therefore follow a PeerConnected when the peer
// disconnected and reconnected in between (a reason to catch up with it),
// and a PeerDisconnected can arrive for a peer that connected and left
// before it was reported.
func (n *Network) PeerEvents(ctx context.Context) (<-chan PeerEvent, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	// The buffer only smooths bursts: the goroutine below moves every
	// event into its own queue at once, so the bus never blocks on it.
	sub, err := n.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged), eventbus.BufSize(256), eventbus.Name("conclave/gossip"))
	if err != nil {
		return nil, fmt.Errorf("gossip: connection events: %w", err)
	}
	var q peerQueue
	nw := n.host.Network()
	for _, p := range nw.Peers() {
		q.put(connEvent(p, nw.Connectedness(p)))
	}
	ch := make(chan PeerEvent)
	n.goTracked(func() {
		defer close(ch)
		defer sub.Close()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(n.ctx, cancel)
		defer stop()
		for {
			var out chan PeerEvent
			next, ok := q.peek()
			if ok {
				out = ch
			}
			select {
			case e, open := <-sub.Out():
				if !open {
					return
				}
				ev := e.(event.EvtPeerConnectednessChanged)
				q.put(connEvent(ev.Peer, ev.Connectedness))
			case out <- next:
				q.pop()
			case <-ctx.Done():
				return
			}
		}
	})
	return ch, nil
}

func connEvent(p peer.ID, c network.Connectedness) PeerEvent {
	switch c {
	case network.Connected:
		return PeerEvent{Peer: p, Type: PeerConnected}
	case network.Limited:
		return PeerEvent{Peer: p, Type: PeerConnected, Limited: true}
	}
	return PeerEvent{Peer: p, Type: PeerDisconnected}
}

// peerQueue is a FIFO of peer events holding at most one event per peer: a
// newer event replaces a queued one in place.
type peerQueue struct {
	order []peer.ID
	last  map[peer.ID]PeerEvent
}

func (q *peerQueue) put(ev PeerEvent) {
	if q.last == nil {
		q.last = make(map[peer.ID]PeerEvent)
	}
	if _, queued := q.last[ev.Peer]; !queued {
		q.order = append(q.order, ev.Peer)
	}
	q.last[ev.Peer] = ev
}

func (q *peerQueue) peek() (PeerEvent, bool) {
	if len(q.order) == 0 {
		return PeerEvent{}, false
	}
	return q.last[q.order[0]], true
}

func (q *peerQueue) pop() {
	delete(q.last, q.order[0])
	q.order[0] = ""
	q.order = q.order[1:]
	if len(q.order) == 0 {
		q.order = nil // let the backing array go
	}
}
