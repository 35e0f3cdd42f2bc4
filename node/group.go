package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/conclave-im/conclave/consensus"
	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/gossip"
	"github.com/conclave-im/conclave/identity"
	"github.com/conclave-im/conclave/mls"
)

// group is the loop's view of one group this node is a member of.
type group struct {
	id      []byte
	mls     *mls.Group
	sigPriv []byte // this member's leaf signature key (for consensus votes)

	topic      *gossip.Group
	stopReader context.CancelFunc
	// out feeds the group's publisher goroutine, which publishes in order
	// so that members receive this node's messages in the order sent.
	out chan outbound

	// cur decides the Commit that ends the current epoch; prev is the
	// decided instance of the epoch before, kept to answer members that
	// missed its decision.
	cur, prev *epochInstance

	// ops are membership changes waiting to be committed, in order; active
	// is the one whose Commit is proposed in cur.
	ops    []*op
	active *op

	early      []earlyMessage
	earlyBytes int

	inactive bool // removed from the group

	// sendSeq counts this node's content messages in the current epoch;
	// order and heldCount restore other senders' order (order.go).
	sendSeq   uint64
	order     map[orderKey]*senderQueue
	heldCount int
	orderFrom uint64 // epochs from which every sender's first message is known to be 1

	// batching defers saving the state after received messages to the end
	// of a catch-up batch (dirty says one is due). Receiving never risks a
	// reused key: a crash only makes the batch be fetched and processed
	// again, and duplicates are dropped by message ID.
	batching, dirty bool

	// lastUpdate is when this member's leaf keys were last refreshed (it
	// joined, or a Commit of its own, which always carries a path, was
	// merged); the node commits an update every Commits.LeafUpdateInterval.
	lastUpdate time.Time

	// lastCommitSync is when the node last asked a member for decisions it
	// may have missed; commitSyncTurn rotates over the connected members.
	lastCommitSync time.Time
	commitSyncTurn int
	catchUp        catchUpState // catch-up rounds in flight (sync.go)

	// proposalsSince is when a standalone proposal by another member (a
	// member leaving) was first cached in this epoch; the node commits
	// cached proposals once they waited Commits.CommitPendingAfter.
	proposalsSince time.Time
	// leaving holds the Leave call waiting for this node's removal; the
	// self-removal is proposed again in every epoch until it is committed.
	leaving      chan error
	leavingSince time.Time

	// unsent are this node's messages no member has received from it yet
	// (delivery.go); pendingSig is the last PendingChanged sent.
	unsent     []*unsent
	pendingSig string

	facts *memberFacts // members' join epochs and idleness, settings seen (members.go); nil until first used
}

// epochInstance is the consensus instance of one epoch with what the node
// needs around it.
type epochInstance struct {
	epoch   uint64
	inst    *consensus.Instance
	members map[uint32]memberKey
	// byID finds the leaf of a member with a verified Conclave credential
	// (checking a credential costs a signature verification, too much to
	// repeat for every catch-up request or sync round).
	byID map[identity.ID]mls.LeafIndex
	// staged holds received Commits validated for this epoch, by value
	// digest, so that the decided one is merged without processing it
	// again (processing a PrivateMessage consumes its key).
	staged map[[sha256.Size]byte]*mls.StagedCommit
	// ownCommit is the Commit this node proposed in this epoch, if any.
	ownCommit []byte
	decided   bool
}

type memberKey struct {
	peer   peer.ID
	sigKey []byte
}

// op is one membership change requested through the API.
type op struct {
	desc      string
	peer      identity.ID
	proposals []mls.Proposal // nil while the KeyPackage is being fetched
	done      chan error     // buffered; receives the outcome once
	since     time.Time      // when the node first reported it pending
}

func (o *op) finish(err error) {
	select {
	case o.done <- err:
	default:
	}
}

type outbound struct {
	kind    gossip.Kind
	payload []byte
	done    func(error) // run on the loop, if set
}

type earlyMessage struct {
	epoch   uint64
	payload []byte
	at      time.Time
}

// Payload tags: the first byte of every payload the node puts on a group's
// topic or sends directly.
const (
	tagMLS    byte = 0x01 // an MLSMessage of the group
	tagDecide byte = 0x02 // a consensus Decide, self-authenticating by its certificate
)

// groupRecord is the node's stored state of a group (datastore's opaque
// GroupState.State): the member's signature key, which mls keeps inside its
// own state without an accessor, when its leaf was last refreshed, and the
// mls state.
//
//	struct {
//	    uint8  version = 1;
//	    uint64 last_update;        // Unix milliseconds
//	    uint64 send_seq;           // content messages sent in the current epoch
//	    opaque sig_priv<u32>;
//	    opaque mls_state<u32>;
//	}
func (g *group) record() ([]byte, error) {
	st, err := g.mls.Marshal()
	if err != nil {
		return nil, fmt.Errorf("node: encode group state: %w", err)
	}
	b := make([]byte, 0, 25+len(g.sigPriv)+len(st))
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, uint64(g.lastUpdate.UnixMilli()))
	b = binary.BigEndian.AppendUint64(b, g.sendSeq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(g.sigPriv)))
	b = append(b, g.sigPriv...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(st)))
	return append(b, st...), nil
}

