package mls

import "slices"

// Tree hashes (RFC 9420 §7.8) and parent hashes (§7.9), cached per node.

// nodeCache holds the hashes of one node. A value is installed once and
// never modified (clones share it); filling in a parent hash installs a
// new copy.
type nodeCache struct {
	treeHash []byte
	// parentHash[0] is the parent hash this node gives a descendant in its
	// left subtree (copath child: the right one), parentHash[1] the one for
	// its right subtree. Nil until computed. Parent nodes only.
	parentHash [2][]byte
}

// TreeHash returns the tree hash of the root. It computes only the hashes
// that changes have made stale.
func (t *RatchetTree) TreeHash() []byte {
	return t.nodeTreeHash(t.Root())
}

// NodeTreeHash returns the tree hash of the subtree under node x, or nil
// if x lies outside the tree.
func (t *RatchetTree) NodeTreeHash(x NodeIndex) []byte {
	if uint64(x) >= uint64(t.width()) {
		return nil
	}
	return t.nodeTreeHash(x)
}

func (t *RatchetTree) nodeTreeHash(x NodeIndex) []byte {
	n := t.at(x)
	if n.cache != nil {
		return n.cache.treeHash
	}
	var h []byte
	if x.IsLeaf() {
		l, _ := x.Leaf()
		h = t.leafHash(l, n.leaf)
	} else {
		left, _ := x.Left()
		right, _ := x.Right()
		h = t.parentTreeHash(n.parent, t.nodeTreeHash(left), t.nodeTreeHash(right))
	}
	t.mut(x).cache = &nodeCache{treeHash: h}
	return h
}

// leafHash hashes TreeHashInput for a leaf (LeafNodeHashInput).
func (t *RatchetTree) leafHash(l LeafIndex, leaf *LeafNode) []byte {
	var e Encoder
	e.Uint8(uint8(NodeTypeLeaf))
	e.Uint32(uint32(l))
	e.Optional(leaf != nil)
	if leaf != nil {
		leaf.marshal(&e)
	}
	// A LeafNode that cannot be encoded (unknown source) was rejected when
	// it was decoded or built; hashing the partial encoding keeps the
	// function total.
	return t.suite.Hash(e.Bytes())
}

// parentTreeHash hashes TreeHashInput for a parent (ParentNodeHashInput).
func (t *RatchetTree) parentTreeHash(p *ParentNode, left, right []byte) []byte {
	var e Encoder
	e.Uint8(uint8(NodeTypeParent))
	e.Optional(p != nil)
	if p != nil {
		p.marshal(&e)
	}
	e.Opaque(left)
	e.Opaque(right)
	return t.suite.Hash(e.Bytes())
}

// treeHashExcluding returns the tree hash of x in the tree where the
// leaves in excluded (sorted) are blank and removed from every
// unmerged_leaves list: the "original sibling tree hash" of §7.9. Subtrees
// without an excluded leaf use the cache.
func (t *RatchetTree) treeHashExcluding(x NodeIndex, excluded []LeafIndex) []byte {
	lo, hi := treeLeafRange(x)
	i, _ := slices.BinarySearch(excluded, lo)
	if i == len(excluded) || excluded[i] > hi {
		return t.nodeTreeHash(x)
	}
	n := t.at(x)
	if x.IsLeaf() {
		return t.leafHash(lo, nil) // x is an excluded leaf
	}
	left, _ := x.Left()
	right, _ := x.Right()
	p := n.parent
	if p != nil {
		kept := make([]LeafIndex, 0, len(p.UnmergedLeaves))
		for _, l := range p.UnmergedLeaves {
			if !treeContainsLeaf(excluded, l) {
				kept = append(kept, l)
			}
		}
		p = &ParentNode{EncryptionKey: p.EncryptionKey, ParentHash: p.ParentHash, UnmergedLeaves: kept}
	}
	return t.parentTreeHash(p, t.treeHashExcluding(left, excluded), t.treeHashExcluding(right, excluded))
}

// parentHashInput hashes ParentHashInput.
func (t *RatchetTree) parentHashOf(encryptionKey, parentHash, originalSiblingTreeHash []byte) []byte {
	var e Encoder
	e.Opaque(encryptionKey)
	e.Opaque(parentHash)
	e.Opaque(originalSiblingTreeHash)
	return t.suite.Hash(e.Bytes())
}

// ParentHash returns the parent hash of the non-blank parent node p "with
// copath child" the child of p that is not above (or equal to) node
// toward (RFC 9420 §7.9): the value the parent_hash field of the next node
// below p on a filtered direct path through toward must hold. It returns
// nil if p is blank, a leaf, or toward is not below p.
func (t *RatchetTree) ParentHash(p, toward NodeIndex) []byte {
	if uint64(p) >= uint64(t.width()) || p.IsLeaf() || p == toward || !treeIsAncestor(p, toward) {
		return nil
	}
	pn := t.at(p).parent
	if pn == nil {
		return nil
	}
	side := 0
	if toward > p {
		side = 1
	}
	c := t.at(p).cache
	if c == nil {
		t.nodeTreeHash(p)
		c = t.at(p).cache
	}
	if h := c.parentHash[side]; h != nil {
		return h
	}
	sibling := copathChild(p, toward)
	h := t.parentHashOf(pn.EncryptionKey, pn.ParentHash, t.treeHashExcluding(sibling, pn.UnmergedLeaves))
	nc := *c
	nc.parentHash[side] = h
	t.mut(p).cache = &nc
	return h
}
