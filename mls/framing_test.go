package mls

import (
	"bytes"
	"errors"
	"testing"
)

// protectFixture is one epoch of a four-member group, seen by a sender and
// a receiver with their own secret trees.
type protectFixture struct {
	cs               CipherSuite
	gc               *GroupContext
	secrets          *EpochSecrets
	signer           *Signer
	pub              []byte
	sender, receiver *Protector
}

func newProtectFixture(tb testing.TB, cs CipherSuite, cfg *Config) *protectFixture {
	tb.Helper()
	gc := &GroupContext{
		Version:                 ProtocolVersionMLS10,
		CipherSuite:             cs,
		GroupID:                 []byte("conclave test group"),
		Epoch:                   7,
		TreeHash:                testSecret(cs, 4),
		ConfirmedTranscriptHash: testSecret(cs, 5),
	}
	secrets, err := DeriveEpochSecrets(gc, testSecret(cs, 2), testSecret(cs, 3), nil)
	if err != nil {
		tb.Fatal(err)
	}
	f := &protectFixture{cs: cs, gc: gc, secrets: secrets}
	if f.sender, err = secrets.NewProtector(cfg, gc, 4); err != nil {
		tb.Fatal(err)
	}
	if f.receiver, err = secrets.NewProtector(cfg, gc, 4); err != nil {
		tb.Fatal(err)
	}
	priv, pub, err := cs.GenerateSignatureKeyPair(seededReader(9))
	if err != nil {
		tb.Fatal(err)
	}
	if f.signer, err = cs.NewSigner(priv); err != nil {
		tb.Fatal(err)
	}
	f.pub = pub
	return f
}

func (f *protectFixture) keys() SignatureKeyFunc { return fixedKey(f.pub) }

func (f *protectFixture) content(ct ContentType) *FramedContent {
	c := &FramedContent{
		GroupID:           f.gc.GroupID,
		Epoch:             f.gc.Epoch,
		Sender:            MemberSender(1),
		AuthenticatedData: []byte("aad"),
		ContentType:       ct,
	}
	switch ct {
	case ContentTypeApplication:
		c.ApplicationData = bytes.Repeat([]byte("m"), 256)
	case ContentTypeProposal:
		c.Proposal = &Proposal{Type: ProposalTypeRemove, Removed: 2}
	case ContentTypeCommit:
		c.Commit = &Commit{Proposals: []ProposalOrRef{}}
	}
	return c
}

func (f *protectFixture) signed(tb testing.TB, wf WireFormat, ct ContentType) *AuthenticatedContent {
	tb.Helper()
	ac, err := f.sender.Sign(f.signer, wf, f.content(ct))
	if err != nil {
		tb.Fatal(err)
	}
	if ct == ContentTypeCommit {
		ac.Auth.ConfirmationTag = ConfirmationTag(f.cs, f.secrets.ConfirmationKey, f.gc.ConfirmedTranscriptHash)
	}
	return ac
}

func (f *protectFixture) private(tb testing.TB, ct ContentType) *PrivateMessage {
	tb.Helper()
	pm, err := f.sender.ProtectPrivate(f.signed(tb, WireFormatPrivateMessage, ct))
	if err != nil {
		tb.Fatal(err)
	}
	return pm
}

func clonePrivate(m *PrivateMessage) *PrivateMessage {
	c := *m
	c.GroupID = bytes.Clone(m.GroupID)
	c.AuthenticatedData = bytes.Clone(m.AuthenticatedData)
	c.EncryptedSenderData = bytes.Clone(m.EncryptedSenderData)
	c.Ciphertext = bytes.Clone(m.Ciphertext)
	return &c
}

