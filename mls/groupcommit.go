package mls

import (
	"bytes"
	"fmt"
)

// CommitOptions control Commit. The zero value commits every valid cached
// proposal with an UpdatePath, as a PublicMessage, and puts the ratchet tree
// into the Welcome.
type CommitOptions struct {
	SendOptions
	// Proposals are committed by value, after the cached proposals.
	Proposals []Proposal
	// SkipCached leaves the proposals cached in this epoch out.
	SkipCached bool
	// NoPath omits the UpdatePath when no covered proposal requires one
	// (a "partial" Commit, RFC 9420 §12.4). By default every Commit
	// refreshes the committer's path.
	NoPath bool
	// OutOfBandTree leaves the ratchet_tree extension out of the Welcome's
	// GroupInfo; joiners then need the tree from elsewhere
	// (Group.RatchetTree, JoinOptions.RatchetTree).
	OutOfBandTree bool
}

// PendingCommit is an own Commit that was created but not merged. The group
// keeps it until Merge (of it or of a competing Commit) or DiscardPending.
type PendingCommit struct {
	// Commit is the message to send to the group.
	Commit *MLSMessage
	// Welcome is the message for the added members, nil if none.
	Welcome *MLSMessage

	staged *StagedCommit
	// byValue are the proposals the Commit carries by value.
	byValue []Proposal
	// discarded is set by DiscardPending: the epoch's secrets are gone.
	discarded bool
}

// Staged returns the staged form of the pending Commit, for Merge.
func (p *PendingCommit) Staged() *StagedCommit { return p.staged }

// GroupInfo returns a signed GroupInfo of the epoch the Commit starts, with
// the external_pub extension and, if withTree, the ratchet tree: what an
// external joiner needs. It is built on demand because signing a GroupInfo
// that carries a large tree costs more than the Commit itself.
func (p *PendingCommit) GroupInfo(withTree bool) (*MLSMessage, error) {
	if p.discarded {
		return nil, ErrNoPendingCommit
	}
	sc := p.staged
	gi, err := sc.group.makeGroupInfo(sc.next, sc.next.secrets, sc.next.confirmationTag, withTree)
	if err != nil {
		return nil, err
	}
	return NewGroupInfoMessage(gi), nil
}

// MembershipDiff is how a Commit changes the membership.
type MembershipDiff struct {
	Added   []Member
	Removed []Member // as they were before the Commit
	Updated []Member // members whose leaf changed (Update proposals, committer's path)
}

// StagedCommit is a Commit validated completely against the group's current
// epoch (signature, membership tag, proposal list, path, confirmation tag)
// with the next epoch computed but not applied. Merge applies it.
type StagedCommit struct {
	group     *Group
	baseEpoch uint64
	own       bool
	committer Sender
	proposals []resolvedProposal
	applied   *appliedProposals
	diff      MembershipDiff
	// next is the new epoch; nil if this member is removed by the Commit.
	next   *epochState
	newOwn LeafIndex
	// changed maps leaves the Commit changes to their old value.
	changed map[LeafIndex]*LeafNode
}

// Epoch returns the epoch the Commit starts.
func (s *StagedCommit) Epoch() uint64 { return s.baseEpoch + 1 }

// Committer returns the sender of the Commit.
func (s *StagedCommit) Committer() Sender { return s.committer }

// Own reports whether this is this member's own Commit.
func (s *StagedCommit) Own() bool { return s.own }

// Diff returns the membership changes of the Commit.
func (s *StagedCommit) Diff() MembershipDiff { return s.diff }

// Proposals returns the proposals the Commit applies, in order.
func (s *StagedCommit) Proposals() []Proposal {
	out := make([]Proposal, len(s.proposals))
	for i, rp := range s.proposals {
		out[i] = *rp.p
	}
	return out
}

// ReInit returns the ReInit parameters if the Commit reinitializes the
// group.
func (s *StagedCommit) ReInit() *ReInit { return s.applied.reinit }

// RemovesSelf reports whether the Commit removes this member.
func (s *StagedCommit) RemovesSelf() bool { return s.next == nil }

// EpochAuthenticator returns the epoch authenticator of the new epoch, nil
// if the Commit removes this member.
func (s *StagedCommit) EpochAuthenticator() []byte {
	if s.next == nil {
		return nil
	}
	return bytes.Clone(s.next.secrets.EpochAuthenticator)
}

