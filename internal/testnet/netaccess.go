package testnet

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/conclave-im/conclave/gossip"
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

// networkOf returns the gossip network of a started node.
//
// node.Node keeps its *gossip.Network in an unexported field and offers no
// Block/Unblock of its own, and the testnet may not change node/ this
// session; so this one function reads the field by reflection. It checks
// the field's name and type and returns an error, never panics, if node
// changes them; the testnet tests then fail at once. Once node.Node gains
// Block(peer.ID) and Unblock(peer.ID) (or a Network() accessor), this body
// becomes `return n, nil` and the reflection goes.
func networkOf(n *node.Node) (blocker, error) {
	v := reflect.ValueOf(n).Elem()
	f := v.FieldByName("net")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*gossip.Network]() {
		return nil, fmt.Errorf("testnet: node.Node has no field net *gossip.Network to partition with (node changed; give node Block/Unblock)")
	}
	netw := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(*gossip.Network)
	if netw == nil {
		return nil, fmt.Errorf("testnet: node not started")
	}
	return netw, nil
}
