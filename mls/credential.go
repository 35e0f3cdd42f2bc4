package mls

import (
	"errors"
	"fmt"
)

// CredentialType identifies the kind of a Credential (RFC 9420 §5.3).
type CredentialType uint16

// Credential types of RFC 9420 §17.5.
const (
	CredentialTypeBasic CredentialType = 0x0001
	CredentialTypeX509  CredentialType = 0x0002
)

// Private-use credential types (RFC 9420 §17.5 reserves 0xF000-0xFFFF). The
// RFC leaves their encoding to the deployment; this package gives every one of
// them the shape of a basic credential, one opaque<V> body kept in Identity,
// so that applications (Conclave's own identity-bound credential among them)
// can define their content without changing the codec.
const (
	credentialTypePrivateUseFirst CredentialType = 0xF000
	credentialTypePrivateUseLast  CredentialType = 0xFFFF
)

// IsPrivateUse reports whether t is in the private-use range, whose body this
// package carries opaquely in Credential.Identity.
func (t CredentialType) IsPrivateUse() bool {
	return t >= credentialTypePrivateUseFirst && t <= credentialTypePrivateUseLast
}

// ErrUnknownCredentialType reports a credential whose type this package
// cannot parse. The body of a credential carries no length prefix, so a
// credential of unknown type (outside the private-use range) cannot be
// skipped or preserved.
var ErrUnknownCredentialType = errors.New("mls: unknown credential type")

// Credential binds an identity to a signature key (RFC 9420 §5.3). Identity
// is used by basic credentials, Certificates (DER, leaf first) by X.509
// credentials.
type Credential struct {
	Type         CredentialType
	Identity     []byte
	Certificates [][]byte
}

// NewBasicCredential returns a basic credential for identity.
func NewBasicCredential(identity []byte) Credential {
	return Credential{Type: CredentialTypeBasic, Identity: identity}
}

func (x *Credential) marshal(e *Encoder) {
	e.Uint16(uint16(x.Type))
	switch x.Type {
	case CredentialTypeBasic:
		e.Opaque(x.Identity)
	case CredentialTypeX509:
		e.Vector(func(e *Encoder) {
			for _, c := range x.Certificates {
				e.Opaque(c)
			}
		})
	default:
		if x.Type.IsPrivateUse() {
			e.Opaque(x.Identity)
			return
		}
		e.Fail(fmt.Errorf("%w: %#04x", ErrUnknownCredentialType, uint16(x.Type)))
	}
}

func (x *Credential) unmarshal(d *Decoder) {
	*x = Credential{Type: CredentialType(d.Uint16())}
	switch x.Type {
	case CredentialTypeBasic:
		x.Identity = d.Opaque()
	case CredentialTypeX509:
		v := d.Vector()
		x.Certificates = [][]byte{}
		for v.More() {
			x.Certificates = append(x.Certificates, v.Opaque())
		}
	default:
		if x.Type.IsPrivateUse() {
			x.Identity = d.Opaque()
			return
		}
		if d.Err() == nil {
			d.Fail(fmt.Errorf("%w: %#04x", ErrUnknownCredentialType, uint16(x.Type)))
		}
	}
}

// Marshal encodes the credential.
func (x *Credential) Marshal() ([]byte, error) { return encode(x) }

// Unmarshal decodes a credential; trailing bytes are an error.
func (x *Credential) Unmarshal(b []byte) error { return decodeAll(b, x) }