// MergeResult is what merging a Commit did.
type MergeResult struct {
	Epoch uint64
	Diff  MembershipDiff
	// Unapplied are this member's own proposals of the ended epoch (sent
	// as proposals or carried by its losing pending Commit) that the merged
	// Commit did not apply and that still make sense: pass them to Propose
	// or to the next Commit. Removes are re-targeted to the member's leaf in
	// the new epoch; PSK nonces are cleared so that Propose draws new ones.
	Unapplied []Proposal
	// ReInit is set when the Commit reinitializes the group: the group is
	// no longer active and the new group is created with Reinitialize.
	ReInit *ReInit
	// Removed is set when the Commit removes this member.
	Removed bool
}

// DiscardPending drops the own pending Commit, if any, and erases the
// secrets of the epoch it would have started.
func (g *Group) DiscardPending() {
	if p := g.pending; p != nil {
		p.discarded = true
		if next := p.staged.next; next != nil {
			next.secrets.Erase()
			groupEraseProtector(next.protector, &next.psec)
		}
	}
	g.pending = nil
}

// Pending returns the own pending Commit, or nil.
func (g *Group) Pending() *PendingCommit { return g.pending }

// Commit creates a Commit of the cached proposals and opts.Proposals (RFC
// 9420 §12.4.1) and keeps it pending: the group does not change until Merge.
func (g *Group) Commit(opts *CommitOptions) (*PendingCommit, error) {
	if opts == nil {
		opts = &CommitOptions{}
	}
	if !g.active {
		return nil, ErrInactive
	}
	if g.pending != nil {
		return nil, ErrCommitPending
	}
	committer := MemberSender(g.own)
	byValue := make([]Proposal, 0, len(opts.Proposals))
	for i := range opts.Proposals {
		p := cloneProposal(&opts.Proposals[i])
		if p.Type == ProposalTypePSK && p.PSK != nil && len(p.PSK.PSKNonce) == 0 {
			nonce, err := g.pskNonce()
			if err != nil {
				return nil, err
			}
			p.PSK.PSKNonce = nonce
		}
		byValue = append(byValue, p)
	}
	var list []resolvedProposal
	if !opts.SkipCached {
		list = g.selectCachedProposals(committer, byValue)
	}
	for i := range byValue {
		list = append(list, resolvedProposal{p: &byValue[i], sender: committer})
	}
	commit := Commit{Proposals: make([]ProposalOrRef, len(list))}
	for i := range list {
		list[i].index = i
		if list[i].ref != nil {
			commit.Proposals[i] = ProposalOrRef{Reference: list[i].ref}
		} else {
			commit.Proposals[i] = ProposalOrRef{Proposal: list[i].p}
		}
	}
	if err := g.validateProposalList(list, committer); err != nil {
		return nil, err
	}
	pc, err := g.createCommit(&commit, list, committer, opts)
	if err != nil {
		return nil, err
	}
	pc.byValue = byValue
	g.pending = pc
	return pc, nil
}

