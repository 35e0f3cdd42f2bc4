// Package identity holds Conclave's self-certifying identities: the node's
// long-term Ed25519 key and the libp2p peer ID derived from it, the Conclave
// MLS credential that binds a per-membership MLS signature key to that
// identity, and the safety codes people compare out of band to make sure
// they talk to the right identity.
//
// There is no authentication server: a peer ID is a public key, so anyone
// can check that a credential was issued by the holder of that key. What no
// code can check is that a peer ID belongs to the person the user believes
// it does; safety codes close that gap. docs/identity.md gives the wire
// formats byte by byte and the reasoning.
//
// The package is deliberately small and free of networking libraries: the
// peer ID derivation is implemented here with the standard library and
// cross-checked against go-libp2p in the tests only.
package identity
