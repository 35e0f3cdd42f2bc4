package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultListenAddrs listens on every interface, TCP and QUIC v1, IPv4 and
// IPv6, on ports the OS picks.
var DefaultListenAddrs = []string{
	"/ip4/0.0.0.0/tcp/0",
	"/ip4/0.0.0.0/udp/0/quic-v1",
	"/ip6/::/tcp/0",
	"/ip6/::/udp/0/quic-v1",
}

// DefaultMDNSService is the DNS-SD service name Conclave nodes announce on
// the LAN. It differs from libp2p's "_p2p._udp" so that Conclave nodes only
// dial each other, not every libp2p program on the network.
const DefaultMDNSService = "_conclave._udp"

// DHTMode selects the Kademlia DHT's role.
type DHTMode int

// DHT modes.
const (
	DHTAuto   DHTMode = iota // serve the DHT only when AutoNAT says we are publicly reachable
	DHTClient                // query only
	DHTServer                // always serve (private networks, tests, well-connected nodes)
	DHTOff                   // no DHT at all
)

// Config configures a Network. The zero value of every field except Identity
// means "the documented default"; see docs/protocols.md for why each value is
// what it is.
type Config struct {
	// Identity is the node's Ed25519 identity key; its public key is the peer ID.
	Identity crypto.PrivKey

	// ListenAddrs are multiaddrs to listen on. Default DefaultListenAddrs.
	ListenAddrs []string

	// Handlers serve the direct protocols. A nil handler means the protocol
	// is not served and requests for it get CodeUnavailable.
	Handlers Handlers

	// BootstrapPeers seed the DHT. Without any, the DHT still learns peers
	// from mDNS and from connections the node makes.
	BootstrapPeers []peer.AddrInfo
	// DHT selects the DHT's role; default DHTAuto.
	DHT DHTMode
	// DHTProtocolPrefix separates Conclave's DHT from the public IPFS DHT.
	// Default "/conclave".
	DHTProtocolPrefix string

	// DisableMDNS turns LAN discovery off (it is on by default).
	DisableMDNS bool
	// MDNSService is the DNS-SD service name; default DefaultMDNSService.
	MDNSService string
	// MDNSInterfaces restricts mDNS to the named interfaces; default all
	// multicast-capable ones.
	MDNSInterfaces []string

	// StaticRelays are circuit relay v2 servers to reserve a slot on when
	// the node is not publicly reachable. Without any, relays are discovered
	// among connected peers that offer the relay service.
	StaticRelays []peer.AddrInfo
	// DisableAutoRelay turns relay reservations off.
	DisableAutoRelay bool
	// RelayService makes this node a circuit relay v2 server for others (it
	// only starts serving once the node is publicly reachable).
	RelayService bool
	// ForcePublicReachability skips AutoNAT's verdict and treats the node as
	// publicly reachable (servers with a known public address, tests).
	ForcePublicReachability bool
	// ForcePrivateReachability treats the node as unreachable from outside
	// without waiting for AutoNAT, so it reserves relay slots at once
	// (nodes known to sit behind NAT, tests).
	ForcePrivateReachability bool
	// DisablePortMapping turns off UPnP/NAT-PMP port mapping on the gateway.
	DisablePortMapping bool
	// DisableHolePunching turns off DCUtR.
	DisableHolePunching bool

	// ConnLow and ConnHigh are the connection manager's watermarks: above
	// High it trims down to Low, never touching protected or mesh peers.
	// Defaults 64 and 192.
	ConnLow, ConnHigh int
	// ConnGrace is how long a new connection is safe from trimming; default 1m.
	ConnGrace time.Duration
	// MemoryLimit and FDLimit scale the resource manager's limits; defaults
	// 256 MiB and 512 descriptors.
	MemoryLimit int64
	FDLimit     int

	// Pubsub tunes gossipsub; see PubsubConfig.
	Pubsub PubsubConfig

	// StreamTimeout bounds every direct-protocol exchange: a request and its
	// response must complete within it. Default 10s.
	StreamTimeout time.Duration
	// MaxConcurrentStreams bounds concurrently served inbound streams per
	// protocol; excess streams are refused with CodeBusy. Default 64.
	MaxConcurrentStreams int
	// DenyLimitedConns keeps direct protocols off relayed (limited)
	// connections. By default they may use them, so two NATed peers can
	// talk before hole punching succeeds (or when it fails).
	DenyLimitedConns bool

	// Registerer receives the package's Prometheus metrics and libp2p's own.
	// Nil means no metrics are registered anywhere (never the global
	// default registry).
	Registerer prometheus.Registerer
	// Logger receives the package's logs; default slog.Default().
	Logger *slog.Logger
}

