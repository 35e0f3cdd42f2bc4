package gossip

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// Gater is the host's connection gater. It refuses connections with blocked
// peers (a user's block list, or a partition in a test) and can restrict a
// peer to relayed connections only.
type Gater struct {
	mu          sync.RWMutex
	blocked     map[peer.ID]struct{}
	relayedOnly map[peer.ID]struct{}
}

// NewGater returns a gater that allows everything.
func NewGater() *Gater {
	return &Gater{blocked: make(map[peer.ID]struct{}), relayedOnly: make(map[peer.ID]struct{})}
}

// Block refuses every future connection with p.
func (g *Gater) Block(p peer.ID) {
	g.mu.Lock()
	g.blocked[p] = struct{}{}
	g.mu.Unlock()
}

// Unblock allows connections with p again (both Block and RelayedOnly).
func (g *Gater) Unblock(p peer.ID) {
	g.mu.Lock()
	delete(g.blocked, p)
	delete(g.relayedOnly, p)
	g.mu.Unlock()
}

// RelayedOnly refuses direct connections with p but allows relayed ones, as
// if p sat behind a NAT that hole punching cannot open.
func (g *Gater) RelayedOnly(p peer.ID) {
	g.mu.Lock()
	g.relayedOnly[p] = struct{}{}
	g.mu.Unlock()
}

// Blocked reports whether p is blocked.
func (g *Gater) Blocked(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, ok := g.blocked[p]
	return ok
}

func (g *Gater) allow(p peer.ID, addr multiaddr.Multiaddr) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if _, ok := g.blocked[p]; ok {
		return false
	}
	if _, ok := g.relayedOnly[p]; ok && !isRelayed(addr) {
		return false
	}
	return true
}

func isRelayed(addr multiaddr.Multiaddr) bool {
	if addr == nil {
		return false
	}
	_, err := addr.ValueForProtocol(multiaddr.P_CIRCUIT)
	return err == nil
}

// InterceptPeerDial implements connmgr.ConnectionGater.
func (g *Gater) InterceptPeerDial(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, ok := g.blocked[p]
	return !ok
}

// InterceptAddrDial implements connmgr.ConnectionGater.
func (g *Gater) InterceptAddrDial(p peer.ID, addr multiaddr.Multiaddr) bool {
	return g.allow(p, addr)
}

// InterceptAccept implements connmgr.ConnectionGater. The peer is not known
// yet; InterceptSecured decides.
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured implements connmgr.ConnectionGater.
func (g *Gater) InterceptSecured(_ network.Direction, p peer.ID, addrs network.ConnMultiaddrs) bool {
	return g.allow(p, addrs.RemoteMultiaddr())
}

// InterceptUpgraded implements connmgr.ConnectionGater.
func (g *Gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
