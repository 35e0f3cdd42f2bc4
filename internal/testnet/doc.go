// Package testnet runs a local Conclave network of several nodes in one
// process, to rehearse partitions and offline catch-up before they happen
// for real.
//
// Every node is a real node.Node on its own libp2p host on loopback, with
// its own data directory (<dir>/node1, <dir>/node2, ...) and its own local
// API socket served by package api exactly as `conclave daemon` serves it,
// so every conclave command works against a node with --home <dir>/nodeN.
// The nodes are connected in a full mesh without discovery (no mDNS, DHT or
// relays). A control API on a Unix socket in the directory (mode 0600,
// JSON over HTTP like package api) reports the nodes and their connections
// and cuts the network into sides (Partition: every connection across the
// sides is closed and refused by each host's connection gater), heals it,
// and stops and restarts single nodes. docs/testnet.md shows a rehearsal
// step by step.
package testnet
