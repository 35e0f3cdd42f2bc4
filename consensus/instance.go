package consensus

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
)

// Signer signs vote content with the local member's leaf signature key for
// the instance's epoch.
type Signer interface {
	Sign(content []byte) ([]byte, error)
}

// Verifier checks a signature by the member at leaf over content, with that
// leaf's signature key in the epoch being decided.
type Verifier interface {
	Verify(leaf uint32, content, signature []byte) error
}

// Validator reports whether value may end the epoch (for Conclave: whether
// the Commit it carries is valid for the epoch under RFC 9420). An acceptor
// consults it before every vote and never votes for a value it rejects. It
// must be deterministic for a given epoch: honest members must agree on it.
type Validator func(value []byte) error

// Rand is the injected source of randomness for timeout jitter; a
// *math/rand/v2.Rand satisfies it. Seeding it makes a run reproducible.
type Rand interface {
	IntN(n int) int
}

// DefaultTimeoutTicks is the base timeout when Config.TimeoutTicks is zero.
const DefaultTimeoutTicks = 10

// maxBackoffShift caps the exponential growth of the retry timeout: the
// jitter window grows to at most 2^maxBackoffShift base timeouts.
const maxBackoffShift = 3

// Config describes one instance: one group, one epoch, one local member.
type Config struct {
	// GroupID and Epoch name the decision; both are signed into every vote.
	GroupID []byte
	Epoch   uint64
	// Self is the local member's leaf index; Members is the epoch's member
	// set (leaf indices, any order, no duplicates) and so the acceptors.
	Self    uint32
	Members []uint32

	Signer   Signer
	Verifier Verifier
	Validate Validator
	// Storage restores the acceptor state after a restart; nil means a fresh
	// instance.
	Storage Storage
	// Rand jitters timeouts so that competing proposers spread out.
	Rand Rand
	// TimeoutTicks is the base number of ticks a proposer waits for a quorum
	// before retrying with a higher ballot, and an acceptor holding an
	// undecided value waits before taking over. It should be several round
	// trips. Zero means DefaultTimeoutTicks.
	TimeoutTicks int
}

type phase uint8

const (
	idle      phase = iota // not proposing
	preparing              // phase 1: collecting promises for ballot
	accepting              // phase 2: collecting votes for ballot
)

// Decision is the outcome of an instance: the value and its proof.
type Decision struct {
	Value       []byte
	Certificate Certificate
}

// Ready is the output of an instance since the last Advance. The node must
// handle it in this order:
//  1. if State is non-nil, persist it durably (replacing the previous state
//     of this group and epoch) before anything else;
//  2. send Messages (To is a leaf index or ToAll);
//  3. if Decision is non-nil, apply it (once per instance);
//  4. if Superseded is non-nil, the local proposal lost: carry it into the
//     next epoch;
//
// then call Advance.
type Ready struct {
	State      *HardState
	Messages   []Envelope
	Decision   *Decision
	Superseded []byte
}

// Instance is the consensus state machine for one (group, epoch) at one
// member. It is not safe for concurrent use: one goroutine (the node's event
// loop) calls Step, Tick, Propose and Learn, and drains Ready.
type Instance struct {
	groupID      []byte
	epoch        uint64
	self         uint32
	members      []uint32 // sorted
	quorum       int
	coordinator  uint32
	signer       Signer
	verifier     Verifier
	validate     Validator
	rand         Rand
	timeoutTicks int

	// Acceptor, durable.
	hs             HardState
	acceptedDigest [sha256.Size]byte
	lastVote       []byte // signature sent for hs.Accepted, resent on duplicates

	// Values this member holds, by digest, so that a Committed (which
	// carries only the digest) can be matched: its own proposal and the
	// last value it was asked to accept.
	proposalDigest [sha256.Size]byte
	seen           []byte
	seenDigest     [sha256.Size]byte

	// Proposer, volatile.
	proposal     []byte // the local member's value, nil if none
	phase        phase
	ballot       Ballot
	value        []byte // phase 2 value
	valueDigest  [sha256.Size]byte
	granted      []bool   // by member position: promise (phase 1) or vote (phase 2)
	sigs         [][]byte // by member position: phase 2 vote signatures
	nGranted     int
	highest      Ballot // phase 1: highest accepted ballot reported
	highestValue []byte
	maxRound     uint32 // highest round seen from anyone
	failures     int

	elapsed, timeout int

	validated [4][sha256.Size]byte // digests of values that passed Validate
	nValid    int

	decision       *Decision
	decisionDigest [sha256.Size]byte
	superseded     []byte

	// Output not yet handed out by Ready/Advance.
	msgs          []Envelope
	stateDirty    bool
	decisionReady bool
}

