package gossip

import (
	"context"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// tracer receives gossipsub's raw trace events. It counts every drop, and it
// tracks how many RPCs sit in each peer's outbound queue so that Publish can
// wait while a peer is congested instead of overflowing its queue (which
// gossipsub resolves by dropping).
//
// Its methods run on gossipsub's event loop (and SendRPCCompleted on the
// per-peer writers), so each does O(1) work under one mutex.
type tracer struct {
	metrics   *metrics
	high, low int

	mu        sync.Mutex
	queued    map[peer.ID]int
	congested int // peers with queued >= high that have not yet drained to low
	hot       map[peer.ID]bool
	drained   chan struct{} // closed and replaced whenever congested drops to 0

	graylisted map[peer.ID]bool // peers below the graylist threshold, per the last score snapshot

	mesh        map[string]map[peer.ID]struct{} // our mesh peers per topic
	meshChanged chan struct{}                   // closed and replaced on every graft and prune
}

func newTracer(m *metrics, high int) *tracer {
	return &tracer{
		metrics: m,
		high:    high,
		low:     high / 2,
		queued:  make(map[peer.ID]int),
		hot:     make(map[peer.ID]bool),
		drained: make(chan struct{}),

		mesh:        make(map[string]map[peer.ID]struct{}),
		meshChanged: make(chan struct{}),
	}
}

// scoreSnapshot records which peers gossipsub graylists, so that RPCs it
// then ignores without a trace event can still be counted. It runs every
// scoreInspectPeriod, so a peer's first ignored RPCs may go uncounted for up
// to that long.
func (t *tracer) scoreSnapshot(scores map[peer.ID]float64) {
	gray := make(map[peer.ID]bool)
	for p, s := range scores {
		if s < peerScoreThresholds().GraylistThreshold {
			gray[p] = true
		}
	}
	t.mu.Lock()
	t.graylisted = gray
	t.mu.Unlock()
}

// scoreInspectPeriod: every snapshot costs each node a goroutine, a timer
// and a pass over every peer's score under the score lock. At 100 ms this
// was most of an idle node's CPU (30 idle hosts: 41 ms/s against 5.7 ms/s
// for plain pubsub); once a second it is a tenth of that, and only the
// graylisted-drop count lags, never the graylisting itself.
const scoreInspectPeriod = time.Second

// inspectRPC sees every incoming RPC before gossipsub decides whether to
// accept it; it counts the messages of graylisted peers, which gossipsub
// drops silently.
func (t *tracer) inspectRPC(from peer.ID, rpc *pubsub.RPC) error {
	t.mu.Lock()
	gray := t.graylisted[from]
	t.mu.Unlock()
	if gray {
		if n := len(rpc.GetPublish()); n > 0 {
			t.metrics.dropN(DropGraylisted, float64(n))
		}
	}
	return nil
}

// meshSize returns the number of mesh peers on topic and a channel closed
// at the next mesh change.
func (t *tracer) meshSize(topic string) (int, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.mesh[topic]), t.meshChanged
}

// meshUpdate must be called with t.mu held.
func (t *tracer) meshUpdate(topic string, p peer.ID, in bool) {
	m := t.mesh[topic]
	if in {
		if m == nil {
			m = make(map[peer.ID]struct{})
			t.mesh[topic] = m
		}
		m[p] = struct{}{}
	} else {
		delete(m, p)
		if len(m) == 0 {
			delete(t.mesh, topic)
		}
	}
	close(t.meshChanged)
	t.meshChanged = make(chan struct{})
}

func (t *tracer) Graft(p peer.ID, topic string) {
	t.mu.Lock()
	t.meshUpdate(topic, p, true)
	t.mu.Unlock()
}

func (t *tracer) Prune(p peer.ID, topic string) {
	t.mu.Lock()
	t.meshUpdate(topic, p, false)
	t.mu.Unlock()
}

func (t *tracer) Leave(topic string) {
	t.mu.Lock()
	delete(t.mesh, topic)
	close(t.meshChanged)
	t.meshChanged = make(chan struct{})
	t.mu.Unlock()
}

