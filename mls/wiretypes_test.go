package mls

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// wireCodec is any wire type with the exported codec.
type wireCodec interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// roundTrip decodes b into v and checks that encoding gives b back.
func roundTrip(t *testing.T, name string, v wireCodec, b []byte) {
	t.Helper()
	if err := v.Unmarshal(b); err != nil {
		t.Errorf("%s: decode: %v", name, err)
		return
	}
	again, err := v.Marshal()
	if err != nil {
		t.Errorf("%s: encode: %v", name, err)
		return
	}
	if !bytes.Equal(again, b) {
		t.Errorf("%s: re-encoding differs\n got %x\nwant %x", name, again, b)
	}
}

// stripMLSMessage removes the MLSMessage header (version, wire_format) after
// checking it, leaving the body of the given wire format.
func stripMLSMessage(t *testing.T, b []byte, wireFormat uint16) []byte {
	t.Helper()
	if len(b) < 4 || binary.BigEndian.Uint16(b) != uint16(ProtocolVersionMLS10) || binary.BigEndian.Uint16(b[2:]) != wireFormat {
		t.Fatalf("not an MLSMessage of wire format %d: %x", wireFormat, b[:min(len(b), 4)])
	}
	return b[4:]
}

// removeBody wraps the Remove proposal body (uint32 removed).
type removeBody struct{ Removed LeafIndex }

func (x *removeBody) marshal(e *Encoder)       { e.Uint32(uint32(x.Removed)) }
func (x *removeBody) unmarshal(d *Decoder)     { x.Removed = LeafIndex(d.Uint32()) }
func (x *removeBody) Marshal() ([]byte, error) { return encode(x) }
func (x *removeBody) Unmarshal(b []byte) error { return decodeAll(b, x) }

// reInitBody and externalInitBody are the ReInit and ExternalInit proposal
// bodies, checked by prefixing the proposal type and going through Proposal.
type proposalBody struct {
	typ ProposalType
	p   Proposal
}

func (x *proposalBody) Unmarshal(b []byte) error {
	return x.p.Unmarshal(append(binary.BigEndian.AppendUint16(nil, uint16(x.typ)), b...))
}

func (x *proposalBody) Marshal() ([]byte, error) {
	b, err := x.p.Marshal()
	if err != nil {
		return nil, err
	}
	return b[2:], nil
}

// TestWireTypesAgainstMessagesVectors decodes and re-encodes every object of
// messages.json that is one of this file's wire types. (The public and
// private message fields need the framing types and are checked there.)
func TestWireTypesAgainstMessagesVectors(t *testing.T) {
	var cases []struct {
		Welcome      hexBytes `json:"mls_welcome"`
		GroupInfo    hexBytes `json:"mls_group_info"`
		KeyPackage   hexBytes `json:"mls_key_package"`
		RatchetTree  hexBytes `json:"ratchet_tree"`
		GroupSecrets hexBytes `json:"group_secrets"`
		Add          hexBytes `json:"add_proposal"`
		Update       hexBytes `json:"update_proposal"`
		Remove       hexBytes `json:"remove_proposal"`
		PreSharedKey hexBytes `json:"pre_shared_key_proposal"`
		ReInit       hexBytes `json:"re_init_proposal"`
		ExternalInit hexBytes `json:"external_init_proposal"`
		GroupCtxExts hexBytes `json:"group_context_extensions_proposal"`
		Commit       hexBytes `json:"commit"`
	}
	loadVectors(t, "messages.json", &cases)
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			roundTrip(t, "welcome", new(Welcome), stripMLSMessage(t, c.Welcome, 3))
			roundTrip(t, "group_info", new(GroupInfo), stripMLSMessage(t, c.GroupInfo, 4))
			roundTrip(t, "key_package", new(KeyPackage), stripMLSMessage(t, c.KeyPackage, 5))
			roundTrip(t, "ratchet_tree", new(TreeNodes), c.RatchetTree)
			roundTrip(t, "group_secrets", new(GroupSecrets), c.GroupSecrets)
			roundTrip(t, "add", new(KeyPackage), c.Add)
			roundTrip(t, "update", new(LeafNode), c.Update)
			roundTrip(t, "remove", new(removeBody), c.Remove)
			roundTrip(t, "psk", new(PreSharedKeyID), c.PreSharedKey)
			roundTrip(t, "reinit", &proposalBody{typ: ProposalTypeReInit}, c.ReInit)
			roundTrip(t, "external_init", &proposalBody{typ: ProposalTypeExternalInit}, c.ExternalInit)
			roundTrip(t, "group_context_extensions", new(Extensions), c.GroupCtxExts)
			roundTrip(t, "commit", new(Commit), c.Commit)
		})
	}
}

