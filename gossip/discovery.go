package gossip

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/zeroconf/v2"
	"github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multihash"
)

// ErrNoDHT is returned by DHT operations on a Network running without one.
var ErrNoDHT = errors.New("gossip: DHT disabled")

// Topic returns the gossipsub topic of a group: a hash of the group ID, so
// that the topic name (visible to every gossipsub peer and in the DHT) does
// not reveal the ID itself.
func Topic(groupID []byte) string {
	h := sha256.New()
	h.Write([]byte("conclave/v1/topic\x00"))
	h.Write(groupID)
	return "/conclave/1/group/" + hex.EncodeToString(h.Sum(nil))
}

// RendezvousKey returns the DHT key under which the members of a group
// announce themselves: a CID over a hash of the group's topic.
func RendezvousKey(groupID []byte) cid.Cid {
	h := sha256.Sum256([]byte("conclave/v1/rendezvous\x00" + Topic(groupID)))
	mh, err := multihash.Encode(h[:], multihash.SHA2_256)
	if err != nil {
		// Encode only fails for unknown codes or wrong digest lengths,
		// neither of which can happen with a SHA-256 digest.
		panic("gossip: encoding a sha2-256 multihash: " + err.Error())
	}
	return cid.NewCidV1(cid.Raw, mh)
}

// startDiscovery starts the DHT and mDNS as configured.
func (n *Network) startDiscovery(ctx context.Context) error {
	if n.cfg.DHT != DHTOff {
		mode := dht.ModeAuto
		switch n.cfg.DHT {
		case DHTClient:
			mode = dht.ModeClient
		case DHTServer:
			mode = dht.ModeServer
		}
		d, err := dht.New(n.host,
			dht.Mode(mode),
			dht.ProtocolPrefix(protocol.ID(n.cfg.DHTProtocolPrefix)),
			dht.BootstrapPeers(n.cfg.BootstrapPeers...),
		)
		if err != nil {
			return fmt.Errorf("gossip: starting DHT: %w", err)
		}
		n.dht = d
		if err := d.Bootstrap(ctx); err != nil {
			return fmt.Errorf("gossip: bootstrapping DHT: %w", err)
		}
		for _, bp := range n.cfg.BootstrapPeers {
			if bp.ID == n.host.ID() {
				continue
			}
			n.goTracked(func() {
				cctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
				defer cancel()
				if err := n.host.Connect(cctx, bp); err != nil {
					n.log.Debug("bootstrap peer unreachable", "bootstrap", bp.ID, "err", err)
				}
			})
		}
	}
	if !n.cfg.DisableMDNS {
		s, err := startMDNS(n.ctx, n.host, n.cfg.MDNSService, n.cfg.MDNSInterfaces, n.mdnsFound, n.log)
		if err != nil {
			return err
		}
		n.mdns = s
	}
	return nil
}

// mdnsFound dials a peer announced on the LAN.
func (n *Network) mdnsFound(ai peer.AddrInfo) {
	if ai.ID == n.host.ID() || len(n.host.Network().ConnsToPeer(ai.ID)) > 0 {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, 15*time.Second)
	defer cancel()
	if err := n.host.Connect(ctx, ai); err != nil {
		n.log.Debug("mDNS peer unreachable", "found", ai.ID, "err", err)
	}
}

// FindPeer looks up a peer's addresses: first among connected peers and the
// peerstore, then in the DHT.
func (n *Network) FindPeer(ctx context.Context, id peer.ID) (peer.AddrInfo, error) {
	if conns := n.host.Network().ConnsToPeer(id); len(conns) > 0 {
		ai := n.host.Peerstore().PeerInfo(id)
		if len(ai.Addrs) == 0 {
			for _, c := range conns {
				ai.Addrs = append(ai.Addrs, c.RemoteMultiaddr())
			}
		}
		return ai, nil
	}
	if n.dht == nil {
		return peer.AddrInfo{}, ErrNoDHT
	}
	ai, err := n.dht.FindPeer(ctx, id)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("gossip: finding peer %s: %w", id, err)
	}
	return ai, nil
}

// Advertise announces in the DHT that this node is a member of the group.
// Announcements expire (after 48 hours in kad-dht), so the node should call
// it again periodically (every few hours) while it stays a member.
func (n *Network) Advertise(ctx context.Context, groupID []byte) error {
	if n.dht == nil {
		return ErrNoDHT
	}
	if err := n.dht.Provide(ctx, RendezvousKey(groupID), true); err != nil {
		return fmt.Errorf("gossip: advertising group membership: %w", err)
	}
	return nil
}