// sealRaw builds a PrivateMessage from a chosen SenderData and plaintext,
// encrypted like ProtectPrivate does, to test what a well-formed encryption
// of bad content does at the receiver.
func (f *protectFixture) sealRaw(tb testing.TB, ct ContentType, sd SenderData, plaintext []byte) *PrivateMessage {
	tb.Helper()
	keyTree, err := f.secrets.NewSecretTree(nil, 4)
	if err != nil {
		tb.Fatal(err)
	}
	leaf := sd.LeafIndex
	if uint32(leaf) >= keyTree.LeafCount() {
		leaf = 0 // any key: the receiver must reject the leaf before using one
	}
	key, err := keyTree.ReceiveKey(leaf, ratchetFor(ct), sd.Generation)
	if err != nil {
		tb.Fatal(err)
	}
	nonce := bytes.Clone(key.Nonce)
	for i := range reuseGuardSize {
		nonce[i] ^= sd.ReuseGuard[i]
	}
	m := &PrivateMessage{GroupID: f.gc.GroupID, Epoch: f.gc.Epoch, ContentType: ct, AuthenticatedData: []byte("aad")}
	aad, _ := privateContentAAD(m.GroupID, m.Epoch, ct, m.AuthenticatedData)
	if m.Ciphertext, err = f.cs.Seal(key.Key, nonce, aad, plaintext); err != nil {
		tb.Fatal(err)
	}
	sdKey, sdNonce, err := senderDataKeyNonce(newLabelExpander(f.cs, f.secrets.SenderDataSecret), m.Ciphertext)
	if err != nil {
		tb.Fatal(err)
	}
	sdAAD, _ := senderDataAAD(m.GroupID, m.Epoch, ct)
	sdBytes, _ := sd.Marshal()
	if m.EncryptedSenderData, err = f.cs.Seal(sdKey, sdNonce, sdAAD, sdBytes); err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestPrivateMessageRoundTrip(t *testing.T) {
	for _, cs := range []CipherSuite{
		MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
		MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
		MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
		MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448,
		MLS_256_DHKEMP521_AES256GCM_SHA512_P521,
		MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448,
		MLS_256_DHKEMP384_AES256GCM_SHA384_P384,
	} {
		t.Run(cs.String(), func(t *testing.T) {
			f := newProtectFixture(t, cs, nil)
			for _, ct := range []ContentType{ContentTypeApplication, ContentTypeProposal, ContentTypeCommit, ContentTypeApplication} {
				want := f.content(ct)
				b, err := NewPrivateMessage(f.private(t, ct)).Marshal()
				if err != nil {
					t.Fatal(err)
				}
				var m MLSMessage
				if err := m.Unmarshal(b); err != nil {
					t.Fatal(err)
				}
				ac, err := f.receiver.UnprotectPrivate(m.PrivateMessage, f.keys())
				if err != nil {
					t.Fatalf("%v: %v", ct, err)
				}
				got, _ := ac.Content.Marshal()
				wantBytes, _ := want.Marshal()
				if !bytes.Equal(got, wantBytes) {
					t.Fatalf("%v: content changed in transit", ct)
				}
			}
		})
	}
}

func TestPrivateMessagePadding(t *testing.T) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	for _, block := range []int{1, 32, 100} {
		f := newProtectFixture(t, cs, &Config{PaddingBlock: block})
		pm := f.private(t, ContentTypeApplication)
		plainLen := len(pm.Ciphertext) - cs.AEADOverhead()
		if block > 1 && plainLen%block != 0 {
			t.Errorf("block %d: plaintext of %d bytes", block, plainLen)
		}
		if _, err := f.receiver.UnprotectPrivate(pm, f.keys()); err != nil {
			t.Errorf("block %d: %v", block, err)
		}
	}
}

