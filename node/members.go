package node

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/identity"
	"github.com/conclave-im/conclave/mls"
)

// outboxMembers is the outbox kind of a group's member facts record. The
// outbox is the datastore's only sealed record type keyed by group that the
// node can replace in place; the node's other outbox readers skip kinds they
// do not know.
const outboxMembers = "members"

// factsHeartbeat is how often the facts record is rewritten while nothing
// else changes it, so that after a restart the node knows when it stopped
// (to within this) and leaves its downtime out of every member's idle time.
const factsHeartbeat = 10 * time.Minute

// memberFacts is what this node knows about a group's members beyond the
// MLS tree, as it saw the decided Commits: the epoch each member joined and
// the time from which its idleness counts (its last leaf update, moved
// forward by the time this node was not running). It also remembers the
// group settings last seen, to tell when a Commit changes them. Only the
// loop touches it.
type memberFacts struct {
	epoch  uint64 // the group epoch the facts describe
	byLeaf map[mls.LeafIndex]*memberFact
	// settings are the group settings at epoch.
	settings GroupSettings

	outboxID uint64    // the stored record; 0 before it is first stored
	savedAt  time.Time // when the record was last written
	lastTick time.Time // the previous idle check, or when the facts were loaded
	ticked   bool      // an idle check ran since the facts were loaded

	// evicting is this node's pending idle eviction, if any; settingsOps
	// are its pending settings changes, rebuilt against the group's
	// extensions after every decision.
	evicting    *op
	evictedAt   time.Time // when evicting was proposed
	settingsOps map[*op]SettingsUpdate
}

// memberFact is one member's entry.
type memberFact struct {
	sigKey []byte // identifies the leaf's holder across epochs
	// joined is the epoch from which the member is known to be in the
	// group; when joinedKnown is false it was already a member then (it
	// was present when this node joined) and may have joined earlier.
	joined      uint64
	joinedKnown bool
	// idleSince is when the member's leaf was last seen updated (its Add,
	// a Commit of its own, an Update proposal), or when this node started
	// watching it, moved forward by every span this node was away.
	idleSince time.Time
}

// memberJoinedEpoch returns the epoch from which the member with identity
// id is known to be part of g. known is false when the member was already
// in the group when this node joined (or the facts were reconstructed
// conservatively after a crash): it joined at that epoch or earlier, so
// epoch is a safe lower bound for what it may read. For an identity that
// is not a member it returns (0, false). Runs on the loop.
func (n *Node) memberJoinedEpoch(g *group, id identity.ID) (epoch uint64, known bool) {
	leaf, ok := n.memberLeaf(g, id)
	if !ok {
		return 0, false
	}
	f := n.facts(g)
	mf, ok := f.byLeaf[leaf]
	if !ok {
		return g.mls.Epoch(), false
	}
	return mf.joined, mf.joinedKnown
}

// facts returns g's member facts, loading them from the store (or
// starting them from the current tree) on first use.
func (n *Node) facts(g *group) *memberFacts { return n.factsAt(g, g.mls.Epoch()) }

// factsAt is facts for a group whose tree is already that of the epoch
// after epoch (a Commit was just merged) if epoch is not the current one:
// the stored record is then matched against epoch, and the caller applies
// the Commit's changes.
func (n *Node) factsAt(g *group, epoch uint64) *memberFacts {
	if g.facts != nil {
		return g.facts
	}
	now := n.clock.Now()
	f, err := n.loadFacts(g, epoch, now)
	if err != nil {
		n.log.Error("member facts unreadable; starting them afresh", "group", fmt.Sprintf("%x", g.id), "err", err)
	}
	if f == nil {
		f = n.newFacts(g, epoch, now)
	}
	f.lastTick = now
	g.facts = f
	return f
}

// newFacts starts the facts of a group from its tree: this node just
// created or joined it at epoch (or has no record from an earlier
// version). Every member counts as present since epoch, exactly so at
// epoch 0, and idle from now.
func (n *Node) newFacts(g *group, epoch uint64, now time.Time) *memberFacts {
	f := &memberFacts{epoch: epoch, byLeaf: make(map[mls.LeafIndex]*memberFact), settings: settingsOf(g.mls.Extensions())}
	for _, m := range g.mls.Members() {
		f.byLeaf[m.Leaf] = &memberFact{sigKey: bytes.Clone(m.SignatureKey), joined: epoch, joinedKnown: epoch == 0, idleSince: now}
	}
	return f
}

// loadFacts reads g's stored facts and fits them to the current tree. It
// returns nil without an error when none are stored. Stored records of
// groups this node no longer holds are deleted on the way.
func (n *Node) loadFacts(g *group, epoch uint64, now time.Time) (*memberFacts, error) {
	items, err := n.store.Outbox().List(n.ctx)
	if err != nil {
		return nil, fmt.Errorf("node: load member facts: %w", err)
	}
	var found *datastore.OutboxItem
	for i := range items {
		it := &items[i]
		if it.Kind != outboxMembers {
			continue
		}
		if og, ok := n.st.groups[string(it.GroupID)]; !ok || (og.inactive && !bytes.Equal(it.GroupID, g.id)) {
			n.dropFactsItem(it.ID)
			continue
		}
		if !bytes.Equal(it.GroupID, g.id) {
			continue
		}
		if found != nil {
			n.dropFactsItem(found.ID) // a duplicate: keep the newer
		}
		found = it
	}
	if found == nil {
		return nil, nil
	}
	rec, err := parseFactsRecord(found.Payload)
	if err != nil {
		n.dropFactsItem(found.ID)
		return nil, err
	}
	rec.outboxID = found.ID
	rec.fit(g, epoch, now)
	return rec, nil
}

