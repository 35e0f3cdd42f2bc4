package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/gossip"
	"github.com/conclave-im/conclave/identity"
	"github.com/conclave-im/conclave/profile"
)

// Errors returned by the node's API. They are wrapped with context.
var (
	ErrClosed         = errors.New("node: closed")
	ErrNotStarted     = errors.New("node: not started")
	ErrUnknownGroup   = errors.New("node: unknown group")
	ErrNoInvitation   = errors.New("node: no pending invitation for this group")
	ErrAlreadyMember  = errors.New("node: peer is already a member")
	ErrNotMember      = errors.New("node: peer is not a member")
	ErrBadKeyPackage  = errors.New("node: unacceptable KeyPackage")
	ErrMessageTooLong = errors.New("node: message too long")
	ErrGroupInactive  = errors.New("node: this node is no longer a member of the group")
)

// Node is one Conclave node. Create it with New, then Start it; every
// method is safe for concurrent use.
type Node struct {
	opts  Options
	log   *slog.Logger
	clock Clock
	rand  io.Reader
	prof  profile.Profile

	store    *datastore.Store
	ownStore bool
	id       *identity.NodeIdentity
	codes    *identity.SafetyCoder // safety codes against id, its fingerprint computed once
	net      *gossip.Network

	// events carries work for the loop; done closes when the loop exits.
	events chan func()
	done   chan struct{}
	ctx    context.Context // ends at Close; bounds background goroutines
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  sync.Once
	closed sync.Once

	// Everything below is owned by the loop goroutine.
	st *loopState
}

// loopState is the node state only the loop touches.
type loopState struct {
	groups      map[string]*group
	invitations map[string]*invitation
	pool        *keyPackagePool
	subs        map[int]chan Event
	nextSub     int
	crand       *mrand.Rand // consensus timeout jitter
	names       map[string]string
	// outgoing holds the reason each pending own message waits.
	outgoing map[[MessageIDLen]byte]string
	// leaves caches verified leaf credentials (leafcache.go).
	leaves map[[sha256.Size]byte]identity.LeafIdentity
	// lastPoolCheck is when the KeyPackage pool was last expired and renewed.
	lastPoolCheck time.Time
	// lastRetention is when the retention window was last enforced.
	lastRetention time.Time
	fatal         error
}

// New checks opts and returns a node that is not started yet.
func New(opts Options) (*Node, error) {
	if opts.Profile.Name == "" {
		opts.Profile = profile.Default()
	}
	if err := opts.Profile.Validate(); err != nil {
		return nil, fmt.Errorf("node: profile: %w", err)
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = 1024
	}
	n := &Node{
		opts:   opts,
		log:    opts.Logger,
		clock:  opts.Clock,
		rand:   opts.Rand,
		prof:   opts.Profile,
		events: make(chan func(), 1024),
		done:   make(chan struct{}),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// Start opens the store, loads or creates the node identity, loads the
// groups, starts the network and the event loop. ctx bounds start-up only.
func (n *Node) Start(ctx context.Context) error {
	err := ErrClosed
	n.start.Do(func() { err = n.startOnce(ctx) })
	return err
}

func (n *Node) startOnce(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			n.cancel()
			close(n.done)
			if n.net != nil {
				n.net.Close()
			}
			if n.ownStore && n.store != nil {
				n.store.Close()
			}
		}
	}()
	if n.opts.Store != nil {
		n.store = n.opts.Store
	} else {
		dsOpts := n.opts.Datastore
		if dsOpts.Logger == nil {
			dsOpts.Logger = n.log
		}
		if n.store, err = datastore.Open(ctx, dsOpts); err != nil {
			return fmt.Errorf("node: open store: %w", err)
		}
		n.ownStore = true
	}
	if n.id, err = n.loadIdentity(ctx); err != nil {
		return err
	}
	n.codes = identity.NewSafetyCoder(n.id.ID())
	n.log = n.log.With("node", n.id.ID())
	var seed [16]byte
	if _, err := io.ReadFull(n.rand, seed[:]); err != nil {
		return fmt.Errorf("node: randomness: %w", err)
	}
	n.st = &loopState{
		groups:      make(map[string]*group),
		invitations: make(map[string]*invitation),
		subs:        make(map[int]chan Event),
		names:       make(map[string]string),
		outgoing:    make(map[[MessageIDLen]byte]string),
		leaves:      make(map[[sha256.Size]byte]identity.LeafIdentity),
		crand:       mrand.New(mrand.NewPCG(binary.BigEndian.Uint64(seed[:8]), binary.BigEndian.Uint64(seed[8:]))),
	}
	if n.st.pool, err = loadKeyPackagePool(ctx, n); err != nil {
		return err
	}
	n.st.lastPoolCheck = n.clock.Now()
	n.st.lastRetention = n.clock.Now()

	cfg := n.opts.Network
	if cfg.Identity, err = crypto.UnmarshalEd25519PrivateKey(n.id.Ed25519PrivateKey()); err != nil {
		return fmt.Errorf("node: identity key for libp2p: %w", err)
	}
	cfg.Handlers = gossip.Handlers{KeyPackages: handlers{n}, Welcomes: handlers{n}, Direct: handlers{n}, Sync: handlers{n}}
	if cfg.Logger == nil {
		cfg.Logger = n.log
	}
	if n.net, err = gossip.New(ctx, cfg); err != nil {
		return fmt.Errorf("node: network: %w", err)
	}
	if err := n.loadGroups(ctx); err != nil {
		return err
	}
	if err := n.loadInvitations(ctx); err != nil {
		return err
	}
	if err := n.watchConnections(); err != nil {
		return err
	}
	n.wg.Add(1)
	go n.loop()
	return nil
}

