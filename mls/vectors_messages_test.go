package mls

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"testing"
)

type messagesVector struct {
	Welcome                        vecHex `json:"mls_welcome"`
	GroupInfo                      vecHex `json:"mls_group_info"`
	KeyPackage                     vecHex `json:"mls_key_package"`
	RatchetTree                    vecHex `json:"ratchet_tree"`
	GroupSecrets                   vecHex `json:"group_secrets"`
	AddProposal                    vecHex `json:"add_proposal"`
	UpdateProposal                 vecHex `json:"update_proposal"`
	RemoveProposal                 vecHex `json:"remove_proposal"`
	PreSharedKeyProposal           vecHex `json:"pre_shared_key_proposal"`
	ReInitProposal                 vecHex `json:"re_init_proposal"`
	ExternalInitProposal           vecHex `json:"external_init_proposal"`
	GroupContextExtensionsProposal vecHex `json:"group_context_extensions_proposal"`
	Commit                         vecHex `json:"commit"`
	PublicMessageApplication       vecHex `json:"public_message_application"`
	PublicMessageProposal          vecHex `json:"public_message_proposal"`
	PublicMessageCommit            vecHex `json:"public_message_commit"`
	PrivateMessage                 vecHex `json:"private_message"`
}

// roundTripWire decodes b into v and checks that it re-encodes to b.
func roundTripWire(t *testing.T, name string, v interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}, b []byte) {
	t.Helper()
	if err := v.Unmarshal(b); err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	out, err := v.Marshal()
	if err != nil {
		t.Errorf("%s: re-encoding: %v", name, err)
		return
	}
	checkBytes(t, name+" round trip", out, b)
}

// roundTripProposalBody checks a proposal body of messages.json (the
// Proposal without its type) by decoding it as a Proposal of type typ.
func roundTripProposalBody(t *testing.T, name string, typ ProposalType, body []byte) {
	t.Helper()
	var p Proposal
	roundTripWire(t, name, &p, append(binary.BigEndian.AppendUint16(nil, uint16(typ)), body...))
	if p.Type != typ {
		t.Errorf("%s: decoded as %v", name, p.Type)
	}
}

// roundTripMessage checks an MLSMessage of messages.json and its wire
// format and, for framed content, its content type.
func roundTripMessage(t *testing.T, name string, b []byte, wf WireFormat, ct ContentType) {
	t.Helper()
	var m MLSMessage
	roundTripWire(t, name, &m, b)
	if m.WireFormat != wf {
		t.Errorf("%s: wire format %v, want %v", name, m.WireFormat, wf)
		return
	}
	switch {
	case m.PublicMessage != nil && m.PublicMessage.Content.ContentType != ct:
		t.Errorf("%s: content type %v, want %v", name, m.PublicMessage.Content.ContentType, ct)
	case m.PrivateMessage != nil && ct != 0 && m.PrivateMessage.ContentType != ct:
		t.Errorf("%s: content type %v, want %v", name, m.PrivateMessage.ContentType, ct)
	}
}

// TestVectorMessages decodes and re-encodes every object of every case of
// messages.json: the five MLSMessage kinds, the ratchet tree, GroupSecrets,
// each proposal type and Commit.
func TestVectorMessages(t *testing.T) {
	const file = "messages.json"
	var vs []messagesVector
	loadVectorFile(t, file, &vs)
	passed := 0
	for i, v := range vs {
		ok := vectorCase(t, strconv.Itoa(i), func(t *testing.T) {
			roundTripMessage(t, "mls_welcome", v.Welcome, WireFormatWelcome, 0)
			roundTripMessage(t, "mls_group_info", v.GroupInfo, WireFormatGroupInfo, 0)
			roundTripMessage(t, "mls_key_package", v.KeyPackage, WireFormatKeyPackage, 0)
			roundTripWire(t, "ratchet_tree", new(TreeNodes), v.RatchetTree)
			roundTripWire(t, "group_secrets", new(GroupSecrets), v.GroupSecrets)
			roundTripProposalBody(t, "add_proposal", ProposalTypeAdd, v.AddProposal)
			roundTripProposalBody(t, "update_proposal", ProposalTypeUpdate, v.UpdateProposal)
			roundTripProposalBody(t, "remove_proposal", ProposalTypeRemove, v.RemoveProposal)
			roundTripProposalBody(t, "pre_shared_key_proposal", ProposalTypePSK, v.PreSharedKeyProposal)
			roundTripProposalBody(t, "re_init_proposal", ProposalTypeReInit, v.ReInitProposal)
			roundTripProposalBody(t, "external_init_proposal", ProposalTypeExternalInit, v.ExternalInitProposal)
			roundTripProposalBody(t, "group_context_extensions_proposal", ProposalTypeGroupContextExtensions, v.GroupContextExtensionsProposal)
			roundTripWire(t, "commit", new(Commit), v.Commit)
			roundTripMessage(t, "public_message_application", v.PublicMessageApplication, WireFormatPublicMessage, ContentTypeApplication)
			roundTripMessage(t, "public_message_proposal", v.PublicMessageProposal, WireFormatPublicMessage, ContentTypeProposal)
			roundTripMessage(t, "public_message_commit", v.PublicMessageCommit, WireFormatPublicMessage, ContentTypeCommit)
			roundTripMessage(t, "private_message", v.PrivateMessage, WireFormatPrivateMessage, 0)
		})
		if ok {
			passed++
		}
	}
	reportVectors(t, file, passed, len(vs))
}

// TestTruncatedMessagesRejected checks that cutting the last byte off
// any MLSMessage of messages.json is a decoding error, never a shorter
// valid message.
func TestTruncatedMessagesRejected(t *testing.T) {
	var vs []messagesVector
	loadVectorFile(t, "messages.json", &vs)
	for i, v := range vs[:20] {
		for _, b := range [][]byte{v.Welcome, v.GroupInfo, v.KeyPackage, v.PublicMessageApplication, v.PublicMessageProposal, v.PublicMessageCommit, v.PrivateMessage} {
			if err := new(MLSMessage).Unmarshal(b[:len(b)-1]); err == nil {
				t.Errorf("case %d: truncated %s accepted", i, fmt.Sprintf("%x", b[:4]))
			}
		}
	}
}