func (n *Node) dropFactsItem(id uint64) {
	if err := n.store.Outbox().Remove(n.ctx, id); err != nil {
		n.log.Error("delete member facts record", "err", err)
	}
}

// fit reconciles stored facts with the current tree after loading. The
// record is normally of the current epoch; it lags by one only if the node
// stopped between storing an epoch transition and the record after it, and
// then whatever cannot be matched is taken conservatively: a leaf held by
// another key than recorded counts as joined now (unknown), and every
// member as idle from now. The time the node was stopped (since the record
// was last written) is left out of every member's idle time.
func (f *memberFacts) fit(g *group, cur uint64, now time.Time) {
	lagging := f.epoch != cur
	old := f.byLeaf
	f.byLeaf = make(map[mls.LeafIndex]*memberFact, len(old))
	for _, m := range g.mls.Members() {
		mf, ok := old[m.Leaf]
		if !ok || !bytes.Equal(mf.sigKey, m.SignatureKey) {
			mf = &memberFact{sigKey: bytes.Clone(m.SignatureKey), joined: cur, idleSince: now}
		}
		if lagging {
			mf.idleSince = now
		}
		f.byLeaf[m.Leaf] = mf
	}
	if away := now.Sub(f.savedAt); away > 0 {
		f.shift(away, now)
	}
	if lagging {
		f.settings = settingsOf(g.mls.Extensions())
	}
	f.epoch = cur
}

// shift leaves a span of d during which this node was away out of every
// member's idle time.
func (f *memberFacts) shift(d time.Duration, now time.Time) {
	for _, mf := range f.byLeaf {
		mf.idleSince = mf.idleSince.Add(d)
		if mf.idleSince.After(now) {
			mf.idleSince = now
		}
	}
}

// afterDecision updates the member facts with a merged Commit: added
// members joined at the new epoch, added and updated leaves are fresh. It
// also records a change of the group settings in the history, and refits
// this node's pending idle evictions and settings changes to the new epoch.
// Runs on the loop after the transition is stored.
func (n *Node) afterDecision(g *group, staged *mls.StagedCommit, res *mls.MergeResult) {
	fresh := g.facts == nil
	f := n.factsAt(g, res.Epoch-1)
	if fresh && f.outboxID == 0 && slices.ContainsFunc(staged.Proposals(), func(p mls.Proposal) bool { return p.Type == mls.ProposalTypeGroupContextExtensions }) {
		// Started from the merged tree: the settings before are unknown.
		f.settings = GroupSettings{}
	}
	now := n.clock.Now()
	if res.Removed || !g.mls.Active() {
		if f.outboxID != 0 {
			n.dropFactsItem(f.outboxID)
			f.outboxID = 0
		}
		for o := range f.settingsOps {
			o.finish(ErrGroupInactive)
		}
		return
	}
	for _, m := range res.Diff.Removed {
		delete(f.byLeaf, m.Leaf)
	}
	for _, m := range res.Diff.Added {
		f.byLeaf[m.Leaf] = &memberFact{sigKey: bytes.Clone(m.SignatureKey), joined: res.Epoch, joinedKnown: true, idleSince: now}
	}
	for _, m := range res.Diff.Updated {
		mf, ok := f.byLeaf[m.Leaf]
		if !ok {
			mf = &memberFact{joined: res.Epoch}
			f.byLeaf[m.Leaf] = mf
		}
		mf.sigKey = bytes.Clone(m.SignatureKey)
		mf.idleSince = now
	}
	// Leaves the diff did not explain (none, unless the facts were started
	// after this Commit was staged) are matched by key.
	for _, m := range g.mls.Members() {
		if mf, ok := f.byLeaf[m.Leaf]; !ok || !bytes.Equal(mf.sigKey, m.SignatureKey) {
			f.byLeaf[m.Leaf] = &memberFact{sigKey: bytes.Clone(m.SignatureKey), joined: res.Epoch, idleSince: now}
		}
	}
	f.epoch = res.Epoch
	n.noteSettingsChange(g, f, staged)
	n.refitEviction(g, f, now)
	n.refitSettingsOps(g, f)
	n.saveFacts(g, f)
}