// New creates the instance described by cfg, restoring persisted acceptor
// state from cfg.Storage.
func New(cfg Config) (*Instance, error) {
	members, err := sortedMembers(cfg.Members)
	if err != nil {
		return nil, err
	}
	if &members[0] == &cfg.Members[0] {
		members = slices.Clone(members) // the caller keeps its slice
	}
	if _, ok := slices.BinarySearch(members, cfg.Self); !ok {
		return nil, fmt.Errorf("%w: self %d: %w", ErrInvalidConfig, cfg.Self, ErrNotMember)
	}
	if cfg.Signer == nil || cfg.Verifier == nil || cfg.Validate == nil || cfg.Rand == nil {
		return nil, fmt.Errorf("%w: Signer, Verifier, Validate and Rand are required", ErrInvalidConfig)
	}
	if len(cfg.GroupID) > 0xffff {
		return nil, fmt.Errorf("%w: group ID of %d bytes", ErrInvalidConfig, len(cfg.GroupID))
	}
	in := &Instance{
		groupID:      slices.Clone(cfg.GroupID),
		epoch:        cfg.Epoch,
		self:         cfg.Self,
		members:      members,
		quorum:       Quorum(len(members)),
		coordinator:  coordinator(cfg.Epoch, members),
		signer:       cfg.Signer,
		verifier:     cfg.Verifier,
		validate:     cfg.Validate,
		rand:         cfg.Rand,
		timeoutTicks: cfg.TimeoutTicks,
	}
	if in.timeoutTicks <= 0 {
		in.timeoutTicks = DefaultTimeoutTicks
	}
	if cfg.Storage != nil {
		hs, err := cfg.Storage.InitialState()
		if err != nil {
			return nil, fmt.Errorf("consensus: restore epoch %d: %w", cfg.Epoch, err)
		}
		if err := in.restore(hs); err != nil {
			return nil, err
		}
	}
	in.resetTimer()
	return in, nil
}

func (in *Instance) restore(hs HardState) error {
	if hs.IsZero() {
		return nil
	}
	if err := hs.check(); err != nil {
		return fmt.Errorf("consensus: restore epoch %d: %w", in.epoch, err)
	}
	if hs.Epoch != in.epoch {
		return fmt.Errorf("%w: stored state is for epoch %d, instance for %d", ErrInvalidConfig, hs.Epoch, in.epoch)
	}
	for _, b := range []Ballot{hs.Promised, hs.Accepted} {
		if !b.IsZero() && !in.isMember(b.Leaf) {
			return fmt.Errorf("%w: stored ballot %v: %w", ErrInvalidConfig, b, ErrNotMember)
		}
	}
	in.hs = hs
	if hs.Value != nil {
		in.acceptedDigest = sha256.Sum256(hs.Value)
		in.remember(in.acceptedDigest)
	}
	if hs.Promised.Round > in.maxRound {
		in.maxRound = hs.Promised.Round
	}
	return nil
}

// Epoch returns the epoch the instance decides.
func (in *Instance) Epoch() uint64 { return in.epoch }

// Coordinator returns the member allowed to use the fast round.
func (in *Instance) Coordinator() uint32 { return in.coordinator }

// Decision returns the decision, or nil while undecided.
func (in *Instance) Decision() *Decision { return in.decision }

