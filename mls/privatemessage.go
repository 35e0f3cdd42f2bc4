package mls

import (
	"fmt"
	"io"
)

// PrivateMessage carries a signed FramedContent encrypted under a key from
// the sender's ratchet in the secret tree (RFC 9420 §6.3). The sender's leaf
// and the ratchet generation travel in encrypted_sender_data.
type PrivateMessage struct {
	GroupID             []byte
	Epoch               uint64
	ContentType         ContentType
	AuthenticatedData   []byte
	EncryptedSenderData []byte
	Ciphertext          []byte
}

func (m *PrivateMessage) marshal(e *Encoder) {
	e.Opaque(m.GroupID)
	e.Uint64(m.Epoch)
	e.Uint8(uint8(m.ContentType))
	e.Opaque(m.AuthenticatedData)
	e.Opaque(m.EncryptedSenderData)
	e.Opaque(m.Ciphertext)
}

func (m *PrivateMessage) unmarshal(d *Decoder) {
	m.GroupID = d.Opaque()
	m.Epoch = d.Uint64()
	m.ContentType.unmarshal(d)
	m.AuthenticatedData = d.Opaque()
	m.EncryptedSenderData = d.Opaque()
	m.Ciphertext = d.Opaque()
}

// Marshal returns the wire encoding of m.
func (m *PrivateMessage) Marshal() ([]byte, error) { return encode(m) }

// Unmarshal decodes m from b; trailing bytes are an error.
func (m *PrivateMessage) Unmarshal(b []byte) error { return decodeAll(b, m) }

// reuseGuardSize is the length of SenderData.reuse_guard.
const reuseGuardSize = 4

// SenderData identifies the key that encrypted a PrivateMessage: the
// sender's leaf, the ratchet generation and the reuse guard XORed into the
// nonce (RFC 9420 §6.3.2).
type SenderData struct {
	LeafIndex  LeafIndex
	Generation uint32
	ReuseGuard [reuseGuardSize]byte
}

func (s *SenderData) marshal(e *Encoder) {
	e.Uint32(uint32(s.LeafIndex))
	e.Uint32(s.Generation)
	e.Raw(s.ReuseGuard[:])
}

func (s *SenderData) unmarshal(d *Decoder) {
	s.LeafIndex = LeafIndex(d.Uint32())
	s.Generation = d.Uint32()
	copy(s.ReuseGuard[:], d.Raw(reuseGuardSize))
}

// Marshal returns the wire encoding of s.
func (s *SenderData) Marshal() ([]byte, error) { return encode(s) }

// Unmarshal decodes s from b; trailing bytes are an error.
func (s *SenderData) Unmarshal(b []byte) error { return decodeAll(b, s) }

// senderDataAAD is SenderDataAAD (RFC 9420 §6.3.2).
func senderDataAAD(groupID []byte, epoch uint64, ct ContentType) ([]byte, error) {
	e := Encoder{buf: make([]byte, 0, len(groupID)+16)}
	e.Opaque(groupID)
	e.Uint64(epoch)
	e.Uint8(uint8(ct))
	return e.Result()
}

// privateContentAAD is PrivateContentAAD (RFC 9420 §6.3.1).
func privateContentAAD(groupID []byte, epoch uint64, ct ContentType, authenticatedData []byte) ([]byte, error) {
	e := Encoder{buf: make([]byte, 0, len(groupID)+len(authenticatedData)+24)}
	e.Opaque(groupID)
	e.Uint64(epoch)
	e.Uint8(uint8(ct))
	e.Opaque(authenticatedData)
	return e.Result()
}

// senderDataKeyNonce derives the key and nonce that protect a
// PrivateMessage's sender data from a sample of its ciphertext (RFC 9420
// §6.3.2). x expands under the epoch's sender_data_secret.
func senderDataKeyNonce(x *labelExpander, ciphertext []byte) (key, nonce []byte, err error) {
	cs := x.cs
	sample := ciphertext
	if len(sample) > cs.HashSize() {
		sample = sample[:cs.HashSize()]
	}
	if key, err = x.expand("key", sample, cs.AEADKeySize()); err != nil {
		return nil, nil, err
	}
	if nonce, err = x.expand("nonce", sample, cs.AEADNonceSize()); err != nil {
		return nil, nil, err
	}
	return key, nonce, nil
}