// selectCachedProposals picks the cached proposals a Commit by committer
// should include so that, together with byValue, the list stays valid
// (RFC 9420 §12.2): own Updates are left out (the path replaces them), a
// Remove wins over Updates of the same leaf and the latest Update over
// earlier ones, duplicates and Adds of members are dropped, and a ReInit
// is included only if nothing else is.
func (g *Group) selectCachedProposals(committer Sender, byValue []Proposal) []resolvedProposal {
	removes := map[LeafIndex]bool{}
	for i := range byValue {
		if byValue[i].Type == ProposalTypeRemove {
			removes[byValue[i].Removed] = true
		}
	}
	for _, c := range g.proposals {
		if c.proposal.Type == ProposalTypeRemove {
			removes[c.proposal.Removed] = true
		}
	}
	latestUpdate := map[LeafIndex]*cachedProposal{}
	for _, c := range g.proposals {
		if c.proposal.Type == ProposalTypeUpdate {
			latestUpdate[c.sender.LeafIndex] = c
		}
	}
	hasGCE := false
	for i := range byValue {
		if byValue[i].Type == ProposalTypeGroupContextExtensions {
			hasGCE = true
		}
	}
	var out []resolvedProposal
	removed := map[LeafIndex]bool{}
	var addKeys [][]byte
	for i := range byValue {
		if byValue[i].Type == ProposalTypeAdd && byValue[i].KeyPackage != nil {
			addKeys = append(addKeys, byValue[i].KeyPackage.LeafNode.SignatureKey)
		}
	}
	var pskIDs [][]byte
	var reinit *cachedProposal
	for _, c := range g.proposals {
		p := c.proposal
		if g.validateProposal(p, c.sender, nil) != nil {
			continue
		}
		switch p.Type {
		case ProposalTypeUpdate:
			if c.sender == committer || removes[c.sender.LeafIndex] || latestUpdate[c.sender.LeafIndex] != c {
				continue
			}
		case ProposalTypeRemove:
			if p.Removed == committer.LeafIndex || removed[p.Removed] {
				continue
			}
			removed[p.Removed] = true
		case ProposalTypeAdd:
			key := p.KeyPackage.LeafNode.SignatureKey
			if slicesContainBytes(addKeys, key) {
				continue
			}
			addKeys = append(addKeys, key)
		case ProposalTypePSK:
			id, err := p.PSK.identity()
			if err != nil || slicesContainBytes(pskIDs, id) {
				continue
			}
			pskIDs = append(pskIDs, id)
		case ProposalTypeGroupContextExtensions:
			if hasGCE {
				continue
			}
			hasGCE = true
		case ProposalTypeReInit:
			if reinit == nil {
				reinit = c
			}
			continue
		default:
			continue
		}
		out = append(out, resolvedProposal{p: p, sender: c.sender, ref: c.ref, updatePriv: c.updatePriv})
	}
	// Adds of clients that are members (and not removed here) are dropped.
	kept := out[:0]
	for _, rp := range out {
		if rp.p.Type == ProposalTypeAdd && g.memberWithSignatureKey(rp.p.KeyPackage.LeafNode.SignatureKey, removed) {
			continue
		}
		kept = append(kept, rp)
	}
	out = kept
	if len(out) == 0 && len(byValue) == 0 && reinit != nil {
		out = append(out, resolvedProposal{p: reinit.proposal, sender: reinit.sender, ref: reinit.ref})
	}
	return out
}

func (g *Group) memberWithSignatureKey(key []byte, except map[LeafIndex]bool) bool {
	for l, ln := range g.ep.tree.Members() {
		if !except[l] && bytes.Equal(ln.SignatureKey, key) {
			return true
		}
	}
	return false
}

func slicesContainBytes(list [][]byte, b []byte) bool {
	for _, x := range list {
		if bytes.Equal(x, b) {
			return true
		}
	}
	return false
}