// Propose asks the group to decide value. The value is checked with the
// Validator first. It fails with ErrDecided once the epoch is decided (carry
// the value into the next epoch) and with ErrProposalPending while another
// local proposal is in flight. Propose keeps a copy of value.
func (in *Instance) Propose(value []byte) error {
	if in.decision != nil {
		return fmt.Errorf("consensus: propose in epoch %d: %w", in.epoch, ErrDecided)
	}
	if in.proposal != nil {
		return fmt.Errorf("consensus: propose in epoch %d: %w", in.epoch, ErrProposalPending)
	}
	if len(value) == 0 || len(value) > MaxValueSize {
		return fmt.Errorf("consensus: propose in epoch %d: %w: %d bytes, want 1..%d", in.epoch, ErrInvalidValue, len(value), MaxValueSize)
	}
	value = slices.Clone(value)
	if err := in.checkValid(value, sha256.Sum256(value)); err != nil {
		return fmt.Errorf("consensus: propose in epoch %d: %w", in.epoch, err)
	}
	in.proposal = value
	in.proposalDigest = sha256.Sum256(value)
	if in.phase == idle {
		in.startBallot()
	}
	return nil
}

// Tick advances the instance's logical clock by one tick. On timeout a
// proposer retries with a higher ballot, and an acceptor holding an
// undecided accepted value takes over as proposer so that the value is
// decided even if its proposer crashed.
func (in *Instance) Tick() {
	if in.decision != nil {
		return
	}
	in.elapsed++
	if in.elapsed < in.timeout {
		return
	}
	if in.proposal == nil && in.hs.Value == nil {
		in.resetTimer()
		return
	}
	if in.phase != idle {
		in.failures++
	}
	in.startBallot()
}

// Learn applies a decision received out of band (for example with a catch-up
// sync): the certificate is checked against the epoch's member set before
// the decision is taken.
func (in *Instance) Learn(value []byte, cert *Certificate) error {
	if err := verifyCertificate(in.groupID, in.epoch, in.members, in.quorum, sha256.Sum256(value), cert, in.verifier); err != nil {
		return fmt.Errorf("consensus: learn epoch %d: %w", in.epoch, err)
	}
	return in.learnVerified(value, cert)
}

// Step feeds one received message to the instance. An error means the
// message was dropped (it is malformed for this instance, or wrong); the
// instance is unchanged by it and remains usable. Step keeps references to
// m's byte slices.
func (in *Instance) Step(m Message) error {
	if m.Epoch != in.epoch {
		return fmt.Errorf("consensus: %v for epoch %d at epoch %d: %w", m.Type, m.Epoch, in.epoch, ErrWrongEpoch)
	}
	if m.From == in.self {
		return nil // a broadcast echoed back by the transport
	}
	if !in.isMember(m.From) {
		return fmt.Errorf("consensus: %v from leaf %d: %w", m.Type, m.From, ErrNotMember)
	}
	if err := in.checkBallot(m); err != nil {
		return err
	}
	if in.decision != nil {
		switch m.Type {
		case MsgPrepare, MsgAccept, MsgLearn:
			in.sendDecision(m.From)
		case MsgDecide, MsgCommitted:
			digest := m.Digest
			if m.Type == MsgDecide {
				digest = sha256.Sum256(m.Value)
			}
			if digest != in.decisionDigest {
				if err := in.verify(digest, m.Certificate); err != nil {
					return err
				}
				return fmt.Errorf("consensus: epoch %d: %v from leaf %d: %w", in.epoch, m.Type, m.From, ErrConflictingDecision)
			}
		}
		return nil
	}
	switch m.Type {
	case MsgPrepare:
		in.onPrepare(m)
	case MsgPromise:
		return in.onPromise(m)
	case MsgNack:
		in.onNack(m)
	case MsgAccept:
		return in.onAccept(m)
	case MsgAccepted:
		return in.onAccepted(m)
	case MsgDecide:
		if err := in.verify(sha256.Sum256(m.Value), m.Certificate); err != nil {
			return err
		}
		return in.learnVerified(m.Value, m.Certificate)
	case MsgCommitted:
		return in.onCommitted(m)
	case MsgLearn:
	default:
		return fmt.Errorf("consensus: %w: unknown message type %d", ErrMalformed, uint8(m.Type))
	}
	return nil
}

