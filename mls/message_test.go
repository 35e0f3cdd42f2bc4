package mls

import (
	"errors"
	"testing"
)

func TestMLSMessageDecodeErrors(t *testing.T) {
	// A PrivateMessage: version 1, wire format 2, group "g", epoch 1,
	// content type 1, empty aad, sender data "s", ciphertext "c".
	valid := "0001" + "0002" + "0167" + "0000000000000001" + "01" + "00" + "0173" + "0163"
	var m MLSMessage
	if err := m.Unmarshal(mustHex(t, valid)); err != nil {
		t.Fatalf("valid message: %v", err)
	}
	if m.PrivateMessage == nil || string(m.PrivateMessage.Ciphertext) != "c" {
		t.Fatalf("decoded %+v", m)
	}
	for _, c := range []struct {
		name, hex string
		want      error
	}{
		{"empty", "", ErrTruncated},
		{"version 0", "0000" + valid[4:], ErrInvalidValue},
		{"version 2", "0002" + valid[4:], ErrInvalidValue},
		{"wire format 0", "0001" + "0000" + valid[8:], ErrInvalidValue},
		{"wire format 6", "0001" + "0006" + valid[8:], ErrInvalidValue},
		{"content type 0", valid[:28] + "00" + valid[30:], ErrInvalidValue},
		{"content type 4", valid[:28] + "04" + valid[30:], ErrInvalidValue},
		{"trailing byte", valid + "00", ErrTrailingData},
		{"truncated", valid[:len(valid)-2], ErrTruncated},
		{"non-minimal length", valid[:8] + "4001" + valid[10:], ErrNonMinimalVarint},
	} {
		if err := new(MLSMessage).Unmarshal(mustHex(t, c.hex)); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestFramedContentDecodeErrors(t *testing.T) {
	// group "g", epoch 1, member sender leaf 2, empty aad, application "hi".
	valid := "0167" + "0000000000000001" + "01" + "00000002" + "00" + "01" + "026869"
	var c FramedContent
	if err := c.Unmarshal(mustHex(t, valid)); err != nil {
		t.Fatalf("valid content: %v", err)
	}
	if c.Sender != MemberSender(2) || string(c.ApplicationData) != "hi" {
		t.Fatalf("decoded %+v", c)
	}
	for _, cse := range []struct {
		name, hex string
		want      error
	}{
		{"sender type 0", valid[:20] + "00" + valid[22:], ErrInvalidValue},
		{"sender type 5", valid[:20] + "05" + valid[22:], ErrInvalidValue},
		{"content type 0", valid[:32] + "00" + valid[34:], ErrInvalidValue},
		{"truncated body", valid[:len(valid)-2], ErrTruncated},
		{"trailing", valid + "00", ErrTrailingData},
	} {
		if err := new(FramedContent).Unmarshal(mustHex(t, cse.hex)); !errors.Is(err, cse.want) {
			t.Errorf("%s: got %v, want %v", cse.name, err, cse.want)
		}
	}
	// New-member senders carry no index.
	nm := "0167" + "0000000000000001" + "04" + "00" + "03" + "0000"
	if err := c.Unmarshal(mustHex(t, nm)); err != nil || c.Sender.Type != SenderTypeNewMemberCommit {
		t.Fatalf("new member commit: %v %+v", err, c.Sender)
	}
}

func TestMLSMessageMarshalMismatch(t *testing.T) {
	for _, m := range []*MLSMessage{
		{Version: ProtocolVersionMLS10, WireFormat: WireFormatPublicMessage},
		{Version: ProtocolVersionMLS10, WireFormat: WireFormatPublicMessage, PrivateMessage: &PrivateMessage{}},
		{Version: ProtocolVersionMLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: &PrivateMessage{}, Welcome: &Welcome{}},
		{Version: ProtocolVersionMLS10, WireFormat: 9, PrivateMessage: &PrivateMessage{}},
	} {
		if _, err := m.Marshal(); err == nil {
			t.Errorf("marshalled inconsistent message %+v", m)
		}
	}
	pm := &PrivateMessage{GroupID: []byte("g"), ContentType: ContentTypeApplication}
	if _, err := NewPrivateMessage(pm).Marshal(); err != nil {
		t.Fatal(err)
	}
}