// createCommit builds the Commit message, the next epoch, the GroupInfo and
// the Welcome for a validated proposal list.
func (g *Group) createCommit(commit *Commit, list []resolvedProposal, committer Sender, opts *CommitOptions) (*PendingCommit, error) {
	cs := g.CipherSuite()
	tree := g.ep.tree.Clone()
	applied, err := g.applyProposals(tree, list)
	if err != nil {
		return nil, err
	}
	if err := g.checkNewLeaves(tree, applied); err != nil {
		return nil, err
	}
	withPath := applied.needsPath || !opts.NoPath
	newCtx := GroupContext{
		Version:                 g.ep.ctx.Version,
		CipherSuite:             cs,
		GroupID:                 g.ep.ctx.GroupID,
		Epoch:                   g.ep.ctx.Epoch + 1,
		ConfirmedTranscriptHash: g.ep.ctx.ConfirmedTranscriptHash,
		Extensions:              applied.extensions,
	}
	var (
		commitSecret []byte
		priv         *TreePrivateKeys
		pathSecrets  *UpdatePathResult
	)
	if withPath {
		cur := g.ep.tree.Leaf(g.own)
		template := &LeafNode{
			SignatureKey: cur.SignatureKey,
			Credential:   cur.Credential,
			Capabilities: cur.Capabilities,
			Extensions:   cur.Extensions,
		}
		params := &UpdatePathParams{
			Sender:       g.own,
			GroupID:      g.ep.ctx.GroupID,
			Excluded:     applied.added,
			GroupContext: provisionalContext(&newCtx),
		}
		res, err := tree.CreateUpdatePath(g.rand(), params, g.signer, template)
		if err != nil {
			return nil, err
		}
		commit.Path = res.Path
		commitSecret, priv, pathSecrets = res.CommitSecret, res.Private, res
	} else {
		var err error
		if priv, err = groupKeepPrivateKeys(g.ep.priv, tree, nil); err != nil {
			return nil, err
		}
	}
	newCtx.TreeHash = tree.TreeHash()
	defer clear(commitSecret)

	content := FramedContent{
		GroupID:           g.ep.ctx.GroupID,
		Epoch:             g.ep.ctx.Epoch,
		Sender:            committer,
		AuthenticatedData: authData(&opts.SendOptions),
		ContentType:       ContentTypeCommit,
		Commit:            commit,
	}
	ac, err := g.ep.protector.Sign(g.signer, opts.wireFormat(), &content)
	if err != nil {
		return nil, err
	}
	confirmed, err := ConfirmedTranscriptHash(cs, g.ep.interim, ac)
	if err != nil {
		return nil, err
	}
	newCtx.ConfirmedTranscriptHash = confirmed
	newCtx.GroupID = bytes.Clone(g.ep.ctx.GroupID)
	psks, err := g.pskInputs(applied.psks)
	if err != nil {
		return nil, err
	}
	pskSecret, err := PSKSecret(cs, psks)
	if err != nil {
		return nil, err
	}
	secrets, err := DeriveEpochSecrets(&newCtx, g.ep.secrets.InitSecret, commitSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	tag := ConfirmationTag(cs, secrets.ConfirmationKey, confirmed)
	ac.Auth.ConfirmationTag = tag

	next := &epochState{ctx: newCtx, tree: tree, priv: priv}
	var welcome *MLSMessage
	if len(applied.added) > 0 {
		gi, err := g.makeGroupInfo(next, secrets, tag, !opts.OutOfBandTree)
		if err != nil {
			return nil, err
		}
		w, err := g.makeWelcome(gi, secrets, applied, pathSecrets)
		if err != nil {
			return nil, err
		}
		welcome = NewWelcomeMessage(w)
	}
	if err := next.finish(g.cfg(), secrets, tag); err != nil {
		return nil, err
	}
	msg, err := g.protect(ac)
	if err != nil {
		return nil, err
	}
	sc := &StagedCommit{
		group:     g,
		baseEpoch: g.ep.ctx.Epoch,
		own:       true,
		committer: committer,
		proposals: list,
		applied:   applied,
		next:      next,
		newOwn:    g.own,
	}
	sc.changed, sc.diff = g.commitChanges(tree, applied, g.own, withPath)
	return &PendingCommit{Commit: msg, Welcome: welcome, staged: sc}, nil
}

// checkNewLeaves rejects a proposal list whose new leaves (Adds, Updates)
// repeat an encryption or signature key of another leaf of the new tree.
func (g *Group) checkNewLeaves(tree *RatchetTree, a *appliedProposals) error {
	if len(a.added) == 0 && len(a.updated) == 0 {
		return nil
	}
	for _, l := range append(append([]LeafIndex(nil), a.added...), a.updated...) {
		ln := tree.Leaf(l)
		if ln == nil {
			continue
		}
		if x, ok := tree.FindEncryptionKey(ln.EncryptionKey); ok && x != l.Node() {
			return listError(RuleInvalidTree, -1, &DuplicateKeyError{Kind: "encryption", First: x, Second: l.Node()})
		}
		if o, ok := tree.FindSignatureKey(ln.SignatureKey); ok && o != l {
			return listError(RuleInvalidTree, -1, &DuplicateKeyError{Kind: "signature", First: o.Node(), Second: l.Node()})
		}
	}
	return nil
}

// provisionalContext returns the UpdatePath encryption context callback:
// the encoded provisional GroupContext ctx (RFC 9420 §12.4.1) with the
// tree hash of the tree with the path merged.
func provisionalContext(ctx *GroupContext) func(treeHash []byte) ([]byte, error) {
	return func(treeHash []byte) ([]byte, error) {
		ctx.TreeHash = treeHash
		return ctx.Marshal()
	}
}

// groupKeepPrivateKeys carries this member's private keys into the tree of
// the next epoch: with the new leaf key of an own committed Update, and
// without the keys of nodes that were blanked or replaced.
func groupKeepPrivateKeys(priv *TreePrivateKeys, tree *RatchetTree, updatePriv []byte) (*TreePrivateKeys, error) {
	if updatePriv != nil {
		p, err := priv.WithLeafKey(updatePriv)
		if err != nil {
			return nil, err
		}
		priv = p
	}
	return priv.Prune(tree), nil
}

// commitChanges computes, for a Commit applied to the current tree giving
// tree, the old values of the changed leaves and the membership diff.
func (g *Group) commitChanges(tree *RatchetTree, a *appliedProposals, committer LeafIndex, path bool) (map[LeafIndex]*LeafNode, MembershipDiff) {
	changed := map[LeafIndex]*LeafNode{}
	var diff MembershipDiff
	note := func(l LeafIndex) {
		if _, ok := changed[l]; !ok {
			changed[l] = g.ep.tree.Leaf(l)
		}
	}
	for _, l := range a.updated {
		note(l)
		if ln := tree.Leaf(l); ln != nil {
			diff.Updated = append(diff.Updated, memberOf(l, ln))
		}
	}
	for _, m := range a.removed {
		note(m.Leaf)
		diff.Removed = append(diff.Removed, m)
	}
	for _, l := range a.added {
		note(l)
		if ln := tree.Leaf(l); ln != nil {
			diff.Added = append(diff.Added, memberOf(l, ln))
		}
	}
	if path {
		note(committer)
		if ln := tree.Leaf(committer); ln != nil {
			if old := g.ep.tree.Leaf(committer); old == nil {
				diff.Added = append(diff.Added, memberOf(committer, ln))
			} else {
				diff.Updated = append(diff.Updated, memberOf(committer, ln))
			}
		}
	}
	return changed, diff
}

// stageCommit validates a received Commit completely and computes the next
// epoch without applying it (RFC 9420 §12.4.2).
func (g *Group) stageCommit(ac *AuthenticatedContent) (*StagedCommit, error) {
	cs := g.CipherSuite()
	commit := ac.Content.Commit
	committer := ac.Content.Sender
	external := committer.Type == SenderTypeNewMemberCommit
	if committer.Type == SenderTypeMember && committer.LeafIndex == g.own {
		if g.pending != nil && g.pendingMatches(ac) {
			return g.pending.staged, nil
		}
		return nil, ErrOwnCommit
	}
	list, err := g.resolveProposals(commit, committer)
	if err != nil {
		return nil, err
	}
	if err := g.validateProposalList(list, committer); err != nil {
		return nil, err
	}
	tree := g.ep.tree.Clone()
	applied, err := g.applyProposals(tree, list)
	if err != nil {
		return nil, err
	}
	if err := g.checkNewLeaves(tree, applied); err != nil {
		return nil, err
	}
	if commit.Path == nil && (applied.needsPath || external) {
		return nil, ErrPathRequired
	}
	newOwn := g.own
	removedSelf := false
	for _, m := range applied.removed {
		if m.Leaf == g.own {
			removedSelf = true
		}
	}
	newCtx := GroupContext{
		Version:                 g.ep.ctx.Version,
		CipherSuite:             cs,
		GroupID:                 bytes.Clone(g.ep.ctx.GroupID),
		Epoch:                   g.ep.ctx.Epoch + 1,
		ConfirmedTranscriptHash: g.ep.ctx.ConfirmedTranscriptHash,
		Extensions:              applied.extensions,
	}
	committerLeaf := committer.LeafIndex
	var (
		commitSecret []byte
		priv         *TreePrivateKeys
	)
	if commit.Path != nil {
		if external {
			// The joiner takes the leftmost free leaf; the path then
			// replaces this placeholder, which must not yet hold the new
			// encryption key (the path's keys have to be fresh).
			placeholder := commit.Path.LeafNode
			placeholder.EncryptionKey = nil
			l, err := tree.AddLeaf(&placeholder)
			if err != nil {
				return nil, fmt.Errorf("%w: placing the external joiner: %v", ErrInvalidPath, err)
			}
			committerLeaf = l
		}
		if err := g.validateLeafNodeIn(tree, &commit.Path.LeafNode, LeafNodeSourceCommit, committerLeaf, applied.extensions); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidPath, err)
		}
		if external {
			for _, m := range applied.removed {
				if !sameCredential(&m.Credential, &commit.Path.LeafNode.Credential) {
					return nil, listError(RuleExternalResyncOtherClient, -1, fmt.Errorf("leaf %d", m.Leaf))
				}
			}
		} else {
			if old := g.ep.tree.Leaf(committerLeaf); old != nil && bytes.Equal(old.EncryptionKey, commit.Path.LeafNode.EncryptionKey) {
				return nil, fmt.Errorf("%w: committer's encryption key unchanged", ErrInvalidPath)
			}
		}
		params := &UpdatePathParams{
			Sender:       committerLeaf,
			GroupID:      g.ep.ctx.GroupID,
			Excluded:     applied.added,
			GroupContext: provisionalContext(&newCtx),
		}
		if removedSelf {
			if err := tree.MergeUpdatePath(params, commit.Path); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalidPath, err)
			}
		} else {
			own, err := groupKeepPrivateKeys(g.ep.priv, tree, applied.ownUpdatePriv)
			if err != nil {
				return nil, err
			}
			p, secret, err := tree.ProcessUpdatePath(params, own, commit.Path)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalidPath, err)
			}
			commitSecret, priv = secret, p.Prune(tree)
		}
	} else if !removedSelf {
		var err error
		if priv, err = groupKeepPrivateKeys(g.ep.priv, tree, applied.ownUpdatePriv); err != nil {
			return nil, err
		}
	}
	newCtx.TreeHash = tree.TreeHash()
	defer clear(commitSecret)
	confirmed, err := ConfirmedTranscriptHash(cs, g.ep.interim, ac)
	if err != nil {
		return nil, err
	}
	newCtx.ConfirmedTranscriptHash = confirmed
	sc := &StagedCommit{
		group:     g,
		baseEpoch: g.ep.ctx.Epoch,
		committer: committer,
		proposals: list,
		applied:   applied,
		newOwn:    newOwn,
	}
	sc.changed, sc.diff = g.commitChanges(tree, applied, committerLeaf, commit.Path != nil)
	if removedSelf {
		// Without the commit secret the new epoch cannot be derived; the
		// framing (membership tag, signature) has been verified.
		return sc, nil
	}
	psks, err := g.pskInputs(applied.psks)
	if err != nil {
		return nil, err
	}
	pskSecret, err := PSKSecret(cs, psks)
	if err != nil {
		return nil, err
	}
	initSecret := g.ep.secrets.InitSecret
	if external {
		extPriv, _, err := g.ep.secrets.ExternalKeyPair()
		if err != nil {
			return nil, err
		}
		initSecret, err = ExternalInitSecret(cs, extPriv, applied.externalInit)
		clear(extPriv)
		if err != nil {
			return nil, fmt.Errorf("mls: external commit: %w", err)
		}
		defer clear(initSecret)
	}
	secrets, err := DeriveEpochSecrets(&newCtx, initSecret, commitSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	if err := VerifyConfirmationTag(cs, secrets.ConfirmationKey, confirmed, ac.Auth.ConfirmationTag); err != nil {
		secrets.Erase()
		return nil, err
	}
	next := &epochState{ctx: newCtx, tree: tree, priv: priv}
	if err := next.finish(g.cfg(), secrets, bytes.Clone(ac.Auth.ConfirmationTag)); err != nil {
		return nil, err
	}
	sc.next = next
	return sc, nil
}

