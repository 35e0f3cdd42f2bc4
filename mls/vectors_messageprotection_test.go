package mls

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
)

type messageProtectionVector struct {
	CipherSuite             CipherSuite `json:"cipher_suite"`
	GroupID                 vecHex      `json:"group_id"`
	Epoch                   uint64      `json:"epoch"`
	TreeHash                vecHex      `json:"tree_hash"`
	ConfirmedTranscriptHash vecHex      `json:"confirmed_transcript_hash"`
	SignaturePriv           vecHex      `json:"signature_priv"`
	SignaturePub            vecHex      `json:"signature_pub"`
	EncryptionSecret        vecHex      `json:"encryption_secret"`
	SenderDataSecret        vecHex      `json:"sender_data_secret"`
	MembershipKey           vecHex      `json:"membership_key"`
	Proposal                vecHex      `json:"proposal"`
	ProposalPub             vecHex      `json:"proposal_pub"`
	ProposalPriv            vecHex      `json:"proposal_priv"`
	Commit                  vecHex      `json:"commit"`
	CommitPub               vecHex      `json:"commit_pub"`
	CommitPriv              vecHex      `json:"commit_priv"`
	Application             vecHex      `json:"application"`
	ApplicationPriv         vecHex      `json:"application_priv"`
}

func (v *messageProtectionVector) groupContext() *GroupContext {
	return &GroupContext{
		Version:                 ProtocolVersionMLS10,
		CipherSuite:             v.CipherSuite,
		GroupID:                 v.GroupID,
		Epoch:                   v.Epoch,
		TreeHash:                v.TreeHash,
		ConfirmedTranscriptHash: v.ConfirmedTranscriptHash,
	}
}