// PubsubConfig sizes gossipsub's queues and sets the publishing policy.
type PubsubConfig struct {
	// MaxMessageSize is the largest gossip message (one envelope). Larger
	// payloads are published as a PayloadRef and fetched over a stream.
	// Default 256 KiB.
	MaxMessageSize int
	// MaxPayloadSize is the largest payload Publish accepts at all
	// (fetched by reference). Default 16 MiB.
	MaxPayloadSize int
	// PeerOutboundQueue is each peer's outbound RPC queue; default 1024.
	PeerOutboundQueue int
	// ValidateQueue is the queue in front of validation; default 1024.
	ValidateQueue int
	// SubscriptionBuffer is each group subscription's delivery buffer;
	// default 4096.
	SubscriptionBuffer int
	// PublishHighWater: Publish waits while any peer's outbound queue holds
	// this many RPCs or more, and resumes once they all drain below half
	// of it. Default half of PeerOutboundQueue.
	PublishHighWater int
	// PeerRate and PeerBurst limit gossip messages accepted from one
	// neighbour per second; excess is ignored (not forwarded) and counted.
	// Defaults 2000/s and 4000.
	PeerRate  float64
	PeerBurst int
	// SignMessages turns libp2p message signing back on (StrictSign) instead
	// of Conclave's default StrictNoSign with content-hash message IDs. For
	// comparison benchmarks; see docs/protocols.md.
	SignMessages bool
	// PayloadCache bounds the bytes of large payloads kept to serve peers;
	// default 64 MiB.
	PayloadCache int
	// PayloadTTL is how long a large payload stays servable; default 10m.
	PayloadTTL time.Duration
	// DisableScoring turns peer scoring off (tests of raw throughput only).
	DisableScoring bool
}

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("gossip: invalid config")

func (c *Config) setDefaults() error {
	if c.Identity == nil {
		return fmt.Errorf("%w: no identity key", ErrConfig)
	}
	if c.Identity.Type() != crypto.Ed25519 {
		return fmt.Errorf("%w: identity key is %v, want Ed25519", ErrConfig, c.Identity.Type())
	}
	if len(c.ListenAddrs) == 0 {
		c.ListenAddrs = DefaultListenAddrs
	}
	if c.DHTProtocolPrefix == "" {
		c.DHTProtocolPrefix = "/conclave"
	}
	if c.MDNSService == "" {
		c.MDNSService = DefaultMDNSService
	}
	if c.ConnLow == 0 {
		c.ConnLow = 64
	}
	if c.ConnHigh == 0 {
		c.ConnHigh = 192
	}
	if c.ForcePublicReachability && c.ForcePrivateReachability {
		return fmt.Errorf("%w: reachability forced both public and private", ErrConfig)
	}
	if c.ConnLow > c.ConnHigh {
		return fmt.Errorf("%w: ConnLow %d > ConnHigh %d", ErrConfig, c.ConnLow, c.ConnHigh)
	}
	if c.ConnGrace == 0 {
		c.ConnGrace = time.Minute
	}
	if c.MemoryLimit == 0 {
		c.MemoryLimit = 256 << 20
	}
	if c.FDLimit == 0 {
		c.FDLimit = 512
	}
	if c.StreamTimeout == 0 {
		c.StreamTimeout = 10 * time.Second
	}
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = 64
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c.Pubsub.setDefaults()
}

func (p *PubsubConfig) setDefaults() error {
	if p.MaxMessageSize == 0 {
		p.MaxMessageSize = 256 << 10
	}
	if p.MaxMessageSize < 1024 || p.MaxMessageSize > 1<<20 {
		return fmt.Errorf("%w: MaxMessageSize %d outside 1 KiB..1 MiB", ErrConfig, p.MaxMessageSize)
	}
	if p.MaxPayloadSize == 0 {
		p.MaxPayloadSize = 16 << 20
	}
	if p.MaxPayloadSize > MaxEnvelopeBody {
		return fmt.Errorf("%w: MaxPayloadSize %d above %d", ErrConfig, p.MaxPayloadSize, MaxEnvelopeBody)
	}
	if p.PeerOutboundQueue == 0 {
		p.PeerOutboundQueue = 1024
	}
	if p.ValidateQueue == 0 {
		p.ValidateQueue = 1024
	}
	if p.SubscriptionBuffer == 0 {
		p.SubscriptionBuffer = 4096
	}
	if p.PublishHighWater == 0 {
		p.PublishHighWater = p.PeerOutboundQueue / 2
	}
	if p.PublishHighWater < 2 || p.PublishHighWater > p.PeerOutboundQueue {
		return fmt.Errorf("%w: PublishHighWater %d outside 2..PeerOutboundQueue", ErrConfig, p.PublishHighWater)
	}
	if p.PeerRate == 0 {
		p.PeerRate = 2000
	}
	if p.PeerBurst == 0 {
		p.PeerBurst = 4000
	}
	if p.PayloadCache == 0 {
		p.PayloadCache = 64 << 20
	}
	if p.PayloadTTL == 0 {
		p.PayloadTTL = 10 * time.Minute
	}
	return nil
}
