package mls

import (
	"bytes"
	"errors"
	"testing"
)

// grpThree builds a group of alice, bob and carol (added by alice in one
// Commit) in suite 1.
func grpThree(t testing.TB, seed uint64) (alice, bob, carol *grpMember) {
	t.Helper()
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	alice = grpNewMember(t, cs, seed, "alice")
	bob = grpNewMember(t, cs, seed+1, "bob")
	carol = grpNewMember(t, cs, seed+2, "carol")
	alice.create(t, cs, "three")
	kb, kc := bob.keyPackage(t, cs), carol.keyPackage(t, cs)
	pc := grpCommitAll(t, alice, &CommitOptions{Proposals: []Proposal{
		{Type: ProposalTypeAdd, KeyPackage: kb.KeyPackage},
		{Type: ProposalTypeAdd, KeyPackage: kc.KeyPackage},
	}})
	bob.join(t, pc.Welcome, kb)
	carol.join(t, pc.Welcome, kc)
	grpCheckConverged(t, alice, bob, carol)
	return alice, bob, carol
}

func grpState(t testing.TB, g *Group) []byte {
	t.Helper()
	b, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// grpSignedCommit builds a Commit message from m with an arbitrary
// proposal list and no path checks on our side: it signs and tags it as a
// real member would, so that only the receiver's validation can reject it.
func grpSignedCommit(t testing.TB, m *grpMember, proposals []Proposal) *MLSMessage {
	t.Helper()
	g := m.g
	commit := &Commit{}
	for i := range proposals {
		commit.Proposals = append(commit.Proposals, ProposalOrRef{Proposal: &proposals[i]})
	}
	content := FramedContent{GroupID: g.ep.ctx.GroupID, Epoch: g.ep.ctx.Epoch, Sender: MemberSender(g.own),
		AuthenticatedData: []byte{}, ContentType: ContentTypeCommit, Commit: commit}
	ac, err := g.ep.protector.Sign(g.signer, WireFormatPublicMessage, &content)
	if err != nil {
		t.Fatal(err)
	}
	ac.Auth.ConfirmationTag = make([]byte, g.CipherSuite().HashSize())
	pm, err := g.ep.protector.ProtectPublic(ac)
	if err != nil {
		t.Fatal(err)
	}
	return NewPublicMessage(pm)
}

func TestGroupProposalListRules(t *testing.T) {
	alice, bob, carol := grpThree(t, 100)
	cs := alice.g.CipherSuite()
	dave := grpNewMember(t, cs, 110, "dave")
	kd := dave.keyPackage(t, cs)
	bobKP := bob.keyPackage(t, cs) // bob's own key: a client already in the group
	nonce := bytes.Repeat([]byte{7}, cs.HashSize())
	psk := &PreSharedKeyID{Type: PSKTypeExternal, PSKID: []byte("p"), PSKNonce: nonce}
	update, _, err := carol.g.freshLeaf(LeafNodeSourceUpdate)
	if err != nil {
		t.Fatal(err)
	}
	_ = update
	aliceUpdate, _, err := alice.g.freshLeaf(LeafNodeSourceUpdate)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		proposals []Proposal
		rule      ProposalRule
	}{
		{"update by committer", []Proposal{{Type: ProposalTypeUpdate, LeafNode: aliceUpdate}}, RuleUpdateByCommitter},
		{"remove committer", []Proposal{{Type: ProposalTypeRemove, Removed: alice.g.OwnLeaf()}}, RuleRemoveCommitter},
		{"remove twice", []Proposal{{Type: ProposalTypeRemove, Removed: 1}, {Type: ProposalTypeRemove, Removed: 1}}, RuleSameLeafTwice},
		{"remove blank", []Proposal{{Type: ProposalTypeRemove, Removed: 9}}, RuleInvalidProposal},
		{"add twice", []Proposal{{Type: ProposalTypeAdd, KeyPackage: kd.KeyPackage}, {Type: ProposalTypeAdd, KeyPackage: kd.KeyPackage}}, RuleDuplicateAdd},
		{"add member", []Proposal{{Type: ProposalTypeAdd, KeyPackage: bobKP.KeyPackage}}, RuleInvalidProposal},
		{"psk twice", []Proposal{{Type: ProposalTypePSK, PSK: psk}, {Type: ProposalTypePSK, PSK: psk}}, RuleDuplicatePSK},
		{"psk short nonce", []Proposal{{Type: ProposalTypePSK, PSK: &PreSharedKeyID{Type: PSKTypeExternal, PSKID: []byte("p"), PSKNonce: []byte{1}}}}, RuleInvalidProposal},
		{"psk reinit usage", []Proposal{{Type: ProposalTypePSK, PSK: &PreSharedKeyID{Type: PSKTypeResumption, Usage: ResumptionPSKUsageReInit, PSKGroupID: []byte("three"), PSKNonce: nonce}}}, RuleInvalidProposal},
		{"psk branch usage", []Proposal{{Type: ProposalTypePSK, PSK: &PreSharedKeyID{Type: PSKTypeResumption, Usage: ResumptionPSKUsageBranch, PSKGroupID: []byte("three"), PSKNonce: nonce}}}, RuleInvalidProposal},
		{"two gce", []Proposal{{Type: ProposalTypeGroupContextExtensions, Extensions: Extensions{}}, {Type: ProposalTypeGroupContextExtensions, Extensions: Extensions{}}}, RuleMultipleGroupContextExtensions},
		{"reinit not alone", []Proposal{{Type: ProposalTypeReInit, ReInit: &ReInit{GroupID: []byte("x"), Version: 1, CipherSuite: cs, Extensions: Extensions{}}}, {Type: ProposalTypeRemove, Removed: 1}}, RuleReInitNotAlone},
		{"reinit old version", []Proposal{{Type: ProposalTypeReInit, ReInit: &ReInit{GroupID: []byte("x"), Version: 0, CipherSuite: cs, Extensions: Extensions{}}}}, RuleInvalidProposal},
		{"external init", []Proposal{{Type: ProposalTypeExternalInit, KEMOutput: make([]byte, 32)}}, RuleExternalInitInRegularCommit},
		{"gce unsupported", []Proposal{{Type: ProposalTypeGroupContextExtensions, Extensions: Extensions{{Type: 0xff00, Data: []byte{}}}}}, RuleInvalidProposal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The committer refuses to build the list...
			_, err := alice.g.Commit(&CommitOptions{Proposals: tc.proposals, SkipCached: true})
			var pe *ProposalListError
			if !errors.As(err, &pe) || pe.Rule != tc.rule || !errors.Is(err, ErrInvalidProposalList) {
				t.Fatalf("commit: got %v, want rule %v", err, tc.rule)
			}
			// ...and a receiver rejects it, state unchanged.
			msg := grpRoundTrip(t, grpSignedCommit(t, alice, tc.proposals))
			before := grpState(t, bob.g)
			_, err = bob.g.Process(msg)
			if !errors.As(err, &pe) || pe.Rule != tc.rule {
				t.Fatalf("process: got %v, want rule %v", err, tc.rule)
			}
			if !bytes.Equal(before, grpState(t, bob.g)) {
				t.Fatal("rejected commit changed the state")
			}
		})
	}
	// Removing and re-adding a client in one Commit is valid.
	pc, err := alice.g.Commit(&CommitOptions{SkipCached: true, Proposals: []Proposal{
		{Type: ProposalTypeRemove, Removed: bob.g.OwnLeaf()}, {Type: ProposalTypeAdd, KeyPackage: bobKP.KeyPackage}}})
	if err != nil {
		t.Fatalf("remove and re-add: %v", err)
	}
	if r, err := carol.g.Process(pc.Commit); err != nil || len(r.Commit.Diff().Added) != 1 {
		t.Fatalf("carol staging remove and re-add: %v", err)
	}
	alice.g.DiscardPending()
	// A commit without a path that needs one.
	msg := grpSignedCommit(t, alice, []Proposal{{Type: ProposalTypeRemove, Removed: 1}})
	if _, err := bob.g.Process(msg); !errors.Is(err, ErrPathRequired) {
		t.Fatalf("remove without path: %v", err)
	}
	empty, err := alice.g.Commit(&CommitOptions{NoPath: true, SkipCached: true})
	if err != nil {
		// An empty commit always has a path, NoPath notwithstanding.
		t.Fatalf("empty commit: %v", err)
	}
	alice.g.DiscardPending()
	if _, err := alice.g.Merge(empty.Staged()); !errors.Is(err, ErrNoPendingCommit) {
		t.Fatalf("merging a discarded commit: %v", err)
	}
	if _, err := empty.GroupInfo(false); !errors.Is(err, ErrNoPendingCommit) {
		t.Fatalf("group info of a discarded commit: %v", err)
	}
	// A valid partial commit (add without path) with a wrong confirmation
	// tag is rejected.
	msg = grpSignedCommit(t, alice, []Proposal{{Type: ProposalTypeAdd, KeyPackage: kd.KeyPackage}})
	before := grpState(t, bob.g)
	if _, err := bob.g.Process(msg); !errors.Is(err, ErrBadConfirmationTag) {
		t.Fatalf("bad confirmation tag: %v", err)
	}
	if !bytes.Equal(before, grpState(t, bob.g)) {
		t.Fatal("rejected commit changed the state")
	}
}

