package mls

import (
	"errors"
	"fmt"
)

// ExtensionType identifies an MLS extension (RFC 9420 §17.3).
type ExtensionType uint16

// Extension types of RFC 9420 §17.3 and of draft-ietf-mls-extensions.
const (
	ExtensionTypeApplicationID        ExtensionType = 0x0001
	ExtensionTypeRatchetTree          ExtensionType = 0x0002
	ExtensionTypeRequiredCapabilities ExtensionType = 0x0003
	ExtensionTypeExternalPub          ExtensionType = 0x0004
	ExtensionTypeExternalSenders      ExtensionType = 0x0005
	// The extensions draft (draft-ietf-mls-extensions) suggests these.
	ExtensionTypeAppDataDictionary    ExtensionType = 0x0006
	ExtensionTypeSupportedWireFormats ExtensionType = 0x0007
	ExtensionTypeRequiredWireFormats  ExtensionType = 0x0008
)

// ComponentID identifies an application component of the extensions draft.
type ComponentID uint16

// ComponentLastResortKeyPackage marks a KeyPackage of last resort (the
// last_resort_key_package component of draft-ietf-mls-extensions, carried
// with empty data in the app_data_dictionary extension).
const ComponentLastResortKeyPackage ComponentID = 0x0004

// IsGREASE reports whether v is one of the GREASE values of RFC 9420 §13.5
// (0x0A0A, 0x1A1A, ..., 0xEAEA), which receivers must ignore.
func IsGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>12 == (v>>4)&0x0f && v != 0xfafa
}

// ErrDuplicateExtension reports two extensions of the same type in one list.
var ErrDuplicateExtension = errors.New("mls: duplicate extension type")

// Extension is an extension of any type; the data of unknown types is
// kept as is, so it survives a decode/encode round trip.
type Extension struct {
	Type ExtensionType
	Data []byte
}

func (x *Extension) marshal(e *Encoder) {
	e.Uint16(uint16(x.Type))
	e.Opaque(x.Data)
}

func (x *Extension) unmarshal(d *Decoder) {
	x.Type = ExtensionType(d.Uint16())
	x.Data = d.Opaque()
}

// Extensions is a list of extensions as it appears on the wire
// (Extension extensions<V>).
type Extensions []Extension

func (x *Extensions) marshal(e *Encoder) {
	e.Vector(func(e *Encoder) {
		for i := range *x {
			(*x)[i].marshal(e)
		}
	})
}

func (x *Extensions) unmarshal(d *Decoder) {
	v := d.Vector()
	*x = Extensions{}
	for v.More() {
		var ext Extension
		ext.unmarshal(v)
		*x = append(*x, ext)
	}
}

// Marshal encodes the list as Extension extensions<V>.
func (x Extensions) Marshal() ([]byte, error) { return encode(&x) }

// Unmarshal decodes Extension extensions<V>.
func (x *Extensions) Unmarshal(b []byte) error { return decodeAll(b, x) }

// Find returns the first extension of type t.
func (x Extensions) Find(t ExtensionType) (*Extension, bool) {
	for i := range x {
		if x[i].Type == t {
			return &x[i], true
		}
	}
	return nil, false
}

// Has reports whether an extension of type t is present.
func (x Extensions) Has(t ExtensionType) bool {
	_, ok := x.Find(t)
	return ok
}

// CheckDuplicates returns ErrDuplicateExtension if a type appears twice.
func (x Extensions) CheckDuplicates() error {
	seen := make(map[ExtensionType]struct{}, len(x))
	for _, ext := range x {
		if _, dup := seen[ext.Type]; dup {
			return fmt.Errorf("%w: %#04x", ErrDuplicateExtension, uint16(ext.Type))
		}
		seen[ext.Type] = struct{}{}
	}
	return nil
}

// RequiredCapabilities is the data of the required_capabilities extension
// (RFC 9420 §11.1).
type RequiredCapabilities struct {
	ExtensionTypes  []ExtensionType
	ProposalTypes   []ProposalType
	CredentialTypes []CredentialType
}

func (x *RequiredCapabilities) marshal(e *Encoder) {
	marshalUint16s(e, x.ExtensionTypes)
	marshalUint16s(e, x.ProposalTypes)
	marshalUint16s(e, x.CredentialTypes)
}

func (x *RequiredCapabilities) unmarshal(d *Decoder) {
	x.ExtensionTypes = unmarshalUint16s[ExtensionType](d)
	x.ProposalTypes = unmarshalUint16s[ProposalType](d)
	x.CredentialTypes = unmarshalUint16s[CredentialType](d)
}

// Marshal encodes the extension data.
func (x *RequiredCapabilities) Marshal() ([]byte, error) { return encode(x) }

// Unmarshal decodes the extension data.
func (x *RequiredCapabilities) Unmarshal(b []byte) error { return decodeAll(b, x) }

// ExternalPub is the data of the external_pub extension (RFC 9420 §12.4.3.2).
type ExternalPub struct {
	PublicKey []byte
}

func (x *ExternalPub) marshal(e *Encoder)   { e.Opaque(x.PublicKey) }
func (x *ExternalPub) unmarshal(d *Decoder) { x.PublicKey = d.Opaque() }

// Marshal encodes the extension data.
func (x *ExternalPub) Marshal() ([]byte, error) { return encode(x) }

// Unmarshal decodes the extension data.
func (x *ExternalPub) Unmarshal(b []byte) error { return decodeAll(b, x) }

// ExternalSender is one entry of the external_senders extension (RFC 9420
// §12.1.8.1).
type ExternalSender struct {
	SignatureKey []byte
	Credential   Credential
}

func (x *ExternalSender) marshal(e *Encoder) {
	e.Opaque(x.SignatureKey)
	x.Credential.marshal(e)
}

func (x *ExternalSender) unmarshal(d *Decoder) {
	x.SignatureKey = d.Opaque()
	x.Credential.unmarshal(d)
}

// ExternalSenders is the data of the external_senders extension.
type ExternalSenders []ExternalSender

func (x *ExternalSenders) marshal(e *Encoder) {
	e.Vector(func(e *Encoder) {
		for i := range *x {
			(*x)[i].marshal(e)
		}
	})
}

func (x *ExternalSenders) unmarshal(d *Decoder) {
	v := d.Vector()
	*x = ExternalSenders{}
	for v.More() {
		var s ExternalSender
		s.unmarshal(v)
		*x = append(*x, s)
	}
}

// Marshal encodes the extension data.
func (x ExternalSenders) Marshal() ([]byte, error) { return encode(&x) }

// Unmarshal decodes the extension data.
func (x *ExternalSenders) Unmarshal(b []byte) error { return decodeAll(b, x) }

// marshalUint16s writes a vector of 16-bit values (enum lists such as
// capabilities), including GREASE and unknown values.
func marshalUint16s[T ~uint16](e *Encoder, vals []T) {
	e.Vector(func(e *Encoder) {
		for _, v := range vals {
			e.Uint16(uint16(v))
		}
	})
}

func unmarshalUint16s[T ~uint16](d *Decoder) []T {
	v := d.Vector()
	if v.Remaining()%2 != 0 {
		v.Fail(fmt.Errorf("%w: odd-length vector of 16-bit values", ErrTruncated))
		return nil
	}
	out := make([]T, 0, v.Remaining()/2)
	for v.More() {
		out = append(out, T(v.Uint16()))
	}
	return out
}
