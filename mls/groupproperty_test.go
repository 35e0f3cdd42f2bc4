package mls

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
)

var (
	grpPropertySeeds = flag.Int("mls.group-seeds", 40, "number of seeds of TestGroupProperty")
	grpPropertySteps = flag.Int("mls.group-steps", 14, "epochs per seed of TestGroupProperty")
	grpPropertySeed  = flag.Int64("mls.group-seed", -1, "run TestGroupProperty for this seed only")
)

// TestGroupProperty drives random sequences of proposals and concurrent
// Commits among in-memory clients: in each epoch members propose adds,
// removes and updates, several members commit concurrently, every member
// validates every Commit, one is chosen (as consensus would) and merged
// everywhere, the losers re-propose what did not make it, and joiners come
// in by Welcome. After every epoch all members must agree on the epoch
// authenticator, tree hash and exported secret, application messages
// (including late ones of the previous epoch) must decrypt for members,
// and removed members must fail to read anything of later epochs.
// Replay a failure with -mls.group-seed=N.
func TestGroupProperty(t *testing.T) {
	first, n := int64(0), int64(*grpPropertySeeds)
	if *grpPropertySeed >= 0 {
		first, n = *grpPropertySeed, 1
	}
	if testing.Short() {
		n = min(n, 5)
	}
	for seed := first; seed < first+n; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { grpProperty(t, uint64(seed), *grpPropertySteps) })
	}
}

// grpPropertyPSK is an external PSK every member of the property test holds.
var grpPropertyPSK = ExternalPSK{ID: []byte("property psk"), PSK: []byte("property psk value")}

type grpSim struct {
	t             *testing.T
	rng           *rand.Rand
	cs            CipherSuite
	pool          []*grpMember // every client, member or not
	members       []*grpMember // current members
	removed       []*grpMember // removed members with their last state
	externalJoins int
	bundles       map[*grpMember][]*KeyPackageBundle
}

func grpProperty(t *testing.T, seed uint64, steps int) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	s := &grpSim{t: t, rng: rand.New(rand.NewPCG(seed, 0x6d6c73)), cs: cs, bundles: map[*grpMember][]*KeyPackageBundle{}}
	for i := range 9 {
		s.pool = append(s.pool, grpNewMember(t, cs, seed*100+uint64(i)+1000, fmt.Sprintf("c%d", i)))
	}
	creator := s.pool[0]
	creator.create(t, cs, fmt.Sprintf("prop-%d", seed))
	creator.g.SetExternalPSK(grpPropertyPSK.ID, grpPropertyPSK.PSK)
	s.members = []*grpMember{creator}
	var reproposals map[*grpMember][]Proposal
	reproposed := 0
	for step := range steps {
		reproposals = s.epoch(step, reproposals)
		for _, p := range reproposals {
			reproposed += len(p)
		}
		grpCheckConverged(t, s.members...)
	}
	t.Logf("epoch %d: %d members, %d removals, %d external joins, %d proposals re-proposed", s.members[0].g.Epoch(), len(s.members), len(s.removed), s.externalJoins, reproposed)
}

func (s *grpSim) isMember(c *grpMember) bool {
	for _, m := range s.members {
		if m == c {
			return true
		}
	}
	return false
}

// outsiders returns the pool clients that are not members.
func (s *grpSim) outsiders() []*grpMember {
	var out []*grpMember
	for _, c := range s.pool {
		if !s.isMember(c) {
			out = append(out, c)
		}
	}
	return out
}

func (s *grpSim) newKeyPackage(c *grpMember) *KeyPackage {
	kpb := c.keyPackage(s.t, s.cs)
	s.bundles[c] = append(s.bundles[c], kpb)
	return kpb.KeyPackage
}

// broadcast delivers a proposal to every member but its sender.
func (s *grpSim) broadcast(from *grpMember, msg *MLSMessage) {
	msg = grpRoundTrip(s.t, msg)
	for _, m := range s.members {
		if m == from {
			continue
		}
		if _, err := m.g.Process(msg); err != nil {
			s.t.Fatalf("%s processing a proposal of %s: %v", m.name, from.name, err)
		}
	}
}