// saveFacts stores g's member facts: the first time synced (Outbox.Add),
// afterwards buffered (an epoch transition, synced, follows any decision).
func (n *Node) saveFacts(g *group, f *memberFacts) {
	// savedAt moves on even if the write fails: it is retried at the next
	// heartbeat or decision, not on every tick.
	f.savedAt = n.clock.Now()
	item := datastore.OutboxItem{ID: f.outboxID, Kind: outboxMembers, GroupID: g.id, Payload: f.marshal(), CreatedAt: f.savedAt}
	var err error
	if f.outboxID != 0 {
		err = n.store.Outbox().Update(n.ctx, item)
		if errors.Is(err, datastore.ErrNotFound) {
			f.outboxID = 0
		}
	}
	if f.outboxID == 0 {
		f.outboxID, err = n.store.Outbox().Add(n.ctx, item)
	}
	if err != nil {
		n.log.Error("store member facts", "group", fmt.Sprintf("%x", g.id), "err", err)
	}
}

// The member facts record (the outbox item's payload):
//
//	struct {
//	    uint8  version = 1;
//	    uint64 epoch;
//	    uint64 saved_at;              // Unix milliseconds
//	    opaque settings<u16>;         // GroupSettings as in the extension (settings.go)
//	    uint32 count;
//	    struct {
//	        uint32 leaf;
//	        uint64 joined;
//	        uint8  joined_known;      // 0 or 1
//	        uint64 idle_since;        // Unix milliseconds
//	        opaque sig_key<u16>;
//	    } members[count];
//	} MemberFacts;
const factsVersion = 1

// maxFactsMembers bounds a record's member count before anything is
// allocated for it; an MLS tree cannot hold more leaves than this.
const maxFactsMembers = 1 << 20

func (f *memberFacts) marshal() []byte {
	leaves := make([]mls.LeafIndex, 0, len(f.byLeaf))
	for l := range f.byLeaf {
		leaves = append(leaves, l)
	}
	slices.Sort(leaves)
	sb, _ := f.settings.marshal() // settings in facts were validated when read
	b := []byte{factsVersion}
	b = binary.BigEndian.AppendUint64(b, f.epoch)
	b = binary.BigEndian.AppendUint64(b, uint64(f.savedAt.UnixMilli()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(sb)))
	b = append(b, sb...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(leaves)))
	for _, l := range leaves {
		mf := f.byLeaf[l]
		b = binary.BigEndian.AppendUint32(b, uint32(l))
		b = binary.BigEndian.AppendUint64(b, mf.joined)
		known := byte(0)
		if mf.joinedKnown {
			known = 1
		}
		b = append(b, known)
		b = binary.BigEndian.AppendUint64(b, uint64(mf.idleSince.UnixMilli()))
		b = binary.BigEndian.AppendUint16(b, uint16(len(mf.sigKey)))
		b = append(b, mf.sigKey...)
	}
	return b
}

// errBadFacts reports a member facts record that does not parse.
var errBadFacts = errors.New("node: malformed member facts record")

func parseFactsRecord(b []byte) (*memberFacts, error) {
	r := factsReader{b: b}
	if v := r.u8(); v != factsVersion {
		return nil, fmt.Errorf("%w: version %d", errBadFacts, v)
	}
	f := &memberFacts{epoch: r.u64(), savedAt: r.millis()}
	sb := r.bytes16()
	if r.bad {
		return nil, errBadFacts
	}
	s, err := parseSettings(sb)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadFacts, err)
	}
	f.settings = s
	count := r.u32()
	if r.bad || count > maxFactsMembers || uint64(count)*23 > uint64(len(r.b)) {
		return nil, fmt.Errorf("%w: %d members", errBadFacts, count)
	}
	f.byLeaf = make(map[mls.LeafIndex]*memberFact, count)
	var prev mls.LeafIndex
	for i := range count {
		leaf := mls.LeafIndex(r.u32())
		mf := &memberFact{joined: r.u64()}
		switch r.u8() {
		case 0:
		case 1:
			mf.joinedKnown = true
		default:
			r.bad = true
		}
		mf.idleSince = r.millis()
		mf.sigKey = bytes.Clone(r.bytes16())
		if i > 0 && leaf <= prev {
			r.bad = true // leaves are stored in increasing order, once each
		}
		prev = leaf
		if r.bad {
			return nil, errBadFacts
		}
		f.byLeaf[leaf] = mf
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBadFacts, len(r.b))
	}
	return f, nil
}

// factsReader reads big-endian fields; a short read sets bad and yields
// zeros, so a parser checks once per record or entry.
type factsReader struct {
	b   []byte
	bad bool
}

func (r *factsReader) take(n int) []byte {
	if r.bad || len(r.b) < n {
		r.bad = true
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *factsReader) u8() byte    { return r.take(1)[0] }
func (r *factsReader) u32() uint32 { return binary.BigEndian.Uint32(r.take(4)) }
func (r *factsReader) u64() uint64 { return binary.BigEndian.Uint64(r.take(8)) }
func (r *factsReader) bytes16() []byte {
	n := int(binary.BigEndian.Uint16(r.take(2)))
	return r.take(n)
}

// millis reads Unix milliseconds; values a time.Time cannot carry are
// malformed.
func (r *factsReader) millis() time.Time {
	ms := r.u64()
	if ms > 1<<62 {
		r.bad = true
		return time.Time{}
	}
	return time.UnixMilli(int64(ms))
}