// ratchetFor returns the ratchet that protects content of type ct.
func ratchetFor(ct ContentType) RatchetType {
	if ct == ContentTypeApplication {
		return RatchetApplication
	}
	return RatchetHandshake
}

// ProtectPrivate encrypts signed content (from a member, signed for
// WireFormatPrivateMessage) into a PrivateMessage, using and deleting the
// next key of the sender's ratchet. The plaintext is padded with zero bytes
// as the Config says.
func (p *Protector) ProtectPrivate(ac *AuthenticatedContent) (*PrivateMessage, error) {
	c := &ac.Content
	if ac.WireFormat != WireFormatPrivateMessage {
		return nil, fmt.Errorf("%w: content signed for %v, not a PrivateMessage", ErrWrongWireFormat, ac.WireFormat)
	}
	if err := p.checkGroupEpoch(c.GroupID, c.Epoch); err != nil {
		return nil, err
	}
	if err := checkSenderContent(WireFormatPrivateMessage, &c.Sender, c.ContentType); err != nil {
		return nil, err
	}
	if err := ac.checkConfirmationTag(); err != nil {
		return nil, err
	}

	// PrivateMessageContent: body, auth, then zero padding (RFC 9420 §6.3.1).
	// The plaintext buffer is sized once for body, padding and AEAD tag.
	e := Encoder{buf: make([]byte, 0, p.plaintextCap(c))}
	c.marshalBody(&e)
	ac.Auth.marshal(&e, c.ContentType)
	plaintext, err := e.Result()
	if err != nil {
		return nil, err
	}
	if block := p.cfg.paddingBlock(); block > 1 {
		if r := len(plaintext) % block; r != 0 {
			plaintext = append(plaintext, make([]byte, block-r)...)
		}
	}
	aad, err := privateContentAAD(c.GroupID, c.Epoch, c.ContentType, c.AuthenticatedData)
	if err != nil {
		return nil, err
	}

	var sd SenderData
	sd.LeafIndex = c.Sender.LeafIndex
	if _, err := io.ReadFull(p.cfg.Random(), sd.ReuseGuard[:]); err != nil {
		return nil, fmt.Errorf("mls: reading reuse guard: %w", err)
	}
	key, err := p.tree.nextSendKey(c.Sender.LeafIndex, ratchetFor(c.ContentType))
	if err != nil {
		return nil, err
	}
	defer key.erase()
	sd.Generation = key.Generation
	for i := range reuseGuardSize {
		key.Nonce[i] ^= sd.ReuseGuard[i]
	}
	ciphertext, err := p.suite.Seal(key.Key, key.Nonce, aad, plaintext)
	clear(plaintext)
	if err != nil {
		return nil, fmt.Errorf("mls: encrypting content: %w", err)
	}

	sdKey, sdNonce, err := senderDataKeyNonce(p.senderData, ciphertext)
	if err != nil {
		return nil, err
	}
	sdAAD, err := senderDataAAD(c.GroupID, c.Epoch, c.ContentType)
	if err != nil {
		return nil, err
	}
	sdBytes, err := encode(&sd)
	if err != nil {
		return nil, err
	}
	encSD, err := p.suite.Seal(sdKey, sdNonce, sdAAD, sdBytes)
	clear(sdKey)
	if err != nil {
		return nil, fmt.Errorf("mls: encrypting sender data: %w", err)
	}
	return &PrivateMessage{
		GroupID:             c.GroupID,
		Epoch:               c.Epoch,
		ContentType:         c.ContentType,
		AuthenticatedData:   c.AuthenticatedData,
		EncryptedSenderData: encSD,
		Ciphertext:          ciphertext,
	}, nil
}

// plaintextCap estimates the plaintext size of c's PrivateMessageContent
// including padding and tag, so that encoding allocates once.
func (p *Protector) plaintextCap(c *FramedContent) int {
	n := len(c.ApplicationData) + 256 + 2*p.suite.HashSize() + p.cfg.paddingBlock()
	if c.ContentType != ContentTypeApplication {
		n += 1024
	}
	return n
}