// waitUncongested blocks while any peer's outbound queue is above the high
// watermark, for at most maxWait. It returns how long it waited, and an
// error only if ctx ended. The uncongested case, nearly every call, takes
// one lock and no timer.
func (t *tracer) waitUncongested(ctx context.Context, maxWait time.Duration) (time.Duration, error) {
	t.mu.Lock()
	if t.congested == 0 {
		t.mu.Unlock()
		return 0, nil
	}
	start := time.Now()
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	for t.congested > 0 {
		ch := t.drained
		t.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return time.Since(start), nil
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		}
		t.mu.Lock()
	}
	t.mu.Unlock()
	return time.Since(start), nil
}

func (t *tracer) adjust(p peer.ID, delta int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	q := t.queued[p] + delta
	if q < 0 {
		q = 0
	}
	t.queued[p] = q
	switch {
	case !t.hot[p] && q >= t.high:
		t.hot[p] = true
		t.congested++
	case t.hot[p] && q <= t.low:
		t.cool(p)
	}
}

// cool marks p uncongested; t.mu must be held.
func (t *tracer) cool(p peer.ID) {
	delete(t.hot, p)
	t.congested--
	if t.congested == 0 {
		close(t.drained)
		t.drained = make(chan struct{})
	}
}

func (t *tracer) forget(p peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hot[p] {
		t.cool(p)
	}
	delete(t.queued, p)
}

func (t *tracer) SendRPC(_ *pubsub.RPC, p peer.ID) { t.adjust(p, 1) }
func (t *tracer) SendRPCCompleted(_ *pubsub.RPC, p peer.ID, _ time.Duration) {
	t.adjust(p, -1)
}
func (t *tracer) RemovePeer(p peer.ID) {
	t.forget(p)
	t.mu.Lock()
	for topic, m := range t.mesh {
		if _, ok := m[p]; ok {
			t.meshUpdate(topic, p, false)
		}
	}
	t.mu.Unlock()
}

// OnClosedOutboundStream also resets the count: RPCs still queued for a
// closed stream are never written.
func (t *tracer) OnClosedOutboundStream(p peer.ID) { t.forget(p) }

func (t *tracer) DropRPC(rpc *pubsub.RPC, _ peer.ID) {
	if n := len(rpc.GetPublish()); n > 0 {
		t.metrics.dropN(DropOutbound, float64(n))
	}
}

func (t *tracer) UndeliverableMessage(*pubsub.Message) { t.metrics.drop(DropSubscriberSlow) }
func (t *tracer) ThrottlePeer(peer.ID)                 { t.metrics.drop(DropPeerThrottled) }

func (t *tracer) RejectMessage(_ *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectValidationQueueFull:
		t.metrics.drop(DropValidateQueue)
	case pubsub.RejectValidationThrottled:
		t.metrics.drop(DropThrottled)
	case pubsub.RejectMissingSignature, pubsub.RejectUnexpectedSignature,
		pubsub.RejectUnexpectedAuthInfo, pubsub.RejectInvalidSignature:
		t.metrics.drop(DropSignature)
	case pubsub.RejectBlacklstedPeer, pubsub.RejectBlacklistedSource:
		t.metrics.drop(DropBlacklisted)
	case pubsub.RejectValidationFailed, pubsub.RejectValidationIgnored, pubsub.RejectSelfOrigin:
		// Counted by the validator with a precise reason, or harmless
		// (our own message echoed back).
	default:
		t.metrics.drop(DropOther)
	}
}

func (t *tracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (t *tracer) AddPeer(peer.ID, protocol.ID)             {}
func (t *tracer) Join(string)                              {}
func (t *tracer) ValidateMessage(*pubsub.Message)          {}
func (t *tracer) DeliverMessage(*pubsub.Message)           {}
func (t *tracer) DuplicateMessage(*pubsub.Message)         {}
func (t *tracer) RecvRPC(*pubsub.RPC)                      {}
