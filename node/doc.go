// Package node is a Conclave node: it ties the MLS group state (mls/), the
// per-epoch agreement on Commits (consensus/), the libp2p network (gossip/)
// and durable storage (datastore/) into groups that people create, invite
// each other to and talk in.
//
// One event-loop goroutine owns every piece of mutable state: the MLS
// groups, the consensus instances, the KeyPackage pool, the subscribers.
// Everything else (API calls, network handlers, the gossip readers, the
// consensus clock, outbound sends) runs elsewhere and only hands the loop a
// function to run, so no lock guards node state. Work that waits on the
// network never runs on the loop: it runs in its own goroutine and posts its
// result back.
//
// docs/node.md describes the flows (invitation, epoch change, messages) and
// what the node persists at each step.
package node
