package mls

import (
	"fmt"
	"io"
)

// LeafNodeSource says why a LeafNode was created (RFC 9420 §7.2).
type LeafNodeSource uint8

// Leaf node sources.
const (
	LeafNodeSourceKeyPackage LeafNodeSource = 1
	LeafNodeSourceUpdate     LeafNodeSource = 2
	LeafNodeSourceCommit     LeafNodeSource = 3
)

func (s LeafNodeSource) String() string {
	switch s {
	case LeafNodeSourceKeyPackage:
		return "key_package"
	case LeafNodeSourceUpdate:
		return "update"
	case LeafNodeSourceCommit:
		return "commit"
	}
	return fmt.Sprintf("LeafNodeSource(%d)", uint8(s))
}

// Capabilities lists what a client supports (RFC 9420 §7.2). Unknown and
// GREASE values are kept as they are.
type Capabilities struct {
	Versions     []ProtocolVersion
	CipherSuites []CipherSuite
	Extensions   []ExtensionType
	Proposals    []ProposalType
	Credentials  []CredentialType
}

func (x *Capabilities) marshal(e *Encoder) {
	marshalUint16s(e, x.Versions)
	marshalUint16s(e, x.CipherSuites)
	marshalUint16s(e, x.Extensions)
	marshalUint16s(e, x.Proposals)
	marshalUint16s(e, x.Credentials)
}

func (x *Capabilities) unmarshal(d *Decoder) {
	x.Versions = unmarshalUint16s[ProtocolVersion](d)
	x.CipherSuites = unmarshalUint16s[CipherSuite](d)
	x.Extensions = unmarshalUint16s[ExtensionType](d)
	x.Proposals = unmarshalUint16s[ProposalType](d)
	x.Credentials = unmarshalUint16s[CredentialType](d)
}

// Lifetime bounds the validity of a KeyPackage's leaf, in seconds since the
// Unix epoch (RFC 9420 §7.2).
type Lifetime struct {
	NotBefore uint64
	NotAfter  uint64
}

// LeafNode is the content of a leaf of the ratchet tree (RFC 9420 §7.2).
// Lifetime is used when Source is key_package, ParentHash when it is commit.
type LeafNode struct {
	EncryptionKey []byte // HPKEPublicKey
	SignatureKey  []byte // SignaturePublicKey
	Credential    Credential
	Capabilities  Capabilities
	Source        LeafNodeSource
	Lifetime      Lifetime
	ParentHash    []byte
	Extensions    Extensions
	Signature     []byte
}

// marshalContent writes the fields shared by LeafNode and LeafNodeTBS.
func (x *LeafNode) marshalContent(e *Encoder) {
	e.Opaque(x.EncryptionKey)
	e.Opaque(x.SignatureKey)
	x.Credential.marshal(e)
	x.Capabilities.marshal(e)
	e.Uint8(uint8(x.Source))
	switch x.Source {
	case LeafNodeSourceKeyPackage:
		e.Uint64(x.Lifetime.NotBefore)
		e.Uint64(x.Lifetime.NotAfter)
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		e.Opaque(x.ParentHash)
	default:
		e.Fail(fmt.Errorf("%w: leaf node source %d", ErrInvalidValue, x.Source))
	}
	x.Extensions.marshal(e)
}

func (x *LeafNode) marshal(e *Encoder) {
	x.marshalContent(e)
	e.Opaque(x.Signature)
}

func (x *LeafNode) unmarshal(d *Decoder) {
	*x = LeafNode{}
	x.EncryptionKey = d.Opaque()
	x.SignatureKey = d.Opaque()
	x.Credential.unmarshal(d)
	x.Capabilities.unmarshal(d)
	x.Source = LeafNodeSource(d.Uint8())
	switch x.Source {
	case LeafNodeSourceKeyPackage:
		x.Lifetime.NotBefore = d.Uint64()
		x.Lifetime.NotAfter = d.Uint64()
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		x.ParentHash = d.Opaque()
	default:
		d.Fail(fmt.Errorf("%w: leaf node source %d", ErrInvalidValue, x.Source))
	}
	x.Extensions.unmarshal(d)
	x.Signature = d.Opaque()
}

// Marshal encodes the leaf node.
func (x *LeafNode) Marshal() ([]byte, error) { return encode(x) }

// Unmarshal decodes a leaf node; trailing bytes are an error.
func (x *LeafNode) Unmarshal(b []byte) error { return decodeAll(b, x) }

// TBS returns the encoded LeafNodeTBS (RFC 9420 §7.2). For leaves created
// by an update or a commit it binds groupID and leaf; for key_package
// leaves those are ignored.
func (x *LeafNode) TBS(groupID []byte, leaf LeafIndex) ([]byte, error) {
	var e Encoder
	x.marshalContent(&e)
	if x.Source == LeafNodeSourceUpdate || x.Source == LeafNodeSourceCommit {
		e.Opaque(groupID)
		e.Uint32(uint32(leaf))
	}
	return e.Result()
}

