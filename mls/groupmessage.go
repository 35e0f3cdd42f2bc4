package mls

import (
	"bytes"
	"fmt"
)

// ReceivedKind says what a processed message was.
type ReceivedKind uint8

// Kinds of processed messages.
const (
	// ReceivedApplication: application data, decrypted.
	ReceivedApplication ReceivedKind = iota + 1
	// ReceivedProposal: a valid proposal, now cached for the epoch.
	ReceivedProposal
	// ReceivedCommit: a valid Commit, staged (not applied): see Merge.
	ReceivedCommit
)

func (k ReceivedKind) String() string {
	switch k {
	case ReceivedApplication:
		return "application"
	case ReceivedProposal:
		return "proposal"
	case ReceivedCommit:
		return "commit"
	}
	return fmt.Sprintf("ReceivedKind(%d)", uint8(k))
}

// Received is the result of processing a group message.
type Received struct {
	Kind  ReceivedKind
	Epoch uint64 // the epoch the message was sent in
	// Sender and its Credential: a member's leaf credential in that epoch,
	// an external sender's from external_senders, a new member's from its
	// KeyPackage or UpdatePath leaf.
	Sender            Sender
	Credential        Credential
	AuthenticatedData []byte

	ApplicationData []byte        // ReceivedApplication
	Proposal        *Proposal     // ReceivedProposal
	ProposalRef     ProposalRef   // ReceivedProposal
	Commit          *StagedCommit // ReceivedCommit
}

// ProcessBytes decodes an MLSMessage and processes it (see Process).
func (g *Group) ProcessBytes(b []byte) (*Received, error) {
	var m MLSMessage
	if err := m.Unmarshal(b); err != nil {
		return nil, err
	}
	return g.Process(&m)
}

// Process authenticates and interprets a PublicMessage or PrivateMessage of
// the group. Application data of the current epoch or of a retained past
// epoch is decrypted; a proposal of the current epoch is validated and
// cached; a Commit of the current epoch is validated completely and
// returned staged, for Merge. A message that fails any check is rejected
// with a typed error and leaves the group as it was (a PrivateMessage key
// is consumed only by a message whose signature verified).
func (g *Group) Process(m *MLSMessage) (*Received, error) {
	var (
		groupID []byte
		epoch   uint64
		ct      ContentType
	)
	switch {
	case m.WireFormat == WireFormatPublicMessage && m.PublicMessage != nil:
		c := &m.PublicMessage.Content
		groupID, epoch, ct = c.GroupID, c.Epoch, c.ContentType
	case m.WireFormat == WireFormatPrivateMessage && m.PrivateMessage != nil:
		pm := m.PrivateMessage
		groupID, epoch, ct = pm.GroupID, pm.Epoch, pm.ContentType
	default:
		return nil, fmt.Errorf("%w: %v is not a group message", ErrWrongWireFormat, m.WireFormat)
	}
	if !bytes.Equal(groupID, g.ep.ctx.GroupID) {
		return nil, ErrWrongGroup
	}
	if epoch != g.ep.ctx.Epoch {
		return g.processPast(m, epoch, ct)
	}
	if !g.active && ct != ContentTypeApplication {
		return nil, ErrInactive
	}
	leaf := func(l LeafIndex) *LeafNode { return g.ep.tree.Leaf(l) }
	ac, err := g.unprotect(g.ep.protector, m, leaf)
	if err != nil {
		return nil, err
	}
	r := &Received{
		Kind:              ReceivedApplication,
		Epoch:             epoch,
		Sender:            ac.Content.Sender,
		AuthenticatedData: ac.Content.AuthenticatedData,
	}
	r.Credential, err = g.senderCredential(ac, leaf)
	if err != nil {
		return nil, err
	}
	switch ac.Content.ContentType {
	case ContentTypeApplication:
		r.ApplicationData = ac.Content.ApplicationData
	case ContentTypeProposal:
		r.Kind = ReceivedProposal
		p := ac.Content.Proposal
		if err := g.validateProposal(p, ac.Content.Sender, nil); err != nil {
			return nil, err
		}
		ref, err := g.proposalRef(ac)
		if err != nil {
			return nil, err
		}
		if g.cachedProposal(ref) == nil {
			g.proposals = append(g.proposals, &cachedProposal{ref: ref, proposal: p, sender: ac.Content.Sender})
		}
		r.Proposal, r.ProposalRef = p, ref
	case ContentTypeCommit:
		r.Kind = ReceivedCommit
		sc, err := g.stageCommit(ac)
		if err != nil {
			return nil, err
		}
		r.Commit = sc
	}
	return r, nil
}