type groupRecord struct {
	lastUpdate time.Time
	sendSeq    uint64
	sigPriv    []byte
	state      []byte
}

func parseGroupRecord(b []byte) (groupRecord, error) {
	bad := errors.New("node: malformed group record")
	if len(b) < 25 || b[0] != 1 {
		return groupRecord{}, bad
	}
	ms := binary.BigEndian.Uint64(b[1:])
	if ms > 1<<62 {
		return groupRecord{}, bad
	}
	r := groupRecord{lastUpdate: time.UnixMilli(int64(ms)), sendSeq: binary.BigEndian.Uint64(b[9:])}
	sl := uint64(binary.BigEndian.Uint32(b[17:]))
	b = b[21:]
	if uint64(len(b)) < sl+4 {
		return groupRecord{}, bad
	}
	r.sigPriv, b = b[:sl], b[sl:]
	ml := uint64(binary.BigEndian.Uint32(b))
	b = b[4:]
	if uint64(len(b)) != ml {
		return groupRecord{}, bad
	}
	r.state = b
	return r, nil
}

// saveState stores the group state within its epoch (after a ratchet moved
// or a Commit was prepared). It must succeed before anything encrypted
// under the new state leaves the node, so that a restart never reuses a key.
func (n *Node) saveState(g *group) error {
	rec, err := g.record()
	if err != nil {
		return err
	}
	err = n.store.Groups().SaveState(n.ctx, datastore.GroupState{GroupID: g.id, Epoch: g.mls.Epoch(), State: rec, UpdatedAt: n.clock.Now()})
	if err != nil {
		return fmt.Errorf("node: save group state: %w", err)
	}
	return nil
}

// loadGroups restores every stored group (before the loop starts).
func (n *Node) loadGroups(ctx context.Context) error {
	list, err := n.store.Groups().List(ctx)
	if err != nil {
		return fmt.Errorf("node: list groups: %w", err)
	}
	for _, gi := range list {
		st, err := n.store.Groups().State(ctx, gi.GroupID)
		if err != nil {
			return fmt.Errorf("node: load group %x: %w", gi.GroupID, err)
		}
		rec, err := parseGroupRecord(st.State)
		if err != nil {
			return fmt.Errorf("node: group %x: %w", gi.GroupID, err)
		}
		mg, err := mls.UnmarshalGroup(n.groupOptions(), rec.state)
		if err != nil {
			return fmt.Errorf("node: group %x: %w", gi.GroupID, err)
		}
		g := &group{id: mg.GroupID(), mls: mg, sigPriv: bytes.Clone(rec.sigPriv), lastUpdate: rec.lastUpdate, sendSeq: rec.sendSeq, orderFrom: mg.Epoch() + 1}
		if !mg.Active() {
			g.inactive = true
		}
		if err := n.attachGroup(g); err != nil {
			return err
		}
	}
	return nil
}

// attachGroup registers g, joins its topic and starts its reader.
func (n *Node) attachGroup(g *group) error {
	n.st.groups[string(g.id)] = g
	if g.inactive {
		return nil
	}
	// The member facts start now, with the settings as they are before
	// any later Commit (members.go): started lazily after a merge they
	// would miss the change that Commit made.
	n.factsAt(g, g.mls.Epoch())
	t, err := n.net.Join(g.id)
	if err != nil {
		return fmt.Errorf("node: join topic of group %x: %w", g.id, err)
	}
	g.topic = t
	rctx, cancel := context.WithCancel(n.ctx)
	g.stopReader = cancel
	gid := bytes.Clone(g.id)
	out := make(chan outbound, 4096)
	g.out = out
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		for {
			select {
			case ob := <-out:
				n.publishNow(rctx, t, ob)
			case <-rctx.Done():
				return
			}
		}
	}()
	go func() {
		defer n.wg.Done()
		for {
			m, err := t.Next(rctx)
			if err != nil {
				return
			}
			if m.Local {
				continue
			}
			if !n.post(func() { n.onGroupPayload(gid, m.Payload) }) {
				return
			}
		}
	}()
	return nil
}

// resumeGroup starts the consensus instance of a loaded group's epoch.
func (n *Node) resumeGroup(g *group) {
	if g.inactive || g.cur != nil {
		return
	}
	if err := n.newInstance(g); err != nil {
		n.log.Error("cannot start consensus for group", "group", fmt.Sprintf("%x", g.id), "err", err)
	}
}

