package mls

// ProtocolVersion is the MLS protocol version (RFC 9420 §6).
type ProtocolVersion uint16

// ProtocolVersionMLS10 is MLS 1.0, the version of RFC 9420.
const ProtocolVersionMLS10 ProtocolVersion = 1

// GroupContext is the summary of a group's state that every member agrees on
// in an epoch (RFC 9420 §8.1).
type GroupContext struct {
	Version                 ProtocolVersion
	CipherSuite             CipherSuite
	GroupID                 []byte
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
	Extensions              Extensions
}

func (x *GroupContext) marshal(e *Encoder) {
	e.Uint16(uint16(x.Version))
	e.Uint16(uint16(x.CipherSuite))
	e.Opaque(x.GroupID)
	e.Uint64(x.Epoch)
	e.Opaque(x.TreeHash)
	e.Opaque(x.ConfirmedTranscriptHash)
	x.Extensions.marshal(e)
}

func (x *GroupContext) unmarshal(d *Decoder) {
	x.Version = ProtocolVersion(d.Uint16())
	x.CipherSuite = CipherSuite(d.Uint16())
	x.GroupID = d.Opaque()
	x.Epoch = d.Uint64()
	x.TreeHash = d.Opaque()
	x.ConfirmedTranscriptHash = d.Opaque()
	x.Extensions.unmarshal(d)
}

// Marshal encodes the group context.
func (x *GroupContext) Marshal() ([]byte, error) { return encode(x) }

// Unmarshal decodes a group context; trailing bytes are an error.
func (x *GroupContext) Unmarshal(b []byte) error { return decodeAll(b, x) }
