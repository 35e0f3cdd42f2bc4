package mls

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
)

// Errors reported when a message cannot be accepted. Together with
// ErrDecryption and ErrInvalidSignature (ciphersuite.go), the secret-tree
// errors (secrettree.go) and the decoding errors (codec.go), they let callers
// tell every reason for rejecting a message apart with errors.Is.
var (
	ErrWrongGroup         = errors.New("mls: message belongs to another group")
	ErrWrongEpoch         = errors.New("mls: message belongs to another epoch")
	ErrWrongContentType   = errors.New("mls: content type not allowed for this wire format or sender")
	ErrWrongWireFormat    = errors.New("mls: unexpected wire format")
	ErrInvalidSender      = errors.New("mls: invalid sender")
	ErrBadMembershipTag   = errors.New("mls: membership tag does not verify")
	ErrBadConfirmationTag = errors.New("mls: confirmation tag does not verify")
	ErrMalformedPadding   = errors.New("mls: padding contains non-zero bytes")
	ErrMissingContent     = errors.New("mls: content body missing or inconsistent with content type")
)

// EpochError reports a message for an epoch other than the one it was
// checked against. It unwraps to ErrWrongEpoch.
type EpochError struct {
	Got, Want uint64
}

func (e *EpochError) Error() string {
	return fmt.Sprintf("mls: message for epoch %d, group is at epoch %d", e.Got, e.Want)
}

func (e *EpochError) Unwrap() error { return ErrWrongEpoch }

// WireFormat identifies the kind of an MLSMessage (RFC 9420 §17.2).
type WireFormat uint16

// The wire formats of RFC 9420.
const (
	WireFormatPublicMessage  WireFormat = 0x0001
	WireFormatPrivateMessage WireFormat = 0x0002
	WireFormatWelcome        WireFormat = 0x0003
	WireFormatGroupInfo      WireFormat = 0x0004
	WireFormatKeyPackage     WireFormat = 0x0005
)

func (w WireFormat) String() string {
	switch w {
	case WireFormatPublicMessage:
		return "mls_public_message"
	case WireFormatPrivateMessage:
		return "mls_private_message"
	case WireFormatWelcome:
		return "mls_welcome"
	case WireFormatGroupInfo:
		return "mls_group_info"
	case WireFormatKeyPackage:
		return "mls_key_package"
	}
	return fmt.Sprintf("WireFormat(%#04x)", uint16(w))
}

// isContentWireFormat reports whether w can carry a FramedContent.
func (w WireFormat) isContentWireFormat() bool {
	return w == WireFormatPublicMessage || w == WireFormatPrivateMessage
}

// ContentType is the kind of a FramedContent's body.
type ContentType uint8

// The content types of RFC 9420 §6.
const (
	ContentTypeApplication ContentType = 1
	ContentTypeProposal    ContentType = 2
	ContentTypeCommit      ContentType = 3
)

func (c ContentType) valid() bool {
	return c >= ContentTypeApplication && c <= ContentTypeCommit
}

func (c ContentType) String() string {
	switch c {
	case ContentTypeApplication:
		return "application"
	case ContentTypeProposal:
		return "proposal"
	case ContentTypeCommit:
		return "commit"
	}
	return fmt.Sprintf("ContentType(%d)", uint8(c))
}

func (c *ContentType) unmarshal(d *Decoder) {
	v := ContentType(d.Uint8())
	if d.Err() == nil && !v.valid() {
		d.Fail(fmt.Errorf("%w: content type %d", ErrInvalidValue, uint8(v)))
	}
	*c = v
}

// SenderType says who sent a message (RFC 9420 §6).
type SenderType uint8

// The sender types of RFC 9420 §6.
const (
	SenderTypeMember            SenderType = 1
	SenderTypeExternal          SenderType = 2
	SenderTypeNewMemberProposal SenderType = 3
	SenderTypeNewMemberCommit   SenderType = 4
)

func (s SenderType) String() string {
	switch s {
	case SenderTypeMember:
		return "member"
	case SenderTypeExternal:
		return "external"
	case SenderTypeNewMemberProposal:
		return "new_member_proposal"
	case SenderTypeNewMemberCommit:
		return "new_member_commit"
	}
	return fmt.Sprintf("SenderType(%d)", uint8(s))
}