func (n *Node) shutdownGroups() {
	for _, g := range n.st.groups {
		n.detach(g)
	}
	for _, g := range n.st.groups {
		for _, o := range g.ops {
			o.finish(ErrClosed)
		}
		if g.active != nil {
			g.active.finish(ErrClosed)
		}
	}
}

func (n *Node) detach(g *group) {
	if g.stopReader != nil {
		g.stopReader()
		g.stopReader = nil
	}
	if g.topic != nil {
		g.topic.Leave()
		g.topic = nil
	}
	g.out = nil
}

// newInstance creates the consensus instance of g's current epoch, restoring
// the acceptor state persisted for it.
func (n *Node) newInstance(g *group) error {
	cs := g.mls.CipherSuite()
	epoch := g.mls.Epoch()
	ei := &epochInstance{epoch: epoch, members: make(map[uint32]memberKey), byID: make(map[identity.ID]mls.LeafIndex), staged: make(map[[sha256.Size]byte]*mls.StagedCommit)}
	var leaves []uint32
	for _, m := range g.mls.Members() {
		li, err := n.verifyLeaf(cs, m.Credential, m.SignatureKey)
		if err != nil {
			return fmt.Errorf("node: member at leaf %d: %w", m.Leaf, err)
		}
		var pid peer.ID
		if li.Assurance == identity.Verified {
			pid, _ = peer.Decode(li.ID.PeerID())
			ei.byID[li.ID] = m.Leaf
		}
		ei.members[uint32(m.Leaf)] = memberKey{peer: pid, sigKey: m.SignatureKey}
		leaves = append(leaves, uint32(m.Leaf))
	}
	signer, err := cs.NewSigner(g.sigPriv)
	if err != nil {
		return fmt.Errorf("node: vote signer: %w", err)
	}
	inst, err := consensus.New(consensus.Config{
		GroupID:      g.id,
		Epoch:        epoch,
		Self:         uint32(g.mls.OwnLeaf()),
		Members:      leaves,
		Signer:       voteSigner{signer: signer, rand: n.rand},
		Verifier:     voteVerifier{cs: cs, members: ei.members},
		Validate:     func(v []byte) error { return n.validateValue(g, ei, v) },
		Storage:      acceptorStorage{n: n, groupID: g.id, epoch: epoch},
		Rand:         n.st.crand,
		TimeoutTicks: n.prof.Consensus.TimeoutTicks,
	})
	if err != nil {
		return fmt.Errorf("node: consensus for epoch %d: %w", epoch, err)
	}
	ei.inst = inst
	g.prev, g.cur = g.cur, ei
	return nil
}

const voteLabel = "conclave vote"

type voteSigner struct {
	signer *mls.Signer
	rand   interface{ Read([]byte) (int, error) }
}

func (s voteSigner) Sign(content []byte) ([]byte, error) {
	return s.signer.SignWithLabel(s.rand, voteLabel, content)
}

type voteVerifier struct {
	cs      mls.CipherSuite
	members map[uint32]memberKey
}

func (v voteVerifier) Verify(leaf uint32, content, sig []byte) error {
	m, ok := v.members[leaf]
	if !ok {
		return fmt.Errorf("node: no member at leaf %d", leaf)
	}
	return v.cs.VerifyWithLabel(m.sigKey, voteLabel, content, sig)
}

type acceptorStorage struct {
	n       *Node
	groupID []byte
	epoch   uint64
}

func (s acceptorStorage) InitialState() (consensus.HardState, error) {
	var hs consensus.HardState
	b, err := s.n.store.Consensus().Acceptor(s.n.ctx, s.groupID, s.epoch)
	if errors.Is(err, datastore.ErrNotFound) {
		return hs, nil
	}
	if err != nil {
		return hs, err
	}
	err = hs.UnmarshalBinary(b)
	return hs, err
}

// drain handles everything an instance has to hand out, in the order
// consensus requires: persist, send, apply the decision.
func (n *Node) drain(g *group, ei *epochInstance) {
	for ei.inst.HasReady() {
		rd := ei.inst.Ready()
		if rd.State != nil && !ei.decided {
			b, err := rd.State.MarshalBinary()
			if err == nil {
				err = n.store.Consensus().SaveAcceptor(n.ctx, g.id, ei.epoch, b)
			}
			if err != nil {
				// Sending now could break a promise after a restart: stop.
				n.st.fatal = fmt.Errorf("node: persist acceptor state of group %x epoch %d: %w", g.id, ei.epoch, err)
				return
			}
		}
		for _, env := range rd.Messages {
			n.sendConsensus(g, ei, env)
		}
		ei.inst.Advance()
		if rd.Decision != nil && !ei.decided {
			n.applyDecision(g, ei, rd.Decision)
		}
	}
}

