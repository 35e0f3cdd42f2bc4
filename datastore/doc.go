// Package datastore is the node's durable, encrypted home: typed stores for
// the identity, KeyPackage private keys, MLS group state with its retained
// past epochs, consensus acceptor records, the per-group message log and
// decrypted history, the outbox and contacts.
//
// It sits on the go-datastore interfaces, with embedded Pebble
// (go-ds-pebble) in the data directory by default and the in-memory
// datastore for tests. Every record value is sealed with XChaCha20-Poly1305
// under a random data key, with the record's key as associated data, so a
// record can be neither read, altered nor moved to another key without the
// data key. Identifiers inside keys (group IDs, peer IDs, KeyPackage refs)
// are blinded with a keyed hash so that the key space reveals no more than
// counts.
//
// Each write says whether it is synced (durable before the call returns:
// identity, KeyPackages, group creation, joins, epoch transitions, consensus
// acceptor records, outbox additions, contacts) or buffered (durable at the
// next synced write, Sync or Close: message-log and history appends, ratchet
// updates, outbox removals). A crash never tears a write: each call is one
// atomic batch. An epoch transition stores the new group state, deletes the
// secrets that the transition supersedes and records the decided Commit in
// one synced batch.
//
// The secret and protocol-state parts of every record are opaque bytes
// produced by the mls and consensus packages; this package never interprets
// them. docs/storage.md describes the key layout, the schema version, the
// durability classes and what encryption at rest does and does not protect
// against.
package datastore
