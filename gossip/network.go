package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/multiformats/go-multiaddr"
)

// ErrClosed is returned by operations on a closed Network or Group.
var ErrClosed = errors.New("gossip: closed")

// Network is one node's libp2p presence: host, discovery, gossipsub and the
// direct protocols. It is safe for concurrent use.
type Network struct {
	cfg      Config
	host     host.Host
	ownsHost bool
	gater    *Gater
	dht      *dht.IpfsDHT
	mdns     *mdnsService
	ps       *pubsub.PubSub
	tracer   *tracer
	metrics  *metrics
	payloads *payloadCache
	log      *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// relayHost is the host as seen by autorelay's peer source, which
	// libp2p may call from its own goroutines as soon as the host exists.
	relayHost atomic.Pointer[host.Host]

	streamSlots map[protocol.ID]chan struct{}
	fetchSlots  chan struct{} // payload fetches in progress in validators

	mu     sync.Mutex
	groups map[string]*Group // by topic
	closed bool
}

// New builds a libp2p host from cfg.Identity and starts discovery, NAT
// traversal, gossipsub and the direct protocols on it. ctx bounds start-up
// only; the Network runs until Close.
func New(ctx context.Context, cfg Config) (*Network, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	gater := NewGater()
	n := &Network{cfg: cfg, gater: gater, ownsHost: true}
	h, err := n.buildHost(gater)
	if err != nil {
		return nil, err
	}
	if err := n.start(ctx, h); err != nil {
		h.Close()
		return nil, err
	}
	return n, nil
}

// NewWithHost runs Conclave's gossip and direct protocols on a host the
// caller built (go-libp2p's mocknet in tests, or an embedding program). The
// caller keeps ownership of h; cfg.Identity and the host options in cfg are
// ignored, and Block cannot stop reconnections because the host has no
// Conclave gater. The DHT and mDNS run only if cfg enables them.
func NewWithHost(ctx context.Context, h host.Host, cfg Config) (*Network, error) {
	if cfg.Identity == nil {
		cfg.Identity = h.Peerstore().PrivKey(h.ID())
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	n := &Network{cfg: cfg}
	if err := n.start(ctx, h); err != nil {
		return nil, err
	}
	return n, nil
}

// buildHost assembles the libp2p host. Every choice here is documented in
// docs/protocols.md ("Host").
func (n *Network) buildHost(gater *Gater) (host.Host, error) {
	cfg := &n.cfg
	cm, err := connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh, connmgr.WithGracePeriod(cfg.ConnGrace))
	if err != nil {
		return nil, fmt.Errorf("gossip: connection manager: %w", err)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(resourceLimits(cfg)))
	if err != nil {
		return nil, fmt.Errorf("gossip: resource manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Identity),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionGater(gater),
		libp2p.EnableRelay(),
		libp2p.EnableNATService(),
		libp2p.EnableAutoNATv2(),
		libp2p.UserAgent("conclave"),
	}
	if cfg.Registerer != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(cfg.Registerer))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	if !cfg.DisableHolePunching {
		opts = append(opts, libp2p.EnableHolePunching())
	}
	if !cfg.DisablePortMapping {
		opts = append(opts, libp2p.NATPortMap())
	}
	if cfg.ForcePublicReachability {
		opts = append(opts, libp2p.ForceReachabilityPublic())
	}
	if cfg.ForcePrivateReachability {
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if cfg.RelayService {
		opts = append(opts, libp2p.EnableRelayService(relayv2.WithResources(relayResources())))
	}
	if !cfg.DisableAutoRelay {
		if len(cfg.StaticRelays) > 0 {
			opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(cfg.StaticRelays))
		} else {
			opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(n.relayCandidates))
		}
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("gossip: building host: %w", err)
	}
	return h, nil
}