func TestGroupCompetingCommits(t *testing.T) {
	alice, bob, carol := grpThree(t, 200)
	cs := alice.g.CipherSuite()
	dave := grpNewMember(t, cs, 210, "dave")
	kd := dave.keyPackage(t, cs)

	// Bob and Carol commit concurrently; Bob's commit adds Dave, Carol's is
	// an empty update. Everyone validates both, consensus picks Carol's.
	bobPC, err := bob.g.Commit(&CommitOptions{Proposals: []Proposal{{Type: ProposalTypeAdd, KeyPackage: kd.KeyPackage}}})
	if err != nil {
		t.Fatal(err)
	}
	carolPC, err := carol.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.g.Commit(nil); !errors.Is(err, ErrCommitPending) {
		t.Fatalf("second commit: %v", err)
	}
	before := grpState(t, alice.g)
	rb, err := alice.g.Process(grpRoundTrip(t, bobPC.Commit))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := alice.g.Process(grpRoundTrip(t, carolPC.Commit))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, grpState(t, alice.g)) {
		t.Fatal("staging changed the state")
	}
	if len(rb.Commit.Diff().Added) != 1 || rb.Commit.Epoch() != alice.g.Epoch()+1 {
		t.Fatalf("bob's staged diff %+v", rb.Commit.Diff())
	}
	// Bob validates Carol's commit too; his own comes back as his pending.
	bc, err := bob.g.Process(grpRoundTrip(t, carolPC.Commit))
	if err != nil {
		t.Fatal(err)
	}
	own, err := bob.g.Process(grpRoundTrip(t, bobPC.Commit))
	if err != nil || own.Commit != bobPC.Staged() {
		t.Fatalf("own commit echo: %v", err)
	}
	if _, err := alice.g.Merge(rc.Commit); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.Merge(rb.Commit); !errors.Is(err, ErrStaleCommit) {
		t.Fatalf("merging the loser: %v", err)
	}
	res, err := bob.g.Merge(bc.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Unapplied) != 1 || res.Unapplied[0].Type != ProposalTypeAdd {
		t.Fatalf("unapplied %+v", res.Unapplied)
	}
	if bob.g.Pending() != nil {
		t.Fatal("losing pending commit kept")
	}
	if _, err := carol.g.Merge(carolPC.Staged()); err != nil {
		t.Fatal(err)
	}
	grpCheckConverged(t, alice, bob, carol)
	// Bob re-proposes what lost; Alice commits it.
	prop, err := bob.g.Propose(res.Unapplied[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*grpMember{alice, carol} {
		if _, err := m.g.Process(grpRoundTrip(t, prop)); err != nil {
			t.Fatal(err)
		}
	}
	pc := grpCommitAll(t, alice, nil, bob, carol)
	dave.join(t, pc.Welcome, kd)
	grpCheckConverged(t, alice, bob, carol, dave)
	// A stale epoch commit is rejected with an epoch error.
	if _, err := alice.g.Process(grpRoundTrip(t, bobPC.Commit)); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("stale commit: %v", err)
	}
}

