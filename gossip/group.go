package gossip

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// gossipProtocol labels gossip in the messages_total metric.
const gossipProtocol = "gossip"

// maxPayloadFetches bounds validation workers blocked fetching payloads.
const maxPayloadFetches = 2

// MessageID is gossipsub's message ID under StrictNoSign: the SHA-256 of the
// message's bytes. Identical bytes are one message however many peers send
// them, which is what Conclave wants: every MLS message is unique (it carries
// its own nonce and signature), and a replay is a duplicate.
func MessageID(m *pb.Message) string {
	sum := sha256.Sum256(m.Data)
	return string(sum[:])
}

// startPubsub starts gossipsub with Conclave's queue sizes, signing policy
// and peer scoring (docs/protocols.md, "Gossip").
func (n *Network) startPubsub() error {
	pc := n.cfg.Pubsub
	n.tracer = newTracer(n.metrics, pc.PublishHighWater)
	opts := []pubsub.Option{
		pubsub.WithMaxMessageSize(pc.MaxMessageSize + 4096), // room for the RPC framing around one message
		pubsub.WithPeerOutboundQueueSize(pc.PeerOutboundQueue),
		pubsub.WithValidateQueueSize(pc.ValidateQueue),
		pubsub.WithValidateWorkers(runtime.NumCPU() + maxPayloadFetches),
		pubsub.WithRawTracer(n.tracer),
		pubsub.WithPeerExchange(true),
		pubsub.WithFloodPublish(true),
		pubsub.WithLogger(n.log),
	}
	if pc.SignMessages {
		opts = append(opts, pubsub.WithMessageSignaturePolicy(pubsub.StrictSign))
	} else {
		opts = append(opts,
			pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
			pubsub.WithNoAuthor(),
			pubsub.WithMessageIdFn(MessageID))
	}
	if !pc.DisableScoring {
		opts = append(opts,
			pubsub.WithPeerScore(peerScoreParams(), peerScoreThresholds()),
			pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(n.tracer.scoreSnapshot), scoreInspectPeriod),
			pubsub.WithAppSpecificRpcInspector(n.tracer.inspectRPC))
	}
	ps, err := pubsub.NewGossipSub(n.ctx, n.host, opts...)
	if err != nil {
		return fmt.Errorf("gossip: starting gossipsub: %w", err)
	}
	n.ps = ps
	return nil
}

// peerScoreParams: see docs/protocols.md ("Peer scoring") for the reasoning.
func peerScoreParams() *pubsub.PeerScoreParams {
	return &pubsub.PeerScoreParams{
		Topics:        make(map[string]*pubsub.TopicScoreParams),
		TopicScoreCap: 100,
		AppSpecificScore: func(peer.ID) float64 {
			return 0
		},
		AppSpecificWeight: 1,
		// Members of one household share a public IP; penalising
		// colocation would split them, so it is off.
		IPColocationFactorWeight:    0,
		IPColocationFactorThreshold: 1,
		BehaviourPenaltyWeight:      -10,
		BehaviourPenaltyThreshold:   6,
		BehaviourPenaltyDecay:       pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:               time.Second,
		DecayToZero:                 0.01,
		RetainScore:                 10 * time.Minute,
	}
}

func peerScoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             -500,
		PublishThreshold:            -1000,
		GraylistThreshold:           -2500,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 5,
	}
}

// topicScoreParams scores peers on a group topic. Mesh delivery deficits
// (P3, P3b) stay off: a quiet group would penalise honest members for
// silence. Invalid messages (P4) weigh heavily: six of them put a peer below
// the graylist threshold, after which its RPCs are ignored.
func topicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		SkipAtomicValidation:           true,
		TopicWeight:                    1,
		TimeInMeshWeight:               0.01,
		TimeInMeshQuantum:              time.Second,
		TimeInMeshCap:                  3600,
		FirstMessageDeliveriesWeight:   1,
		FirstMessageDeliveriesDecay:    pubsub.ScoreParameterDecay(10 * time.Minute),
		FirstMessageDeliveriesCap:      50,
		InvalidMessageDeliveriesWeight: -100,
		InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
	}
}

// Message is one message received on a group topic.
type Message struct {
	GroupID []byte
	Kind    Kind   // KindGroupMessage or KindConsensus (references are resolved)
	Payload []byte // the opaque payload the sender published
	// From is the neighbour that forwarded the message. Messages carry no
	// author (StrictNoSign): the author is whoever MLS says signed it.
	From peer.ID
	// Local is true for the node's own messages echoed back.
	Local bool
}

// Group is this node's membership of one group's topic.
type Group struct {
	n       *Network
	id      []byte
	topic   *pubsub.Topic
	sub     *pubsub.Subscription
	limiter *peerLimiter

	// ctx ends when the group is left; peer-event watchers (counted in
	// watchers) hold topic event handlers until it does.
	ctx      context.Context
	cancel   context.CancelFunc
	mu       sync.Mutex
	left     bool
	watchers sync.WaitGroup

	closeOnce sync.Once
}

