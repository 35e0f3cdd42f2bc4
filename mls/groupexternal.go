package mls

import (
	"bytes"
	"fmt"
)

// ExternalJoinOptions control JoinExternal.
type ExternalJoinOptions struct {
	JoinOptions
	// Resync removes the joiner's old appearance at this leaf (a "resync"
	// external commit, RFC 9420 §12.4.3.2); its credential must equal the
	// joiner's.
	Resync *LeafIndex
	// PSKs are injected with PreSharedKey proposals (nonces are drawn
	// here); their values must be in ExternalPSKs or Resumed.
	PSKs []PreSharedKeyID
	// AuthenticatedData is sent with the Commit.
	AuthenticatedData []byte
}

// JoinExternal joins a group through an external Commit (RFC 9420
// §12.4.3.2) built from a GroupInfo that carries the external_pub
// extension. It returns the joiner's group, already in the new epoch, and
// the Commit to send. If the group does not accept the Commit (another
// Commit of the same epoch won), the returned Group is useless and the join
// is retried with a fresh GroupInfo.
func JoinExternal(opts ExternalJoinOptions, gi *GroupInfo, id Identity) (*Group, *MLSMessage, error) {
	if gi == nil {
		return nil, nil, fmt.Errorf("%w: no group info", ErrInvalidGroupInfo)
	}
	cs := gi.GroupContext.CipherSuite
	signer, err := newIdentitySigner(cs, &id)
	if err != nil {
		return nil, nil, err
	}
	if gi.GroupContext.Version != ProtocolVersionMLS10 {
		return nil, nil, fmt.Errorf("%w: version %d", ErrInvalidGroupInfo, gi.GroupContext.Version)
	}
	tree, err := joinTree(cs, gi, opts.RatchetTree)
	if err != nil {
		return nil, nil, err
	}
	if err := verifyGroupInfoWithTree(gi, tree, opts.validateJoinTree); err != nil {
		return nil, nil, err
	}
	ext, ok := gi.Extensions.Find(ExtensionTypeExternalPub)
	if !ok {
		return nil, nil, fmt.Errorf("%w: no external_pub extension", ErrInvalidGroupInfo)
	}
	var pub ExternalPub
	if err := pub.Unmarshal(ext.Data); err != nil {
		return nil, nil, fmt.Errorf("%w: external_pub: %v", ErrInvalidGroupInfo, err)
	}
	cfg := opts.Config
	g := &Group{opts: opts.GroupOptions, signer: signer, sigKey: bytes.Clone(id.SignaturePrivateKey), active: true}
	for _, p := range opts.ExternalPSKs {
		g.SetExternalPSK(p.ID, p.PSK)
	}
	for _, r := range opts.Resumed {
		for _, rp := range r.resumption {
			g.extraPSKs = append(g.extraPSKs, resumptionPSK{groupID: bytes.Clone(rp.groupID), epoch: rp.epoch, psk: bytes.Clone(rp.psk)})
		}
	}
	kemOutput, initSecret, err := ExternalInit(cs, cfg.Random(), pub.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	defer clear(initSecret)

	commit := Commit{Proposals: []ProposalOrRef{{Proposal: &Proposal{Type: ProposalTypeExternalInit, KEMOutput: kemOutput}}}}
	if opts.Resync != nil {
		old := tree.Leaf(*opts.Resync)
		if old == nil {
			return nil, nil, fmt.Errorf("%w: resync of blank leaf %d", ErrInvalidProposal, *opts.Resync)
		}
		if !sameCredential(&old.Credential, &id.Credential) {
			return nil, nil, fmt.Errorf("%w: resync of another member's leaf", ErrInvalidProposal)
		}
		commit.Proposals = append(commit.Proposals, ProposalOrRef{Proposal: &Proposal{Type: ProposalTypeRemove, Removed: *opts.Resync}})
		if err := tree.RemoveLeaf(*opts.Resync); err != nil {
			return nil, nil, err
		}
	}
	var psks []PreSharedKeyID
	for _, p := range opts.PSKs {
		p.PSKNonce = make([]byte, cs.HashSize())
		if _, err := cfg.Random().Read(p.PSKNonce); err != nil {
			return nil, nil, fmt.Errorf("mls: reading randomness: %w", err)
		}
		if err := checkPSKProposal(cs, &p, 0); err != nil {
			return nil, nil, proposalError(RuleInvalidProposal, err)
		}
		psks = append(psks, p)
		commit.Proposals = append(commit.Proposals, ProposalOrRef{Proposal: &Proposal{Type: ProposalTypePSK, PSK: &psks[len(psks)-1]}})
	}

	leaf, leafPriv, err := newOwnLeaf(cfg, cs, &id, signer, LeafNodeSourceCommit)
	if err != nil {
		return nil, nil, err
	}
	clear(leafPriv) // CreateUpdatePath draws the leaf key
	own, err := tree.AddLeaf(leaf)
	if err != nil {
		return nil, nil, err
	}
	if err := treeCheckCapabilities(&gi.GroupContext, leaf); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidGroupInfo, err)
	}
	oldCtx := gi.GroupContext
	newCtx := GroupContext{
		Version:                 oldCtx.Version,
		CipherSuite:             cs,
		GroupID:                 bytes.Clone(oldCtx.GroupID),
		Epoch:                   oldCtx.Epoch + 1,
		ConfirmedTranscriptHash: oldCtx.ConfirmedTranscriptHash,
		Extensions:              oldCtx.Extensions,
	}
	params := &UpdatePathParams{Sender: own, GroupID: oldCtx.GroupID, GroupContext: provisionalContext(&newCtx)}
	res, err := tree.CreateUpdatePath(cfg.Random(), params, signer, leaf)
	if err != nil {
		return nil, nil, err
	}
	defer clear(res.CommitSecret)
	commit.Path = res.Path
	newCtx.TreeHash = tree.TreeHash()

	oldCtxBytes, err := oldCtx.Marshal()
	if err != nil {
		return nil, nil, err
	}
	content := FramedContent{
		GroupID:           oldCtx.GroupID,
		Epoch:             oldCtx.Epoch,
		Sender:            Sender{Type: SenderTypeNewMemberCommit},
		AuthenticatedData: authData(&SendOptions{AuthenticatedData: opts.AuthenticatedData}),
		ContentType:       ContentTypeCommit,
		Commit:            &commit,
	}
	ac, err := SignContent(cfg.Random(), signer, WireFormatPublicMessage, &content, oldCtxBytes)
	if err != nil {
		return nil, nil, err
	}
	interim, err := InterimTranscriptHash(cs, oldCtx.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		return nil, nil, err
	}
	confirmed, err := ConfirmedTranscriptHash(cs, interim, ac)
	if err != nil {
		return nil, nil, err
	}
	newCtx.ConfirmedTranscriptHash = confirmed
	pskInputs, err := g.pskInputsFor(cs, psks)
	if err != nil {
		return nil, nil, err
	}
	pskSecret, err := PSKSecret(cs, pskInputs)
	if err != nil {
		return nil, nil, err
	}
	secrets, err := DeriveEpochSecrets(&newCtx, initSecret, res.CommitSecret, pskSecret)
	if err != nil {
		return nil, nil, err
	}
	tag := ConfirmationTag(cs, secrets.ConfirmationKey, confirmed)
	ac.Auth.ConfirmationTag = tag
	g.own = own
	g.ep.ctx = newCtx
	g.ep.tree = tree
	g.ep.priv = res.Private
	if err := g.ep.finish(g.cfg(), secrets, tag); err != nil {
		return nil, nil, err
	}
	g.noteResumption()
	msg := NewPublicMessage(&PublicMessage{Content: ac.Content, Auth: ac.Auth})
	return g, msg, nil
}

