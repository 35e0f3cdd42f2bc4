package mls

import (
	"fmt"
	"io"
)

// PathSecret is the path secret a new member receives in GroupSecrets.
type PathSecret struct {
	PathSecret []byte
}

// GroupSecrets is the plaintext encrypted to each new member in a Welcome
// (RFC 9420 §12.4.3.1).
type GroupSecrets struct {
	JoinerSecret []byte
	PathSecret   *PathSecret // optional
	PSKs         []PreSharedKeyID
}

func (x *GroupSecrets) marshal(e *Encoder) {
	e.Opaque(x.JoinerSecret)
	e.Optional(x.PathSecret != nil)
	if x.PathSecret != nil {
		e.Opaque(x.PathSecret.PathSecret)
	}
	e.Vector(func(e *Encoder) {
		for i := range x.PSKs {
			x.PSKs[i].marshal(e)
		}
	})
}

func (x *GroupSecrets) unmarshal(d *Decoder) {
	*x = GroupSecrets{JoinerSecret: d.Opaque()}
	if d.Optional() {
		x.PathSecret = &PathSecret{PathSecret: d.Opaque()}
	}
	v := d.Vector()
	x.PSKs = []PreSharedKeyID{}
	for v.More() {
		var p PreSharedKeyID
		p.unmarshal(v)
		x.PSKs = append(x.PSKs, p)
	}
}

// Marshal encodes the group secrets.
func (x *GroupSecrets) Marshal() ([]byte, error) { return encode(x) }

// Unmarshal decodes group secrets; trailing bytes are an error.
func (x *GroupSecrets) Unmarshal(b []byte) error { return decodeAll(b, x) }

// EncryptedGroupSecrets is GroupSecrets encrypted to one new member's
// KeyPackage init key.
type EncryptedGroupSecrets struct {
	NewMember             KeyPackageRef
	EncryptedGroupSecrets HPKECiphertext
}

func (x *EncryptedGroupSecrets) marshal(e *Encoder) {
	e.Opaque(x.NewMember)
	x.EncryptedGroupSecrets.marshal(e)
}

func (x *EncryptedGroupSecrets) unmarshal(d *Decoder) {
	x.NewMember = d.Opaque()
	x.EncryptedGroupSecrets.unmarshal(d)
}

// Welcome brings new members into a group (RFC 9420 §12.4.3.1).
type Welcome struct {
	CipherSuite        CipherSuite
	Secrets            []EncryptedGroupSecrets
	EncryptedGroupInfo []byte
}

func (x *Welcome) marshal(e *Encoder) {
	e.Uint16(uint16(x.CipherSuite))
	e.Vector(func(e *Encoder) {
		for i := range x.Secrets {
			x.Secrets[i].marshal(e)
		}
	})
	e.Opaque(x.EncryptedGroupInfo)
}

func (x *Welcome) unmarshal(d *Decoder) {
	*x = Welcome{CipherSuite: CipherSuite(d.Uint16())}
	v := d.Vector()
	x.Secrets = []EncryptedGroupSecrets{}
	for v.More() {
		var s EncryptedGroupSecrets
		s.unmarshal(v)
		x.Secrets = append(x.Secrets, s)
	}
	x.EncryptedGroupInfo = d.Opaque()
}

// Marshal encodes the welcome.
func (x *Welcome) Marshal() ([]byte, error) { return encode(x) }

// Unmarshal decodes a welcome; trailing bytes are an error.
func (x *Welcome) Unmarshal(b []byte) error { return decodeAll(b, x) }

// Find returns the encrypted group secrets addressed to ref.
func (x *Welcome) Find(ref KeyPackageRef) (*EncryptedGroupSecrets, bool) {
	for i := range x.Secrets {
		if string(x.Secrets[i].NewMember) == string(ref) {
			return &x.Secrets[i], true
		}
	}
	return nil, false
}

// GroupInfo describes a group to joiners (RFC 9420 §12.4.3).
type GroupInfo struct {
	GroupContext    GroupContext
	Extensions      Extensions
	ConfirmationTag []byte
	Signer          LeafIndex
	Signature       []byte
}

func (x *GroupInfo) marshalTBS(e *Encoder) {
	x.GroupContext.marshal(e)
	x.Extensions.marshal(e)
	e.Opaque(x.ConfirmationTag)
	e.Uint32(uint32(x.Signer))
}

func (x *GroupInfo) marshal(e *Encoder) {
	x.marshalTBS(e)
	e.Opaque(x.Signature)
}

func (x *GroupInfo) unmarshal(d *Decoder) {
	x.GroupContext.unmarshal(d)
	x.Extensions.unmarshal(d)
	x.ConfirmationTag = d.Opaque()
	x.Signer = LeafIndex(d.Uint32())
	x.Signature = d.Opaque()
}

// Marshal encodes the group info.
func (x *GroupInfo) Marshal() ([]byte, error) { return encode(x) }

// Unmarshal decodes a group info; trailing bytes are an error.
func (x *GroupInfo) Unmarshal(b []byte) error { return decodeAll(b, x) }

// TBS returns the encoded GroupInfoTBS: everything but the signature.
func (x *GroupInfo) TBS() ([]byte, error) {
	var e Encoder
	x.marshalTBS(&e)
	return e.Result()
}

// Sign sets x.Signature to SignWithLabel(., "GroupInfoTBS", GroupInfoTBS).
func (x *GroupInfo) Sign(rand io.Reader, s *Signer) error {
	tbs, err := x.TBS()
	if err != nil {
		return err
	}
	sig, err := s.SignWithLabel(rand, "GroupInfoTBS", tbs)
	if err != nil {
		return err
	}
	x.Signature = sig
	return nil
}

// Verify checks the signature with the signer's signature public key under
// the group's cipher suite; failure is ErrInvalidSignature.
func (x *GroupInfo) Verify(signerKey []byte) error {
	tbs, err := x.TBS()
	if err != nil {
		return err
	}
	if err := x.GroupContext.CipherSuite.VerifyWithLabel(signerKey, "GroupInfoTBS", tbs, x.Signature); err != nil {
		return fmt.Errorf("group info: %w", err)
	}
	return nil
}
