package gossip

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// newRawPubsub starts plain go-libp2p-pubsub on a plain loopback host, with
// Conclave's signing policy unless signed is set. It stands for an attacker
// (who can send anything) and, in benchmarks, for the baseline without
// Conclave's layer.
func newRawPubsub(t testing.TB, signed bool, opts ...pubsub.Option) (host.Host, *pubsub.PubSub) {
	t.Helper()
	h, err := libp2p.New(libp2p.Identity(newKey(t)), libp2p.ListenAddrStrings(loopbackAddrs...), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if signed {
		opts = append([]pubsub.Option{pubsub.WithMessageSignaturePolicy(pubsub.StrictSign)}, opts...)
	} else {
		opts = append([]pubsub.Option{
			pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
			pubsub.WithNoAuthor(),
			pubsub.WithMessageIdFn(MessageID),
		}, opts...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(ctx, h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return h, ps
}

func envelopeBytes(t testing.TB, k Kind, body []byte) []byte {
	b, err := Envelope{Kind: k, Body: body}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHostileGossip: an attacker publishes garbage on a group topic. The
// victim rejects each message before forwarding it, counts it by reason,
// and keeps delivering honest traffic; the honest host behind the victim
// never sees the garbage.
func TestHostileGossip(t *testing.T) {
	nets := newNets(t, 2, nil)
	victim, honest := nets[0], nets[1]
	connect(t, victim, honest)
	gid := []byte("hostile-group")
	vg, err := victim.Join(gid)
	if err != nil {
		t.Fatal(err)
	}
	hg, err := honest.Join(gid)
	if err != nil {
		t.Fatal(err)
	}
	sent := &sentCounter{}
	ah, aps := newRawPubsub(t, false, pubsub.WithMaxMessageSize(2<<20), pubsub.WithRawTracer(sent))
	at, err := aps.Join(Topic(gid))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := at.Subscribe(); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 50*time.Second)
	if err := ah.Connect(ctx, victim.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	if err := vg.WaitMesh(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := hg.WaitMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// The attacker's gossipsub must have a send queue to the victim before
	// it publishes, or it would publish to nobody.
	if err := eventually(ctx, func() bool { return slices.Contains(at.ListPeers(), victim.ID()) }); err != nil {
		t.Fatal(err)
	}

	// Six invalid messages (five kinds). Each generator makes a distinct variant
	// per attempt (the attacker's own gossipsub would drop an identical
	// republication as already seen).
	attacks := []struct {
		reason string
		data   func(i int) []byte
	}{
		{DropBadVersion, func(i int) []byte { return fmt.Appendf(nil, "not an envelope %d", i) }},
		{DropBadVersion, func(i int) []byte { return fmt.Appendf(nil, "still not an envelope %d", i) }},
		{DropMalformed, func(i int) []byte { return envelopeBytes(t, KindGroupMessage, fmt.Appendf(nil, "ok %d", i))[:7] }},
		{DropUnknownKind, func(i int) []byte { return []byte{EnvelopeVersion, 0x7e, 0, 0, 0, 1, byte(i)} }},
		{DropUnknownKind, func(i int) []byte { return envelopeBytes(t, KindWelcome, fmt.Appendf(nil, "stream kind %d", i)) }},
		{DropOversized, func(i int) []byte {
			return envelopeBytes(t, KindPayloadRef, PayloadRef{Kind: KindGroupMessage, Size: 1<<30 + uint32(i)}.Marshal())
		}},
	}
	// Every attack is counted, by its reason, by whichever of our hosts it
	// reached (the attacker may learn of the honest host through peer
	// exchange and send to it too).
	both := func(reason string) float64 { return dropCount(victim, reason) + dropCount(honest, reason) }
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for k, a := range attacks {
		before, attempt := both(a.reason), 0
		err := waitFor(ctx, tick.C, func() bool {
			if both(a.reason) > before {
				return true
			}
			attempt++
			at.Publish(ctx, a.data(attempt))
			return false
		})
		if err != nil {
			t.Fatalf("attack %d (%s) never counted: victim %v, honest %v", k, a.reason, drops(victim), drops(honest))
		}
	}
	// An honest message published after the attack arrives at both, and
	// nothing the attacker sent does.
	if err := hg.Publish(ctx, KindGroupMessage, []byte("honest")); err != nil {
		t.Fatal(err)
	}
	if m, err := nextRemote(ctx, vg); err != nil || string(m.Payload) != "honest" {
		t.Fatalf("victim got %q, %v", m.Payload, err)
	}
	// Nothing invalid was delivered to the honest host.
	qctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	m, err := nextRemote(qctx, hg)
	cancel()
	if err == nil {
		t.Fatalf("the honest host had %q delivered", m.Payload)
	}
	// The attacker ends up graylisted (its invalid messages cost it
	// -100 x count^2 of score): from then on gossipsub ignores its RPCs
	// before validation, and the victim counts them as graylisted (see
	// TestGraylistCounting).
	if err := eventually(ctx, func() bool {
		victim.tracer.mu.Lock()
		defer victim.tracer.mu.Unlock()
		return victim.tracer.graylisted[ah.ID()]
	}); err != nil {
		t.Fatalf("attacker never graylisted: %v", drops(victim))
	}
	// The victim still delivers honest traffic.
	if err := hg.Publish(ctx, KindGroupMessage, []byte("still honest")); err != nil {
		t.Fatal(err)
	}
	if m, err := nextRemote(ctx, vg); err != nil || string(m.Payload) != "still honest" {
		t.Fatalf("victim got %q, %v", m.Payload, err)
	}
}

func TestGraylistCounting(t *testing.T) {
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTracer(m, 8)
	gray, fine := peer.ID("gray"), peer.ID("fine")
	tr.scoreSnapshot(map[peer.ID]float64{gray: -3000, fine: -100})
	rpc := &pubsub.RPC{}
	rpc.Publish = []*pb.Message{{Data: []byte("a")}, {Data: []byte("b")}}
	tr.inspectRPC(gray, rpc)
	tr.inspectRPC(fine, rpc)
	n := &Network{metrics: m}
	if got := dropCount(n, DropGraylisted); got != 2 {
		t.Fatalf("counted %v graylisted messages, want 2", got)
	}
}

// TestHostileFlood: one peer floods well-formed messages far above the
// per-peer rate. The excess is ignored (not delivered, not forwarded) and
// counted; goroutines stay bounded.
func TestHostileFlood(t *testing.T) {
	victim := newNet(t, func() Config {
		c := testConfig(t)
		c.Pubsub.PeerRate = 50
		c.Pubsub.PeerBurst = 100
		return c
	}())
	gid := []byte("flood-group")
	vg, err := victim.Join(gid)
	if err != nil {
		t.Fatal(err)
	}
	ct := &sentCounter{}
	ah, aps := newRawPubsub(t, false, pubsub.WithPeerOutboundQueueSize(8192), pubsub.WithRawTracer(ct))
	at, err := aps.Join(Topic(gid))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := at.Subscribe(); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 30*time.Second)
	if err := ah.Connect(ctx, victim.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	if err := vg.WaitMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := eventually(ctx, func() bool { return slices.Contains(at.ListPeers(), victim.ID()) }); err != nil {
		t.Fatal(err)
	}
	baseline := runtime.NumGoroutine()
	const flood = 3000
	start := time.Now()
	for i := range flood {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		if err := at.Publish(ctx, envelopeBytes(t, KindGroupMessage, b[:])); err != nil {
			t.Fatal(err)
		}
	}
	// Everything the attacker's gossipsub sent, the victim either delivered
	// or counted as dropped (rate limited).
	delivered := 0
	err = eventually(ctx, func() bool {
		for {
			qctx, cancel := context.WithTimeout(ctx, time.Millisecond)
			_, err := vg.Next(qctx)
			cancel()
			if err != nil {
				break
			}
			delivered++
		}
		total := float64(delivered)
		for _, n := range drops(victim) {
			total += n
		}
		return total >= float64(ct.sends.Load())
	})
	if err != nil {
		t.Fatalf("attacker sent %d: delivered %d, dropped %v", ct.sends.Load(), delivered, drops(victim))
	}
	if ct.sends.Load() < flood/2 {
		t.Fatalf("attacker managed to send only %d of %d; not a flood", ct.sends.Load(), flood)
	}
	allowed := 100 + 50*time.Since(start).Seconds()
	if float64(delivered) > allowed+1 {
		t.Fatalf("delivered %d messages from one peer, the rate limit allows %.0f", delivered, allowed)
	}
	if g := runtime.NumGoroutine(); g > baseline+50 {
		t.Fatalf("goroutines grew from %d to %d during the flood", baseline, g)
	}
}

// TestHostileStreams: streams that never finish, too many streams at once,
// frames declaring huge lengths and garbage are each cut off, counted, and
// leave the node serving honest requests.
func TestHostileStreams(t *testing.T) {
	node := &testNode{payloads: make(map[Hash][]byte)}
	victim := newNet(t, func() Config {
		c := testConfig(t)
		c.Handlers = node.handlers()
		c.StreamTimeout = 300 * time.Millisecond
		c.MaxConcurrentStreams = 4
		return c
	}())
	attacker := newNet(t, testConfig(t))
	connect(t, attacker, victim)
	ctx := testCtx(t, 30*time.Second)
	baseline := runtime.NumGoroutine()

	open := func(p protocol.ID) network.Stream {
		t.Helper()
		s, err := attacker.Host().NewStream(ctx, victim.ID(), p)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// waitReset waits until the victim ends the stream, with a deadline.
	waitReset := func(s network.Stream) []byte {
		t.Helper()
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(s)
		if err != nil && errors.Is(err, context.DeadlineExceeded) {
			t.Fatal("the victim never ended the stream")
		}
		return b
	}

	t.Run("never finishes", func(t *testing.T) {
		s := open(ProtoSync)
		s.Write([]byte{EnvelopeVersion, byte(KindCommitsRequest), 0}) // half a header, then silence
		waitReset(s)
		if err := eventually(ctx, func() bool { return dropCount(victim, DropStreamTimeout) >= 1 }); err != nil {
			t.Fatal("stalled stream not counted as a timeout")
		}
	})
	t.Run("huge declared length", func(t *testing.T) {
		s := open(ProtoWelcome)
		s.Write([]byte{EnvelopeVersion, byte(KindWelcome), 0x7f, 0xff, 0xff, 0xff})
		waitReset(s)
		if err := eventually(ctx, func() bool { return dropCount(victim, DropOversized) >= 1 }); err != nil {
			t.Fatal("huge frame not counted as oversized")
		}
	})
	t.Run("garbage", func(t *testing.T) {
		s := open(ProtoDirect)
		s.Write(bytes.Repeat([]byte{0xde, 0xad}, 100))
		waitReset(s)
		if err := eventually(ctx, func() bool { return dropCount(victim, DropBadVersion) >= 1 }); err != nil {
			t.Fatal("garbage not counted")
		}
	})
	t.Run("wrong kind for protocol", func(t *testing.T) {
		s := open(ProtoKeyPackage)
		WriteEnvelope(s, Envelope{Kind: KindDirect, Body: DirectMessage{GroupID: []byte("g")}.Marshal()})
		s.CloseWrite()
		resp, err := ReadEnvelope(s, 1024)
		var eb ErrorBody
		if err != nil || resp.Kind != KindError || eb.Unmarshal(resp.Body) != nil || eb.Code != CodeBadRequest {
			t.Fatalf("got %v %x, %v", resp.Kind, resp.Body, err)
		}
	})
	t.Run("too many at once", func(t *testing.T) {
		const streams = 10
		var ss []network.Stream
		for range streams {
			s := open(ProtoDirect)
			s.Write([]byte{EnvelopeVersion}) // start, then stall
			ss = append(ss, s)
		}
		busy := 0
		for _, s := range ss {
			b := waitReset(s)
			if env, err := ParseEnvelope(b, 1024); err == nil && env.Kind == KindError {
				busy++
			}
		}
		if busy < streams-4 {
			t.Fatalf("%d of %d streams refused as busy, want at least %d", busy, streams, streams-4)
		}
		if dropCount(victim, DropStreamBusy) < float64(streams-4) {
			t.Fatalf("busy streams counted %v", dropCount(victim, DropStreamBusy))
		}
	})
	// After all that, honest requests are served and nothing leaked.
	if err := attacker.SendDirect(ctx, victim.ID(), []byte("g"), []byte("still here")); err != nil {
		t.Fatal(err)
	}
	slotsFree := func() bool {
		for _, p := range streamProtocols {
			if len(victim.streamSlots[p.id]) != 0 {
				return false
			}
		}
		return true
	}
	if err := eventually(ctx, slotsFree); err != nil {
		t.Fatal("stream slots still held after every stream ended")
	}
	if err := eventually(ctx, func() bool { return runtime.NumGoroutine() <= baseline+20 }); err != nil {
		t.Fatalf("goroutines grew from %d to %d", baseline, runtime.NumGoroutine())
	}
}

// sentCounter counts, on the attacker's side, the messages gossipsub
// actually queued to a peer.
type sentCounter struct{ drops, sends, rejects, dups atomic.Int64 }

func (c *sentCounter) AddPeer(peer.ID, protocol.ID)                         {}
func (c *sentCounter) RemovePeer(peer.ID)                                   {}
func (c *sentCounter) Join(string)                                          {}
func (c *sentCounter) Leave(string)                                         {}
func (c *sentCounter) Graft(peer.ID, string)                                {}
func (c *sentCounter) Prune(peer.ID, string)                                {}
func (c *sentCounter) ValidateMessage(*pubsub.Message)                      {}
func (c *sentCounter) DeliverMessage(*pubsub.Message)                       {}
func (c *sentCounter) RejectMessage(*pubsub.Message, string)                { c.rejects.Add(1) }
func (c *sentCounter) DuplicateMessage(*pubsub.Message)                     { c.dups.Add(1) }
func (c *sentCounter) ThrottlePeer(peer.ID)                                 {}
func (c *sentCounter) RecvRPC(*pubsub.RPC)                                  {}
func (c *sentCounter) SendRPC(r *pubsub.RPC, _ peer.ID)                     { c.sends.Add(int64(len(r.GetPublish()))) }
func (c *sentCounter) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (c *sentCounter) DropRPC(r *pubsub.RPC, _ peer.ID)                     { c.drops.Add(int64(len(r.GetPublish()))) }
func (c *sentCounter) UndeliverableMessage(*pubsub.Message)                 {}
func (c *sentCounter) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (c *sentCounter) OnClosedOutboundStream(peer.ID)                       {}
