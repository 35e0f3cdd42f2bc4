package mls

import "fmt"

// PublicMessage carries a signed but unencrypted FramedContent (RFC 9420
// §6.2). Messages from members also carry a membership tag, a MAC under the
// epoch's membership_key proving the sender knows the group's secrets.
type PublicMessage struct {
	Content       FramedContent
	Auth          FramedContentAuthData
	MembershipTag []byte // member senders only
}

func (m *PublicMessage) marshal(e *Encoder) {
	m.Content.marshal(e)
	m.Auth.marshal(e, m.Content.ContentType)
	if m.Content.Sender.Type == SenderTypeMember {
		e.Opaque(m.MembershipTag)
	} else if m.MembershipTag != nil {
		e.Fail(fmt.Errorf("%w: membership tag from a %v sender", ErrEncoding, m.Content.Sender.Type))
	}
}

func (m *PublicMessage) unmarshal(d *Decoder) {
	m.Content.unmarshal(d)
	m.Auth.unmarshal(d, m.Content.ContentType)
	m.MembershipTag = nil
	if m.Content.Sender.Type == SenderTypeMember {
		m.MembershipTag = d.Opaque()
	}
}

// Marshal returns the wire encoding of m.
func (m *PublicMessage) Marshal() ([]byte, error) { return encode(m) }

// Unmarshal decodes m from b; trailing bytes are an error.
func (m *PublicMessage) Unmarshal(b []byte) error { return decodeAll(b, m) }

// membershipTag computes MAC(membership_key, AuthenticatedContentTBM) (RFC
// 9420 §6.2).
func membershipTag(cs CipherSuite, membershipKey, groupContext []byte, content *FramedContent, auth *FramedContentAuthData) ([]byte, error) {
	var e Encoder
	framedContentTBS(&e, WireFormatPublicMessage, content, groupContext)
	auth.marshal(&e, content.ContentType)
	tbm, err := e.Result()
	if err != nil {
		return nil, err
	}
	return cs.MAC(membershipKey, tbm), nil
}

// ProtectPublic turns signed content into a PublicMessage, adding the
// membership tag for member senders. Application data cannot be sent this
// way (ErrWrongContentType).
func (p *Protector) ProtectPublic(ac *AuthenticatedContent) (*PublicMessage, error) {
	if ac.WireFormat != WireFormatPublicMessage {
		return nil, fmt.Errorf("%w: content signed for %v, not a PublicMessage", ErrWrongWireFormat, ac.WireFormat)
	}
	if err := p.checkGroupEpoch(ac.Content.GroupID, ac.Content.Epoch); err != nil {
		return nil, err
	}
	if err := checkSenderContent(WireFormatPublicMessage, &ac.Content.Sender, ac.Content.ContentType); err != nil {
		return nil, err
	}
	if err := ac.checkConfirmationTag(); err != nil {
		return nil, err
	}
	m := &PublicMessage{Content: ac.Content, Auth: ac.Auth}
	if ac.Content.Sender.Type == SenderTypeMember {
		tag, err := membershipTag(p.suite, p.membershipKey, p.groupContext, &m.Content, &m.Auth)
		if err != nil {
			return nil, err
		}
		m.MembershipTag = tag
	}
	return m, nil
}

// UnprotectPublic checks a PublicMessage of this epoch (group, epoch,
// sender and content type, membership tag for members, then the signature
// with the key keys returns) and returns its content. A commit's
// confirmation tag is left to the caller, who knows the next epoch's
// confirmation key.
func (p *Protector) UnprotectPublic(m *PublicMessage, keys SignatureKeyFunc) (*AuthenticatedContent, error) {
	c := &m.Content
	if err := p.checkGroupEpoch(c.GroupID, c.Epoch); err != nil {
		return nil, err
	}
	if err := checkSenderContent(WireFormatPublicMessage, &c.Sender, c.ContentType); err != nil {
		return nil, err
	}
	if err := c.checkBody(); err != nil {
		return nil, err
	}
	ac := &AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: m.Content, Auth: m.Auth}
	if err := ac.checkConfirmationTag(); err != nil {
		return nil, err
	}
	if c.Sender.Type == SenderTypeMember {
		if c.Sender.LeafIndex >= LeafIndex(p.tree.LeafCount()) {
			return nil, fmt.Errorf("%w: leaf %d outside a tree of %d leaves", ErrInvalidSender, c.Sender.LeafIndex, p.tree.LeafCount())
		}
		want, err := membershipTag(p.suite, p.membershipKey, p.groupContext, c, &m.Auth)
		if err != nil {
			return nil, err
		}
		if !macEqual(want, m.MembershipTag) {
			return nil, ErrBadMembershipTag
		}
	}
	if err := p.verify(ac, keys); err != nil {
		return nil, err
	}
	return ac, nil
}