// FindMembers looks up, in the DHT, up to max peers that advertised
// membership of the group (this node excluded). It returns what it found when
// ctx ends, with ctx's error only if it found nobody.
func (n *Network) FindMembers(ctx context.Context, groupID []byte, max int) ([]peer.AddrInfo, error) {
	if n.dht == nil {
		return nil, ErrNoDHT
	}
	var found []peer.AddrInfo
	for ai := range n.dht.FindProvidersAsync(ctx, RendezvousKey(groupID), max+1) {
		if ai.ID == n.host.ID() {
			continue
		}
		found = append(found, ai)
		if len(found) == max {
			break
		}
	}
	if len(found) == 0 && ctx.Err() != nil {
		return nil, fmt.Errorf("gossip: finding group members: %w", ctx.Err())
	}
	return found, nil
}

// relayHop is the circuit relay v2 hop protocol; peers that speak it offer
// the relay service.
const relayHop = "/libp2p/circuit/relay/0.2.0/hop"

// relayCandidates feeds autorelay with connected peers that offer the relay
// service, when no static relays are configured.
func (n *Network) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	defer close(out)
	hp := n.relayHost.Load()
	if hp == nil {
		return out
	}
	h := *hp
	for _, p := range h.Network().Peers() {
		if len(out) == num {
			break
		}
		if ok, err := h.Peerstore().SupportsProtocols(p, relayHop); err == nil && len(ok) > 0 {
			out <- h.Peerstore().PeerInfo(p)
		}
	}
	return out
}

// mdnsService announces this host on the LAN with DNS-SD over multicast DNS
// and dials the hosts it hears. It is go-libp2p's mdns service rebuilt on the
// same zeroconf library so that the interfaces can be chosen: tests stay on
// the loopback interface, and users can keep mDNS off untrusted networks.
type mdnsService struct {
	server *zeroconf.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const mdnsTXTPrefix = "dnsaddr="

func startMDNS(ctx context.Context, h host.Host, service string, ifaceNames []string, found func(peer.AddrInfo), log interface {
	Debug(string, ...any)
}) (*mdnsService, error) {
	var ifaces []net.Interface
	for _, name := range ifaceNames {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("gossip: mDNS interface %q: %w", name, err)
		}
		ifaces = append(ifaces, *ifi)
	}
	listen, err := h.Network().InterfaceListenAddresses()
	if err != nil {
		return nil, fmt.Errorf("gossip: mDNS: listen addresses: %w", err)
	}
	var txts, ips []string
	for _, a := range listen {
		if isRelayed(a) {
			continue
		}
		first, _ := multiaddr.SplitFirst(a)
		if first == nil || (first.Protocol().Code != multiaddr.P_IP4 && first.Protocol().Code != multiaddr.P_IP6) {
			continue
		}
		if len(ips) < 2 {
			ips = appendUnique(ips, first.Value())
		}
		full := a.Encapsulate(multiaddr.StringCast("/p2p/" + h.ID().String()))
		txts = append(txts, mdnsTXTPrefix+full.String())
	}
	if len(txts) == 0 {
		return nil, errors.New("gossip: mDNS: no IP listen address to announce")
	}
	instance := randomInstance()
	// The port is required by DNS-SD but unused: peers dial the TXT addresses.
	server, err := zeroconf.RegisterProxy(instance, service, "local", 4001, instance, ips, txts, ifaces)
	if err != nil {
		return nil, fmt.Errorf("gossip: mDNS announce: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &mdnsService{server: server, cancel: cancel}
	entries := make(chan *zeroconf.ServiceEntry, 64)
	var opts []zeroconf.ClientOption
	if len(ifaces) > 0 {
		opts = append(opts, zeroconf.SelectIfaces(ifaces))
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := zeroconf.Browse(ctx, service, "local", entries, opts...); err != nil {
			log.Debug("mDNS browse stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		for e := range entries {
			for _, ai := range parseMDNSEntry(e.Text) {
				if ai.ID != h.ID() {
					s.wg.Add(1)
					go func() { defer s.wg.Done(); found(ai) }()
				}
			}
		}
	}()
	return s, nil
}

// parseMDNSEntry turns TXT records into peer addresses, skipping anything
// that does not parse: the LAN is untrusted input too.
func parseMDNSEntry(txts []string) []peer.AddrInfo {
	var addrs []multiaddr.Multiaddr
	for _, t := range txts {
		if !strings.HasPrefix(t, mdnsTXTPrefix) {
			continue
		}
		a, err := multiaddr.NewMultiaddr(t[len(mdnsTXTPrefix):])
		if err != nil {
			continue
		}
		addrs = append(addrs, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(addrs...)
	if err != nil {
		return nil
	}
	return infos
}

func (s *mdnsService) Close() error {
	s.cancel()
	s.server.Shutdown()
	s.wg.Wait()
	return nil
}

func appendUnique(xs []string, x string) []string {
	for _, y := range xs {
		if y == x {
			return xs
		}
	}
	return append(xs, x)
}

func randomInstance() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