// Join subscribes to a group's topic. Joining a group already joined is an
// error; Leave first.
func (n *Network) Join(groupID []byte) (*Group, error) {
	if err := checkGroupID(groupID); err != nil {
		return nil, err
	}
	name := Topic(groupID)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	if _, ok := n.groups[name]; ok {
		return nil, fmt.Errorf("gossip: group %x already joined", groupID)
	}
	g := &Group{n: n, id: append([]byte(nil), groupID...), limiter: newPeerLimiter(n.cfg.Pubsub.PeerRate, n.cfg.Pubsub.PeerBurst)}
	// Inline: the validator runs on pubsub's validation workers instead of
	// a goroutine per message. Only an uncached payload reference blocks
	// one, and at most maxPayloadFetches do (see validate).
	err := n.ps.RegisterTopicValidator(name, g.validate, pubsub.WithValidatorInline(true))
	if err != nil {
		return nil, fmt.Errorf("gossip: registering validator: %w", err)
	}
	t, err := n.ps.Join(name)
	if err != nil {
		_ = n.ps.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("gossip: joining topic: %w", err)
	}
	if !n.cfg.Pubsub.DisableScoring {
		if err := t.SetScoreParams(topicScoreParams()); err != nil {
			_ = t.Close()
			_ = n.ps.UnregisterTopicValidator(name)
			return nil, fmt.Errorf("gossip: topic score params: %w", err)
		}
	}
	sub, err := t.Subscribe(pubsub.WithBufferSize(n.cfg.Pubsub.SubscriptionBuffer))
	if err != nil {
		_ = t.Close()
		_ = n.ps.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("gossip: subscribing: %w", err)
	}
	g.topic, g.sub = t, sub
	g.ctx, g.cancel = context.WithCancel(n.ctx)
	n.groups[name] = g
	return g, nil
}

// ID returns the group ID.
func (g *Group) ID() []byte { return g.id }

// Topic returns the group's gossipsub topic.
func (g *Group) Topic() string { return g.topic.String() }

// Peers returns the peers known to be subscribed to the group's topic.
func (g *Group) Peers() []peer.ID { return g.topic.ListPeers() }

// MeshSize returns how many peers this node exchanges the group's messages
// with directly (its gossipsub mesh for the topic).
func (g *Group) MeshSize() int {
	n, _ := g.n.tracer.meshSize(g.topic.String())
	return n
}

// WaitMesh waits until the group's mesh has at least min peers. A node that
// has just joined can call it before publishing so that its first messages
// are forwarded along the mesh rather than only flooded to direct peers.
func (g *Group) WaitMesh(ctx context.Context, min int) error {
	for {
		n, changed := g.n.tracer.meshSize(g.topic.String())
		if n >= min {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("gossip: waiting for %d mesh peers (have %d): %w", min, n, ctx.Err())
		}
	}
}

// Publish sends a payload to every member subscribed to the group. kind is
// KindGroupMessage or KindConsensus. A payload too large for gossip is
// published as a reference and fetched by each peer over the payload
// protocol. Publish waits (bounded by ctx and by the backpressure limit)
// while a peer's outbound queue is congested, instead of letting it
// overflow.
func (g *Group) Publish(ctx context.Context, kind Kind, payload []byte) error {
	if kind != KindGroupMessage && kind != KindConsensus {
		return fmt.Errorf("gossip: cannot publish kind %v on a group topic", kind)
	}
	n := g.n
	pc := n.cfg.Pubsub
	if len(payload) > pc.MaxPayloadSize {
		return fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrTooLarge, len(payload), pc.MaxPayloadSize)
	}
	start := time.Now()
	env := Envelope{Kind: kind, Body: payload}
	if envelopeHeaderLen+len(payload) > pc.MaxMessageSize {
		h := Hash(sha256.Sum256(payload))
		n.payloads.put(h, payload)
		env = Envelope{Kind: KindPayloadRef, Body: PayloadRef{Kind: kind, Size: uint32(len(payload)), Hash: h}.Marshal()}
	}
	data, err := env.Marshal()
	if err != nil {
		return err
	}
	waited, err := n.tracer.waitUncongested(ctx, publishMaxWait)
	n.metrics.publishWait.Observe(waited.Seconds())
	if err != nil {
		return fmt.Errorf("gossip: publish: %w", err)
	}
	if err := g.topic.Publish(ctx, data); err != nil {
		return fmt.Errorf("gossip: publish: %w", err)
	}
	n.metrics.gossipOut.Inc()
	n.metrics.publishTime.Observe(time.Since(start).Seconds())
	return nil
}

// publishMaxWait bounds how long Publish waits for congested peers. A peer
// that reads slowly on purpose must not stall the node's publishing; past
// this wait the message is queued anyway and, if that peer's queue is full,
// dropped for that peer only (and counted).
const publishMaxWait = 2 * time.Second