// Sign sets x.Signature to SignWithLabel(., "LeafNodeTBS", LeafNodeTBS).
func (x *LeafNode) Sign(rand io.Reader, s *Signer, groupID []byte, leaf LeafIndex) error {
	tbs, err := x.TBS(groupID, leaf)
	if err != nil {
		return err
	}
	sig, err := s.SignWithLabel(rand, "LeafNodeTBS", tbs)
	if err != nil {
		return err
	}
	x.Signature = sig
	return nil
}

// Verify checks x.Signature against x.SignatureKey; failure is
// ErrInvalidSignature.
func (x *LeafNode) Verify(cs CipherSuite, groupID []byte, leaf LeafIndex) error {
	tbs, err := x.TBS(groupID, leaf)
	if err != nil {
		return err
	}
	if err := cs.VerifyWithLabel(x.SignatureKey, "LeafNodeTBS", tbs, x.Signature); err != nil {
		return fmt.Errorf("leaf node: %w", err)
	}
	return nil
}

// ParentNode is the content of an interior node of the ratchet tree
// (RFC 9420 §7.1).
type ParentNode struct {
	EncryptionKey  []byte // HPKEPublicKey
	ParentHash     []byte
	UnmergedLeaves []LeafIndex
}

func (x *ParentNode) marshal(e *Encoder) {
	e.Opaque(x.EncryptionKey)
	e.Opaque(x.ParentHash)
	e.Vector(func(e *Encoder) {
		for _, l := range x.UnmergedLeaves {
			e.Uint32(uint32(l))
		}
	})
}

func (x *ParentNode) unmarshal(d *Decoder) {
	x.EncryptionKey = d.Opaque()
	x.ParentHash = d.Opaque()
	v := d.Vector()
	if v.Remaining()%4 != 0 {
		v.Fail(fmt.Errorf("%w: unmerged_leaves length not a multiple of 4", ErrTruncated))
		return
	}
	x.UnmergedLeaves = make([]LeafIndex, 0, v.Remaining()/4)
	for v.More() {
		x.UnmergedLeaves = append(x.UnmergedLeaves, LeafIndex(v.Uint32()))
	}
}

// Marshal encodes the parent node.
func (x *ParentNode) Marshal() ([]byte, error) { return encode(x) }

// Unmarshal decodes a parent node; trailing bytes are an error.
func (x *ParentNode) Unmarshal(b []byte) error { return decodeAll(b, x) }

// NodeType distinguishes leaves from parents in a serialized tree.
type NodeType uint8

// Node types (RFC 9420 §12.4.3.3).
const (
	NodeTypeLeaf   NodeType = 1
	NodeTypeParent NodeType = 2
)

// Node is a non-blank node of a serialized ratchet tree: exactly one of
// Leaf and Parent is set.
type Node struct {
	Leaf   *LeafNode
	Parent *ParentNode
}

func (x *Node) marshal(e *Encoder) {
	switch {
	case x.Leaf != nil && x.Parent == nil:
		e.Uint8(uint8(NodeTypeLeaf))
		x.Leaf.marshal(e)
	case x.Parent != nil && x.Leaf == nil:
		e.Uint8(uint8(NodeTypeParent))
		x.Parent.marshal(e)
	default:
		e.Fail(fmt.Errorf("%w: node must be exactly one of leaf and parent", ErrInvalidValue))
	}
}

func (x *Node) unmarshal(d *Decoder) {
	*x = Node{}
	switch t := NodeType(d.Uint8()); t {
	case NodeTypeLeaf:
		x.Leaf = new(LeafNode)
		x.Leaf.unmarshal(d)
	case NodeTypeParent:
		x.Parent = new(ParentNode)
		x.Parent.unmarshal(d)
	default:
		if d.Err() == nil {
			d.Fail(fmt.Errorf("%w: node type %d", ErrInvalidValue, t))
		}
	}
}

// Marshal encodes the node.
func (x *Node) Marshal() ([]byte, error) { return encode(x) }

// Unmarshal decodes a node; trailing bytes are an error.
func (x *Node) Unmarshal(b []byte) error { return decodeAll(b, x) }

// TreeNodes is the array form of a ratchet tree as it travels in the
// ratchet_tree extension (optional<Node> ratchet_tree<V>): nil entries are
// blank nodes. Its checks beyond syntax (shape, trailing blanks, hashes)
// belong to the ratchet tree itself.
type TreeNodes []*Node

func (x *TreeNodes) marshal(e *Encoder) {
	e.Vector(func(e *Encoder) {
		for _, n := range *x {
			e.Optional(n != nil)
			if n != nil {
				n.marshal(e)
			}
		}
	})
}

func (x *TreeNodes) unmarshal(d *Decoder) {
	v := d.Vector()
	*x = TreeNodes{}
	for v.More() {
		if !v.Optional() {
			*x = append(*x, nil)
			continue
		}
		n := new(Node)
		n.unmarshal(v)
		*x = append(*x, n)
	}
}

// Marshal encodes the tree as optional<Node> ratchet_tree<V>.
func (x TreeNodes) Marshal() ([]byte, error) { return encode(&x) }

// Unmarshal decodes optional<Node> ratchet_tree<V>.
func (x *TreeNodes) Unmarshal(b []byte) error { return decodeAll(b, x) }