// sendConsensus sends one consensus message. Everything but a Decide goes
// inside an MLS PrivateMessage of the epoch, which authenticates the sender
// leaf; a Decide proves itself by its certificate and so also travels in
// the clear, which lets a decided member answer one still in the old epoch.
func (n *Node) sendConsensus(g *group, ei *epochInstance, env consensus.Envelope) {
	raw, err := env.Message.MarshalBinary()
	if err != nil {
		n.log.Error("encode consensus message", "err", err)
		return
	}
	var payload []byte
	kind := gossip.KindConsensus
	if env.Message.Type == consensus.MsgDecide {
		payload = append([]byte{tagDecide}, raw...)
	} else {
		if g.inactive || ei.epoch != g.mls.Epoch() {
			return // cannot be encrypted in its epoch any more; the peer retries
		}
		m, err := g.mls.EncryptApplication(append([]byte{frameConsensus}, raw...), nil)
		if err != nil {
			n.log.Error("encrypt consensus message", "err", err)
			return
		}
		if err := n.saveState(g); err != nil {
			n.log.Error("not sending", "err", err)
			return
		}
		b, err := m.Marshal()
		if err != nil {
			n.log.Error("encode MLS message", "err", err)
			return
		}
		payload = append([]byte{tagMLS}, b...)
		kind = gossip.KindGroupMessage
	}
	if env.Broadcast() {
		n.publish(g, kind, payload, nil)
		return
	}
	mk, ok := ei.members[env.To]
	if !ok || mk.peer == "" {
		return
	}
	gid := bytes.Clone(g.id)
	n.goAsync(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, n.prof.Consensus.TickInterval*time.Duration(n.prof.Consensus.TimeoutTicks))
		defer cancel()
		if err := n.net.SendDirect(ctx, mk.peer, gid, payload); err != nil {
			n.log.Debug("direct consensus message not delivered", "to", mk.peer, "err", err)
		}
	})
}

// publish queues payload for g's topic; done, if set, runs on the loop
// with the outcome. The loop never waits: if the queue is full the payload
// is published from a goroutine of its own (possibly out of order).
func (n *Node) publish(g *group, kind gossip.Kind, payload []byte, done func(error)) {
	if g.topic == nil || g.out == nil {
		if done != nil {
			done(ErrGroupInactive)
		}
		return
	}
	ob := outbound{kind: kind, payload: payload, done: done}
	select {
	case g.out <- ob:
	default:
		t := g.topic
		n.goAsync(func(ctx context.Context) { n.publishNow(ctx, t, ob) })
	}
}

func (n *Node) publishNow(ctx context.Context, t *gossip.Group, ob outbound) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := t.Publish(ctx, ob.kind, ob.payload)
	if err != nil {
		n.log.Debug("publish failed", "err", err)
	}
	if ob.done != nil {
		n.post(func() { ob.done(err) })
	}
}

// validateValue is the consensus Validator: the value must carry a Commit
// that is valid for the epoch under RFC 9420 and the profile. A received
// Commit is staged here and kept for the merge.
func (n *Node) validateValue(g *group, ei *epochInstance, value []byte) error {
	var v commitValue
	if err := v.unmarshal(value); err != nil {
		return err
	}
	if ei.ownCommit != nil && bytes.Equal(ei.ownCommit, v.Commit) {
		return nil // created and checked by this node
	}
	digest := sha256.Sum256(value)
	if _, ok := ei.staged[digest]; ok {
		return nil
	}
	if g.inactive || ei.epoch != g.mls.Epoch() {
		return fmt.Errorf("node: cannot validate a Commit of epoch %d at epoch %d", ei.epoch, g.mls.Epoch())
	}
	var m mls.MLSMessage
	if err := m.Unmarshal(v.Commit); err != nil {
		return fmt.Errorf("node: commit: %w", err)
	}
	if m.PublicMessage == nil {
		// A PrivateMessage Commit could not be processed a second time after
		// a restart (its handshake key is used up), so it is refused.
		return errors.New("node: Commit must be a PublicMessage")
	}
	r, err := g.mls.Process(&m)
	if err != nil {
		return fmt.Errorf("node: commit: %w", err)
	}
	if r.Kind != mls.ReceivedCommit || r.Commit == nil {
		return fmt.Errorf("node: value carries a %v, not a Commit", r.Kind)
	}
	if err := n.checkCommit(g, r.Commit.Proposals(), r.Commit.Diff(), v.Welcome); err != nil {
		return err
	}
	ei.staged[digest] = r.Commit
	return nil
}

