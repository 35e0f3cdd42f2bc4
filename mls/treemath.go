package mls

import "math/bits"

// Tree math for the left-balanced binary trees of RFC 9420 §4 and
// Appendix C. Nodes are numbered in-order: leaves have even indices, parent
// nodes odd ones. Every function takes the tree size as a number of leaves
// and answers ok=false (or an empty slice) instead of panicking when an
// index lies outside the tree.

// LeafIndex numbers the leaves of a ratchet tree from 0.
type LeafIndex uint32

// NodeIndex numbers all nodes of a ratchet tree in array order.
type NodeIndex uint32

// MaxLeaves is the largest number of leaves a tree may have, so that every
// node index fits in 32 bits.
const MaxLeaves = 1 << 31

// Node returns the node index of leaf l.
func (l LeafIndex) Node() NodeIndex { return NodeIndex(2 * uint64(l)) }

// IsLeaf reports whether x is a leaf node.
func (x NodeIndex) IsLeaf() bool { return x%2 == 0 }

// Leaf returns the leaf index of x if x is a leaf.
func (x NodeIndex) Leaf() (LeafIndex, bool) {
	if !x.IsLeaf() {
		return 0, false
	}
	return LeafIndex(x / 2), true
}

// Level returns the level of x in the tree: 0 for leaves, the number of
// trailing one bits otherwise.
func (x NodeIndex) Level() uint { return uint(bits.TrailingZeros32(^uint32(x))) }

// NodeWidth returns the number of nodes in a tree with nLeaves leaves.
func NodeWidth(nLeaves uint32) uint32 {
	if nLeaves == 0 {
		return 0
	}
	if nLeaves > MaxLeaves {
		nLeaves = MaxLeaves
	}
	return 2*(nLeaves-1) + 1
}

// InTree reports whether x is a node of a tree with nLeaves leaves.
func (x NodeIndex) InTree(nLeaves uint32) bool { return uint32(x) < NodeWidth(nLeaves) }

// Root returns the root of a tree with nLeaves leaves (0 for an empty tree).
func Root(nLeaves uint32) NodeIndex {
	w := NodeWidth(nLeaves)
	if w == 0 {
		return 0
	}
	return NodeIndex(uint32(1)<<(bits.Len32(w)-1) - 1)
}

// Left returns the left child of x; leaves have none.
func (x NodeIndex) Left() (NodeIndex, bool) {
	k := x.Level()
	if k == 0 {
		return 0, false
	}
	return x ^ NodeIndex(1)<<(k-1), true
}

// Right returns the right child of x; leaves have none.
func (x NodeIndex) Right() (NodeIndex, bool) {
	k := x.Level()
	if k == 0 || k >= 31 {
		return 0, false
	}
	return x ^ NodeIndex(3)<<(k-1), true
}

// Parent returns the parent of x in a tree with nLeaves leaves; the root
// and nodes outside the tree have none.
func (x NodeIndex) Parent(nLeaves uint32) (NodeIndex, bool) {
	if !x.InTree(nLeaves) || x == Root(nLeaves) {
		return 0, false
	}
	k := x.Level()
	b := (uint64(x) >> (k + 1)) & 1
	p := (uint64(x) | 1<<k) ^ (b << (k + 1))
	return NodeIndex(p), true
}

// Sibling returns the other child of x's parent.
func (x NodeIndex) Sibling(nLeaves uint32) (NodeIndex, bool) {
	p, ok := x.Parent(nLeaves)
	if !ok {
		return 0, false
	}
	if x < p {
		return p.Right()
	}
	return p.Left()
}

// DirectPath returns the ancestors of x from its parent up to the root.
func (x NodeIndex) DirectPath(nLeaves uint32) []NodeIndex {
	var path []NodeIndex
	for {
		p, ok := x.Parent(nLeaves)
		if !ok {
			return path
		}
		path = append(path, p)
		x = p
	}
}

// Copath returns the siblings of x and of each node on its direct path
// except the root.
func (x NodeIndex) Copath(nLeaves uint32) []NodeIndex {
	var path []NodeIndex
	for {
		s, ok := x.Sibling(nLeaves)
		if !ok {
			return path
		}
		path = append(path, s)
		x, _ = x.Parent(nLeaves)
	}
}

// CommonAncestor returns the lowest node that is an ancestor of both x and y
// (or x or y itself, when one is an ancestor of the other).
func CommonAncestor(x, y NodeIndex) NodeIndex {
	lx, ly := x.Level()+1, y.Level()+1
	if lx <= ly && uint64(x)>>ly == uint64(y)>>ly {
		return y
	}
	if ly <= lx && uint64(x)>>lx == uint64(y)>>lx {
		return x
	}
	xn, yn := uint64(x), uint64(y)
	k := uint(0)
	for xn != yn {
		xn, yn = xn>>1, yn>>1
		k++
	}
	return NodeIndex(xn<<k + 1<<(k-1) - 1)
}