// checkBallot enforces who may use which ballot, so that no state is
// touched by a message that a correct member could not have sent.
func (in *Instance) checkBallot(m Message) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("consensus: %v from leaf %d: %w: "+format, append([]any{m.Type, m.From, ErrProtocol}, args...)...)
	}
	if m.Type == MsgLearn {
		return nil
	}
	b := m.Ballot
	if b.IsZero() {
		return bad("zero ballot")
	}
	if !in.isMember(b.Leaf) {
		return bad("ballot %v names a non-member", b)
	}
	if b.Round == FastRound && b.Leaf != in.coordinator {
		return bad("fast ballot %v, coordinator is %d", b, in.coordinator)
	}
	switch m.Type {
	case MsgPrepare:
		if b.Leaf != m.From || b.Round == FastRound {
			return bad("prepare with ballot %v", b)
		}
	case MsgAccept:
		if b.Leaf != m.From || len(m.Value) == 0 {
			return bad("accept with ballot %v", b)
		}
	case MsgPromise:
		if !m.AcceptedBallot.IsZero() && (!m.AcceptedBallot.Less(b) || !in.isMember(m.AcceptedBallot.Leaf)) {
			return bad("promise for %v reports accepted %v", b, m.AcceptedBallot)
		}
		if m.AcceptedBallot.IsZero() != (len(m.Value) == 0) {
			return bad("promise value does not match accepted ballot %v", m.AcceptedBallot)
		}
	case MsgNack:
		if !b.Less(m.Promised) {
			return bad("nack of %v citing lower promise %v", b, m.Promised)
		}
	case MsgDecide:
		if m.Certificate == nil || m.Certificate.Ballot != b || len(m.Value) == 0 {
			return bad("decide without a matching certificate")
		}
	case MsgCommitted:
		if m.Certificate == nil || m.Certificate.Ballot != b {
			return bad("committed without a matching certificate")
		}
	}
	return nil
}

func (in *Instance) onPrepare(m Message) {
	if m.Ballot.Less(in.hs.Promised) {
		in.send(m.From, Message{Type: MsgNack, Ballot: m.Ballot, Promised: in.hs.Promised})
		return
	}
	if m.Ballot == in.hs.Accepted {
		return // a duplicate Prepare overtaken by its own Accept
	}
	in.observe(m.Ballot)
	if in.hs.Promised != m.Ballot {
		in.hs.Promised = m.Ballot
		in.stateDirty = true
	}
	in.send(m.From, Message{Type: MsgPromise, Ballot: m.Ballot, AcceptedBallot: in.hs.Accepted, Value: in.hs.Value})
}

func (in *Instance) onPromise(m Message) error {
	if in.phase != preparing || m.Ballot != in.ballot {
		return nil // late or for an abandoned ballot
	}
	pos := in.position(m.From)
	if in.granted[pos] {
		return nil
	}
	in.granted[pos] = true
	in.nGranted++
	if in.highest.Less(m.AcceptedBallot) {
		in.highest = m.AcceptedBallot
		in.highestValue = m.Value
	}
	if in.nGranted >= in.quorum {
		in.beginAccept()
	}
	return nil
}

func (in *Instance) onNack(m Message) {
	in.seeRound(m.Promised.Round)
	if in.phase == idle || m.Ballot != in.ballot {
		return
	}
	// A member promised a higher ballot: this one cannot gather a quorum
	// of fresh promises in time. Back off with jitter before retrying.
	in.phase = idle
	in.failures++
	in.resetTimer()
}

