// Package gossip is Conclave's network layer: a libp2p host built from the
// node's identity key, peer discovery (mDNS on the LAN, a Kademlia DHT on the
// internet), NAT traversal (AutoNAT, hole punching, circuit relay v2), one
// gossipsub topic per group, and the direct stream protocols that carry
// KeyPackages, Welcomes, catch-up sync, consensus messages to one member and
// payloads too large for gossip.
//
// The package owns no group state. Everything it moves is an opaque payload
// inside a versioned, length-bounded Envelope; the node decides what the
// bytes mean and serves requests through the Handlers it supplies. Anything
// that does not parse, is too large, arrives too fast or never finishes is
// dropped and counted in Prometheus metrics, never allowed to crash the node.
//
// docs/protocols.md describes every protocol, its messages and its limits.
package gossip