// checkCommit applies the profile's rules to a Commit beyond RFC 9420's:
// allowed proposal types, their number, Conclave credentials on every new
// or changed leaf, one leaf per identity, KeyPackage lifetimes, and a
// Welcome exactly when members are added.
func (n *Node) checkCommit(g *group, props []mls.Proposal, diff mls.MembershipDiff, welcome []byte) error {
	if len(props) > n.prof.Commits.MaxProposalsPerCommit {
		return fmt.Errorf("node: Commit with %d proposals", len(props))
	}
	if err := n.checkSettingsProposals(g, props); err != nil { // settings.go
		return err
	}
	cs := g.mls.CipherSuite()
	now := n.clock.Now()
	for _, p := range props {
		if !n.prof.AllowsProposal(p.Type) {
			return fmt.Errorf("node: proposal type %v not allowed", p.Type)
		}
		if p.Type == mls.ProposalTypeAdd && p.KeyPackage != nil {
			if err := n.prof.CheckLifetime(p.KeyPackage.LeafNode.Lifetime, now); err != nil {
				return fmt.Errorf("node: added KeyPackage: %w", err)
			}
		}
	}
	removed := make(map[mls.LeafIndex]bool)
	for _, m := range diff.Removed {
		removed[m.Leaf] = true
	}
	seen := make(map[identity.ID]bool)
	for _, m := range g.mls.Members() {
		if removed[m.Leaf] {
			continue
		}
		if li, err := n.verifyLeaf(cs, m.Credential, m.SignatureKey); err == nil && li.Assurance == identity.Verified {
			seen[li.ID] = true
		}
	}
	for _, m := range diff.Added {
		li, err := n.verifyLeaf(cs, m.Credential, m.SignatureKey)
		if err != nil {
			return fmt.Errorf("node: added member: %w", err)
		}
		if !n.prof.AcceptsCredential(m.Credential.Type) {
			return fmt.Errorf("node: credential type %v not accepted", m.Credential.Type)
		}
		if li.Assurance == identity.Verified && n.prof.Membership.UniqueIdentities {
			if seen[li.ID] {
				return fmt.Errorf("node: %s would hold two leaves: %w", li.ID, ErrAlreadyMember)
			}
			seen[li.ID] = true
		}
	}
	for _, m := range diff.Updated {
		old, ok := g.mls.Member(m.Leaf)
		if !ok {
			continue
		}
		oldID, err := n.verifyLeaf(cs, old.Credential, old.SignatureKey)
		if err != nil {
			return fmt.Errorf("node: updated member's old leaf: %w", err)
		}
		newID, err := n.verifyLeaf(cs, m.Credential, m.SignatureKey)
		if err != nil {
			return fmt.Errorf("node: updated member: %w", err)
		}
		if err := identity.CheckSuccessor(oldID, newID); err != nil {
			return err
		}
	}
	if (len(diff.Added) > 0) != (len(welcome) > 0) {
		return errors.New("node: a Welcome must come with exactly the Commits that add members")
	}
	return nil
}