// pendingMatches reports whether ac is the own pending Commit coming back.
func (g *Group) pendingMatches(ac *AuthenticatedContent) bool {
	return g.pending.staged.next != nil && macEqual(g.pending.staged.next.confirmationTag, ac.Auth.ConfirmationTag)
}

// Merge applies a staged Commit (the own pending one, PendingCommit.Staged,
// or one returned by Process) and makes its epoch current. The other
// staged Commits of the ended epoch become stale, the pending Commit and
// the proposal cache are dropped, and the ended epoch's message keys are
// retained for late application messages as GroupOptions say.
func (g *Group) Merge(sc *StagedCommit) (*MergeResult, error) {
	if !g.active {
		return nil, ErrInactive
	}
	if sc == nil || sc.group != g || sc.baseEpoch != g.ep.ctx.Epoch {
		return nil, ErrStaleCommit
	}
	if sc.own && (g.pending == nil || g.pending.staged != sc) {
		return nil, ErrNoPendingCommit // discarded
	}
	res := &MergeResult{Epoch: sc.Epoch(), Diff: sc.diff, ReInit: sc.applied.reinit, Removed: sc.next == nil}
	res.Unapplied = g.unappliedProposals(sc)
	g.clearEpochSecretsOnMerge(sc)
	if sc.next == nil {
		g.active = false
		g.proposals, g.pending = nil, nil
		return res, nil
	}
	old := g.ep
	g.retire(&old, sc.changed)
	g.ep = *sc.next
	g.own = sc.newOwn
	g.proposals, g.pending = nil, nil
	if sc.applied.reinit != nil {
		g.active = false
		r := *sc.applied.reinit
		g.reinit = &r
	}
	g.noteResumption()
	return res, nil
}