// Sender identifies the sender of a FramedContent. LeafIndex is meaningful
// for members, SenderIndex (an index into the external_senders extension)
// for external senders; new members carry no index.
type Sender struct {
	Type        SenderType
	LeafIndex   LeafIndex
	SenderIndex uint32
}

// MemberSender returns the Sender for the member at leaf.
func MemberSender(leaf LeafIndex) Sender {
	return Sender{Type: SenderTypeMember, LeafIndex: leaf}
}

func (s *Sender) marshal(e *Encoder) {
	e.Uint8(uint8(s.Type))
	switch s.Type {
	case SenderTypeMember:
		e.Uint32(uint32(s.LeafIndex))
	case SenderTypeExternal:
		e.Uint32(s.SenderIndex)
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
	default:
		e.Fail(fmt.Errorf("%w: sender type %d", ErrEncoding, uint8(s.Type)))
	}
}

func (s *Sender) unmarshal(d *Decoder) {
	*s = Sender{Type: SenderType(d.Uint8())}
	switch s.Type {
	case SenderTypeMember:
		s.LeafIndex = LeafIndex(d.Uint32())
	case SenderTypeExternal:
		s.SenderIndex = d.Uint32()
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
	default:
		d.Fail(fmt.Errorf("%w: sender type %d", ErrInvalidValue, uint8(s.Type)))
	}
}

// signsWithGroupContext reports whether the FramedContentTBS of a message from
// this sender includes the GroupContext (RFC 9420 §6.1).
func (s *Sender) signsWithGroupContext() bool {
	return s.Type == SenderTypeMember || s.Type == SenderTypeNewMemberCommit
}

// FramedContent is a message body with the group, epoch and sender it
// belongs to (RFC 9420 §6). Exactly one of ApplicationData, Proposal and
// Commit is used, as ContentType says.
type FramedContent struct {
	GroupID           []byte
	Epoch             uint64
	Sender            Sender
	AuthenticatedData []byte
	ContentType       ContentType
	ApplicationData   []byte
	Proposal          *Proposal
	Commit            *Commit
}

// checkBody reports whether the body fields agree with ContentType.
func (c *FramedContent) checkBody() error {
	switch c.ContentType {
	case ContentTypeApplication:
		if c.Proposal == nil && c.Commit == nil {
			return nil
		}
	case ContentTypeProposal:
		if c.Proposal != nil && c.Commit == nil && c.ApplicationData == nil {
			return nil
		}
	case ContentTypeCommit:
		if c.Commit != nil && c.Proposal == nil && c.ApplicationData == nil {
			return nil
		}
	default:
		return fmt.Errorf("%w: %v", ErrWrongContentType, c.ContentType)
	}
	return fmt.Errorf("%w: content type %v", ErrMissingContent, c.ContentType)
}

func (c *FramedContent) marshal(e *Encoder) {
	e.Opaque(c.GroupID)
	e.Uint64(c.Epoch)
	c.Sender.marshal(e)
	e.Opaque(c.AuthenticatedData)
	e.Uint8(uint8(c.ContentType))
	c.marshalBody(e)
}

// marshalBody writes the content-type-dependent body, shared by
// FramedContent and PrivateMessageContent.
func (c *FramedContent) marshalBody(e *Encoder) {
	if err := c.checkBody(); err != nil {
		e.Fail(err)
		return
	}
	switch c.ContentType {
	case ContentTypeApplication:
		e.Opaque(c.ApplicationData)
	case ContentTypeProposal:
		c.Proposal.marshal(e)
	case ContentTypeCommit:
		c.Commit.marshal(e)
	}
}

func (c *FramedContent) unmarshal(d *Decoder) {
	c.GroupID = d.Opaque()
	c.Epoch = d.Uint64()
	c.Sender.unmarshal(d)
	c.AuthenticatedData = d.Opaque()
	c.ContentType.unmarshal(d)
	c.unmarshalBody(d)
}

func (c *FramedContent) unmarshalBody(d *Decoder) {
	c.ApplicationData, c.Proposal, c.Commit = nil, nil, nil
	if d.Err() != nil {
		return
	}
	switch c.ContentType {
	case ContentTypeApplication:
		c.ApplicationData = d.Opaque()
	case ContentTypeProposal:
		c.Proposal = new(Proposal)
		c.Proposal.unmarshal(d)
	case ContentTypeCommit:
		c.Commit = new(Commit)
		c.Commit.unmarshal(d)
	}
}