func (in *Instance) onAccept(m Message) error {
	if m.Ballot.Less(in.hs.Promised) {
		in.send(m.From, Message{Type: MsgNack, Ballot: m.Ballot, Promised: in.hs.Promised})
		return nil
	}
	digest := sha256.Sum256(m.Value)
	in.seen, in.seenDigest = m.Value, digest
	if m.Ballot == in.hs.Accepted {
		if digest != in.acceptedDigest {
			return fmt.Errorf("consensus: accept from leaf %d: %w: two values under ballot %v", m.From, ErrProtocol, m.Ballot)
		}
		if in.lastVote == nil { // the vote was given before a restart
			sig, err := in.signer.Sign(VoteContent(in.groupID, in.epoch, m.Ballot, digest))
			if err != nil {
				return fmt.Errorf("consensus: sign vote for %v: %w", m.Ballot, err)
			}
			in.lastVote = sig
		}
		in.send(m.From, Message{Type: MsgAccepted, Ballot: m.Ballot, Signature: in.lastVote})
		return nil
	}
	if err := in.checkValid(m.Value, digest); err != nil {
		return fmt.Errorf("consensus: accept %v from leaf %d: %w", m.Ballot, m.From, err)
	}
	sig, err := in.signer.Sign(VoteContent(in.groupID, in.epoch, m.Ballot, digest))
	if err != nil {
		return fmt.Errorf("consensus: sign vote for %v: %w", m.Ballot, err)
	}
	in.acceptLocally(m.Ballot, m.Value, digest, sig)
	in.observe(m.Ballot) // after accepting: the takeover stagger depends on it
	in.send(m.From, Message{Type: MsgAccepted, Ballot: m.Ballot, Signature: sig})
	return nil
}

func (in *Instance) onAccepted(m Message) error {
	if in.phase != accepting || m.Ballot != in.ballot {
		return nil
	}
	pos := in.position(m.From)
	if in.granted[pos] {
		return nil
	}
	content := VoteContent(in.groupID, in.epoch, in.ballot, in.valueDigest)
	if err := in.verifier.Verify(m.From, content, m.Signature); err != nil {
		return fmt.Errorf("consensus: vote by leaf %d for %v: %w", m.From, m.Ballot, err)
	}
	in.grantVote(pos, m.Signature)
	return nil
}

// onCommitted decides if this member holds the value whose digest the
// message names (it voted for it, proposed it, or was asked to accept it);
// otherwise it asks the sender, which is decided, for the whole Decide.
func (in *Instance) onCommitted(m Message) error {
	value := in.valueFor(m.Digest)
	if value == nil {
		in.send(m.From, Message{Type: MsgLearn})
		return nil
	}
	if err := in.verify(m.Digest, m.Certificate); err != nil {
		return err
	}
	return in.learnVerified(value, m.Certificate)
}

func (in *Instance) valueFor(digest [sha256.Size]byte) []byte {
	switch {
	case in.hs.Value != nil && in.acceptedDigest == digest:
		return in.hs.Value
	case in.value != nil && in.valueDigest == digest:
		return in.value
	case in.proposal != nil && in.proposalDigest == digest:
		return in.proposal
	case in.seen != nil && in.seenDigest == digest:
		return in.seen
	}
	return nil
}

// observe notes a ballot started by another member: the local proposer gives
// up a lower ballot (its own acceptor is about to promise the higher one)
// and everyone restarts their timeout, since someone is making progress.
func (in *Instance) observe(b Ballot) {
	in.seeRound(b.Round)
	if in.phase != idle && in.ballot.Less(b) {
		in.phase = idle
	}
	in.resetTimer()
}

func (in *Instance) seeRound(r uint32) {
	if r > in.maxRound {
		in.maxRound = r
	}
}

// startBallot begins a new attempt: the fast round if this member is the
// coordinator and has never promised anything, otherwise phase 1 with a
// round above every round it has seen.
func (in *Instance) startBallot() {
	in.resetTimer()
	if in.self == in.coordinator && in.hs.Promised.IsZero() && in.proposal != nil {
		in.ballot = Ballot{Round: FastRound, Leaf: in.self}
		in.hs.Promised = in.ballot
		in.stateDirty = true
		in.beginAcceptWith(in.proposal)
		return
	}
	round := max(in.maxRound, in.hs.Promised.Round, FastRound)
	if round == ^uint32(0) {
		in.phase = idle // rounds exhausted; only a Decide can end this epoch
		return
	}
	in.ballot = Ballot{Round: round + 1, Leaf: in.self}
	in.maxRound = in.ballot.Round
	in.hs.Promised = in.ballot
	in.stateDirty = true
	in.phase = preparing
	in.resetGrants()
	in.highest, in.highestValue = in.hs.Accepted, in.hs.Value
	in.granted[in.position(in.self)] = true
	in.nGranted = 1
	in.send(ToAll, Message{Type: MsgPrepare, Ballot: in.ballot})
	if in.nGranted >= in.quorum {
		in.beginAccept()
	}
}