// TestKeyPackageRefAgainstWelcomeVectors checks, for every suite of
// welcome.json, the key package signature, KeyPackageRef (the Welcome must
// address the key package by it) and the HPKE decryption of GroupSecrets.
// Decrypting the GroupInfo needs the key schedule and is checked there.
func TestKeyPackageRefAgainstWelcomeVectors(t *testing.T) {
	var cases []struct {
		CipherSuite CipherSuite `json:"cipher_suite"`
		InitPriv    hexBytes    `json:"init_priv"`
		KeyPackage  hexBytes    `json:"key_package"`
		Welcome     hexBytes    `json:"welcome"`
	}
	loadVectors(t, "welcome.json", &cases)
	for _, c := range cases {
		t.Run(c.CipherSuite.String(), func(t *testing.T) {
			var kp KeyPackage
			if err := kp.Unmarshal(stripMLSMessage(t, c.KeyPackage, 5)); err != nil {
				t.Fatal(err)
			}
			if kp.CipherSuite != c.CipherSuite {
				t.Fatalf("key package suite %d", kp.CipherSuite)
			}
			if err := kp.Verify(); err != nil {
				t.Errorf("key package signature: %v", err)
			}
			if err := kp.LeafNode.Verify(kp.CipherSuite, nil, 0); err != nil {
				t.Errorf("leaf node signature: %v", err)
			}
			ref, err := kp.Ref()
			if err != nil {
				t.Fatal(err)
			}
			var w Welcome
			if err := w.Unmarshal(stripMLSMessage(t, c.Welcome, 3)); err != nil {
				t.Fatal(err)
			}
			egs, ok := w.Find(ref)
			if !ok {
				t.Fatalf("welcome has no secrets for key package ref %x", ref)
			}
			pt, err := c.CipherSuite.DecryptWithLabel(c.InitPriv, "Welcome", w.EncryptedGroupInfo,
				egs.EncryptedGroupSecrets.KEMOutput, egs.EncryptedGroupSecrets.Ciphertext)
			if err != nil {
				t.Fatalf("decrypting group secrets: %v", err)
			}
			var gs GroupSecrets
			if err := gs.Unmarshal(pt); err != nil {
				t.Fatalf("group secrets: %v", err)
			}
			if len(gs.JoinerSecret) != c.CipherSuite.HashSize() {
				t.Errorf("joiner secret of %d bytes", len(gs.JoinerSecret))
			}
		})
	}
}