// epoch runs one epoch and returns the proposals to re-propose next time.
func (s *grpSim) epoch(step int, repropose map[*grpMember][]Proposal) map[*grpMember][]Proposal {
	t, rng := s.t, s.rng
	// Re-proposals of the losers of the previous epoch.
	for m, props := range repropose {
		if !s.isMember(m) {
			continue
		}
		for _, p := range props {
			if p.Type == ProposalTypeAdd {
				// A fresh KeyPackage: the old one may be consumed.
				c := s.clientOf(p.KeyPackage)
				if c == nil || s.isMember(c) {
					continue
				}
				p.KeyPackage = s.newKeyPackage(c)
			}
			msg, err := m.g.Propose(p, &SendOptions{Encrypt: rng.IntN(2) == 0})
			if err != nil {
				var pe *ProposalListError
				if errors.As(err, &pe) {
					continue // no longer valid (e.g. its target left)
				}
				t.Fatalf("%s re-proposing %v: %v", m.name, p.Type, err)
			}
			s.broadcast(m, msg)
		}
	}
	// Fresh proposals.
	for _, m := range s.members {
		if rng.IntN(3) != 0 {
			continue
		}
		so := &SendOptions{Encrypt: rng.IntN(2) == 0}
		var msg *MLSMessage
		var err error
		switch k := rng.IntN(4); {
		case k == 3:
			msg, err = m.g.ProposeExternalPSK(grpPropertyPSK.ID, so)
		case k == 0 && len(s.outsiders()) > 0 && len(s.members) < 8:
			out := s.outsiders()
			msg, err = m.g.ProposeAdd(s.newKeyPackage(out[rng.IntN(len(out))]), so)
		case k == 1 && len(s.members) > 2:
			victim := s.members[rng.IntN(len(s.members))]
			if victim == m {
				continue
			}
			msg, err = m.g.ProposeRemove(victim.g.OwnLeaf(), so)
		default:
			msg, err = m.g.ProposeUpdate(so)
		}
		if err != nil {
			t.Fatalf("step %d: %s proposing: %v", step, m.name, err)
		}
		s.broadcast(m, msg)
	}
	// A late application message of this epoch, read after the Commit.
	lateFrom := s.members[rng.IntN(len(s.members))]
	late, err := lateFrom.g.EncryptApplication([]byte(fmt.Sprintf("late %d", step)), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent commits.
	nc := 1 + rng.IntN(min(3, len(s.members)))
	perm := rng.Perm(len(s.members))[:nc]
	type cand struct {
		by  *grpMember // nil for an external join
		pc  *PendingCommit
		msg *MLSMessage
		// External joins: the joiner and its group, valid if it wins.
		joiner *grpMember
		joined *Group
	}
	var cands []cand
	if out := s.outsiders(); len(out) > 0 && len(s.members) < 8 && rng.IntN(4) == 0 {
		c, m := out[rng.IntN(len(out))], s.members[rng.IntN(len(s.members))]
		withTree := rng.IntN(2) == 0
		gi, err := m.g.GroupInfo(withTree)
		if err != nil {
			t.Fatal(err)
		}
		opts := ExternalJoinOptions{JoinOptions: JoinOptions{GroupOptions: c.opts()}}
		if !withTree {
			opts.RatchetTree = m.g.RatchetTree()
		}
		g, msg, err := JoinExternal(opts, grpRoundTrip(t, gi).GroupInfo, c.id)
		if err != nil {
			t.Fatalf("step %d: %s joining externally: %v", step, c.name, err)
		}
		cands = append(cands, cand{msg: msg, joiner: c, joined: g})
	}
	for _, i := range perm {
		m := s.members[i]
		opts := &CommitOptions{SendOptions: SendOptions{Encrypt: rng.IntN(2) == 0}, NoPath: rng.IntN(3) == 0}
		if rng.IntN(3) == 0 && len(s.outsiders()) > 0 && len(s.members) < 8 {
			out := s.outsiders()
			opts.Proposals = []Proposal{{Type: ProposalTypeAdd, KeyPackage: s.newKeyPackage(out[rng.IntN(len(out))])}}
		}
		pc, err := m.g.Commit(opts)
		if err != nil {
			var pe *ProposalListError
			if errors.As(err, &pe) && pe.Rule == RuleDuplicateAdd || errors.As(err, &pe) && pe.Rule == RuleAddExistingMember {
				m.g.DiscardPending()
				continue
			}
			t.Fatalf("step %d: %s committing: %v", step, m.name, err)
		}
		cands = append(cands, cand{by: m, pc: pc, msg: pc.Commit})
	}
	if len(cands) == 0 {
		t.Fatalf("step %d: no commit", step)
	}
	// Everyone validates every candidate.
	staged := map[*grpMember][]*StagedCommit{}
	for _, c := range cands {
		msg := grpRoundTrip(t, c.msg)
		for _, m := range s.members {
			if m == c.by {
				staged[m] = append(staged[m], c.pc.Staged())
				continue
			}
			r, err := m.g.Process(msg)
			if err != nil {
				by := "an external joiner"
				if c.by != nil {
					by = c.by.name
				}
				t.Fatalf("step %d: %s validating the commit of %s: %v", step, m.name, by, err)
			}
			staged[m] = append(staged[m], r.Commit)
		}
	}
	// Consensus picks one.
	win := rng.IntN(len(cands))
	winner := cands[win]
	next := map[*grpMember][]Proposal{}
	var stay, gone []*grpMember
	for _, m := range s.members {
		res, err := m.g.Merge(staged[m][win])
		if err != nil {
			t.Fatalf("step %d: %s merging: %v", step, m.name, err)
		}
		for j, sc := range staged[m] {
			if j != win {
				if _, err := m.g.Merge(sc); !errors.Is(err, ErrStaleCommit) && !(res.Removed && errors.Is(err, ErrInactive)) {
					t.Fatalf("step %d: merging a loser: %v", step, err)
				}
			}
		}
		if res.Removed {
			// Keep the removed state apart: the client may be added again.
			gone = append(gone, &grpMember{name: m.name, cfg: m.cfg, g: m.g})
			continue
		}
		stay = append(stay, m)
		if len(res.Unapplied) > 0 {
			next[m] = res.Unapplied
		}
	}
	// Joiners.
	if winner.joiner != nil {
		s.externalJoins++
		winner.joiner.g = winner.joined
		winner.joiner.g.SetExternalPSK(grpPropertyPSK.ID, grpPropertyPSK.PSK)
		stay = append(stay, winner.joiner)
	} else if w := winner.pc.Welcome; w != nil {
		for _, c := range s.outsiders() {
			for _, kpb := range s.bundles[c] {
				ref, err := kpb.KeyPackage.Ref()
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := w.Welcome.Find(ref); ok {
					g, err := JoinFromWelcome(JoinOptions{GroupOptions: c.opts(), ExternalPSKs: []ExternalPSK{grpPropertyPSK}}, grpRoundTrip(t, w).Welcome, kpb)
					if err != nil {
						t.Fatalf("step %d: %s joining: %v", step, c.name, err)
					}
					c.g = g
					stay = append(stay, c)
					break
				}
			}
		}
	}
	s.members = stay
	s.removed = append(s.removed, gone...)
	if len(staged) > 0 && rng.IntN(4) == 0 {
		grpReload(t, s.members[rng.IntN(len(s.members))])
	}
	// The late message decrypts at the members that were there.
	for _, m := range s.members {
		if m == lateFrom || m.g.Epoch() == 0 {
			continue
		}
		if _, wasThere := staged[m]; !wasThere {
			continue
		}
		if _, err := m.g.Process(grpRoundTrip(t, late)); err != nil {
			t.Fatalf("step %d: %s reading a late message: %v", step, m.name, err)
		}
	}
	// A message of the new epoch reaches members, not removed ones.
	from := s.members[rng.IntN(len(s.members))]
	var others []*grpMember
	for _, m := range s.members {
		if m != from {
			others = append(others, m)
		}
	}
	grpSend(t, from, fmt.Sprintf("epoch %d", from.g.Epoch()), others...)
	msg, err := from.g.EncryptApplication([]byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.removed {
		if _, err := r.g.Process(grpRoundTrip(t, msg)); err == nil {
			t.Fatalf("step %d: removed %s read a message of epoch %d", step, r.name, from.g.Epoch())
		}
	}
	return next
}

// clientOf returns the pool client whose identity signed kp.
func (s *grpSim) clientOf(kp *KeyPackage) *grpMember {
	for _, c := range s.pool {
		for _, b := range s.bundles[c] {
			if string(b.KeyPackage.LeafNode.SignatureKey) == string(kp.LeafNode.SignatureKey) {
				return c
			}
		}
	}
	return nil
}
