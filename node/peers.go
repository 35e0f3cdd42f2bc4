package node

import (
	"bytes"
	"context"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/conclave-im/conclave/identity"
)

// PeerInfo is one peer this node is connected to.
type PeerInfo struct {
	ID     string
	Addrs  []string // remote multiaddrs of the open connections
	Name   string   // the contact's name, if the peer is a contact
	Groups [][]byte // active groups the peer is a member of
}

// Peers returns the peers this node is connected to, sorted by peer ID:
// other members, relays, and DHT or mDNS neighbours alike.
func (n *Node) Peers(ctx context.Context) ([]PeerInfo, error) {
	return call(ctx, n, func() ([]PeerInfo, error) {
		netw := n.net.Host().Network()
		var out []PeerInfo
		for _, p := range netw.Peers() {
			pi := PeerInfo{ID: p.String()}
			for _, c := range netw.ConnsToPeer(p) {
				pi.Addrs = append(pi.Addrs, c.RemoteMultiaddr().String())
			}
			slices.Sort(pi.Addrs)
			pi.Addrs = slices.Compact(pi.Addrs)
			if c, err := n.store.Contacts().Get(n.ctx, []byte(pi.ID)); err == nil {
				pi.Name = c.Name
			}
			if id, err := identity.ParsePeerID(pi.ID); err == nil {
				for _, g := range n.st.groups {
					if g.inactive {
						continue
					}
					if _, ok := n.memberLeaf(g, id); ok {
						pi.Groups = append(pi.Groups, bytes.Clone(g.id))
					}
				}
				slices.SortFunc(pi.Groups, bytes.Compare)
			}
			out = append(out, pi)
		}
		slices.SortFunc(out, func(a, b PeerInfo) int { return strings.Compare(a.ID, b.ID) })
		return out, nil
	})
}

// Block cuts this node off from p: open connections close and new ones are
// refused until Unblock. It exists to rehearse partitions (conclave
// testnet); a user's node never needs it.
func (n *Node) Block(p peer.ID) { n.net.Block(p) }

// Unblock lets p connect again after Block.
func (n *Node) Unblock(p peer.ID) { n.net.Unblock(p) }