// applyDecision merges the decided Commit of ei's epoch, stores the
// transition atomically, and moves on to the next epoch.
func (n *Node) applyDecision(g *group, ei *epochInstance, d *consensus.Decision) {
	ei.decided = true
	gid := fmt.Sprintf("%x", g.id)
	var v commitValue
	if err := v.unmarshal(d.Value); err != nil {
		n.log.Error("decided value does not parse", "group", gid, "err", err)
		return
	}
	var staged *mls.StagedCommit
	if pc := g.mls.Pending(); pc != nil && ei.ownCommit != nil && bytes.Equal(ei.ownCommit, v.Commit) {
		staged = pc.Staged()
	} else if sc, ok := ei.staged[sha256.Sum256(d.Value)]; ok {
		staged = sc
	} else {
		var m mls.MLSMessage
		err := m.Unmarshal(v.Commit)
		var r *mls.Received
		if err == nil {
			r, err = g.mls.Process(&m)
		}
		if err == nil && (r.Kind != mls.ReceivedCommit || r.Commit == nil) {
			err = fmt.Errorf("decided value carries a %v", r.Kind)
		}
		if err != nil {
			// A decided Commit that this node cannot process means its state
			// diverged from the group's; it must not go on in this epoch.
			n.log.Error("cannot process the decided Commit; group stalled", "group", gid, "epoch", ei.epoch, "err", err)
			g.inactive = true
			return
		}
		staged = r.Commit
	}
	own := staged.Own()
	res, err := g.mls.Merge(staged)
	if err != nil {
		n.log.Error("merge of the decided Commit failed; group stalled", "group", gid, "epoch", ei.epoch, "err", err)
		g.inactive = true
		return
	}
	if own {
		g.lastUpdate = n.clock.Now()
	}
	g.sendSeq = 0 // sequence numbers count within an epoch
	cert, err := d.Certificate.MarshalBinary()
	if err != nil {
		n.log.Error("encode certificate", "err", err)
	}
	rec, err := g.record()
	if err == nil {
		err = n.store.Groups().Transition(n.ctx, datastore.EpochTransition{
			GroupID:        g.id,
			Decision:       datastore.Decision{Epoch: ei.epoch, Commit: v.Commit, Welcome: v.Welcome, Certificate: cert, DecidedAt: n.clock.Now()},
			State:          rec,
			KeepPastEpochs: uint64(n.prof.Epochs.PastEpochs),
		})
	}
	if err != nil {
		n.st.fatal = fmt.Errorf("node: store epoch transition of group %s: %w", gid, err)
		return
	}
	n.log.Info("epoch decided", "group", gid, "epoch", res.Epoch, "own", own)

	if own && len(v.Welcome) > 0 {
		n.deliverWelcome(g, res.Diff.Added, v.Welcome)
	}
	if o := g.active; o != nil {
		g.active = nil
		switch {
		case own:
			o.finish(nil)
		case len(res.Unapplied) == 0:
			o.finish(nil) // the winning Commit did what this one wanted
		default:
			o.proposals = res.Unapplied
			g.ops = append([]*op{o}, g.ops...)
		}
	}
	ev := EpochChanged{GroupID: bytes.Clone(g.id), Epoch: res.Epoch, EpochAuthenticator: g.mls.EpochAuthenticator()}
	for _, m := range res.Diff.Added {
		ev.Added = append(ev.Added, n.memberName(g.mls.CipherSuite(), m))
	}
	for _, m := range res.Diff.Removed {
		ev.Removed = append(ev.Removed, n.memberName(g.mls.CipherSuite(), m))
	}
	n.recordMembershipEvent(g, ev)
	n.afterDecision(g, staged, res) // member facts, settings event, refit own queued changes (members.go)
	n.emit(ev)

	if res.Removed || !g.mls.Active() {
		n.leaveGroup(g, res.Epoch)
		return
	}
	if err := n.newInstance(g); err != nil {
		n.log.Error("cannot start consensus for the new epoch", "group", gid, "err", err)
		g.inactive = true
		return
	}
	g.proposalsSince = time.Time{}
	if g.leaving != nil {
		if err := n.proposeLeave(g); err != nil {
			n.log.Error("proposing to leave again", "err", err)
		}
	}
	n.replayEarly(g)
	n.tryCommit(g)
}

// memberName is a member's peer ID, or a marked claim for a basic
// credential (which proves nothing).
func (n *Node) memberName(cs mls.CipherSuite, m mls.Member) string {
	li, err := n.verifyLeaf(cs, m.Credential, m.SignatureKey)
	switch {
	case err != nil:
		return "invalid credential"
	case li.Assurance == identity.Verified:
		return li.ID.PeerID()
	default:
		return fmt.Sprintf("unverified:%q", li.Claimed)
	}
}

// leaveGroup stops a group this node was removed from. Its history stays.
func (n *Node) leaveGroup(g *group, epoch uint64) {
	g.inactive = true
	n.detach(g)
	for _, o := range g.ops {
		o.finish(ErrGroupInactive)
	}
	g.ops = nil
	for _, u := range g.unsent {
		// Nobody can receive them any more; the history keeps them.
		if err := n.store.Outbox().Remove(n.ctx, u.outboxID); err != nil {
			n.log.Error("outbox", "err", err)
		}
	}
	g.unsent = nil
	if err := n.store.Groups().Delete(n.ctx, g.id); err != nil {
		n.log.Error("delete state of a group left", "err", err)
	}
	delete(n.st.groups, string(g.id))
	if g.leaving != nil {
		g.leaving <- nil
		g.leaving = nil
	}
	n.emit(GroupLeft{GroupID: bytes.Clone(g.id), Epoch: epoch})
}

// tryCommit commits the next ready membership change, if nothing else of
// this node's is being decided in the group.
func (n *Node) tryCommit(g *group) {
	for g.active == nil && !g.inactive && g.cur != nil && !g.cur.decided {
		i := 0
		for i < len(g.ops) && g.ops[i].proposals == nil {
			i++
		}
		if i == len(g.ops) {
			return
		}
		o := g.ops[i]
		g.ops = append(g.ops[:i], g.ops[i+1:]...)
		if err := n.proposeCommit(g, o); err != nil {
			o.finish(err)
			continue
		}
		return
	}
}

func (n *Node) proposeCommit(g *group, o *op) error {
	commit, value, err := n.prepareCommit(g, o.proposals)
	if err != nil {
		return fmt.Errorf("node: %s: %w", o.desc, err)
	}
	return n.proposePrepared(g, o, commit, value)
}