// Next returns the next message on the group's topic, waiting until one
// arrives, ctx ends or the group is left.
func (g *Group) Next(ctx context.Context) (Message, error) {
	m, err := g.sub.Next(ctx)
	if err != nil {
		if errors.Is(err, pubsub.ErrSubscriptionCancelled) {
			return Message{}, ErrClosed
		}
		return Message{}, fmt.Errorf("gossip: next message: %w", err)
	}
	v, ok := m.ValidatorData.(validated)
	if !ok {
		// Every message passes our validator first; this cannot happen
		// unless pubsub changes its contract.
		return Message{}, fmt.Errorf("gossip: message without validation data")
	}
	g.n.metrics.gossipIn.Inc()
	return Message{
		GroupID: g.id,
		Kind:    v.kind,
		Payload: v.payload,
		From:    m.ReceivedFrom,
		Local:   m.ReceivedFrom == g.n.host.ID(),
	}, nil
}

// Leave unsubscribes from the group's topic.
func (g *Group) Leave() error {
	g.n.mu.Lock()
	delete(g.n.groups, g.topic.String())
	g.n.mu.Unlock()
	return g.leave()
}

func (g *Group) leave() error {
	var err error
	g.closeOnce.Do(func() {
		g.mu.Lock()
		g.left = true
		g.mu.Unlock()
		g.cancel()
		g.watchers.Wait() // pubsub refuses to close a topic with event handlers
		g.sub.Cancel()
		err = errors.Join(g.topic.Close(), g.n.ps.UnregisterTopicValidator(g.topic.String()))
	})
	return err
}

// validated is what the validator attaches to an accepted message.
type validated struct {
	kind    Kind
	payload []byte
}

// validate runs before a message is delivered or forwarded: it parses the
// envelope, rate-limits the neighbour, and resolves payload references by
// fetching the payload from the neighbour that forwarded the reference, so
// that every node that forwards a reference can also serve its payload.
func (g *Group) validate(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	n := g.n
	local := from == n.host.ID()
	if !local && !g.limiter.allow(from) {
		n.metrics.drop(DropRateLimited)
		return pubsub.ValidationIgnore
	}
	env, err := ParseEnvelope(m.Data, n.cfg.Pubsub.MaxMessageSize)
	if err != nil {
		n.metrics.drop(dropReason(err))
		return pubsub.ValidationReject
	}
	if !env.Kind.gossipKind() {
		n.metrics.drop(DropUnknownKind)
		return pubsub.ValidationReject
	}
	if env.Kind != KindPayloadRef {
		m.ValidatorData = validated{kind: env.Kind, payload: env.Body}
		return pubsub.ValidationAccept
	}
	var ref PayloadRef
	if err := ref.Unmarshal(env.Body); err != nil {
		n.metrics.drop(dropReason(err))
		return pubsub.ValidationReject
	}
	if int(ref.Size) > n.cfg.Pubsub.MaxPayloadSize {
		n.metrics.drop(DropOversized)
		return pubsub.ValidationReject
	}
	payload, ok := n.payloads.get(ref.Hash)
	if !ok {
		if local {
			n.metrics.drop(DropPayloadFetch)
			return pubsub.ValidationIgnore
		}
		// Fetching blocks a validation worker; bound how many may, so a
		// peer announcing payloads it serves slowly cannot stall
		// validation. A reference ignored here is repaired by sync.
		select {
		case n.fetchSlots <- struct{}{}:
			defer func() { <-n.fetchSlots }()
		default:
			n.metrics.drop(DropPayloadFetch)
			return pubsub.ValidationIgnore
		}
		fctx, cancel := context.WithTimeout(ctx, n.cfg.StreamTimeout)
		defer cancel()
		payload, err = n.FetchPayload(fctx, from, ref.Hash)
		if err != nil || len(payload) != int(ref.Size) {
			n.log.Debug("payload fetch failed", "from", from, "err", err)
			n.metrics.drop(DropPayloadFetch)
			return pubsub.ValidationIgnore
		}
		n.payloads.put(ref.Hash, payload)
	}
	m.ValidatorData = validated{kind: ref.Kind, payload: payload}
	return pubsub.ValidationAccept
}

// peerLimiter is a token bucket per neighbour. The map is bounded: when it
// holds too many idle buckets it starts afresh, which at worst gives some
// peers a full bucket early.
type peerLimiter struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[peer.ID]*rate.Limiter
}

const maxLimiterPeers = 4096

func newPeerLimiter(r float64, burst int) *peerLimiter {
	return &peerLimiter{rate: rate.Limit(r), burst: burst, buckets: make(map[peer.ID]*rate.Limiter)}
}

func (l *peerLimiter) allow(p peer.ID) bool {
	l.mu.Lock()
	b, ok := l.buckets[p]
	if !ok {
		if len(l.buckets) >= maxLimiterPeers {
			l.buckets = make(map[peer.ID]*rate.Limiter)
		}
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets[p] = b
	}
	l.mu.Unlock()
	return b.Allow()
}