// Close stops the loop and every background goroutine, then closes the
// network and (if the node opened it) the store. ctx bounds the wait.
func (n *Node) Close(ctx context.Context) error {
	n.start.Do(func() { close(n.done) }) // never started: nothing runs
	var err error
	n.closed.Do(func() {
		n.cancel()
		waited := make(chan struct{})
		go func() { n.wg.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-ctx.Done():
			err = fmt.Errorf("node: close: %w", ctx.Err())
		}
		if n.net != nil {
			err = errors.Join(err, n.net.Close())
		}
		if n.ownStore && n.store != nil {
			err = errors.Join(err, n.store.Close())
		}
	})
	return err
}

// ID returns the node's peer ID. Valid after Start.
func (n *Node) ID() string { return n.id.PeerID() }

// Identity returns the node's public identity. Valid after Start.
func (n *Node) Identity() identity.ID { return n.id.ID() }

// AddrInfo returns the node's libp2p peer ID and addresses.
func (n *Node) AddrInfo() peer.AddrInfo { return n.net.AddrInfo() }

// Connect dials another node.
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if err := n.net.Connect(ctx, ai); err != nil {
		return fmt.Errorf("node: connect %s: %w", ai.ID, err)
	}
	return nil
}

// loop runs every piece of work that touches node state, one at a time.
func (n *Node) loop() {
	defer n.wg.Done()
	defer close(n.done)
	tick := n.clock.NewTicker(n.prof.Consensus.TickInterval)
	defer tick.Stop()
	for _, g := range n.st.groups {
		n.resumeGroup(g)
	}
	n.resendOutbox()
	for {
		select {
		case f := <-n.events:
			f()
		case <-tick.C():
			n.onTick()
		case <-n.ctx.Done():
			n.shutdownGroups()
			return
		}
		if n.st.fatal != nil {
			n.log.Error("node stopped after a fatal error", "err", n.st.fatal)
			n.shutdownGroups()
			n.cancel()
			return
		}
	}
}

// post hands f to the loop from another goroutine. It gives up when the
// node closes.
func (n *Node) post(f func()) bool {
	select {
	case n.events <- f:
		return true
	case <-n.done:
		return false
	case <-n.ctx.Done():
		return false
	}
}

// call runs f on the loop and waits for its result.
func call[T any](ctx context.Context, n *Node, f func() (T, error)) (T, error) {
	var zero T
	if n.st == nil {
		return zero, ErrNotStarted
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	ok := false
	select {
	case n.events <- func() { v, err := f(); ch <- result{v, err} }:
		ok = true
	case <-n.done:
	case <-n.ctx.Done():
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	if !ok {
		return zero, ErrClosed
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-n.done:
		return zero, ErrClosed
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// goAsync runs f in a background goroutine that Close waits for.
func (n *Node) goAsync(f func(ctx context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f(n.ctx)
	}()
}

// loadIdentity returns the stored node identity, creating it on first start.
func (n *Node) loadIdentity(ctx context.Context) (*identity.NodeIdentity, error) {
	rec, err := n.store.Identity().Get(ctx)
	if err == nil {
		id, err := identity.ParseNodeIdentity(rec.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("node: stored identity: %w", err)
		}
		return id, nil
	}
	if !errors.Is(err, datastore.ErrNotFound) {
		return nil, fmt.Errorf("node: load identity: %w", err)
	}
	id, err := identity.Generate(n.rand)
	if err != nil {
		return nil, fmt.Errorf("node: generate identity: %w", err)
	}
	priv, err := id.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("node: encode identity: %w", err)
	}
	rec = datastore.Identity{PrivateKey: priv, PublicKey: id.ID().PublicKey(), CreatedAt: n.clock.Now()}
	if err := n.store.Identity().Create(ctx, rec); err != nil {
		return nil, fmt.Errorf("node: store identity: %w", err)
	}
	n.log.Info("created node identity", "peer", id.ID())
	return id, nil
}

// handlers serves the network's direct protocols by handing each request to
// the loop.
type handlers struct{ n *Node }

func (h handlers) KeyPackage(ctx context.Context, from peer.ID, suite uint16) ([]byte, error) {
	return call(ctx, h.n, func() ([]byte, error) { return h.n.serveKeyPackage(from, suite) })
}

func (h handlers) HandleWelcome(ctx context.Context, from peer.ID, groupID, welcome []byte) error {
	_, err := call(ctx, h.n, func() (struct{}, error) {
		return struct{}{}, h.n.onWelcome(from, groupID, welcome)
	})
	return err
}

func (h handlers) HandleDirect(ctx context.Context, from peer.ID, groupID, payload []byte) error {
	gid, p := append([]byte(nil), groupID...), append([]byte(nil), payload...)
	if !h.n.post(func() { h.n.onDirect(from, gid, p) }) {
		return ErrClosed
	}
	return nil
}
