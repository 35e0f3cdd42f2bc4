package mls

import (
	"bytes"
	"fmt"
)

// Reinitialize creates the group that replaces g after a committed ReInit
// (RFC 9420 §11.2): a new group with the ReInit's group ID, version, suite
// and extensions, this member as creator (with id, a signing identity for
// the new suite), and the other members added from keyPackages, which
// must cover every other member of g. Its first Commit carries the
// resumption PSK of usage reinit for the epoch that committed the ReInit;
// it is merged here, and the returned Welcome brings the others in (they
// join with JoinOptions.Resumed = [their old group]). ro may be nil; its
// Extensions must be nil, since a ReInit fixes the new group's extensions.
func (g *Group) Reinitialize(opts GroupOptions, id Identity, keyPackages []*KeyPackage, ro *ResumeOptions) (*Group, *MLSMessage, error) {
	r := g.reinit
	if r == nil {
		return nil, nil, fmt.Errorf("%w: no reinit was committed", ErrInvalidResumption)
	}
	if r.Version != ProtocolVersionMLS10 {
		return nil, nil, fmt.Errorf("%w: reinit to unsupported version %d", ErrInvalidResumption, r.Version)
	}
	if ro != nil && ro.Extensions != nil {
		return nil, nil, fmt.Errorf("%w: a reinitialized group takes the ReInit's extensions", ErrInvalidResumption)
	}
	return g.resume(opts, ResumptionPSKUsageReInit, r.GroupID, r.CipherSuite, r.Extensions, id, keyPackages, ro)
}

// ResumeOptions tunes the group that Reinitialize or Branch creates and its
// first Commit. The zero value (or nil) keeps the defaults: the parent's
// extensions for a branch, an UpdatePath, and the tree in the Welcome.
type ResumeOptions struct {
	// Extensions are a branch's group context extensions; nil keeps the
	// parent group's.
	Extensions Extensions
	// NoPath and OutOfBandTree apply to the first Commit as in CommitOptions.
	NoPath        bool
	OutOfBandTree bool
}

// Branch creates a subgroup of g (RFC 9420 §11.3) with a new group ID, the
// same version and suite, the parent's extensions unless ro gives others,
// this member as creator and the
// members of keyPackages, who must all be members of g. Its first Commit
// carries a resumption PSK of usage branch for g's current epoch; it is
// merged here, and the returned Welcome brings the others in (they join
// with JoinOptions.Resumed = [g]).
func (g *Group) Branch(opts GroupOptions, groupID []byte, id Identity, keyPackages []*KeyPackage, ro *ResumeOptions) (*Group, *MLSMessage, error) {
	if !g.active {
		return nil, nil, ErrInactive
	}
	for _, kp := range keyPackages {
		if !treeHasCredential(g.ep.tree, &kp.LeafNode.Credential) {
			return nil, nil, fmt.Errorf("%w: branch member is not in the group", ErrInvalidResumption)
		}
	}
	exts := g.ep.ctx.Extensions
	if ro != nil && ro.Extensions != nil {
		exts = ro.Extensions
	}
	return g.resume(opts, ResumptionPSKUsageBranch, groupID, g.CipherSuite(), exts, id, keyPackages, ro)
}

func treeHasCredential(t *RatchetTree, c *Credential) bool {
	for _, ln := range t.Members() {
		if sameCredential(&ln.Credential, c) {
			return true
		}
	}
	return false
}

// resume creates a group linked to g by a resumption PSK of usage usage.
func (g *Group) resume(opts GroupOptions, usage ResumptionPSKUsage, groupID []byte, cs CipherSuite, exts Extensions, id Identity, keyPackages []*KeyPackage, ro *ResumeOptions) (*Group, *MLSMessage, error) {
	if ro == nil {
		ro = &ResumeOptions{}
	}
	epoch := g.ep.ctx.Epoch
	psk, ok := g.ResumptionPSK(epoch)
	if !ok {
		return nil, nil, fmt.Errorf("%w: resumption psk of epoch %d", ErrPSKNotFound, epoch)
	}
	ng, err := NewGroup(opts, cs, groupID, id, exts)
	if err != nil {
		return nil, nil, err
	}
	ng.extraPSKs = append(ng.extraPSKs, resumptionPSK{groupID: bytes.Clone(g.ep.ctx.GroupID), epoch: epoch, psk: psk})
	ng.resumeUsage = usage
	defer func() { ng.resumeUsage = 0 }()
	proposals := make([]Proposal, 0, len(keyPackages)+1)
	for _, kp := range keyPackages {
		proposals = append(proposals, Proposal{Type: ProposalTypeAdd, KeyPackage: kp})
	}
	proposals = append(proposals, Proposal{Type: ProposalTypePSK, PSK: &PreSharedKeyID{
		Type: PSKTypeResumption, Usage: usage, PSKGroupID: bytes.Clone(g.ep.ctx.GroupID), PSKEpoch: epoch,
	}})
	pc, err := ng.Commit(&CommitOptions{Proposals: proposals, NoPath: ro.NoPath, OutOfBandTree: ro.OutOfBandTree})
	if err != nil {
		return nil, nil, err
	}
	if usage == ResumptionPSKUsageReInit && !identitiesSubset(g.ep.tree, pc.staged.next.tree) {
		return nil, nil, fmt.Errorf("%w: the key packages do not cover every member", ErrInvalidResumption)
	}
	if _, err := ng.Merge(pc.staged); err != nil {
		return nil, nil, err
	}
	return ng, pc.Welcome, nil
}