// Marshal returns the wire encoding of c.
func (c *FramedContent) Marshal() ([]byte, error) { return encode(c) }

// Unmarshal decodes c from b; trailing bytes are an error.
func (c *FramedContent) Unmarshal(b []byte) error { return decodeAll(b, c) }

// FramedContentAuthData authenticates a FramedContent: the sender's
// signature and, for commits, the confirmation tag (RFC 9420 §6.1).
type FramedContentAuthData struct {
	Signature       []byte
	ConfirmationTag []byte // commits only
}

func (a *FramedContentAuthData) marshal(e *Encoder, ct ContentType) {
	e.Opaque(a.Signature)
	if ct == ContentTypeCommit {
		e.Opaque(a.ConfirmationTag)
	} else if a.ConfirmationTag != nil {
		e.Fail(fmt.Errorf("%w: confirmation tag on %v content", ErrEncoding, ct))
	}
}

func (a *FramedContentAuthData) unmarshal(d *Decoder, ct ContentType) {
	a.Signature = d.Opaque()
	a.ConfirmationTag = nil
	if ct == ContentTypeCommit {
		a.ConfirmationTag = d.Opaque()
	}
}

// AuthenticatedContent is a FramedContent with its authentication data and
// the wire format it is (or will be) sent in (RFC 9420 §6). It is what
// protecting a message starts from and what unprotecting yields.
type AuthenticatedContent struct {
	WireFormat WireFormat
	Content    FramedContent
	Auth       FramedContentAuthData
}

func (a *AuthenticatedContent) marshal(e *Encoder) {
	e.Uint16(uint16(a.WireFormat))
	a.Content.marshal(e)
	a.Auth.marshal(e, a.Content.ContentType)
}

func (a *AuthenticatedContent) unmarshal(d *Decoder) {
	a.WireFormat = WireFormat(d.Uint16())
	if d.Err() == nil && !a.WireFormat.isContentWireFormat() {
		d.Fail(fmt.Errorf("%w: wire format %v for framed content", ErrInvalidValue, a.WireFormat))
	}
	a.Content.unmarshal(d)
	a.Auth.unmarshal(d, a.Content.ContentType)
}

// Marshal returns the wire encoding of a.
func (a *AuthenticatedContent) Marshal() ([]byte, error) { return encode(a) }

// Unmarshal decodes a from b; trailing bytes are an error.
func (a *AuthenticatedContent) Unmarshal(b []byte) error { return decodeAll(b, a) }

// framedContentTBS appends FramedContentTBS (RFC 9420 §6.1) to e.
// groupContext is the encoded GroupContext, included for member and
// new_member_commit senders.
func framedContentTBS(e *Encoder, wf WireFormat, c *FramedContent, groupContext []byte) {
	e.Uint16(uint16(ProtocolVersionMLS10))
	e.Uint16(uint16(wf))
	c.marshal(e)
	if c.Sender.signsWithGroupContext() {
		e.Raw(groupContext)
	}
}

// tbsSizeHint estimates the size of a FramedContentTBS so that encoding it
// allocates once in the common case (application data).
func tbsSizeHint(c *FramedContent, groupContext []byte) int {
	return 64 + len(groupContext) + len(c.GroupID) + len(c.AuthenticatedData) + len(c.ApplicationData)
}

// signatureLabel is the SignWithLabel label of FramedContentTBS.
const signatureLabel = "FramedContentTBS"

// SignContent builds the AuthenticatedContent for content sent in wire
// format wf, signing it with signer. groupContext is the encoded GroupContext
// of the epoch the content is sent in; it is required for member and
// new_member_commit senders and ignored otherwise. For a commit the caller
// sets Auth.ConfirmationTag afterwards (it depends on the signature through
// the confirmed transcript hash, see ConfirmedTranscriptHash).
func SignContent(rand io.Reader, signer *Signer, wf WireFormat, content *FramedContent, groupContext []byte) (*AuthenticatedContent, error) {
	if !wf.isContentWireFormat() {
		return nil, fmt.Errorf("%w: %v cannot carry framed content", ErrWrongWireFormat, wf)
	}
	if err := content.checkBody(); err != nil {
		return nil, err
	}
	if err := checkSenderContent(wf, &content.Sender, content.ContentType); err != nil {
		return nil, err
	}
	e := Encoder{buf: make([]byte, 0, tbsSizeHint(content, groupContext))}
	framedContentTBS(&e, wf, content, groupContext)
	tbs, err := e.Result()
	if err != nil {
		return nil, err
	}
	sig, err := signer.SignWithLabel(rand, signatureLabel, tbs)
	if err != nil {
		return nil, fmt.Errorf("mls: signing framed content: %w", err)
	}
	return &AuthenticatedContent{WireFormat: wf, Content: *content, Auth: FramedContentAuthData{Signature: sig}}, nil
}