// UnprotectPrivate decrypts a PrivateMessage of this epoch and checks the
// sender's signature with the key keys returns. The ratchet key is deleted
// only once everything has verified: a message that fails any check (wrong
// group or epoch, undecryptable sender data or content, malformed padding,
// bad signature) leaves the secret tree as it was, so a forged message
// cannot burn the keys of real ones.
func (p *Protector) UnprotectPrivate(m *PrivateMessage, keys SignatureKeyFunc) (*AuthenticatedContent, error) {
	if err := p.checkGroupEpoch(m.GroupID, m.Epoch); err != nil {
		return nil, err
	}
	if !m.ContentType.valid() {
		return nil, fmt.Errorf("%w: %v", ErrWrongContentType, m.ContentType)
	}

	sd, err := p.openSenderData(m)
	if err != nil {
		return nil, err
	}
	if sd.LeafIndex >= LeafIndex(p.tree.LeafCount()) {
		return nil, fmt.Errorf("%w: leaf %d outside a tree of %d leaves", ErrInvalidSender, sd.LeafIndex, p.tree.LeafCount())
	}
	step, err := p.tree.receiveKey(sd.LeafIndex, ratchetFor(m.ContentType), sd.Generation)
	if err != nil {
		return nil, err
	}
	nonce := append([]byte(nil), step.key.Nonce...)
	for i := range reuseGuardSize {
		nonce[i] ^= sd.ReuseGuard[i]
	}
	aad, err := privateContentAAD(m.GroupID, m.Epoch, m.ContentType, m.AuthenticatedData)
	if err != nil {
		step.discard()
		return nil, err
	}
	plaintext, err := p.suite.Open(step.key.Key, nonce, aad, m.Ciphertext)
	if err != nil {
		step.discard()
		return nil, fmt.Errorf("mls: content from leaf %d generation %d: %w", sd.LeafIndex, sd.Generation, err)
	}

	ac := &AuthenticatedContent{
		WireFormat: WireFormatPrivateMessage,
		Content: FramedContent{
			GroupID:           m.GroupID,
			Epoch:             m.Epoch,
			Sender:            MemberSender(sd.LeafIndex),
			AuthenticatedData: m.AuthenticatedData,
			ContentType:       m.ContentType,
		},
	}
	err = decodePrivateMessageContent(plaintext, ac)
	clear(plaintext)
	if err == nil {
		err = ac.checkConfirmationTag()
	}
	if err == nil {
		err = p.verify(ac, keys)
	}
	if err != nil {
		step.discard()
		return nil, err
	}
	step.commit()
	return ac, nil
}

// openSenderData decrypts and decodes a PrivateMessage's sender data.
func (p *Protector) openSenderData(m *PrivateMessage) (SenderData, error) {
	var sd SenderData
	key, nonce, err := senderDataKeyNonce(p.senderData, m.Ciphertext)
	if err != nil {
		return sd, err
	}
	aad, err := senderDataAAD(m.GroupID, m.Epoch, m.ContentType)
	if err != nil {
		return sd, err
	}
	plain, err := p.suite.Open(key, nonce, aad, m.EncryptedSenderData)
	clear(key)
	if err != nil {
		return sd, fmt.Errorf("mls: sender data: %w", err)
	}
	if err := sd.Unmarshal(plain); err != nil {
		return sd, fmt.Errorf("mls: sender data: %w", err)
	}
	return sd, nil
}

// decodePrivateMessageContent decodes PrivateMessageContent into ac, whose
// ContentType is already set, and checks that the padding is all zeros.
func decodePrivateMessageContent(plaintext []byte, ac *AuthenticatedContent) error {
	d := NewDecoder(plaintext)
	ac.Content.unmarshalBody(d)
	ac.Auth.unmarshal(d, ac.Content.ContentType)
	if err := d.Err(); err != nil {
		return fmt.Errorf("mls: private message content: %w", err)
	}
	for _, b := range plaintext[d.Offset():] {
		if b != 0 {
			return ErrMalformedPadding
		}
	}
	return nil
}