// beginAccept enters phase 2 once a quorum promised: the value is the one
// accepted under the highest ballot any of them reported, or else the local
// proposal.
func (in *Instance) beginAccept() {
	v := in.highestValue
	if in.highest.IsZero() {
		v = in.proposal
	}
	if v == nil {
		in.phase = idle // nothing accepted anywhere and nothing to propose
		return
	}
	in.beginAcceptWith(v)
}

func (in *Instance) beginAcceptWith(v []byte) {
	in.phase = accepting
	in.value = v
	in.valueDigest = sha256.Sum256(v)
	in.resetGrants()
	// The proposer's own vote, if its acceptor may give it: it promised
	// this ballot itself and the value must pass its own validation, like
	// any other acceptor's.
	if in.hs.Promised == in.ballot && in.checkValid(v, in.valueDigest) == nil {
		sig, err := in.signer.Sign(VoteContent(in.groupID, in.epoch, in.ballot, in.valueDigest))
		if err == nil {
			in.acceptLocally(in.ballot, v, in.valueDigest, sig)
			in.send(ToAll, Message{Type: MsgAccept, Ballot: in.ballot, Value: v})
			in.grantVote(in.position(in.self), sig)
			return
		}
	}
	in.send(ToAll, Message{Type: MsgAccept, Ballot: in.ballot, Value: v})
}

func (in *Instance) acceptLocally(b Ballot, v []byte, digest [sha256.Size]byte, sig []byte) {
	in.hs.Promised = b
	in.hs.Accepted = b
	in.hs.Value = v
	in.acceptedDigest = digest
	in.lastVote = sig
	in.stateDirty = true
}

func (in *Instance) grantVote(pos int, sig []byte) {
	in.granted[pos] = true
	in.sigs[pos] = sig
	in.nGranted++
	if in.nGranted < in.quorum {
		return
	}
	cert := Certificate{Ballot: in.ballot, Votes: make([]Vote, 0, in.quorum)}
	for i, ok := range in.granted {
		if ok {
			cert.Votes = append(cert.Votes, Vote{Leaf: in.members[i], Signature: in.sigs[i]})
			if len(cert.Votes) == in.quorum {
				break
			}
		}
	}
	in.decide(in.value, cert)
	in.send(ToAll, Message{Type: MsgCommitted, Ballot: cert.Ballot, Digest: in.decisionDigest, Certificate: &in.decision.Certificate})
}

func (in *Instance) resetGrants() {
	if in.granted == nil {
		in.granted = make([]bool, len(in.members))
		in.sigs = make([][]byte, len(in.members))
	} else {
		clear(in.granted)
		clear(in.sigs)
	}
	in.nGranted = 0
}

func (in *Instance) verify(digest [sha256.Size]byte, cert *Certificate) error {
	if err := verifyCertificate(in.groupID, in.epoch, in.members, in.quorum, digest, cert, in.verifier); err != nil {
		return fmt.Errorf("consensus: epoch %d: %w", in.epoch, err)
	}
	return nil
}

func (in *Instance) learnVerified(value []byte, cert *Certificate) error {
	if in.decision != nil {
		if sha256.Sum256(value) != in.decisionDigest {
			return fmt.Errorf("consensus: epoch %d: %w", in.epoch, ErrConflictingDecision)
		}
		return nil
	}
	in.decide(value, Certificate{Ballot: cert.Ballot, Votes: slices.Clone(cert.Votes)})
	return nil
}