// TestPrivateMessageTampered checks that every kind of damage to a
// PrivateMessage yields its typed error and leaves the receiver able to
// decrypt the genuine message afterwards.
func TestPrivateMessageTampered(t *testing.T) {
	f := newProtectFixture(t, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, nil)
	otherPub := func(*AuthenticatedContent) ([]byte, error) {
		_, pub, err := f.cs.GenerateSignatureKeyPair(seededReader(77))
		return pub, err
	}
	blankLeaf := func(*AuthenticatedContent) ([]byte, error) { return nil, ErrInvalidSender }
	for _, c := range []struct {
		name   string
		tamper func(m *PrivateMessage)
		keys   SignatureKeyFunc
		want   error
	}{
		{"wrong group", func(m *PrivateMessage) { m.GroupID = []byte("another group") }, nil, ErrWrongGroup},
		{"wrong epoch", func(m *PrivateMessage) { m.Epoch++ }, nil, ErrWrongEpoch},
		{"old epoch", func(m *PrivateMessage) { m.Epoch-- }, nil, ErrWrongEpoch},
		{"content type", func(m *PrivateMessage) { m.ContentType = ContentTypeProposal }, nil, ErrDecryption},
		{"invalid content type", func(m *PrivateMessage) { m.ContentType = 9 }, nil, ErrWrongContentType},
		{"authenticated data", func(m *PrivateMessage) { m.AuthenticatedData = []byte("AAD") }, nil, ErrDecryption},
		{"ciphertext sample bit", func(m *PrivateMessage) { m.Ciphertext[3] ^= 0x10 }, nil, ErrDecryption},
		{"ciphertext body bit", func(m *PrivateMessage) { m.Ciphertext[100] ^= 0x01 }, nil, ErrDecryption},
		{"ciphertext tag bit", func(m *PrivateMessage) { m.Ciphertext[len(m.Ciphertext)-1] ^= 0x80 }, nil, ErrDecryption},
		{"truncated ciphertext", func(m *PrivateMessage) { m.Ciphertext = m.Ciphertext[:len(m.Ciphertext)-1] }, nil, ErrDecryption},
		{"empty ciphertext", func(m *PrivateMessage) { m.Ciphertext = nil }, nil, ErrDecryption},
		{"sender data bit", func(m *PrivateMessage) { m.EncryptedSenderData[0] ^= 0x01 }, nil, ErrDecryption},
		{"truncated sender data", func(m *PrivateMessage) { m.EncryptedSenderData = m.EncryptedSenderData[:5] }, nil, ErrDecryption},
		{"wrong signature key", func(*PrivateMessage) {}, otherPub, ErrInvalidSignature},
		{"blank sender leaf", func(*PrivateMessage) {}, blankLeaf, ErrInvalidSender},
	} {
		t.Run(c.name, func(t *testing.T) {
			pm := f.private(t, ContentTypeApplication)
			bad := clonePrivate(pm)
			c.tamper(bad)
			keys := c.keys
			if keys == nil {
				keys = f.keys()
			}
			if _, err := f.receiver.UnprotectPrivate(bad, keys); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if _, err := f.receiver.UnprotectPrivate(pm, f.keys()); err != nil {
				t.Fatalf("genuine message after the tampered one: %v", err)
			}
		})
	}

	t.Run("epoch error", func(t *testing.T) {
		bad := clonePrivate(f.private(t, ContentTypeApplication))
		bad.Epoch = 3
		_, err := f.receiver.UnprotectPrivate(bad, f.keys())
		var ee *EpochError
		if !errors.As(err, &ee) || ee.Got != 3 || ee.Want != f.gc.Epoch {
			t.Fatalf("got %v, want *EpochError{3, %d}", err, f.gc.Epoch)
		}
	})
}

