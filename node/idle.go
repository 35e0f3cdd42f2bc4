package node

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/conclave-im/conclave/mls"
)

// Idle-member eviction (profile Membership.IdleEviction): a member whose
// leaf keys have not been refreshed for that long holds keys that never
// healed after a possible compromise, so any member proposes its removal,
// through consensus like any Commit. Idleness is measured by this node's
// member facts (members.go) and counts only time this node was watching:
// the time it was stopped, or suspended for at least
// Membership.IdleAwayGap, is left out, so a node coming back after a month
// does not evict members it simply did not see updating.

// idleTick runs on every tick of an active group: it keeps the away
// accounting, rewrites the facts record now and then (so that a restart
// knows when the node stopped), and proposes removing idle members. Nothing
// is evicted on the first tick after the facts were loaded.
func (n *Node) idleTick(g *group, now time.Time) {
	f := n.facts(g)
	first := !f.ticked
	if gap := now.Sub(f.lastTick); n.prof.Membership.IdleAwayGap > 0 && gap >= n.prof.Membership.IdleAwayGap {
		n.log.Info("node was away; leaving the time out of members' idleness", "group", fmt.Sprintf("%x", g.id), "away", gap)
		f.shift(gap, now)
	}
	f.lastTick, f.ticked = now, true
	if now.Sub(f.savedAt) >= factsHeartbeat { // new facts have never been saved
		n.saveFacts(g, f)
	}
	if !first {
		n.proposeEvictions(g, f, now)
	}
}

// idleMember reports whether the member at leaf is due for eviction.
func (n *Node) idleMember(g *group, f *memberFacts, leaf mls.LeafIndex, now time.Time) bool {
	limit := n.prof.Membership.IdleEviction
	if limit <= 0 || leaf == g.mls.OwnLeaf() {
		return false
	}
	mf, ok := f.byLeaf[leaf]
	return ok && now.Sub(mf.idleSince) >= limit
}

// evictionRetry is how soon after proposing an eviction the node proposes
// one again if the first went nowhere (it failed, or was dropped while
// the member still looks idle); it keeps a Commit that keeps failing from
// being retried on every tick.
const evictionRetry = time.Minute

// proposeEvictions queues one Commit removing every idle member, unless
// this node already has one pending, proposed one within evictionRetry, or
// is leaving the group.
func (n *Node) proposeEvictions(g *group, f *memberFacts, now time.Time) {
	if n.prof.Membership.IdleEviction <= 0 || g.leaving != nil || n.evictionPending(g, f) || now.Sub(f.evictedAt) < evictionRetry {
		return
	}
	var leaves []mls.LeafIndex
	for leaf := range f.byLeaf {
		if n.idleMember(g, f, leaf, now) {
			leaves = append(leaves, leaf)
		}
	}
	if len(leaves) == 0 {
		return
	}
	slices.Sort(leaves)
	if limit := n.prof.Commits.MaxProposalsPerCommit; len(leaves) > limit {
		leaves = leaves[:limit]
	}
	var props []mls.Proposal
	var names []string
	for _, leaf := range leaves {
		m, ok := g.mls.Member(leaf)
		if !ok {
			delete(f.byLeaf, leaf) // no longer in the tree
			continue
		}
		props = append(props, mls.Proposal{Type: mls.ProposalTypeRemove, Removed: leaf})
		names = append(names, n.memberName(g.mls.CipherSuite(), m))
	}
	if len(props) == 0 {
		return
	}
	o := &op{desc: "remove idle " + strings.Join(names, ", "), proposals: props, done: make(chan error, 1)}
	f.evicting, f.evictedAt = o, now
	g.ops = append(g.ops, o)
	n.log.Info("proposing to remove idle members", "group", fmt.Sprintf("%x", g.id), "members", names, "idle_for_at_least", n.prof.Membership.IdleEviction)
	n.tryCommit(g)
}

// evictionPending reports whether this node's eviction Commit is queued or
// being decided.
func (n *Node) evictionPending(g *group, f *memberFacts) bool {
	if f.evicting == nil {
		return false
	}
	if g.active == f.evicting || slices.Contains(g.ops, f.evicting) {
		return true
	}
	f.evicting = nil
	return false
}

// refitEviction runs after a decision: a queued eviction (waiting, or
// carried over from a losing Commit) keeps only the removals still due. A
// member that updated meanwhile is spared; one the winning Commit removed
// is gone already. Concurrent evictions by several members thus end with
// one removal, and the others drop theirs.
func (n *Node) refitEviction(g *group, f *memberFacts, now time.Time) {
	o := f.evicting
	if o == nil {
		return
	}
	i := slices.Index(g.ops, o)
	if i < 0 {
		if g.active != o {
			f.evicting = nil
		}
		return
	}
	keep := slices.DeleteFunc(slices.Clone(o.proposals), func(p mls.Proposal) bool {
		return p.Type != mls.ProposalTypeRemove || !n.idleMember(g, f, p.Removed, now)
	})
	if len(keep) == 0 {
		g.ops = slices.Delete(g.ops, i, i+1)
		f.evicting = nil
		o.finish(nil)
		return
	}
	o.proposals = keep
}
