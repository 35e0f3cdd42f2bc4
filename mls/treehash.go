package mls

import (
	"bytes"
	"slices"
)

// Tree hashes (RFC 9420 §7.8) and parent hashes (§7.9), cached per node.

// TreeHash returns the tree hash of the root. It computes only the hashes
// that changes have made stale.
func (t *RatchetTree) TreeHash() []byte {
	return bytes.Clone(t.nodeTreeHash(t.Root()))
}

// NodeTreeHash returns the tree hash of the subtree under node x, or nil
// if x lies outside the tree.
func (t *RatchetTree) NodeTreeHash(x NodeIndex) []byte {
	if uint64(x) >= uint64(t.width()) {
		return nil
	}
	return bytes.Clone(t.nodeTreeHash(x))
}

// nodeTreeHash returns the cached tree hash of x, computing what is
// stale. The result aliases the page's arena: use it before the next
// change to the tree.
func (t *RatchetTree) nodeTreeHash(x NodeIndex) []byte {
	nh := t.suite.HashSize()
	pg, i := t.pages[x>>treePageBits], x&(treePageSize-1)
	if pg.hashed.get(i) {
		return pg.hashes[int(i)*nh : int(i+1)*nh : int(i+1)*nh]
	}
	var h []byte
	if x.IsLeaf() {
		l, _ := x.Leaf()
		h = t.leafHash(l, pg.nodes[i].leaf)
	} else {
		left, _ := x.Left()
		right, _ := x.Right()
		lh := t.nodeTreeHash(left)
		rh := t.nodeTreeHash(right)
		h = t.parentTreeHash(pg.nodes[i].parent, lh, rh)
	}
	pg = t.writable(x)
	copy(pg.hashes[int(i)*nh:], h)
	pg.hashed.set(i)
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
	if x.IsLeaf() {
		return t.leafHash(lo, nil) // x is an excluded leaf
	}
	left, _ := x.Left()
	right, _ := x.Right()
	p := t.at(x).parent
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
	return bytes.Clone(t.parentHash(p, toward))
}

// parentHash is ParentHash with the result aliasing the page's arena.
func (t *RatchetTree) parentHash(p, toward NodeIndex) []byte {
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
	nh := t.suite.HashSize()
	pg, slot := t.pages[p>>treePageBits], (p&(treePageSize-1))/2
	off := (int(slot)*2 + side) * nh
	if pg.phashed[side].get(slot) {
		return pg.phashes[off : off+nh : off+nh]
	}
	sibling := copathChild(p, toward)
	h := t.parentHashOf(pn.EncryptionKey, pn.ParentHash, t.treeHashExcluding(sibling, pn.UnmergedLeaves))
	pg = t.writable(p)
	if pg.phashes == nil {
		pg.phashes = make([]byte, treePageSize*nh)
	}
	copy(pg.phashes[off:], h)
	pg.phashed[side].set(slot)
	return h
}