// protector returns a Protector over a fresh two-member secret tree, as
// every step of the message-protection vectors starts from.
func (v *messageProtectionVector) protector(t *testing.T) *Protector {
	t.Helper()
	tree, err := NewSecretTree(nil, v.CipherSuite, v.EncryptionSecret, 2)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProtector(nil, v.groupContext(), v.SenderDataSecret, v.MembershipKey, tree)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fixedKey is a SignatureKeyFunc that accepts only member senders and
// returns pub for them.
func fixedKey(pub []byte) SignatureKeyFunc {
	return func(ac *AuthenticatedContent) ([]byte, error) {
		if ac.Content.Sender.Type != SenderTypeMember {
			return nil, ErrInvalidSender
		}
		return pub, nil
	}
}

// contentBody returns the encoding of ac's body (the raw proposal, commit
// or application data of the vectors).
func contentBody(t *testing.T, c *FramedContent) []byte {
	t.Helper()
	switch c.ContentType {
	case ContentTypeProposal:
		b, err := c.Proposal.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	case ContentTypeCommit:
		b, err := c.Commit.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return c.ApplicationData
}

// decodeMessage decodes an MLSMessage and checks it re-encodes identically.
func decodeMessage(t *testing.T, b []byte) *MLSMessage {
	t.Helper()
	var m MLSMessage
	if err := m.Unmarshal(b); err != nil {
		t.Fatalf("MLSMessage: %v", err)
	}
	re, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	checkBytes(t, "MLSMessage round trip", re, b)
	return &m
}

func TestVectorMessageProtection(t *testing.T) {
	const file = "message-protection.json"
	var vs []messageProtectionVector
	loadVectorFile(t, file, &vs)
	passed := 0
	for i := range vs {
		v := &vs[i]
		ok := vectorCase(t, v.CipherSuite.String()+"/"+strconv.Itoa(i), func(t *testing.T) {
			signer, err := v.CipherSuite.NewSigner(padP521Scalar(v.CipherSuite, v.SignaturePriv))
			if err != nil {
				t.Fatal(err)
			}
			var proposal Proposal
			if err := proposal.Unmarshal(v.Proposal); err != nil {
				t.Fatalf("proposal: %v", err)
			}
			var commit Commit
			if err := commit.Unmarshal(v.Commit); err != nil {
				t.Fatalf("commit: %v", err)
			}
			for _, c := range []struct {
				name      string
				content   FramedContent
				raw       []byte
				pub, priv []byte
			}{
				{"proposal", FramedContent{ContentType: ContentTypeProposal, Proposal: &proposal}, v.Proposal, v.ProposalPub, v.ProposalPriv},
				{"commit", FramedContent{ContentType: ContentTypeCommit, Commit: &commit}, v.Commit, v.CommitPub, v.CommitPriv},
				{"application", FramedContent{ContentType: ContentTypeApplication, ApplicationData: v.Application}, v.Application, nil, v.ApplicationPriv},
			} {
				c.content.GroupID = v.GroupID
				c.content.Epoch = v.Epoch
				c.content.Sender = MemberSender(1)
				t.Run(c.name, func(t *testing.T) {
					checkMessageProtection(t, v, signer, &c.content, c.raw, c.pub, c.priv)
				})
			}
		})
		if ok {
			passed++
		}
	}
	reportVectors(t, file, passed, len(vs))
}

func checkMessageProtection(t *testing.T, v *messageProtectionVector, signer *Signer, content *FramedContent, raw, pub, priv []byte) {
	keys := fixedKey(v.SignaturePub)
	var confirmationTag []byte

	// The PublicMessage of the vector unprotects to the raw content.
	if pub != nil {
		m := decodeMessage(t, pub)
		if m.PublicMessage == nil {
			t.Fatalf("pub is a %v", m.WireFormat)
		}
		ac, err := v.protector(t).UnprotectPublic(m.PublicMessage, keys)
		if err != nil {
			t.Fatalf("unprotect pub: %v", err)
		}
		checkBytes(t, "pub content", contentBody(t, &ac.Content), raw)
		confirmationTag = ac.Auth.ConfirmationTag
	}

	// Protecting as a PublicMessage round-trips, except application data.
	p := v.protector(t)
	ac, err := p.Sign(signer, WireFormatPublicMessage, content)
	if content.ContentType == ContentTypeApplication {
		if !errors.Is(err, ErrWrongContentType) {
			t.Errorf("signing application data for a PublicMessage: got %v, want ErrWrongContentType", err)
		}
		ac = &AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: *content}
		if _, err := p.ProtectPublic(ac); !errors.Is(err, ErrWrongContentType) {
			t.Errorf("protecting application data as a PublicMessage: got %v, want ErrWrongContentType", err)
		}
	} else {
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		ac.Auth.ConfirmationTag = confirmationTag
		pm, err := p.ProtectPublic(ac)
		if err != nil {
			t.Fatalf("protect public: %v", err)
		}
		b, err := NewPublicMessage(pm).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.protector(t).UnprotectPublic(decodeMessage(t, b).PublicMessage, keys)
		if err != nil {
			t.Fatalf("unprotect own public message: %v", err)
		}
		checkBytes(t, "own pub content", contentBody(t, &got.Content), raw)
	}

	// The PrivateMessage of the vector decrypts to the raw content.
	m := decodeMessage(t, priv)
	if m.PrivateMessage == nil {
		t.Fatalf("priv is a %v", m.WireFormat)
	}
	got, err := v.protector(t).UnprotectPrivate(m.PrivateMessage, keys)
	if err != nil {
		t.Fatalf("unprotect priv: %v", err)
	}
	checkBytes(t, "priv content", contentBody(t, &got.Content), raw)
	if got.Content.Sender != MemberSender(1) {
		t.Errorf("priv sender %+v, want member 1", got.Content.Sender)
	}

	// Protecting as a PrivateMessage round-trips.
	ac, err = v.protector(t).Sign(signer, WireFormatPrivateMessage, content)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	if content.ContentType == ContentTypeCommit {
		ac.Auth.ConfirmationTag = got.Auth.ConfirmationTag
	}
	pm, err := v.protector(t).ProtectPrivate(ac)
	if err != nil {
		t.Fatalf("protect private: %v", err)
	}
	b, err := NewPrivateMessage(pm).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	own, err := v.protector(t).UnprotectPrivate(decodeMessage(t, b).PrivateMessage, keys)
	if err != nil {
		t.Fatalf("unprotect own private message: %v", err)
	}
	checkBytes(t, "own priv content", contentBody(t, &own.Content), raw)
	if !bytes.Equal(own.Auth.Signature, ac.Auth.Signature) {
		t.Errorf("signature changed in transit")
	}
}

// padP521Scalar left-pads a P-521 private key to 66 bytes. The vector file's
// P-521 key is a 65-byte big-endian integer (its leading zero byte dropped),
// while Signer takes the fixed-length Field-Element-to-Octet-String form.
func padP521Scalar(cs CipherSuite, priv []byte) []byte {
	const p521ScalarSize = 66
	if cs != MLS_256_DHKEMP521_AES256GCM_SHA512_P521 || len(priv) >= p521ScalarSize {
		return priv
	}
	return append(make([]byte, p521ScalarSize-len(priv)), priv...)
}
