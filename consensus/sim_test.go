package consensus

import (
	"bytes"
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// This file is the deterministic simulator: a universe of members (leaf
// indices) running real Instances over a seeded network that delays, drops,
// duplicates, reorders and partitions messages, with crashes and restarts
// from exactly what each member persisted, and epochs chained so that each
// epoch's member set comes from the value decided in the previous one. A
// checker asserts agreement and validity after every step and liveness once
// a majority is connected again.

// variant selects deliberately broken behaviour, to prove that the checker
// catches it. Only the simulator knows about variants; the package itself
// has no such switch.
type variant int

const (
	correct           variant = iota
	forgetOnRestart           // an acceptor restarts with an empty state
	halfQuorum                // a "quorum" of n/2 members
	sendBeforePersist         // messages leave before the state they depend on is durable
	skipValidation            // acceptors vote without consulting the Validator
	ignorePromises            // proposers ignore the accepted values that promises report
)

func (v variant) String() string {
	return [...]string{"correct", "forget-on-restart", "half-quorum", "send-before-persist", "skip-validation", "ignore-promises"}[v]
}

// Sizes of the simulated world.
const (
	simMinMembers  = 3
	simMaxMembers  = 15
	simTargetEpoch = 4    // epochs 0..3 must be decided
	simLiveness    = 1200 // ticks after healing by which the target must be reached
)

// partitionKind is one shape of network split.
type partitionKind int

const (
	noPartition partitionKind = iota
	majorityMinority
	evenSplit
	bridge // two sides that only a bridge member connects: non-transitive
	isolateProposer
	isolateOne
	numPartitionKinds
)

func (k partitionKind) String() string {
	return [...]string{"none", "majority/minority", "even split", "bridge", "isolated proposer", "isolated member"}[k]
}

type simConfig struct {
	seed    uint64
	variant variant
	trace   bool // keep every event, for printing a replayed seed
}

type simStats struct {
	decisions  int // epochs decided
	underFault int // epochs decided before the network healed
	sends      int // envelopes leaving instances (a broadcast counts once)
	deliveries int // messages handed to a receiver
	bytesSent  int
	ticks      int
}

// delivery is one message in flight.
type delivery struct {
	at, seq  int
	from, to uint32
	data     []byte
}

type deliveryQueue []delivery

func (q deliveryQueue) Len() int { return len(q) }
func (q deliveryQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q deliveryQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *deliveryQueue) Push(x any)   { *q = append(*q, x.(delivery)) }
func (q *deliveryQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// decided is an entry of a member's durable log of decisions.
type decided struct {
	value []byte
	cert  Certificate
}

// simNode is one member's process. The disk fields survive crashes; the
// rest is rebuilt on restart.
type simNode struct {
	leaf uint32

	// Durable.
	joined  bool     // holds the group state of epoch
	epoch   uint64   // current epoch, valid if joined
	members []uint32 // members of epoch
	state   []byte   // encoded HardState of epoch's instance
	log     map[uint64]decided

	// Volatile.
	up        bool
	inst      *Instance
	proposal  []byte
	lastLearn int
}

type simulation struct {
	cfg      simConfig
	rng      *rand.Rand
	universe int
	nodes    []*simNode
	now      int
	seq      int
	queue    deliveryQueue
	groupID  []byte
	nonce    uint32
	timeout  int
	maxDelay int
	loss     float64
	dup      float64
	crashP   float64
	midReady float64 // chance a crash interrupts the handling of a Ready
	injectP  float64 // chance per tick of a forged Accept with an invalid value
	// decideLoss is extra loss aimed at Decide messages while faults are
	// active: an adversarial network that hides decisions is what turns a
	// forgetful acceptor into a split decision.
	decideLoss float64

	side        []int // partition side per leaf; -1 is a bridge that reaches every side
	partition   partitionKind
	healAt      int
	downForGood int  // a leaf that stays down or cut off after healing, or -1
	cutOff      bool // downForGood stays up but partitioned away from everyone

	// Oracle and checker state.
	accepts  map[acceptKey]*acceptance // who accepted what, per epoch and ballot
	quorumOK map[uint64][32]byte       // the value a quorum accepted, per epoch
	chosen   map[uint64][]byte         // the first value decided per epoch
	members  map[uint64][]uint32       // member set per epoch, from the chain
	proposed map[uint64]map[[32]byte]bool
	stats    simStats
	events   []string
	err      error
}

type simError struct {
	seed    uint64
	variant variant
	tick    int
	msg     string
}

func (e *simError) Error() string {
	return fmt.Sprintf("seed %d (%v) at tick %d: %s", e.seed, e.variant, e.tick, e.msg)
}

// runSimulation runs one seed to completion and returns the first violation.
func runSimulation(cfg simConfig) (simStats, []string, error) {
	s := newSimulation(cfg)
	s.run()
	return s.stats, s.events, s.err
}

func newSimulation(cfg simConfig) *simulation {
	rng := rand.New(rand.NewPCG(cfg.seed, 0x636f6e636c617665))
	n := simMinMembers + rng.IntN(simMaxMembers-simMinMembers+1)
	s := &simulation{
		cfg:         cfg,
		rng:         rng,
		universe:    min(n+1+rng.IntN(4), simMaxMembers+3),
		groupID:     []byte("sim-group"),
		maxDelay:    []int{1, 2, 3, 5}[rng.IntN(4)],
		loss:        []float64{0, 0.02, 0.1, 0.3}[rng.IntN(4)],
		dup:         []float64{0, 0.05, 0.2}[rng.IntN(3)],
		crashP:      []float64{0, 0.005, 0.02}[rng.IntN(3)],
		midReady:    []float64{0, 0.02, 0.1, 0.3}[rng.IntN(4)],
		injectP:     []float64{0, 0.02}[rng.IntN(2)],
		decideLoss:  []float64{0, 0, 0.5, 0.95}[rng.IntN(4)],
		healAt:      50 + rng.IntN(250),
		downForGood: -1,
		chosen:      map[uint64][]byte{},
		accepts:     map[acceptKey]*acceptance{},
		quorumOK:    map[uint64][32]byte{},
		members:     map[uint64][]uint32{},
		proposed:    map[uint64]map[[32]byte]bool{},
	}
	s.timeout = 4*s.maxDelay + 4
	s.side = make([]int, s.universe)
	genesis := make([]uint32, 0, n)
	for _, i := range rng.Perm(s.universe)[:n] {
		genesis = append(genesis, uint32(i))
	}
	slices.Sort(genesis)
	s.members[0] = genesis
	for i := range s.universe {
		nd := &simNode{leaf: uint32(i), up: true, log: map[uint64]decided{}}
		if _, ok := slices.BinarySearch(genesis, nd.leaf); ok {
			nd.joined, nd.epoch, nd.members = true, 0, genesis
		}
		s.nodes = append(s.nodes, nd)
	}
	if rng.IntN(2) == 0 {
		s.downForGood = int(genesis[rng.IntN(len(genesis))])
		s.cutOff = rng.IntN(2) == 0
	}
	for _, nd := range s.nodes {
		s.boot(nd)
	}
	s.logf("world: %d members %v of %d leaves, delay<=%d loss=%.2f dup=%.2f crash=%.3f heal@%d", n, genesis, s.universe, s.maxDelay, s.loss, s.dup, s.crashP, s.healAt)
	return s
}

func (s *simulation) logf(format string, args ...any) {
	if s.cfg.trace {
		s.events = append(s.events, fmt.Sprintf("t=%d ", s.now)+fmt.Sprintf(format, args...))
	}
}

func (s *simulation) fail(format string, args ...any) {
	if s.err == nil {
		s.err = &simError{seed: s.cfg.seed, variant: s.cfg.variant, tick: s.now, msg: fmt.Sprintf(format, args...)}
	}
}

func (s *simulation) run() {
	for s.err == nil {
		if s.done() {
			return
		}
		if s.now > s.healAt+simLiveness {
			s.fail("liveness: %d of %d epochs decided, %s, %d ticks after the network healed", len(s.chosen), simTargetEpoch, s.lagging(), simLiveness)
			return
		}
		s.step()
	}
}

// done reports whether the target epoch was reached and every live member of
// it has caught up.
func (s *simulation) done() bool {
	final, ok := s.members[simTargetEpoch]
	if !ok || s.now < s.healAt {
		return false
	}
	for _, leaf := range final {
		nd := s.nodes[leaf]
		if int(leaf) == s.downForGood {
			continue
		}
		if !nd.joined || nd.epoch != simTargetEpoch {
			return false
		}
	}
	return true
}

func (s *simulation) lagging() string {
	var parts []string
	for _, nd := range s.nodes {
		parts = append(parts, fmt.Sprintf("%d:%v/e%d/up=%v", nd.leaf, nd.joined, nd.epoch, nd.up))
	}
	return strings.Join(parts, " ")
}

func (s *simulation) step() {
	s.now++
	s.stats.ticks++
	s.faults()
	for len(s.queue) > 0 && s.queue[0].at <= s.now && s.err == nil {
		d := heap.Pop(&s.queue).(delivery)
		s.deliver(d)
	}
	for _, nd := range s.nodes {
		if s.err != nil || !nd.up {
			continue
		}
		if nd.inst != nil {
			nd.inst.Tick()
			s.maybePropose(nd)
			s.handleReady(nd)
		}
		s.antiEntropy(nd)
	}
}

// faults changes partitions, crashes and restarts members and forges
// invalid proposals, until the heal tick; then it restores a network in
// which a majority of every epoch can talk.
func (s *simulation) faults() {
	if s.now == s.healAt {
		s.logf("heal")
		s.partition = noPartition
		clear(s.side)
		s.loss = min(s.loss, 0.1)
		for _, nd := range s.nodes {
			if !nd.up && (int(nd.leaf) != s.downForGood || s.cutOff) {
				s.restart(nd)
			}
		}
		if s.downForGood >= 0 {
			nd := s.nodes[s.downForGood]
			switch {
			case s.cutOff:
				// Alive and proposing, but alone: the rest must make
				// progress without it, and it must not disturb them.
				if !nd.up {
					s.restart(nd)
				}
				s.side[nd.leaf] = 1
			case nd.up:
				s.crash(nd)
			}
		}
		return
	}
	if s.now > s.healAt {
		for _, nd := range s.nodes {
			if !nd.up && (int(nd.leaf) != s.downForGood || s.cutOff) && s.rng.IntN(5) == 0 {
				s.restart(nd)
			}
		}
		return
	}
	if s.now == 1 || s.rng.IntN(25) == 0 {
		s.repartition(partitionKind(s.rng.IntN(int(numPartitionKinds))))
	}
	for _, nd := range s.nodes {
		if nd.up && s.rng.Float64() < s.crashP {
			s.crash(nd)
		} else if !nd.up && s.rng.IntN(8) == 0 {
			s.restart(nd)
		}
	}
	if s.rng.Float64() < s.injectP {
		s.injectInvalid()
	}
}

// repartition assigns each leaf a side; members on different sides cannot
// exchange messages, except with a bridge (side -1) that reaches both.
func (s *simulation) repartition(kind partitionKind) {
	s.partition = kind
	clear(s.side)
	perm := s.rng.Perm(s.universe)
	switch kind {
	case majorityMinority:
		minority := 1 + s.rng.IntN(max(1, (s.universe-1)/2))
		for _, i := range perm[:minority] {
			s.side[i] = 1
		}
	case evenSplit:
		for _, i := range perm[:s.universe/2] {
			s.side[i] = 1
		}
	case bridge:
		s.side[perm[0]] = -1
		for _, i := range perm[1 : 1+(s.universe-1)/2] {
			s.side[i] = 1
		}
	case isolateProposer:
		target := perm[0]
		for _, nd := range s.nodes {
			if nd.proposal != nil || (nd.inst != nil && nd.inst.Coordinator() == nd.leaf) {
				target = int(nd.leaf)
				break
			}
		}
		s.side[target] = 1
	case isolateOne:
		s.side[perm[0]] = 1
	}
	s.logf("partition %v: %v", kind, s.side)
}

func (s *simulation) connected(a, b uint32) bool {
	sa, sb := s.side[a], s.side[b]
	return sa == sb || sa == -1 || sb == -1
}

func (s *simulation) crash(nd *simNode) {
	s.logf("crash %d", nd.leaf)
	nd.up = false
	nd.inst = nil
	nd.proposal = nil
}

func (s *simulation) restart(nd *simNode) {
	s.logf("restart %d", nd.leaf)
	nd.up = true
	s.boot(nd)
}

// boot rebuilds a member's instance from its disk, as a node would after a
// restart.
func (s *simulation) boot(nd *simNode) {
	nd.inst = nil
	if !nd.joined {
		return
	}
	if _, ok := slices.BinarySearch(nd.members, nd.leaf); !ok {
		return
	}
	var st Storage
	if nd.state != nil && s.cfg.variant != forgetOnRestart {
		var hs HardState
		if err := hs.UnmarshalBinary(nd.state); err != nil {
			s.fail("member %d: stored state does not decode: %v", nd.leaf, err)
			return
		}
		st = staticStorage(hs)
	}
	inst, err := New(s.instanceConfig(nd, st))
	if err != nil {
		s.fail("member %d: new instance for epoch %d: %v", nd.leaf, nd.epoch, err)
		return
	}
	if s.cfg.variant == halfQuorum {
		inst.quorum = len(nd.members) / 2
	}
	nd.inst = inst
}

func (s *simulation) instanceConfig(nd *simNode, st Storage) Config {
	epoch, members := nd.epoch, nd.members
	validate := func(v []byte) error { return validateSimValue(v, epoch, members, s.universe) }
	if s.cfg.variant == skipValidation {
		validate = func([]byte) error { return nil }
	}
	return Config{
		GroupID:      s.groupID,
		Epoch:        epoch,
		Self:         nd.leaf,
		Members:      members,
		Signer:       simSigner(nd.leaf),
		Verifier:     simVerifier{},
		Validate:     validate,
		Storage:      st,
		Rand:         rand.New(rand.NewPCG(s.rng.Uint64(), uint64(nd.leaf))),
		TimeoutTicks: s.timeout,
	}
}

// maybePropose makes live members propose: more often right after an epoch
// starts (so that proposals compete), and now and then afterwards (so that
// some member always has something pending).
func (s *simulation) maybePropose(nd *simNode) {
	if nd.proposal != nil || nd.epoch >= simTargetEpoch || nd.inst.Decision() != nil {
		return
	}
	if s.rng.IntN(25) != 0 {
		return
	}
	s.nonce++
	v := s.makeValue(nd)
	if err := nd.inst.Propose(v); err != nil {
		s.fail("member %d: propose in epoch %d: %v", nd.leaf, nd.epoch, err)
		return
	}
	nd.proposal = v
	if s.proposed[nd.epoch] == nil {
		s.proposed[nd.epoch] = map[[32]byte]bool{}
	}
	s.proposed[nd.epoch][sha256.Sum256(v)] = true
	s.logf("%d proposes %s", nd.leaf, describeSimValue(v))
}

// makeValue builds a proposal that changes the member set by at most one
// member, keeping it within the simulated sizes.
func (s *simulation) makeValue(nd *simNode) []byte {
	next := slices.Clone(nd.members)
	switch s.rng.IntN(3) {
	case 0:
		if len(next) < simMaxMembers {
			for _, i := range s.rng.Perm(s.universe) {
				if _, ok := slices.BinarySearch(next, uint32(i)); !ok {
					next = append(next, uint32(i))
					slices.Sort(next)
					break
				}
			}
		}
	case 1:
		if len(next) > simMinMembers {
			i := s.rng.IntN(len(next))
			next = slices.Delete(next, i, i+1)
		}
	}
	return encodeSimValue(nd.epoch, nd.leaf, s.nonce, true, next)
}

// injectInvalid forges an Accept, as if from a member, for a value that
// fails validation; correct acceptors must never vote for it.
func (s *simulation) injectInvalid() {
	var members []*simNode
	for _, nd := range s.nodes {
		if nd.joined && nd.inst != nil {
			members = append(members, nd)
		}
	}
	if len(members) == 0 {
		return
	}
	from := members[s.rng.IntN(len(members))]
	s.nonce++
	v := encodeSimValue(from.epoch, from.leaf, s.nonce, false, from.members)
	m := Message{Type: MsgAccept, Epoch: from.epoch, From: from.leaf, Ballot: Ballot{Round: uint32(2 + s.rng.IntN(50)), Leaf: from.leaf}, Value: v}
	s.logf("forge accept %v from %d: %s", m.Ballot, from.leaf, describeSimValue(v))
	s.transmit(from.leaf, Envelope{To: ToAll, Message: m}, from.members)
}

// handleReady does what the node does with a Ready: persist, then send,
// then apply the decision. A crash can interrupt it between the steps.
func (s *simulation) handleReady(nd *simNode) {
	for nd.inst != nil && nd.inst.HasReady() && s.err == nil {
		inst := nd.inst
		rd := inst.Ready()
		// Crashes strike while faults are active, three times as often
		// when the Ready carries a vote: the riskiest moment for an
		// acceptor. They stop the handling halfway or right after it.
		crashAt := 0
		p := s.midReady
		for _, env := range rd.Messages {
			if env.Message.Type == MsgAccepted {
				p *= 3
				break
			}
		}
		if s.now < s.healAt && s.rng.Float64() < p {
			crashAt = 1 + s.rng.IntN(2)
		}
		if rd.State != nil && !rd.State.Accepted.IsZero() {
			s.noteAccept(nd, rd.State)
			if s.err != nil {
				return
			}
		}
		persist := func() bool {
			if rd.State == nil {
				return true
			}
			b, err := rd.State.MarshalBinary()
			if err != nil {
				s.fail("member %d: encode state: %v", nd.leaf, err)
				return false
			}
			nd.state = b
			return true
		}
		send := func() {
			for _, env := range rd.Messages {
				s.transmit(nd.leaf, env, nd.members)
			}
		}
		first, second := persist, func() bool { send(); return true }
		if s.cfg.variant == sendBeforePersist {
			first, second = second, first
		}
		if !first() {
			return
		}
		if crashAt == 1 {
			s.crash(nd)
			return
		}
		if !second() {
			return
		}
		inst.Advance()
		if crashAt == 2 {
			s.crash(nd)
			return
		}
		if rd.Decision != nil {
			if nd.proposal != nil && !bytes.Equal(nd.proposal, rd.Decision.Value) && !bytes.Equal(rd.Superseded, nd.proposal) {
				s.fail("member %d: its proposal lost in epoch %d but Ready.Superseded does not return it", nd.leaf, nd.epoch)
				return
			}
			s.apply(nd, nd.epoch, rd.Decision.Value, rd.Decision.Certificate)
		}
	}
}

// transmit encodes an envelope and schedules its delivery to each
// recipient, with loss, duplication and random delay (hence reordering).
func (s *simulation) transmit(from uint32, env Envelope, members []uint32) {
	data, err := env.Message.MarshalBinary()
	if err != nil {
		s.fail("member %d: encode %v: %v", from, env.Message.Type, err)
		return
	}
	s.stats.sends++
	s.stats.bytesSent += len(data)
	loss := s.loss
	if (env.Message.Type == MsgDecide || env.Message.Type == MsgCommitted) && s.now < s.healAt {
		loss = max(loss, s.decideLoss)
	}
	to := []uint32{env.To}
	if env.Broadcast() {
		to = members
	}
	for _, r := range to {
		if r == from {
			continue
		}
		copies := 1
		if s.rng.Float64() < s.dup {
			copies = 2
		}
		for range copies {
			if s.rng.Float64() < loss {
				continue
			}
			s.seq++
			heap.Push(&s.queue, delivery{at: s.now + 1 + s.rng.IntN(s.maxDelay), seq: s.seq, from: from, to: r, data: data})
		}
	}
}

// deliver hands a message to its recipient if the link is up, routing it as
// a node does: to the current epoch's instance, to the durable log for past
// epochs, or into catch-up for future ones.
func (s *simulation) deliver(d delivery) {
	nd := s.nodes[d.to]
	if !nd.up || !s.connected(d.from, d.to) {
		return
	}
	m, err := DecodeMessage(d.data)
	if err != nil {
		s.fail("member %d: our own encoding does not decode: %v", d.to, err)
		return
	}
	s.stats.deliveries++
	if s.cfg.trace {
		s.logf("%d -> %d: e%d %s", d.from, d.to, m.Epoch, describeMessage(m))
	}
	if e, ok := nd.log[m.Epoch]; ok {
		// Anyone who applied a decision serves it to members still
		// working on that epoch, even after leaving the group.
		if m.Type == MsgPrepare || m.Type == MsgAccept || m.Type == MsgLearn {
			s.reply(nd, m.From, m.Epoch, e)
		}
		return
	}
	switch {
	case !nd.joined:
		s.deliverOutsider(nd, m)
	case m.Epoch == nd.epoch:
		if s.cfg.variant == ignorePromises && m.Type == MsgPromise {
			m.AcceptedBallot, m.Value = Ballot{}, nil
		}
		if nd.inst != nil {
			if err := nd.inst.Step(m); errors.Is(err, ErrConflictingDecision) {
				s.fail("member %d: %v", nd.leaf, err)
			}
			s.handleReady(nd)
		}
	case m.Epoch < nd.epoch:
	default:
		s.learnFrom(nd, m.From, nd.epoch)
	}
}

// deliverOutsider handles a message at a leaf that holds no group state:
// a Decide listing it is its Welcome; anything else from a later epoch
// makes it ask for the decision that created that epoch.
func (s *simulation) deliverOutsider(nd *simNode, m Message) {
	if m.Type == MsgDecide {
		members, ok := s.members[m.Epoch]
		if !ok {
			return
		}
		// The Welcome carries the group state, so a joiner knows the
		// member set of the epoch it checks the certificate against.
		if err := VerifyCertificate(s.groupID, m.Epoch, members, m.Value, m.Certificate, simVerifier{}); err != nil {
			return
		}
		s.apply(nd, m.Epoch, m.Value, *m.Certificate)
		return
	}
	if m.Epoch > 0 {
		s.learnFrom(nd, m.From, m.Epoch-1)
	}
}

func (s *simulation) learnFrom(nd *simNode, peer uint32, epoch uint64) {
	if s.now-nd.lastLearn < 2 {
		return
	}
	nd.lastLearn = s.now
	s.transmit(nd.leaf, Envelope{To: peer, Message: Message{Type: MsgLearn, Epoch: epoch, From: nd.leaf}}, nil)
}

func (s *simulation) reply(nd *simNode, to uint32, epoch uint64, e decided) {
	m := DecideMessage(epoch, nd.leaf, &Decision{Value: e.value, Certificate: e.cert})
	s.transmit(nd.leaf, Envelope{To: to, Message: m}, nil)
}

// antiEntropy makes each joined member ask a random peer of its epoch for
// the decision now and then, as a node's periodic sync does; that is how a
// member that missed every Decide, or a joiner that missed its Welcome,
// catches up.
func (s *simulation) antiEntropy(nd *simNode) {
	if !nd.joined || s.rng.IntN(3*s.timeout) != 0 || len(nd.members) < 2 {
		return
	}
	peer := nd.members[s.rng.IntN(len(nd.members))]
	if peer == nd.leaf {
		return
	}
	s.learnFrom(nd, peer, nd.epoch)
}

// apply is the node applying a decision: check it, write the log and the
// next epoch atomically, welcome joiners, and start the next instance.
func (s *simulation) apply(nd *simNode, epoch uint64, value []byte, cert Certificate) {
	s.check(nd, epoch, value, cert)
	if s.err != nil {
		return
	}
	next, err := decodeSimMembers(value)
	if err != nil {
		s.fail("member %d: decided value of epoch %d: %v", nd.leaf, epoch, err)
		return
	}
	s.stats.decisions = len(s.chosen)
	nd.log[epoch] = decided{value: value, cert: cert}
	wasMember := nd.joined && nd.epoch == epoch
	nd.epoch, nd.members, nd.state, nd.proposal = epoch+1, next, nil, nil
	_, nd.joined = slices.BinarySearch(next, nd.leaf)
	s.logf("%d applies epoch %d: %s (ballot %v)", nd.leaf, epoch, describeSimValue(value), cert.Ballot)
	if wasMember && cert.Ballot.Leaf == nd.leaf {
		for _, j := range next {
			if _, ok := slices.BinarySearch(s.members[epoch], j); !ok {
				s.reply(nd, j, epoch, decided{value: value, cert: cert})
			}
		}
	}
	s.boot(nd)
}

type acceptKey struct {
	epoch  uint64
	ballot Ballot
}

type acceptance struct {
	digest [32]byte
	by     map[uint32]bool
}

// noteAccept is the checker's view of every acceptance, taken from the
// Ready that records it (whether or not the state then reaches the disk).
// It checks the Paxos invariants directly, before anyone decides: one value
// per ballot, only valid values accepted, and at most one value ever
// accepted by a quorum in an epoch.
func (s *simulation) noteAccept(nd *simNode, hs *HardState) {
	members := s.members[hs.Epoch]
	if err := validateSimValue(hs.Value, hs.Epoch, members, s.universe); err != nil {
		s.fail("validity: member %d accepted an invalid value under %v in epoch %d: %v", nd.leaf, hs.Accepted, hs.Epoch, err)
		return
	}
	key := acceptKey{hs.Epoch, hs.Accepted}
	digest := sha256.Sum256(hs.Value)
	a := s.accepts[key]
	if a == nil {
		a = &acceptance{digest: digest, by: map[uint32]bool{}}
		s.accepts[key] = a
	}
	if a.digest != digest {
		s.fail("agreement: two values accepted under ballot %v in epoch %d", hs.Accepted, hs.Epoch)
		return
	}
	a.by[nd.leaf] = true
	if len(a.by) < Quorum(len(members)) {
		return
	}
	if prev, ok := s.quorumOK[hs.Epoch]; ok && prev != digest {
		s.fail("agreement: a quorum accepted two different values in epoch %d (the second under %v: %s)", hs.Epoch, hs.Accepted, describeSimValue(hs.Value))
		return
	}
	s.quorumOK[hs.Epoch] = digest
}

// check is the checker, run on every decision a member applies.
func (s *simulation) check(nd *simNode, epoch uint64, value []byte, cert Certificate) {
	members, ok := s.members[epoch]
	if !ok {
		s.fail("member %d decided epoch %d, which the chain never reached", nd.leaf, epoch)
		return
	}
	if first, ok := s.chosen[epoch]; ok {
		if !bytes.Equal(first, value) {
			s.fail("agreement: member %d decided %s in epoch %d, another member decided %s", nd.leaf, describeSimValue(value), epoch, describeSimValue(first))
		}
		return
	}
	if err := VerifyCertificate(s.groupID, epoch, members, value, &cert, simVerifier{}); err != nil {
		s.fail("certificate: member %d decided epoch %d with a certificate that does not verify: %v", nd.leaf, epoch, err)
		return
	}
	if err := validateSimValue(value, epoch, members, s.universe); err != nil {
		s.fail("validity: member %d decided an invalid value in epoch %d: %v", nd.leaf, epoch, err)
		return
	}
	if !s.proposed[epoch][sha256.Sum256(value)] {
		s.fail("validity: member %d decided %s in epoch %d, which no member proposed", nd.leaf, describeSimValue(value), epoch)
		return
	}
	next, _ := decodeSimMembers(value)
	if s.now < s.healAt {
		s.stats.underFault++
	}
	s.chosen[epoch] = value
	s.members[epoch+1] = next
}

// staticStorage hands a restored state to New.
type staticStorage HardState

func (s staticStorage) InitialState() (HardState, error) { return HardState(s), nil }

// simSigner signs with a per-leaf key as SHA-256(key || content). It is a
// MAC, not a public-key signature, which is all a simulation with honest
// key holders needs, and cheap enough for thousands of seeds.
type simSigner uint32

// simKey derives a leaf's key without allocating.
func simKey(leaf uint32) [8]byte {
	var k [8]byte
	binary.BigEndian.PutUint32(k[:4], leaf)
	binary.BigEndian.PutUint32(k[4:], leaf*2654435761+0x5bd1e995)
	return k
}

func (s simSigner) Sign(content []byte) ([]byte, error) {
	sum := simMAC(uint32(s), content)
	return sum[:], nil
}

func simMAC(leaf uint32, content []byte) [sha256.Size]byte {
	var buf [256]byte
	k := simKey(leaf)
	b := append(append(buf[:0], k[:]...), content...)
	return sha256.Sum256(b)
}

type simVerifier struct{}

var errBadSimSignature = errors.New("sim: bad signature")

func (simVerifier) Verify(leaf uint32, content, sig []byte) error {
	sum := simMAC(leaf, content)
	if !bytes.Equal(sum[:], sig) {
		return errBadSimSignature
	}
	return nil
}

// A simulated value: epoch, proposer, nonce, a validity flag and the next
// epoch's member set.
func encodeSimValue(epoch uint64, proposer, nonce uint32, valid bool, next []uint32) []byte {
	b := binary.BigEndian.AppendUint64(nil, epoch)
	b = binary.BigEndian.AppendUint32(b, proposer)
	b = binary.BigEndian.AppendUint32(b, nonce)
	flag := byte(0)
	if valid {
		flag = 1
	}
	b = append(b, flag, byte(len(next)))
	for _, m := range next {
		b = binary.BigEndian.AppendUint32(b, m)
	}
	return b
}

func decodeSimMembers(v []byte) ([]uint32, error) {
	if len(v) < 18 || len(v) != 18+4*int(v[17]) {
		return nil, fmt.Errorf("sim value of %d bytes", len(v))
	}
	next := make([]uint32, v[17])
	for i := range next {
		next[i] = binary.BigEndian.Uint32(v[18+4*i:])
	}
	return next, nil
}

func validateSimValue(v []byte, epoch uint64, members []uint32, universe int) error {
	next, err := decodeSimMembers(v)
	if err != nil {
		return err
	}
	if e := binary.BigEndian.Uint64(v); e != epoch {
		return fmt.Errorf("value for epoch %d in epoch %d", e, epoch)
	}
	if _, ok := slices.BinarySearch(members, binary.BigEndian.Uint32(v[8:])); !ok {
		return errors.New("proposer is not a member")
	}
	if v[16] != 1 {
		return errors.New("value marked invalid")
	}
	if len(next) < simMinMembers || len(next) > simMaxMembers {
		return fmt.Errorf("%d next members", len(next))
	}
	for i, m := range next {
		if int(m) >= universe || (i > 0 && m <= next[i-1]) {
			return errors.New("next members not sorted or out of range")
		}
	}
	return nil
}

func describeSimValue(v []byte) string {
	next, err := decodeSimMembers(v)
	if err != nil {
		return fmt.Sprintf("<%d bytes>", len(v))
	}
	valid := ""
	if v[16] != 1 {
		valid = " INVALID"
	}
	return fmt.Sprintf("v(e%d by %d #%d%s -> %v)", binary.BigEndian.Uint64(v), binary.BigEndian.Uint32(v[8:]), binary.BigEndian.Uint32(v[12:]), valid, next)
}