func TestPrivateMessageReplay(t *testing.T) {
	f := newProtectFixture(t, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, nil)
	first := f.private(t, ContentTypeApplication)
	second := f.private(t, ContentTypeApplication)
	// Out of order: the second generation first, then the first.
	for _, m := range []*PrivateMessage{second, first} {
		if _, err := f.receiver.UnprotectPrivate(m, f.keys()); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range []*PrivateMessage{first, second} {
		_, err := f.receiver.UnprotectPrivate(m, f.keys())
		wantGenerationError(t, err, ErrGenerationUsed, uint32(i))
	}
	// The handshake ratchet is separate from the application one.
	if _, err := f.receiver.UnprotectPrivate(f.private(t, ContentTypeProposal), f.keys()); err != nil {
		t.Fatal(err)
	}
}

func TestPrivateMessageGenerationTooFarAhead(t *testing.T) {
	f := newProtectFixture(t, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, &Config{MaxForwardDistance: 50})
	for range 51 {
		if _, err := f.sender.SecretTree().SendKey(1, RatchetApplication); err != nil {
			t.Fatal(err)
		}
	}
	far := f.private(t, ContentTypeApplication) // generation 51
	_, err := f.receiver.UnprotectPrivate(far, f.keys())
	wantGenerationError(t, err, ErrGenerationTooFarAhead, 51)
	r := f.receiver.SecretTree().ratchets[1][RatchetApplication]
	if r.next != 0 || len(r.retained) != 0 {
		t.Fatalf("rejected message moved the ratchet: next %d, %d retained", r.next, len(r.retained))
	}
	// 50 ahead is within the limit.
	sd := SenderData{LeafIndex: 1, Generation: 50}
	near := f.sealRaw(t, ContentTypeApplication, sd, f.plaintext(t, ContentTypeApplication, nil))
	if _, err := f.receiver.UnprotectPrivate(near, f.keys()); err != nil {
		t.Fatal(err)
	}
}

// plaintext returns a signed PrivateMessageContent for leaf 1, followed by
// the given padding.
func (f *protectFixture) plaintext(tb testing.TB, ct ContentType, padding []byte) []byte {
	tb.Helper()
	ac := f.signed(tb, WireFormatPrivateMessage, ct)
	var e Encoder
	ac.Content.marshalBody(&e)
	ac.Auth.marshal(&e, ct)
	e.Raw(padding)
	b, err := e.Result()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestPrivateMessageMalformedContent(t *testing.T) {
	f := newProtectFixture(t, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, nil)
	app := ContentTypeApplication
	for _, c := range []struct {
		name      string
		sd        SenderData
		plaintext func() []byte
		want      error
	}{
		{"non-zero padding", SenderData{LeafIndex: 1}, func() []byte { return f.plaintext(t, app, []byte{0, 0, 1, 0}) }, ErrMalformedPadding},
		{"truncated content", SenderData{LeafIndex: 1}, func() []byte { p := f.plaintext(t, app, nil); return p[:len(p)-10] }, ErrTruncated},
		{"empty content", SenderData{LeafIndex: 1}, func() []byte { return nil }, ErrTruncated},
		{"leaf outside tree", SenderData{LeafIndex: 4}, func() []byte { return f.plaintext(t, app, nil) }, ErrInvalidSender},
		{"sender is another leaf", SenderData{LeafIndex: 2}, func() []byte { return f.plaintext(t, app, nil) }, ErrInvalidSignature},
		{"zero padding", SenderData{LeafIndex: 1}, func() []byte { return f.plaintext(t, app, make([]byte, 40)) }, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := f.sealRaw(t, app, c.sd, c.plaintext())
			_, err := f.receiver.UnprotectPrivate(m, f.keys())
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			// Rejected messages leave generation 0 unused (the genuine
			// zero-padded message, last, still decrypts with it).
			r := f.receiver.SecretTree().ratchets[1]
			if r != nil && r[RatchetApplication].next != 0 {
				t.Fatalf("rejected message moved the ratchet to %d", r[RatchetApplication].next)
			}
		})
	}
}

// TestPrivateMessageWireBitFlips flips one bit in every byte of an encoded
// MLSMessage: each variant must be rejected (by the decoder or by
// unprotection) without disturbing the receiver.
func TestPrivateMessageWireBitFlips(t *testing.T) {
	f := newProtectFixture(t, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, nil)
	pm := f.private(t, ContentTypeApplication)
	wire, err := NewPrivateMessage(pm).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for i := range wire {
		bad := bytes.Clone(wire)
		bad[i] ^= 1 << (i % 8)
		var m MLSMessage
		if err := m.Unmarshal(bad); err != nil {
			continue
		}
		if m.PrivateMessage == nil {
			continue // a different wire format: not a PrivateMessage any more
		}
		if _, err := f.receiver.UnprotectPrivate(m.PrivateMessage, f.keys()); err == nil {
			t.Fatalf("bit flip in byte %d accepted", i)
		}
	}
	for n := range len(wire) {
		var m MLSMessage
		if err := m.Unmarshal(wire[:n]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("truncated to %d bytes: got %v, want ErrTruncated", n, err)
		}
	}
	if _, err := f.receiver.UnprotectPrivate(pm, f.keys()); err != nil {
		t.Fatalf("genuine message after tampered ones: %v", err)
	}
}

func TestSignContentRules(t *testing.T) {
	f := newProtectFixture(t, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, nil)
	for _, c := range []struct {
		name   string
		wf     WireFormat
		mutate func(c *FramedContent)
		want   error
	}{
		{"application as public", WireFormatPublicMessage, func(*FramedContent) {}, ErrWrongContentType},
		{"external sender in private", WireFormatPrivateMessage, func(c *FramedContent) {
			c.Sender = Sender{Type: SenderTypeExternal}
			c.ContentType, c.ApplicationData, c.Proposal = ContentTypeProposal, nil, &Proposal{Type: ProposalTypeRemove}
		}, ErrInvalidSender},
		{"external sender commit", WireFormatPublicMessage, func(c *FramedContent) {
			c.Sender = Sender{Type: SenderTypeExternal}
			c.ContentType, c.ApplicationData, c.Commit = ContentTypeCommit, nil, &Commit{}
		}, ErrWrongContentType},
		{"new member commit with proposal", WireFormatPublicMessage, func(c *FramedContent) {
			c.Sender = Sender{Type: SenderTypeNewMemberCommit}
			c.ContentType, c.ApplicationData, c.Proposal = ContentTypeProposal, nil, &Proposal{Type: ProposalTypeRemove}
		}, ErrWrongContentType},
		{"unknown sender type", WireFormatPrivateMessage, func(c *FramedContent) { c.Sender.Type = 9 }, ErrInvalidSender},
		{"welcome wire format", WireFormatWelcome, func(*FramedContent) {}, ErrWrongWireFormat},
		{"body mismatch", WireFormatPrivateMessage, func(c *FramedContent) { c.Commit = &Commit{} }, ErrMissingContent},
		{"wrong epoch", WireFormatPrivateMessage, func(c *FramedContent) { c.Epoch = 1 }, ErrWrongEpoch},
		{"wrong group", WireFormatPrivateMessage, func(c *FramedContent) { c.GroupID = []byte("x") }, ErrWrongGroup},
	} {
		content := f.content(ContentTypeApplication)
		c.mutate(content)
		if _, err := f.sender.Sign(f.signer, c.wf, content); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	// A commit must carry a confirmation tag to be protected.
	ac := f.signed(t, WireFormatPrivateMessage, ContentTypeCommit)
	ac.Auth.ConfirmationTag = nil
	if _, err := f.sender.ProtectPrivate(ac); !errors.Is(err, ErrBadConfirmationTag) {
		t.Errorf("commit without confirmation tag: got %v", err)
	}
	// Content signed for one wire format cannot be sent in the other.
	if _, err := f.sender.ProtectPublic(f.signed(t, WireFormatPrivateMessage, ContentTypeProposal)); !errors.Is(err, ErrWrongWireFormat) {
		t.Errorf("private content as public: got %v", err)
	}
}

func TestPublicMessage(t *testing.T) {
	f := newProtectFixture(t, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, nil)
	public := func(t *testing.T, ct ContentType) *PublicMessage {
		pm, err := f.sender.ProtectPublic(f.signed(t, WireFormatPublicMessage, ct))
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewPublicMessage(pm).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var m MLSMessage
		if err := m.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		return m.PublicMessage
	}
	for _, ct := range []ContentType{ContentTypeProposal, ContentTypeCommit} {
		ac, err := f.receiver.UnprotectPublic(public(t, ct), f.keys())
		if err != nil {
			t.Fatalf("%v: %v", ct, err)
		}
		if ct == ContentTypeCommit {
			if err := VerifyConfirmationTag(f.cs, f.secrets.ConfirmationKey, f.gc.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag); err != nil {
				t.Fatal(err)
			}
		}
	}

	otherPub := func(*AuthenticatedContent) ([]byte, error) {
		_, pub, err := f.cs.GenerateSignatureKeyPair(seededReader(77))
		return pub, err
	}
	for _, c := range []struct {
		name   string
		tamper func(m *PublicMessage)
		keys   SignatureKeyFunc
		want   error
	}{
		{"membership tag bit", func(m *PublicMessage) { m.MembershipTag[0] ^= 1 }, nil, ErrBadMembershipTag},
		{"no membership tag", func(m *PublicMessage) { m.MembershipTag = nil }, nil, ErrBadMembershipTag},
		{"authenticated data", func(m *PublicMessage) { m.Content.AuthenticatedData = []byte("x") }, nil, ErrBadMembershipTag},
		{"signature bit", func(m *PublicMessage) { m.Auth.Signature[0] ^= 1 }, nil, ErrBadMembershipTag},
		{"sender", func(m *PublicMessage) { m.Content.Sender.LeafIndex = 0 }, nil, ErrBadMembershipTag},
		{"leaf outside tree", func(m *PublicMessage) { m.Content.Sender.LeafIndex = 4 }, nil, ErrInvalidSender},
		{"wrong signature key", func(*PublicMessage) {}, otherPub, ErrInvalidSignature},
		{"wrong group", func(m *PublicMessage) { m.Content.GroupID = []byte("x") }, nil, ErrWrongGroup},
		{"wrong epoch", func(m *PublicMessage) { m.Content.Epoch = 8 }, nil, ErrWrongEpoch},
		{"application data", func(m *PublicMessage) {
			m.Content.ContentType, m.Content.Proposal, m.Content.ApplicationData = ContentTypeApplication, nil, []byte("hi")
		}, nil, ErrWrongContentType},
		{"confirmation tag on proposal", func(m *PublicMessage) { m.Auth.ConfirmationTag = []byte("tag") }, nil, ErrBadConfirmationTag},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := public(t, ContentTypeProposal)
			c.tamper(m)
			keys := c.keys
			if keys == nil {
				keys = f.keys()
			}
			if _, err := f.receiver.UnprotectPublic(m, keys); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}

	t.Run("external sender", func(t *testing.T) {
		content := f.content(ContentTypeProposal)
		content.Sender = Sender{Type: SenderTypeExternal, SenderIndex: 3}
		ac, err := f.sender.Sign(f.signer, WireFormatPublicMessage, content)
		if err != nil {
			t.Fatal(err)
		}
		pm, err := f.sender.ProtectPublic(ac)
		if err != nil {
			t.Fatal(err)
		}
		if pm.MembershipTag != nil {
			t.Fatal("external sender got a membership tag")
		}
		externalKey := func(ac *AuthenticatedContent) ([]byte, error) {
			if ac.Content.Sender.Type != SenderTypeExternal || ac.Content.Sender.SenderIndex != 3 {
				return nil, ErrInvalidSender
			}
			return f.pub, nil
		}
		if _, err := f.receiver.UnprotectPublic(pm, externalKey); err != nil {
			t.Fatal(err)
		}
		// External senders do not sign the GroupContext, so a member
		// sender's signature check differs: swapping the sender type fails.
		pm.Content.Sender = Sender{Type: SenderTypeNewMemberProposal}
		if _, err := f.receiver.UnprotectPublic(pm, func(*AuthenticatedContent) ([]byte, error) { return f.pub, nil }); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("re-labelled sender: got %v, want ErrInvalidSignature", err)
		}
	})
}