// VerifySignature checks the sender's signature over a with the sender's
// signature public key. groupContext is the encoded GroupContext of the
// message's epoch (used for member and new_member_commit senders). A bad
// signature yields an error wrapping ErrInvalidSignature.
func (a *AuthenticatedContent) VerifySignature(cs CipherSuite, publicKey, groupContext []byte) error {
	e := Encoder{buf: make([]byte, 0, tbsSizeHint(&a.Content, groupContext))}
	framedContentTBS(&e, a.WireFormat, &a.Content, groupContext)
	tbs, err := e.Result()
	if err != nil {
		return err
	}
	if err := cs.VerifyWithLabel(publicKey, signatureLabel, tbs, a.Auth.Signature); err != nil {
		return fmt.Errorf("mls: framed content from %v: %w", a.Content.Sender.Type, err)
	}
	return nil
}

// checkSenderContent enforces which senders and content types each wire
// format may carry (RFC 9420 §6, §6.2, §6.3.2, §12.1.8).
func checkSenderContent(wf WireFormat, s *Sender, ct ContentType) error {
	switch s.Type {
	case SenderTypeMember:
	case SenderTypeExternal, SenderTypeNewMemberProposal:
		if ct != ContentTypeProposal {
			return fmt.Errorf("%w: %v sender with %v content", ErrWrongContentType, s.Type, ct)
		}
	case SenderTypeNewMemberCommit:
		if ct != ContentTypeCommit {
			return fmt.Errorf("%w: %v sender with %v content", ErrWrongContentType, s.Type, ct)
		}
	default:
		return fmt.Errorf("%w: sender type %v", ErrInvalidSender, s.Type)
	}
	switch wf {
	case WireFormatPublicMessage:
		if ct == ContentTypeApplication {
			return fmt.Errorf("%w: application data must be sent as a PrivateMessage", ErrWrongContentType)
		}
	case WireFormatPrivateMessage:
		if s.Type != SenderTypeMember {
			return fmt.Errorf("%w: %v sender in a PrivateMessage", ErrInvalidSender, s.Type)
		}
	default:
		return fmt.Errorf("%w: %v cannot carry framed content", ErrWrongWireFormat, wf)
	}
	return nil
}

// checkConfirmationTag checks that a commit carries a confirmation tag and
// that other content does not. Its value is checked by the caller against
// the next epoch's confirmation key (VerifyConfirmationTag).
func (a *AuthenticatedContent) checkConfirmationTag() error {
	hasTag := len(a.Auth.ConfirmationTag) > 0
	if (a.Content.ContentType == ContentTypeCommit) != hasTag {
		return fmt.Errorf("%w: %v content with confirmation tag present=%v", ErrBadConfirmationTag, a.Content.ContentType, hasTag)
	}
	return nil
}

// SignatureKeyFunc returns the signature public key that must have signed
// ac, according to its sender (RFC 9420 §6.1): the leaf's key for a member,
// the external_senders entry for an external sender, the key in the
// commit's path or in the Add's KeyPackage for new members. It returns an
// error (for example ErrInvalidSender for a blank leaf) to reject the message.
type SignatureKeyFunc func(ac *AuthenticatedContent) (publicKey []byte, err error)

// Protector protects and unprotects the messages of one epoch of a group
// (RFC 9420 §6): it signs and verifies framed content, adds and checks
// membership tags, and encrypts and decrypts PrivateMessages with the
// epoch's secret tree. A group keeps one Protector per epoch it can still
// receive messages for. A Protector is not safe for concurrent use: it owns
// the secret tree, whose ratchets advance with every message.
type Protector struct {
	suite         CipherSuite
	groupID       []byte
	epoch         uint64
	groupContext  []byte         // encoded GroupContext of the epoch
	senderData    *labelExpander // keyed with the sender_data_secret
	membershipKey []byte
	tree          *SecretTree
	cfg           *Config
}