// processPast handles a message of an epoch other than the current one:
// only application data of a retained past epoch is accepted.
func (g *Group) processPast(m *MLSMessage, epoch uint64, ct ContentType) (*Received, error) {
	epochErr := &EpochError{Got: epoch, Want: g.ep.ctx.Epoch}
	if epoch > g.ep.ctx.Epoch || ct != ContentTypeApplication || m.PrivateMessage == nil {
		return nil, epochErr
	}
	idx := -1
	for i, p := range g.past {
		if p.epoch == epoch {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("%w: %w", ErrEpochNotRetained, epochErr)
	}
	leaf := func(l LeafIndex) *LeafNode { return g.pastLeaf(idx, l) }
	ac, err := g.unprotect(g.past[idx].protector, m, leaf)
	if err != nil {
		return nil, err
	}
	cred, err := g.senderCredential(ac, leaf)
	if err != nil {
		return nil, err
	}
	return &Received{
		Kind:              ReceivedApplication,
		Epoch:             epoch,
		Sender:            ac.Content.Sender,
		Credential:        cred,
		AuthenticatedData: ac.Content.AuthenticatedData,
		ApplicationData:   ac.Content.ApplicationData,
	}, nil
}

// pastLeaf returns leaf l as it was in the retained epoch g.past[i].
func (g *Group) pastLeaf(i int, l LeafIndex) *LeafNode {
	for _, p := range g.past[i:] {
		if ln, ok := p.changed[l]; ok {
			return ln
		}
	}
	return g.ep.tree.Leaf(l)
}

// unprotect opens m with protector p, checking the signature with the key
// of the sender as of that epoch.
func (g *Group) unprotect(p *Protector, m *MLSMessage, leaf func(LeafIndex) *LeafNode) (*AuthenticatedContent, error) {
	keys := func(ac *AuthenticatedContent) ([]byte, error) {
		s := ac.Content.Sender
		switch s.Type {
		case SenderTypeMember:
			ln := leaf(s.LeafIndex)
			if ln == nil {
				return nil, fmt.Errorf("%w: leaf %d is blank", ErrInvalidSender, s.LeafIndex)
			}
			return ln.SignatureKey, nil
		case SenderTypeExternal:
			senders, err := externalSenders(g.ep.ctx.Extensions)
			if err != nil {
				return nil, err
			}
			if uint64(s.SenderIndex) >= uint64(len(senders)) {
				return nil, fmt.Errorf("%w: external sender %d of %d", ErrInvalidSender, s.SenderIndex, len(senders))
			}
			return senders[s.SenderIndex].SignatureKey, nil
		case SenderTypeNewMemberProposal:
			p := ac.Content.Proposal
			if p == nil || p.Type != ProposalTypeAdd || p.KeyPackage == nil {
				return nil, fmt.Errorf("%w: new member proposal that is not an add", ErrInvalidSender)
			}
			return p.KeyPackage.LeafNode.SignatureKey, nil
		case SenderTypeNewMemberCommit:
			c := ac.Content.Commit
			if c == nil || c.Path == nil {
				return nil, fmt.Errorf("%w: external commit without path", ErrPathRequired)
			}
			return c.Path.LeafNode.SignatureKey, nil
		}
		return nil, fmt.Errorf("%w: sender type %v", ErrInvalidSender, s.Type)
	}
	if m.PrivateMessage != nil {
		return p.UnprotectPrivate(m.PrivateMessage, keys)
	}
	return p.UnprotectPublic(m.PublicMessage, keys)
}

// senderCredential returns the credential of the sender of ac.
func (g *Group) senderCredential(ac *AuthenticatedContent, leaf func(LeafIndex) *LeafNode) (Credential, error) {
	s := ac.Content.Sender
	switch s.Type {
	case SenderTypeMember:
		if ln := leaf(s.LeafIndex); ln != nil {
			return ln.Credential, nil
		}
	case SenderTypeExternal:
		senders, err := externalSenders(g.ep.ctx.Extensions)
		if err == nil && uint64(s.SenderIndex) < uint64(len(senders)) {
			return senders[s.SenderIndex].Credential, nil
		}
	case SenderTypeNewMemberProposal:
		return ac.Content.Proposal.KeyPackage.LeafNode.Credential, nil
	case SenderTypeNewMemberCommit:
		return ac.Content.Commit.Path.LeafNode.Credential, nil
	}
	return Credential{}, fmt.Errorf("%w: no credential for %v sender", ErrInvalidSender, s.Type)
}

// EncryptApplication encrypts application data with authenticated data
// (sent in the clear, authenticated) as a PrivateMessage of the current
// epoch.
func (g *Group) EncryptApplication(data, authenticatedData []byte) (*MLSMessage, error) {
	if !g.active {
		return nil, ErrInactive
	}
	if authenticatedData == nil {
		authenticatedData = []byte{}
	}
	if data == nil {
		data = []byte{}
	}
	content := FramedContent{
		GroupID:           g.ep.ctx.GroupID,
		Epoch:             g.ep.ctx.Epoch,
		Sender:            MemberSender(g.own),
		AuthenticatedData: authenticatedData,
		ContentType:       ContentTypeApplication,
		ApplicationData:   data,
	}
	ac, err := g.ep.protector.Sign(g.signer, WireFormatPrivateMessage, &content)
	if err != nil {
		return nil, err
	}
	pm, err := g.ep.protector.ProtectPrivate(ac)
	if err != nil {
		return nil, err
	}
	return NewPrivateMessage(pm), nil
}
