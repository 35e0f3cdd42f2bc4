package mls

import (
	"errors"
	"fmt"
)

// Validation of ratchet trees (RFC 9420 §7.9.2, §12.4.3.1), leaf nodes
// (§7.3) and key packages (§10.1). Every failure wraps one of the ErrXxx
// sentinels below (errors.Is); the XxxError types say where (errors.As).

// Sentinels for validation failures.
var (
	// ErrParentHashMismatch: a parent node is not parent-hash valid, or a
	// committer's leaf carries the wrong parent hash.
	ErrParentHashMismatch = errors.New("mls: parent hash does not verify")
	// ErrDuplicateKey: two nodes share a signature or encryption key.
	ErrDuplicateKey = errors.New("mls: key appears in more than one node")
	// ErrUnmergedLeaves: an unmerged_leaves list disagrees with the tree.
	ErrUnmergedLeaves = errors.New("mls: inconsistent unmerged leaves")
	// ErrLeafNodeSource: leaf_node_source is wrong for where the leaf
	// appears.
	ErrLeafNodeSource = errors.New("mls: wrong leaf_node_source")
	// ErrLifetime: the current time is outside a key package leaf's
	// lifetime.
	ErrLifetime = errors.New("mls: lifetime does not cover the current time")
	// ErrCapabilities: a leaf lacks a capability the group requires or that
	// its own extensions need.
	ErrCapabilities = errors.New("mls: missing capability")
	// ErrUnsupportedCredential: a credential type is not supported by every
	// member, or a leaf does not support a credential type in use.
	ErrUnsupportedCredential = errors.New("mls: credential type not supported by all members")
	// ErrInvalidLeafNode: any other defect of a leaf node (bad key
	// encoding, unchanged encryption key in an Update, ...).
	ErrInvalidLeafNode = errors.New("mls: invalid leaf node")
	// ErrInvalidKeyPackage: a key package does not fit the group (version,
	// suite) or reuses its leaf's encryption key as init key.
	ErrInvalidKeyPackage = errors.New("mls: invalid key package")
)

// LeafNodeError reports an invalid leaf node. Leaf is its position, or -1
// for a leaf not (yet) in the tree, such as a KeyPackage's.
type LeafNodeError struct {
	Leaf int64
	Err  error
}

func (e *LeafNodeError) Error() string {
	if e.Leaf < 0 {
		return fmt.Sprintf("mls: leaf node: %v", e.Err)
	}
	return fmt.Sprintf("mls: leaf %d: %v", e.Leaf, e.Err)
}

func (e *LeafNodeError) Unwrap() error { return e.Err }

// ParentHashError reports a node whose parent hash does not verify.
type ParentHashError struct {
	Node   NodeIndex
	Reason string
}

func (e *ParentHashError) Error() string {
	return fmt.Sprintf("mls: parent hash of node %d: %s", e.Node, e.Reason)
}

func (e *ParentHashError) Unwrap() error { return ErrParentHashMismatch }

// DuplicateKeyError reports a key found in two nodes. Kind is "signature"
// or "encryption".
type DuplicateKeyError struct {
	Kind          string
	First, Second NodeIndex
}

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("mls: %s key of node %d also in node %d", e.Kind, e.Second, e.First)
}

func (e *DuplicateKeyError) Unwrap() error { return ErrDuplicateKey }

// UnmergedLeavesError reports an inconsistent unmerged_leaves entry.
type UnmergedLeavesError struct {
	Node   NodeIndex
	Leaf   LeafIndex
	Reason string
}

func (e *UnmergedLeavesError) Error() string {
	return fmt.Sprintf("mls: unmerged leaf %d of node %d: %s", e.Leaf, e.Node, e.Reason)
}

func (e *UnmergedLeavesError) Unwrap() error { return ErrUnmergedLeaves }
