package mls

import "fmt"

// MLSMessage is the top-level wrapper of everything MLS sends (RFC 9420 §6):
// a protocol version, a wire format and the one body the wire format
// selects. Exactly one of the pointer fields is set, as WireFormat says.
type MLSMessage struct {
	Version        ProtocolVersion
	WireFormat     WireFormat
	PublicMessage  *PublicMessage
	PrivateMessage *PrivateMessage
	Welcome        *Welcome
	GroupInfo      *GroupInfo
	KeyPackage     *KeyPackage
}

// NewPublicMessage wraps m in an MLSMessage.
func NewPublicMessage(m *PublicMessage) *MLSMessage {
	return &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatPublicMessage, PublicMessage: m}
}

// NewPrivateMessage wraps m in an MLSMessage.
func NewPrivateMessage(m *PrivateMessage) *MLSMessage {
	return &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: m}
}

// NewWelcomeMessage wraps w in an MLSMessage.
func NewWelcomeMessage(w *Welcome) *MLSMessage {
	return &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatWelcome, Welcome: w}
}

// NewGroupInfoMessage wraps g in an MLSMessage.
func NewGroupInfoMessage(g *GroupInfo) *MLSMessage {
	return &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatGroupInfo, GroupInfo: g}
}

// NewKeyPackageMessage wraps k in an MLSMessage.
func NewKeyPackageMessage(k *KeyPackage) *MLSMessage {
	return &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatKeyPackage, KeyPackage: k}
}

// body returns the message's body as a wire type, or an error if it does
// not match WireFormat.
func (m *MLSMessage) body() (marshaler, error) {
	set := 0
	for _, p := range []bool{m.PublicMessage != nil, m.PrivateMessage != nil, m.Welcome != nil, m.GroupInfo != nil, m.KeyPackage != nil} {
		if p {
			set++
		}
	}
	var body marshaler
	switch m.WireFormat {
	case WireFormatPublicMessage:
		if m.PublicMessage != nil {
			body = m.PublicMessage
		}
	case WireFormatPrivateMessage:
		if m.PrivateMessage != nil {
			body = m.PrivateMessage
		}
	case WireFormatWelcome:
		if m.Welcome != nil {
			body = m.Welcome
		}
	case WireFormatGroupInfo:
		if m.GroupInfo != nil {
			body = m.GroupInfo
		}
	case WireFormatKeyPackage:
		if m.KeyPackage != nil {
			body = m.KeyPackage
		}
	default:
		return nil, fmt.Errorf("%w: %v", ErrWrongWireFormat, m.WireFormat)
	}
	if body == nil || set != 1 {
		return nil, fmt.Errorf("%w: MLSMessage body does not match wire format %v", ErrEncoding, m.WireFormat)
	}
	return body, nil
}

func (m *MLSMessage) marshal(e *Encoder) {
	body, err := m.body()
	if err != nil {
		e.Fail(err)
		return
	}
	e.Uint16(uint16(m.Version))
	e.Uint16(uint16(m.WireFormat))
	body.marshal(e)
}

func (m *MLSMessage) unmarshal(d *Decoder) {
	*m = MLSMessage{Version: ProtocolVersion(d.Uint16())}
	if d.Err() == nil && m.Version != ProtocolVersionMLS10 {
		d.Fail(fmt.Errorf("%w: protocol version %d", ErrInvalidValue, m.Version))
		return
	}
	m.WireFormat = WireFormat(d.Uint16())
	if d.Err() != nil {
		return
	}
	switch m.WireFormat {
	case WireFormatPublicMessage:
		m.PublicMessage = new(PublicMessage)
		m.PublicMessage.unmarshal(d)
	case WireFormatPrivateMessage:
		m.PrivateMessage = new(PrivateMessage)
		m.PrivateMessage.unmarshal(d)
	case WireFormatWelcome:
		m.Welcome = new(Welcome)
		m.Welcome.unmarshal(d)
	case WireFormatGroupInfo:
		m.GroupInfo = new(GroupInfo)
		m.GroupInfo.unmarshal(d)
	case WireFormatKeyPackage:
		m.KeyPackage = new(KeyPackage)
		m.KeyPackage.unmarshal(d)
	default:
		d.Fail(fmt.Errorf("%w: wire format %v", ErrInvalidValue, m.WireFormat))
	}
}

// Marshal returns the wire encoding of m.
func (m *MLSMessage) Marshal() ([]byte, error) { return encode(m) }

// Unmarshal decodes m from b; trailing bytes are an error. Unknown protocol
// versions and wire formats are rejected with ErrInvalidValue.
func (m *MLSMessage) Unmarshal(b []byte) error { return decodeAll(b, m) }