// clearEpochSecretsOnMerge erases the secrets of the ended epoch that no
// retained structure needs, and of own Update keys that were not used.
func (g *Group) clearEpochSecretsOnMerge(sc *StagedCommit) {
	for _, c := range g.proposals {
		if c.updatePriv != nil && !bytes.Equal(c.updatePriv, sc.applied.ownUpdatePriv) {
			clear(c.updatePriv)
		}
	}
	if g.pending != nil && g.pending.staged != sc && g.pending.staged.next != nil {
		g.pending.discarded = true
		lost := g.pending.staged.next
		lost.secrets.Erase()
		groupEraseProtector(lost.protector, &lost.psec)
	}
}

// retire moves the ended epoch into the retained past epochs, erasing the
// oldest beyond the retention.
func (g *Group) retire(old *epochState, changed map[LeafIndex]*LeafNode) {
	old.secrets.Erase()
	keep := g.opts.retention()
	if keep == 0 {
		groupEraseProtector(old.protector, &old.psec)
		return
	}
	g.past = append(g.past, &pastEpoch{epoch: old.ctx.Epoch, protector: old.protector, psec: old.psec, changed: changed})
	if drop := len(g.past) - keep; drop > 0 {
		for _, p := range g.past[:drop] {
			groupEraseProtector(p.protector, &p.psec)
			p.protector = nil
		}
		g.past = append(g.past[:0], g.past[drop:]...)
	}
}

