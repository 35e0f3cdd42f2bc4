// Package consensus decides, for one MLS group and one epoch, the single
// value (a Commit with its Welcome) that ends the epoch, among the epoch's
// members. It is single-decree Paxos with ballots ordered by (round, leaf
// index), a fast first round for the epoch's coordinator, votes that go to
// the proposer only, and a certificate (a quorum of signed votes) that
// proves the decision to anyone who knows the epoch's member set.
//
// The package is a pure state machine in the style of etcd's raft.RawNode:
// no goroutines, clocks, randomness or I/O. The node drives one Instance per
// (group, epoch) it is a member of:
//
//	in, err := consensus.New(consensus.Config{
//		GroupID: gid, Epoch: n, Self: myLeaf, Members: leaves,
//		Signer: s, Verifier: v, Validate: checkCommit,
//		Storage: st, Rand: rand.New(rand.NewPCG(seed1, seed2)),
//	})
//	in.Propose(commitAndWelcome)   // optional: this member wants to commit
//	in.Step(msg)                   // for every received message of epoch n
//	in.Tick()                      // on a fixed period (a few round trips = TimeoutTicks)
//	for in.HasReady() {
//		rd := in.Ready()
//		// 1. persist rd.State (if non-nil) durably, before sending anything
//		// 2. send rd.Messages (Envelope.To is a leaf or ToAll)
//		// 3. apply rd.Decision (if non-nil); re-propose rd.Superseded next epoch
//		in.Advance()
//	}
//
// Messages travel as bytes: Message.MarshalBinary and DecodeMessage give a
// compact, versioned, strictly checked encoding; anything malformed is an
// ErrMalformed error, never a panic. The transport must authenticate the
// sender (Message.From); the node sends messages inside MLS PrivateMessages.
//
// Catch-up: a node that missed an epoch verifies a decision it receives from
// anyone with VerifyCertificate, which needs only the epoch's member set and
// leaf keys, and hands it to a live instance with Instance.Learn. A node that
// already discarded an instance answers stragglers with DecideMessage.
//
// docs/consensus.md describes the protocol, its safety argument, liveness
// conditions and costs. The tests include a deterministic simulator
// (TestSimulation, `make sim SEEDS=N`) whose failing seeds replay with one
// command.
package consensus