// TestWireTypeDecodeErrors feeds malformed encodings to the wire types and
// checks the typed error.
func TestWireTypeDecodeErrors(t *testing.T) {
	r := newTestRand("errors")
	kp, _ := testKeyPackage(t, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, r, "bob")
	kpBytes, err := kp.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	leafBytes, err := kp.LeafNode.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Offset of the leaf_node_source byte inside the leaf node encoding.
	var head Encoder
	head.Opaque(kp.LeafNode.EncryptionKey)
	head.Opaque(kp.LeafNode.SignatureKey)
	kp.LeafNode.Credential.marshal(&head)
	kp.LeafNode.Capabilities.marshal(&head)
	sourceAt := len(head.Bytes())
	badSource := append([]byte(nil), leafBytes...)
	badSource[sourceAt] = 9

	tests := []struct {
		name string
		v    wireCodec
		in   []byte
		want error
	}{
		{"key package truncated", new(KeyPackage), kpBytes[:len(kpBytes)-1], ErrTruncated},
		{"key package trailing", new(KeyPackage), append(append([]byte(nil), kpBytes...), 0), ErrTrailingData},
		{"key package empty", new(KeyPackage), nil, ErrTruncated},
		{"leaf source 9", new(LeafNode), badSource, ErrInvalidValue},
		{"credential type unknown", new(Credential), []byte{0x0a, 0x0a, 0}, ErrUnknownCredentialType},
		{"node type 3", new(Node), []byte{3}, ErrInvalidValue},
		{"tree optional marker 2", new(TreeNodes), []byte{1, 2}, ErrInvalidValue},
		{"proposal type unknown", new(Proposal), []byte{0x0a, 0x0a}, ErrUnknownProposalType},
		{"proposal type reserved", new(Proposal), []byte{0, 0}, ErrUnknownProposalType},
		{"psk type 3", new(PreSharedKeyID), []byte{3, 0}, ErrInvalidValue},
		{"resumption usage 0", new(PreSharedKeyID), []byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrInvalidValue},
		{"proposal-or-ref type 3", new(Commit), []byte{1, 3, 0}, ErrInvalidValue},
		{"commit path marker 2", new(Commit), []byte{0, 2}, ErrInvalidValue},
		{"commit truncated path", new(Commit), []byte{0, 1}, ErrTruncated},
		{"group secrets non-minimal", new(GroupSecrets), []byte{0x40, 0x01, 0, 0, 0}, ErrNonMinimalVarint},
		{"group context trailing", new(GroupContext), append(make([]byte, 4+1+8+1+1+1), 9), ErrTrailingData},
		{"welcome length too large", new(Welcome), []byte{0, 1, 0xbf, 0xff, 0xff, 0xff}, ErrLengthTooLarge},
		{"extension data truncated", new(Extensions), []byte{4, 0, 1, 5, 0}, ErrTruncated},
		{"parent node odd unmerged", new(ParentNode), []byte{0, 0, 3, 0, 0, 1}, ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.v.Unmarshal(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Errorf("%T is not a *DecodeError", err)
			}
		})
	}
}

func TestWireTypeEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		v    wireCodec
		want error
	}{
		{"add without key package", &Proposal{Type: ProposalTypeAdd}, ErrEncoding},
		{"unknown proposal", &Proposal{Type: 0x0a0a}, ErrUnknownProposalType},
		{"unknown credential", &Credential{Type: 0x0a0a}, ErrUnknownCredentialType},
		{"empty node", &Node{}, ErrInvalidValue},
		{"empty proposal-or-ref", &Commit{Proposals: []ProposalOrRef{{}}}, ErrEncoding},
		{"leaf source 0", &LeafNode{Credential: NewBasicCredential(nil)}, ErrInvalidValue},
	}
	for _, tc := range tests {
		if _, err := tc.v.Marshal(); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestExtensionsHelpers(t *testing.T) {
	exts := Extensions{{Type: ExtensionTypeApplicationID, Data: []byte("a")}, {Type: 0x3a3a}}
	if e, ok := exts.Find(ExtensionTypeApplicationID); !ok || string(e.Data) != "a" {
		t.Error("Find")
	}
	if exts.Has(ExtensionTypeRatchetTree) {
		t.Error("Has")
	}
	if err := exts.CheckDuplicates(); err != nil {
		t.Error(err)
	}
	exts = append(exts, Extension{Type: 0x3a3a})
	if err := exts.CheckDuplicates(); !errors.Is(err, ErrDuplicateExtension) {
		t.Errorf("CheckDuplicates: %v", err)
	}
	for _, v := range []uint16{0x0a0a, 0x1a1a, 0xeaea} {
		if !IsGREASE(v) {
			t.Errorf("%#04x is GREASE", v)
		}
	}
	for _, v := range []uint16{0, 1, 0x0a1a, 0xfafa, 0x0a0b} {
		if IsGREASE(v) {
			t.Errorf("%#04x is not GREASE", v)
		}
	}
	rc := RequiredCapabilities{ExtensionTypes: []ExtensionType{ExtensionTypeExternalSenders}, ProposalTypes: []ProposalType{}, CredentialTypes: []CredentialType{CredentialTypeBasic}}
	b, err := rc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, "required_capabilities", new(RequiredCapabilities), b)
	es := ExternalSenders{{SignatureKey: []byte{1}, Credential: NewBasicCredential([]byte("ds"))}}
	b, err = es.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, "external_senders", new(ExternalSenders), b)
	roundTrip(t, "external_pub", new(ExternalPub), []byte{2, 7, 7})
}
