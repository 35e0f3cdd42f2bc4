package mls

import (
	"fmt"
	"io"
)

// KeyPackage advertises a client so that others can add it to a group
// (RFC 9420 §10).
type KeyPackage struct {
	Version     ProtocolVersion
	CipherSuite CipherSuite
	InitKey     []byte // HPKEPublicKey
	LeafNode    LeafNode
	Extensions  Extensions
	Signature   []byte
}

// KeyPackageRef identifies a KeyPackage (RFC 9420 §5.2).
type KeyPackageRef []byte

func (x *KeyPackage) marshalTBS(e *Encoder) {
	e.Uint16(uint16(x.Version))
	e.Uint16(uint16(x.CipherSuite))
	e.Opaque(x.InitKey)
	x.LeafNode.marshal(e)
	x.Extensions.marshal(e)
}

func (x *KeyPackage) marshal(e *Encoder) {
	x.marshalTBS(e)
	e.Opaque(x.Signature)
}

func (x *KeyPackage) unmarshal(d *Decoder) {
	x.Version = ProtocolVersion(d.Uint16())
	x.CipherSuite = CipherSuite(d.Uint16())
	x.InitKey = d.Opaque()
	x.LeafNode.unmarshal(d)
	x.Extensions.unmarshal(d)
	x.Signature = d.Opaque()
}

// Marshal encodes the key package.
func (x *KeyPackage) Marshal() ([]byte, error) { return encode(x) }

// Unmarshal decodes a key package; trailing bytes are an error.
func (x *KeyPackage) Unmarshal(b []byte) error { return decodeAll(b, x) }

// TBS returns the encoded KeyPackageTBS: everything but the signature.
func (x *KeyPackage) TBS() ([]byte, error) {
	var e Encoder
	x.marshalTBS(&e)
	return e.Result()
}

// Sign sets x.Signature to SignWithLabel(., "KeyPackageTBS", KeyPackageTBS).
// The leaf node must already be signed, since the TBS contains it.
func (x *KeyPackage) Sign(rand io.Reader, s *Signer) error {
	tbs, err := x.TBS()
	if err != nil {
		return err
	}
	sig, err := s.SignWithLabel(rand, "KeyPackageTBS", tbs)
	if err != nil {
		return err
	}
	x.Signature = sig
	return nil
}

// Verify checks the key package signature with the leaf node's signature
// key under x.CipherSuite. It does not check the leaf node's own signature
// or any other validity rule of RFC 9420 §10.1.
func (x *KeyPackage) Verify() error {
	tbs, err := x.TBS()
	if err != nil {
		return err
	}
	if err := x.CipherSuite.VerifyWithLabel(x.LeafNode.SignatureKey, "KeyPackageTBS", tbs, x.Signature); err != nil {
		return fmt.Errorf("key package: %w", err)
	}
	return nil
}

// Ref returns RefHash("MLS 1.0 KeyPackage Reference", KeyPackage) under the
// key package's own cipher suite.
func (x *KeyPackage) Ref() (KeyPackageRef, error) {
	if err := x.CipherSuite.check(); err != nil {
		return nil, err
	}
	b, err := x.Marshal()
	if err != nil {
		return nil, err
	}
	return x.CipherSuite.RefHash("MLS 1.0 KeyPackage Reference", b), nil
}