// prepareCommit creates this node's Commit of the current epoch, keeps it
// pending and stores the state; it returns the encoded Commit and the
// consensus value that carries it. The Commit is a PublicMessage whatever
// the profile says of handshakes: it only ever travels inside the
// consensus value, which goes encrypted to members, and a PublicMessage
// can be processed again after a restart, where a PrivateMessage would
// have used up its handshake key the first time (see docs/node.md).
func (n *Node) prepareCommit(g *group, proposals []mls.Proposal) (commit, value []byte, err error) {
	pc, err := g.mls.Commit(&mls.CommitOptions{
		SendOptions: mls.SendOptions{Encrypt: false},
		Proposals:   proposals,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("commit: %w", err)
	}
	commit, err = pc.Commit.Marshal()
	if err != nil {
		g.mls.DiscardPending()
		return nil, nil, fmt.Errorf("encode Commit: %w", err)
	}
	var welcome []byte
	if pc.Welcome != nil {
		if welcome, err = pc.Welcome.Marshal(); err != nil {
			g.mls.DiscardPending()
			return nil, nil, fmt.Errorf("encode Welcome: %w", err)
		}
	}
	if err := n.saveState(g); err != nil {
		g.mls.DiscardPending()
		return nil, nil, err
	}
	return commit, commitValue{Commit: commit, Welcome: welcome}.marshal(), nil
}

// proposePrepared proposes the value of the Commit prepareCommit made.
func (n *Node) proposePrepared(g *group, o *op, commit, value []byte) error {
	g.cur.ownCommit = commit
	g.active = o
	if err := g.cur.inst.Propose(value); err != nil {
		g.active = nil
		g.cur.ownCommit = nil
		g.mls.DiscardPending()
		return fmt.Errorf("node: %s: propose: %w", o.desc, err)
	}
	n.drain(g, g.cur)
	return nil
}

// onGroupPayload handles a payload from a group's topic.
func (n *Node) onGroupPayload(gid, payload []byte) {
	g, ok := n.st.groups[string(gid)]
	if !ok || g.inactive || n.holdDuringCatchUp(g, payload) { // sync.go
		return
	}
	n.handlePayload(g, payload)
}

// onDirect handles a payload sent to this node alone.
func (n *Node) onDirect(from peer.ID, gid, payload []byte) {
	g, ok := n.st.groups[string(gid)]
	if !ok || g.inactive {
		n.log.Debug("direct message for an unknown group", "from", from)
		return
	}
	n.handlePayload(g, payload)
}

func (n *Node) handlePayload(g *group, payload []byte) {
	if len(payload) == 0 {
		return
	}
	switch payload[0] {
	case tagDecide:
		m, err := consensus.DecodeMessage(payload[1:])
		if err != nil || m.Type != consensus.MsgDecide {
			n.log.Debug("dropped a malformed Decide", "err", err)
			return
		}
		if m.Epoch > g.mls.Epoch() {
			n.bufferEarly(g, m.Epoch, payload)
			return
		}
		n.stepConsensus(g, m)
	case tagMLS:
		n.handleMLS(g, payload)
	default:
		n.log.Debug("dropped a payload with an unknown tag", "tag", payload[0])
	}
}

func (n *Node) handleMLS(g *group, payload []byte) {
	r, err := g.mls.ProcessBytes(payload[1:])
	if err != nil {
		var ee *mls.EpochError
		if errors.As(err, &ee) && ee.Got > ee.Want {
			n.bufferEarly(g, ee.Got, payload)
			return
		}
		n.log.Debug("dropped a group message", "err", err)
		return
	}
	if g.batching {
		g.dirty = true
	} else if err := n.saveState(g); err != nil {
		n.log.Error("received message not kept", "err", err)
		return
	}
	if r.Kind == mls.ReceivedProposal {
		n.onProposal(g, r)
		return
	}
	if r.Kind != mls.ReceivedApplication || len(r.ApplicationData) == 0 {
		n.log.Debug("dropped a handshake message outside consensus", "kind", r.Kind)
		return
	}
	if len(r.AuthenticatedData) != 0 && !n.prof.Messages.AllowAuthenticatedData {
		n.log.Debug("dropped a message with authenticated data")
		return
	}
	data := r.ApplicationData
	switch data[0] {
	case frameContent:
		n.receiveContent(g, r, data[1:], payload[1:])
	case frameConsensus:
		m, err := consensus.DecodeMessage(data[1:])
		if err != nil {
			n.log.Debug("dropped a malformed consensus message", "err", err)
			return
		}
		if m.From != uint32(r.Sender.LeafIndex) || m.Epoch != r.Epoch {
			n.log.Debug("dropped a consensus message whose sender or epoch does not match its MLS framing")
			return
		}
		n.stepConsensus(g, m)
	default:
		n.log.Debug("dropped application data with an unknown frame", "frame", data[0])
	}
}

// stepConsensus routes a consensus message to the instance of its epoch.
func (n *Node) stepConsensus(g *group, m consensus.Message) {
	var ei *epochInstance
	switch {
	case g.cur != nil && m.Epoch == g.cur.epoch:
		ei = g.cur
	case g.prev != nil && m.Epoch == g.prev.epoch:
		ei = g.prev
	default:
		return
	}
	if err := ei.inst.Step(m); err != nil {
		n.log.Debug("consensus message rejected", "type", m.Type, "err", err)
	}
	n.drain(g, ei)
}

// bufferEarly keeps a message of an epoch this node has not reached yet,
// within the profile's bounds; catch-up recovers whatever does not fit.
func (n *Node) bufferEarly(g *group, epoch uint64, payload []byte) {
	oo := n.prof.OutOfOrder
	if epoch > g.mls.Epoch()+oo.MaxEpochsAhead || len(g.early) >= oo.EarlyBufferMessages || g.earlyBytes+len(payload) > oo.EarlyBufferBytes {
		n.log.Debug("dropped an early message", "epoch", epoch, "at", g.mls.Epoch())
		return
	}
	g.early = append(g.early, earlyMessage{epoch: epoch, payload: payload, at: n.clock.Now()})
	g.earlyBytes += len(payload)
}

// replayEarly processes buffered messages whose epoch has come.
func (n *Node) replayEarly(g *group) {
	now := n.clock.Now()
	var keep, ready []earlyMessage
	g.earlyBytes = 0
	for _, e := range g.early {
		switch {
		case now.Sub(e.at) > n.prof.OutOfOrder.EarlyBufferAge:
		case e.epoch <= g.mls.Epoch():
			ready = append(ready, e)
		default:
			keep = append(keep, e)
			g.earlyBytes += len(e.payload)
		}
	}
	g.early = keep
	for _, e := range ready {
		if g.inactive {
			return
		}
		n.handlePayload(g, e.payload)
	}
}

// onTick advances every group's consensus clock.
func (n *Node) onTick() {
	now := n.clock.Now()
	n.maintainKeyPackages(now)
	n.enforceRetention(now)
	for _, g := range n.st.groups {
		if g.inactive || g.cur == nil {
			continue
		}
		g.cur.inst.Tick()
		n.drain(g, g.cur)
		n.releaseGaps(g, now)
		n.idleTick(g, now) // idle-member eviction (idle.go)
		n.retryUnsent(g)
		n.notePending(g)
		if now.Sub(g.lastCommitSync) >= n.prof.Delivery.CommitSyncInterval {
			g.lastCommitSync = now
			n.syncCommits(g)
		}
		if g.active != nil || len(g.ops) > 0 {
			continue
		}
		// A Commit always carries a path, so committing the cached
		// proposals also refreshes this member's leaf, and an empty Commit
		// is a leaf update.
		switch {
		case !g.proposalsSince.IsZero() && now.Sub(g.proposalsSince) >= n.prof.Commits.CommitPendingAfter:
			g.proposalsSince = time.Time{}
			g.ops = append(g.ops, &op{desc: "commit pending proposals", proposals: []mls.Proposal{}, done: make(chan error, 1)})
		case n.prof.Commits.LeafUpdateInterval > 0 && now.Sub(g.lastUpdate) >= n.prof.Commits.LeafUpdateInterval:
			g.ops = append(g.ops, &op{desc: "leaf update", proposals: []mls.Proposal{}, done: make(chan error, 1)})
		default:
			continue
		}
		n.tryCommit(g)
	}
}

// onProposal handles a standalone proposal of another member, which mls
// validated and cached. The profile allows members to propose only their
// own removal outside a Commit; it is committed after CommitPendingAfter.
func (n *Node) onProposal(g *group, r *mls.Received) {
	p := r.Proposal
	if p == nil || r.Sender.Type != mls.SenderTypeMember || p.Type != mls.ProposalTypeRemove || p.Removed != r.Sender.LeafIndex {
		n.log.Debug("ignored a standalone proposal other than a member leaving")
		return
	}
	if g.proposalsSince.IsZero() {
		g.proposalsSince = n.clock.Now()
	}
}

// proposeLeave sends this member's proposal to remove itself.
func (n *Node) proposeLeave(g *group) error {
	m, err := g.mls.ProposeRemove(g.mls.OwnLeaf(), &mls.SendOptions{Encrypt: n.prof.Messages.EncryptHandshake})
	if err != nil {
		return fmt.Errorf("node: leave: %w", err)
	}
	if err := n.saveState(g); err != nil {
		return err
	}
	b, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("node: leave: %w", err)
	}
	n.publish(g, gossip.KindGroupMessage, append([]byte{tagMLS}, b...), nil)
	return nil
}