func TestGroupPSKs(t *testing.T) {
	alice, bob, carol := grpThree(t, 300)
	for _, m := range []*grpMember{alice, bob, carol} {
		m.g.SetExternalPSK([]byte("psk-1"), []byte("shared secret"))
	}
	prop, err := bob.g.ProposeExternalPSK([]byte("psk-1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*grpMember{alice, carol} {
		if _, err := m.g.Process(prop); err != nil {
			t.Fatal(err)
		}
	}
	grpCommitAll(t, alice, nil, bob, carol)
	grpCheckConverged(t, alice, bob, carol)
	// Resumption PSK of the previous epoch, committed by value.
	prev := alice.g.Epoch() - 1
	pc := grpCommitAll(t, carol, &CommitOptions{Proposals: []Proposal{{Type: ProposalTypePSK, PSK: &PreSharedKeyID{
		Type: PSKTypeResumption, Usage: ResumptionPSKUsageApplication, PSKGroupID: carol.g.GroupID(), PSKEpoch: prev}}}}, alice, bob)
	_ = pc
	grpCheckConverged(t, alice, bob, carol)
	// A PSK a member does not have: the commit cannot be processed.
	alice.g.SetExternalPSK([]byte("only-alice"), []byte("x"))
	pc2, err := alice.g.Commit(&CommitOptions{Proposals: []Proposal{{Type: ProposalTypePSK, PSK: &PreSharedKeyID{Type: PSKTypeExternal, PSKID: []byte("only-alice")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.g.Process(pc2.Commit); !errors.Is(err, ErrPSKNotFound) {
		t.Fatalf("missing psk: %v", err)
	}
	// A joiner gets the PSK through the Welcome's psks.
	cs := alice.g.CipherSuite()
	alice.g.DiscardPending()
	dave := grpNewMember(t, cs, 310, "dave")
	kd := dave.keyPackage(t, cs)
	pc3, err := alice.g.Commit(&CommitOptions{Proposals: []Proposal{
		{Type: ProposalTypeAdd, KeyPackage: kd.KeyPackage},
		{Type: ProposalTypePSK, PSK: &PreSharedKeyID{Type: PSKTypeExternal, PSKID: []byte("psk-1")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := JoinFromWelcome(JoinOptions{GroupOptions: dave.opts()}, pc3.Welcome.Welcome, kd); !errors.Is(err, ErrPSKNotFound) {
		t.Fatalf("joining without the psk: %v", err)
	}
	g, err := JoinFromWelcome(JoinOptions{GroupOptions: dave.opts(), ExternalPSKs: []ExternalPSK{{ID: []byte("psk-1"), PSK: []byte("shared secret")}}}, pc3.Welcome.Welcome, kd)
	if err != nil {
		t.Fatal(err)
	}
	dave.g = g
	for _, m := range []*grpMember{bob, carol} {
		r, err := m.g.Process(pc3.Commit)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.g.Merge(r.Commit); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alice.g.Merge(pc3.Staged()); err != nil {
		t.Fatal(err)
	}
	grpCheckConverged(t, alice, bob, carol, dave)
}

func TestGroupExternalJoin(t *testing.T) {
	alice, bob, carol := grpThree(t, 400)
	cs := alice.g.CipherSuite()
	gi, err := alice.g.GroupInfo(true)
	if err != nil {
		t.Fatal(err)
	}
	gi = grpRoundTrip(t, gi)
	erin := grpNewMember(t, cs, 410, "erin")
	g, commit, err := JoinExternal(ExternalJoinOptions{JoinOptions: JoinOptions{GroupOptions: erin.opts()}}, gi.GroupInfo, erin.id)
	if err != nil {
		t.Fatal(err)
	}
	erin.g = g
	for _, m := range []*grpMember{alice, bob, carol} {
		r, err := m.g.Process(grpRoundTrip(t, commit))
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if d := r.Commit.Diff(); len(d.Added) != 1 || string(d.Added[0].Credential.Identity) != "erin" {
			t.Fatalf("diff %+v", d)
		}
		if _, err := m.g.Merge(r.Commit); err != nil {
			t.Fatal(err)
		}
	}
	grpCheckConverged(t, alice, bob, carol, erin)
	grpSend(t, erin, "hi from erin", alice, bob, carol)

	// Resync: Erin rejoins from a GroupInfo without the tree (supplied out
	// of band), replacing her old leaf.
	gi, err = bob.g.GroupInfo(false)
	if err != nil {
		t.Fatal(err)
	}
	old := erin.g.OwnLeaf()
	g, commit, err = JoinExternal(ExternalJoinOptions{JoinOptions: JoinOptions{GroupOptions: erin.opts(), RatchetTree: bob.g.RatchetTree()}, Resync: &old}, gi.GroupInfo, erin.id)
	if err != nil {
		t.Fatal(err)
	}
	erin.g = g
	for _, m := range []*grpMember{alice, bob, carol} {
		r, err := m.g.Process(grpRoundTrip(t, commit))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.g.Merge(r.Commit); err != nil {
			t.Fatal(err)
		}
	}
	grpCheckConverged(t, alice, bob, carol, erin)
	if n := len(alice.g.Members()); n != 4 {
		t.Fatalf("%d members after resync", n)
	}
	// Without external_pub the join is refused.
	gi, _ = alice.g.GroupInfo(true)
	gi.GroupInfo.Extensions = Extensions{}
	if _, _, err := JoinExternal(ExternalJoinOptions{JoinOptions: JoinOptions{GroupOptions: erin.opts()}}, gi.GroupInfo, erin.id); err == nil {
		t.Fatal("join with a tampered group info")
	}
}

func TestGroupExternalSenders(t *testing.T) {
	alice, bob, carol := grpThree(t, 500)
	cs := alice.g.CipherSuite()
	cfg := grpConfig(510)
	priv, pub, err := cs.GenerateSignatureKeyPair(cfg.Random())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := cs.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	senders := ExternalSenders{{SignatureKey: pub, Credential: NewBasicCredential([]byte("admin"))}}
	data, err := senders.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	grpCommitAll(t, alice, &CommitOptions{Proposals: []Proposal{{Type: ProposalTypeGroupContextExtensions,
		Extensions: Extensions{{Type: ExtensionTypeExternalSenders, Data: data}}}}}, bob, carol)
	grpCheckConverged(t, alice, bob, carol)
	// The external sender removes Carol.
	prop, err := NewExternalProposal(cfg, signer, alice.g.GroupID(), alice.g.Epoch(), 0, Proposal{Type: ProposalTypeRemove, Removed: carol.g.OwnLeaf()})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*grpMember{alice, bob, carol} {
		r, err := m.g.Process(grpRoundTrip(t, prop))
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Credential.Identity) != "admin" || r.Sender.Type != SenderTypeExternal {
			t.Fatalf("external proposal from %+v", r.Sender)
		}
	}
	// An Update is not allowed from an external sender; an unknown index is
	// an invalid sender.
	if _, err := NewExternalProposal(cfg, signer, alice.g.GroupID(), alice.g.Epoch(), 0, Proposal{Type: ProposalTypeUpdate}); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("external update: %v", err)
	}
	bad, _ := NewExternalProposal(cfg, signer, alice.g.GroupID(), alice.g.Epoch(), 3, Proposal{Type: ProposalTypeRemove, Removed: 1})
	if _, err := bob.g.Process(bad); !errors.Is(err, ErrInvalidSender) {
		t.Fatalf("unknown external sender: %v", err)
	}
	pc, err := bob.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := carol.g.Process(pc.Commit)
	if err != nil || !r.Commit.RemovesSelf() {
		t.Fatalf("carol: %v", err)
	}
	r, err = alice.g.Process(pc.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.Merge(r.Commit); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.g.Merge(pc.Staged()); err != nil {
		t.Fatal(err)
	}
	grpCheckConverged(t, alice, bob)
	// A new member asks to join; Alice commits its proposal.
	dave := grpNewMember(t, cs, 520, "dave")
	kd := dave.keyPackage(t, cs)
	join, err := NewJoinProposal(dave.cfg, kd, alice.g.GroupID(), alice.g.Epoch())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*grpMember{alice, bob} {
		if _, err := m.g.Process(grpRoundTrip(t, join)); err != nil {
			t.Fatal(err)
		}
	}
	pc = grpCommitAll(t, alice, nil, bob)
	dave.join(t, pc.Welcome, kd)
	grpCheckConverged(t, alice, bob, dave)
}

func TestGroupReInitAndBranch(t *testing.T) {
	alice, bob, carol := grpThree(t, 600)
	cs2 := MLS_128_DHKEMP256_AES128GCM_SHA256_P256
	prop, err := bob.g.ProposeReInit(ReInit{GroupID: []byte("three-v2"), Version: ProtocolVersionMLS10, CipherSuite: cs2, Extensions: Extensions{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*grpMember{alice, carol} {
		if _, err := m.g.Process(prop); err != nil {
			t.Fatal(err)
		}
	}
	grpCommitAll(t, alice, nil, bob, carol)
	for _, m := range []*grpMember{alice, bob, carol} {
		if m.g.Active() || m.g.PendingReInit() == nil {
			t.Fatalf("%s still active after reinit", m.name)
		}
	}
	if _, err := alice.g.EncryptApplication([]byte("x"), nil); !errors.Is(err, ErrInactive) {
		t.Fatalf("send after reinit: %v", err)
	}
	// Bob recreates the group in the new suite.
	ids := map[string]Identity{}
	var kps []*KeyPackage
	bundles := map[string]*KeyPackageBundle{}
	for _, m := range []*grpMember{alice, bob, carol} {
		id := grpIdentity(t, cs2, m.cfg, m.name)
		ids[m.name] = id
		if m != bob {
			kpb, err := NewKeyPackage(m.cfg, cs2, id, nil)
			if err != nil {
				t.Fatal(err)
			}
			bundles[m.name] = kpb
			kps = append(kps, kpb.KeyPackage)
		}
	}
	ng, welcome, err := bob.g.Reinitialize(bob.opts(), ids["bob"], kps, nil)
	if err != nil {
		t.Fatal(err)
	}
	newBob := &grpMember{name: "bob", cfg: bob.cfg, g: ng}
	var members = []*grpMember{newBob}
	for _, m := range []*grpMember{alice, carol} {
		if _, err := JoinFromWelcome(JoinOptions{GroupOptions: m.opts()}, welcome.Welcome, bundles[m.name]); !errors.Is(err, ErrPSKNotFound) {
			t.Fatalf("join without the old group: %v", err)
		}
		g, err := JoinFromWelcome(JoinOptions{GroupOptions: m.opts(), Resumed: []*Group{m.g}}, welcome.Welcome, bundles[m.name])
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		members = append(members, &grpMember{name: m.name, cfg: m.cfg, g: g})
	}
	grpCheckConverged(t, members...)
	if members[0].g.CipherSuite() != cs2 || string(members[0].g.GroupID()) != "three-v2" {
		t.Fatal("reinit parameters not applied")
	}

	// Branch: Alice forms a subgroup with Carol from the new group.
	na, nc := members[1], members[2]
	kpc, err := NewKeyPackage(nc.cfg, cs2, ids["carol"], nil)
	if err != nil {
		t.Fatal(err)
	}
	bg, bw, err := na.g.Branch(na.opts(), []byte("sub"), ids["alice"], []*KeyPackage{kpc.KeyPackage}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cg, err := JoinFromWelcome(JoinOptions{GroupOptions: nc.opts(), Resumed: []*Group{nc.g}}, bw.Welcome, kpc)
	if err != nil {
		t.Fatal(err)
	}
	grpCheckConverged(t, &grpMember{name: "alice", g: bg}, &grpMember{name: "carol", g: cg})
	// A stranger cannot be branched in.
	stranger := grpNewMember(t, cs2, 620, "mallory")
	if _, _, err := na.g.Branch(na.opts(), []byte("sub2"), ids["alice"], []*KeyPackage{stranger.keyPackage(t, cs2).KeyPackage}, nil); !errors.Is(err, ErrInvalidResumption) {
		t.Fatalf("branch with a stranger: %v", err)
	}
}

func TestGroupRetentionAndOutOfBandTree(t *testing.T) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	alice := grpNewMember(t, cs, 800, "alice")
	bob := grpNewMember(t, cs, 801, "bob")
	alice.create(t, cs, "retention")
	// Bob joins with the tree out of band, from a last-resort KeyPackage.
	kpb, err := NewKeyPackage(bob.cfg, cs, bob.id, &KeyPackageOptions{LastResort: true})
	if err != nil {
		t.Fatal(err)
	}
	if !kpb.KeyPackage.Extensions.Has(ExtensionTypeAppDataDictionary) {
		t.Fatal("last-resort marker missing")
	}
	pc, err := alice.g.Commit(&CommitOptions{OutOfBandTree: true, Proposals: []Proposal{{Type: ProposalTypeAdd, KeyPackage: kpb.KeyPackage}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := JoinFromWelcome(JoinOptions{GroupOptions: bob.opts()}, pc.Welcome.Welcome, kpb); !errors.Is(err, ErrMissingRatchetTree) {
		t.Fatalf("join without a tree: %v", err)
	}
	if _, err := alice.g.Merge(pc.Staged()); err != nil {
		t.Fatal(err)
	}
	g, err := JoinFromWelcome(JoinOptions{GroupOptions: GroupOptions{Config: bob.cfg, EpochRetention: 1}, RatchetTree: alice.g.RatchetTree()}, pc.Welcome.Welcome, kpb)
	if err != nil {
		t.Fatal(err)
	}
	bob.g = g
	grpCheckConverged(t, alice, bob)
	// Bob keeps one past epoch: a message two epochs old is refused.
	old, err := alice.g.EncryptApplication([]byte("old"), nil)
	if err != nil {
		t.Fatal(err)
	}
	grpCommitAll(t, alice, nil, bob)
	recent, err := alice.g.EncryptApplication([]byte("recent"), nil)
	if err != nil {
		t.Fatal(err)
	}
	grpCommitAll(t, alice, nil, bob)
	if r, err := bob.g.Process(recent); err != nil || string(r.ApplicationData) != "recent" {
		t.Fatalf("one epoch late: %v", err)
	}
	if _, err := bob.g.Process(old); !errors.Is(err, ErrEpochNotRetained) || !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("two epochs late: %v", err)
	}
	// A replayed message is refused.
	if _, err := bob.g.Process(recent); !errors.Is(err, ErrGenerationUsed) {
		t.Fatalf("replay: %v", err)
	}
}

func TestGroupStateRejectsCorruption(t *testing.T) {
	alice, _, _ := grpThree(t, 900)
	grpCommitAll(t, alice, nil)
	state := grpState(t, alice.g)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"truncated", state[:len(state)-1]},
		{"trailing", append(append([]byte(nil), state...), 0)},
		{"version", append([]byte{0, 9}, state[2:]...)},
	} {
		if _, err := UnmarshalGroup(alice.opts(), tc.b); !errors.Is(err, ErrGroupState) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// Flipping any single byte of the secrets region must not yield a
	// state that differs silently: either it is rejected or it re-encodes
	// to exactly the corrupted bytes.
	for i := 0; i < len(state); i += 7 {
		b := append([]byte(nil), state...)
		b[i] ^= 0x40
		g, err := UnmarshalGroup(alice.opts(), b)
		if err != nil {
			continue
		}
		out, err := g.Marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("byte %d: accepted state does not round-trip: %v", i, err)
		}
	}
}