// groupEraseProtector overwrites the secrets of an epoch's message
// protection that is no longer used: every secret of its secret tree and
// the copies in psec. The Protector itself is dropped by the caller.
func groupEraseProtector(p *Protector, psec *protectorSecrets) {
	psec.erase()
	if p == nil {
		return
	}
	t := p.SecretTree()
	for k, s := range t.nodes {
		clear(s)
		delete(t.nodes, k)
	}
	for l, rs := range t.ratchets {
		for i := range rs {
			clear(rs[i].secret)
			for j := range rs[i].retained {
				rs[i].retained[j].erase()
			}
		}
		delete(t.ratchets, l)
	}
}

// unappliedProposals returns this member's proposals that sc does not apply
// and that still apply after it (see MergeResult.Unapplied).
func (g *Group) unappliedProposals(sc *StagedCommit) []Proposal {
	if sc.next == nil || sc.applied.reinit != nil {
		return nil
	}
	applied := map[string]bool{}
	for _, rp := range sc.proposals {
		if rp.ref != nil {
			applied[string(rp.ref)] = true
		}
	}
	var cands []Proposal
	for _, c := range g.proposals {
		if c.sender == MemberSender(g.own) && !applied[string(c.ref)] {
			cands = append(cands, *c.proposal)
		}
	}
	if g.pending != nil && g.pending.staged != sc {
		cands = append(cands, g.pending.byValue...)
	}
	newTree := sc.next.tree
	var out []Proposal
	for _, p := range cands {
		p = cloneProposal(&p)
		switch p.Type {
		case ProposalTypeAdd:
			if memberInTree(newTree, p.KeyPackage.LeafNode.SignatureKey) >= 0 {
				continue
			}
		case ProposalTypeRemove:
			old := g.ep.tree.Leaf(p.Removed)
			if old == nil {
				continue
			}
			l := memberInTree(newTree, old.SignatureKey)
			if l < 0 || LeafIndex(l) == sc.newOwn {
				continue
			}
			p.Removed = LeafIndex(l)
		case ProposalTypeUpdate:
			if sc.own {
				continue
			}
			p.LeafNode = nil
		case ProposalTypePSK:
			p.PSK.PSKNonce = nil
		}
		out = append(out, p)
	}
	return out
}

// memberInTree returns the leaf of the member with signature key key, or -1.
func memberInTree(t *RatchetTree, key []byte) int64 {
	for l, ln := range t.Members() {
		if bytes.Equal(ln.SignatureKey, key) {
			return int64(l)
		}
	}
	return -1
}