// NewProtector returns the Protector of the epoch described by gc, with the
// epoch's sender_data_secret and membership_key (see EpochSecrets) and its
// secret tree. It copies the secrets and keeps a reference to the tree.
func NewProtector(cfg *Config, gc *GroupContext, senderDataSecret, membershipKey []byte, tree *SecretTree) (*Protector, error) {
	cs := gc.CipherSuite
	if !cs.Supported() {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedCipherSuite, cs)
	}
	if tree == nil || tree.suite != cs {
		return nil, fmt.Errorf("mls: secret tree missing or for another cipher suite than %v", cs)
	}
	if len(senderDataSecret) != cs.HashSize() || len(membershipKey) != cs.HashSize() {
		return nil, fmt.Errorf("%w: epoch secrets must be %d bytes", ErrInvalidLength, cs.HashSize())
	}
	enc, err := gc.Marshal()
	if err != nil {
		return nil, fmt.Errorf("mls: encoding group context: %w", err)
	}
	return &Protector{
		suite:         cs,
		groupID:       append([]byte(nil), gc.GroupID...),
		epoch:         gc.Epoch,
		groupContext:  enc,
		senderData:    newLabelExpander(cs, append([]byte(nil), senderDataSecret...)),
		membershipKey: append([]byte(nil), membershipKey...),
		tree:          tree,
		cfg:           cfg,
	}, nil
}

// CipherSuite returns the group's cipher suite.
func (p *Protector) CipherSuite() CipherSuite { return p.suite }

// Epoch returns the epoch this Protector serves.
func (p *Protector) Epoch() uint64 { return p.epoch }

// SecretTree returns the epoch's secret tree.
func (p *Protector) SecretTree() *SecretTree { return p.tree }

// GroupContext returns the encoded GroupContext of the epoch. The caller
// must not modify it.
func (p *Protector) GroupContext() []byte { return p.groupContext }

// Sign signs content for sending in wire format wf in this epoch. See
// SignContent.
func (p *Protector) Sign(signer *Signer, wf WireFormat, content *FramedContent) (*AuthenticatedContent, error) {
	if signer.CipherSuite() != p.suite {
		return nil, fmt.Errorf("%w: signer for %v in a %v group", ErrInvalidKey, signer.CipherSuite(), p.suite)
	}
	if err := p.checkGroupEpoch(content.GroupID, content.Epoch); err != nil {
		return nil, err
	}
	return SignContent(p.cfg.Random(), signer, wf, content, p.groupContext)
}

// Verify checks ac's signature against publicKey in this epoch's context.
func (p *Protector) Verify(ac *AuthenticatedContent, publicKey []byte) error {
	return ac.VerifySignature(p.suite, publicKey, p.groupContext)
}

func (p *Protector) verify(ac *AuthenticatedContent, keys SignatureKeyFunc) error {
	if keys == nil {
		return fmt.Errorf("mls: no signature key source to verify a %v message", ac.WireFormat)
	}
	pub, err := keys(ac)
	if err != nil {
		return fmt.Errorf("mls: signature key of %v sender: %w", ac.Content.Sender.Type, err)
	}
	return p.Verify(ac, pub)
}

func (p *Protector) checkGroupEpoch(groupID []byte, epoch uint64) error {
	if !bytes.Equal(groupID, p.groupID) {
		return ErrWrongGroup
	}
	if epoch != p.epoch {
		return &EpochError{Got: epoch, Want: p.epoch}
	}
	return nil
}

// macEqual compares MACs in constant time.
func macEqual(a, b []byte) bool { return hmac.Equal(a, b) }

// Erase overwrites the epoch's secrets held by p (sender-data secret,
// membership key and the whole secret tree) once the epoch is no longer
// needed, as the deletion schedule requires (RFC 9420 §9.2). p cannot
// protect or unprotect messages afterwards.
func (p *Protector) Erase() {
	clear(p.membershipKey)
	if p.senderData != nil {
		clear(p.senderData.secret)
	}
	p.tree.Erase()
}