// resourceLimits starts from libp2p's defaults (with its service limits for
// identify, relay, hole punching, ...) and adds per-protocol limits for
// Conclave's direct protocols, scaled to MemoryLimit and FDLimit.
func resourceLimits(cfg *Config) rcmgr.ConcreteLimitConfig {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	for _, p := range streamProtocols {
		limits.AddProtocolLimit(p.id,
			rcmgr.BaseLimit{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: int64(p.maxBody) * 4},
			rcmgr.BaseLimitIncrease{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: int64(p.maxBody)})
		limits.AddProtocolPeerLimit(p.id,
			rcmgr.BaseLimit{StreamsInbound: 16, StreamsOutbound: 16, Streams: 32, Memory: int64(p.maxBody) * 2},
			rcmgr.BaseLimitIncrease{})
	}
	return limits.Scale(cfg.MemoryLimit, cfg.FDLimit)
}

// relayResources are the limits of the optional relay service: relayed
// connections are for signalling and small exchanges until hole punching
// upgrades them, so they stay short and small.
func relayResources() relayv2.Resources {
	r := relayv2.DefaultResources()
	r.MaxReservations = 256
	r.MaxCircuits = 32
	r.Limit.Data = 1 << 20
	return r
}

// start wires everything onto h.
func (n *Network) start(ctx context.Context, h host.Host) error {
	m, err := newMetrics(n.cfg.Registerer)
	if err != nil {
		return err
	}
	n.host = h
	n.relayHost.Store(&h)
	n.metrics = m
	n.log = n.cfg.Logger.With("pkg", "gossip", "peer", h.ID().String())
	n.groups = make(map[string]*Group)
	n.payloads = newPayloadCache(n.cfg.Pubsub.PayloadCache, n.cfg.Pubsub.PayloadTTL)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.fetchSlots = make(chan struct{}, maxPayloadFetches)

	h.Network().Notify(&network.NotifyBundle{
		ConnectedF:    func(nw network.Network, _ network.Conn) { m.peers.Set(float64(len(nw.Peers()))) },
		DisconnectedF: func(nw network.Network, _ network.Conn) { m.peers.Set(float64(len(nw.Peers()))) },
	})

	if err := n.startPubsub(); err != nil {
		n.cancel()
		return err
	}
	n.registerProtocols()
	if err := n.startDiscovery(ctx); err != nil {
		n.Close()
		return err
	}
	return nil
}

// Host returns the underlying libp2p host.
func (n *Network) Host() host.Host { return n.host }

// ID returns this node's peer ID.
func (n *Network) ID() peer.ID { return n.host.ID() }

// Addrs returns the addresses other peers can dial, each with /p2p/<id>.
func (n *Network) Addrs() []multiaddr.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// AddrInfo returns this node's ID and addresses.
func (n *Network) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}
}

// Connect dials a peer and waits until connected or ctx ends.
func (n *Network) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if err := n.host.Connect(ctx, ai); err != nil {
		return fmt.Errorf("gossip: connecting to %s: %w", ai.ID, err)
	}
	return nil
}

// Peers returns the peers with an open connection.
func (n *Network) Peers() []peer.ID { return n.host.Network().Peers() }

// Gater returns the connection gater, or nil for a Network made by
// NewWithHost.
func (n *Network) Gater() *Gater { return n.gater }

// Block refuses all connections with p from now on and closes the open ones.
func (n *Network) Block(p peer.ID) {
	if n.gater != nil {
		n.gater.Block(p)
	}
	_ = n.host.Network().ClosePeer(p)
}

// Unblock lets p connect again. It does not dial p.
func (n *Network) Unblock(p peer.ID) {
	if n.gater != nil {
		n.gater.Unblock(p)
	}
}

// Close leaves every group and stops discovery, pubsub and, for a Network
// made by New, the host. It is safe to call more than once.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	groups := make([]*Group, 0, len(n.groups))
	for _, g := range n.groups {
		groups = append(groups, g)
	}
	n.mu.Unlock()

	var errs []error
	for _, g := range groups {
		g.leave()
	}
	for _, p := range streamProtocols {
		n.host.RemoveStreamHandler(p.id)
	}
	if n.mdns != nil {
		errs = append(errs, n.mdns.Close())
	}
	if n.dht != nil {
		errs = append(errs, n.dht.Close())
	}
	n.cancel()
	n.wg.Wait()
	if n.ownsHost {
		errs = append(errs, n.host.Close())
	}
	return errors.Join(errs...)
}

// goTracked runs f on a goroutine that Close waits for.
func (n *Network) goTracked(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}