func (in *Instance) decide(value []byte, cert Certificate) {
	in.decision = &Decision{Value: value, Certificate: cert}
	in.decisionDigest = sha256.Sum256(value)
	in.decisionReady = true
	if in.proposal != nil && !bytes.Equal(in.proposal, value) {
		in.superseded = in.proposal
	}
	in.proposal = nil
	in.phase = idle
	// Proposer bookkeeping is not needed any more; keep the instance small
	// until the node discards it.
	in.granted, in.sigs, in.value, in.highestValue, in.seen = nil, nil, nil, nil, nil
}

func (in *Instance) decideMessage() Message {
	return DecideMessage(in.epoch, in.self, in.decision)
}

// DecideMessage builds the Decide message that carries d for epoch, sent by
// from. A node that has discarded an epoch's instance uses it to answer
// members still working on that epoch from the decision it kept.
func DecideMessage(epoch uint64, from uint32, d *Decision) Message {
	return Message{Type: MsgDecide, Epoch: epoch, From: from, Ballot: d.Certificate.Ballot, Value: d.Value, Certificate: &d.Certificate}
}

func (in *Instance) sendDecision(to uint32) { in.send(to, in.decideMessage()) }

// checkValid consults the Validator once per distinct value; the digests of
// the few values that passed are remembered.
func (in *Instance) checkValid(v []byte, digest [sha256.Size]byte) error {
	for i := 0; i < in.nValid && i < len(in.validated); i++ {
		if in.validated[i] == digest {
			return nil
		}
	}
	if err := in.validate(v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidValue, err)
	}
	in.remember(digest)
	return nil
}

func (in *Instance) remember(digest [sha256.Size]byte) {
	in.validated[in.nValid%len(in.validated)] = digest
	in.nValid++
}

func (in *Instance) send(to uint32, m Message) {
	m.Epoch = in.epoch
	m.From = in.self
	in.msgs = append(in.msgs, Envelope{To: to, Message: m})
}

// Acceptors that take over an undecided value step in by groups of
// takeoverGroup members in ring order after the value's proposer, one base
// timeout apart, up to maxTakeoverRank timeouts late, so that the wait
// stays bounded when many members are down.
const (
	takeoverGroup   = 4
	maxTakeoverRank = 7
)

// resetTimer draws the next timeout from [T, T + T*2^k), where k grows with
// failed attempts, so that competing proposers drift apart. An acceptor that
// would only take over someone else's value also waits according to where
// it stands after that value's proposer in the ring of members: in a large
// group a few members step in, not all of them at once.
func (in *Instance) resetTimer() {
	in.elapsed = 0
	window := in.timeoutTicks << min(in.failures, maxBackoffShift)
	in.timeout = in.timeoutTicks + in.rand.IntN(window)
	if in.proposal == nil && !in.hs.Accepted.IsZero() {
		n := len(in.members)
		rank := (in.position(in.self) - in.position(in.hs.Accepted.Leaf) + n) % n
		in.timeout += in.timeoutTicks * min(rank/takeoverGroup, maxTakeoverRank)
	}
}

func (in *Instance) isMember(leaf uint32) bool {
	_, ok := slices.BinarySearch(in.members, leaf)
	return ok
}

func (in *Instance) position(leaf uint32) int {
	i, _ := slices.BinarySearch(in.members, leaf)
	return i
}

// HasReady reports whether Ready has anything to hand out.
func (in *Instance) HasReady() bool {
	return in.stateDirty || len(in.msgs) > 0 || in.decisionReady || in.superseded != nil
}

// Ready returns the output accumulated since the last Advance. Call Advance
// once it is handled, before the next Step, Tick, Propose or Learn.
func (in *Instance) Ready() Ready {
	var rd Ready
	if in.stateDirty {
		hs := in.hs
		hs.Epoch = in.epoch
		rd.State = &hs
	}
	rd.Messages = in.msgs
	if in.decisionReady {
		rd.Decision = in.decision
	}
	rd.Superseded = in.superseded
	return rd
}

// Advance acknowledges the last Ready as handled.
func (in *Instance) Advance() {
	in.stateDirty = false
	in.msgs = nil
	in.decisionReady = false
	in.superseded = nil
}
