package testnet

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/conclave-im/conclave/node"
)

// blocker cuts and restores the connections of one node with one peer:
// what a partition needs from a node's network (gossip.Network.Block and
// Unblock, which refuse connections in the host's connection gater and
// close the open ones).
type blocker interface {
	Block(p peer.ID)
	Unblock(p peer.ID)
}

// networkOf returns what partitions a started node: the node itself.
func networkOf(n *node.Node) (blocker, error) { return n, nil }