func sameCredential(a, b *Credential) bool {
	x, err1 := a.Marshal()
	y, err2 := b.Marshal()
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// NewExternalProposal creates a proposal from an external sender, one of
// the group's external_senders (RFC 9420 §12.1.8), for the given group and
// epoch. senderIndex is the sender's position in the extension. Only Add,
// Remove, PSK, ReInit and GroupContextExtensions may be sent this way.
func NewExternalProposal(cfg *Config, signer *Signer, groupID []byte, epoch uint64, senderIndex uint32, p Proposal) (*MLSMessage, error) {
	if !isExternalSenderProposalType(p.Type) {
		return nil, proposalError(RuleSenderNotAllowed, fmt.Errorf("%v proposal from an external sender", p.Type))
	}
	return signExternalProposal(cfg, signer, groupID, epoch, Sender{Type: SenderTypeExternal, SenderIndex: senderIndex}, &p)
}

// NewJoinProposal creates the Add proposal of a client asking to join
// (sender new_member_proposal, RFC 9420 §12.1.8), signed with the key of its
// KeyPackage.
func NewJoinProposal(cfg *Config, kpb *KeyPackageBundle, groupID []byte, epoch uint64) (*MLSMessage, error) {
	signer, err := kpb.KeyPackage.CipherSuite.NewSigner(kpb.SignaturePrivateKey)
	if err != nil {
		return nil, fmt.Errorf("mls: signature key: %w", err)
	}
	p := Proposal{Type: ProposalTypeAdd, KeyPackage: kpb.KeyPackage}
	return signExternalProposal(cfg, signer, groupID, epoch, Sender{Type: SenderTypeNewMemberProposal}, &p)
}

func signExternalProposal(cfg *Config, signer *Signer, groupID []byte, epoch uint64, sender Sender, p *Proposal) (*MLSMessage, error) {
	content := FramedContent{
		GroupID:           bytes.Clone(groupID),
		Epoch:             epoch,
		Sender:            sender,
		AuthenticatedData: []byte{},
		ContentType:       ContentTypeProposal,
		Proposal:          p,
	}
	ac, err := SignContent(cfg.Random(), signer, WireFormatPublicMessage, &content, nil)
	if err != nil {
		return nil, err
	}
	return NewPublicMessage(&PublicMessage{Content: ac.Content, Auth: ac.Auth}), nil
}
