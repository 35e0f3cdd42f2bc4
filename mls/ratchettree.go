package mls

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
)

// The ratchet tree of RFC 9420 §7: the public state of a group's members.
//
// A RatchetTree is an array of nodes in the order of treemath.go, always
// full (a power of two of leaves, RFC 9420 §7.7), stored in pages of
// treePageSize nodes. Clone copies only the list of pages; the pages are
// then shared, and whichever tree writes to a shared page first copies it
// (copy-on-write), so staging a Commit on a clone costs a few page copies
// along the changed paths, not a copy of the tree. LeafNode and ParentNode
// values stored in a tree are never modified in place either: an operation
// that changes a node installs a new value. That is why callers must treat
// every *LeafNode and *ParentNode obtained from a tree as read-only.
//
// Each node caches its tree hash (RFC 9420 §7.8) and the parent hashes it
// gives its two children (§7.9). A change to a node drops the caches of
// that node and of its ancestors only, so an operation on a group of n
// members costs O(log n) hashing, except extending the tree, which hashes
// the new blank half once (O(1) amortized per added member).

// Errors about the shape or content of a ratchet tree.
var (
	// ErrInvalidTree: a serialized tree does not describe a ratchet tree
	// (empty, wrong node type at a position, trailing blank node, ...).
	ErrInvalidTree = errors.New("mls: invalid ratchet tree")
	// ErrBlankLeaf: the operation needs a member at a leaf that is blank or
	// outside the tree.
	ErrBlankLeaf = errors.New("mls: leaf is blank or outside the tree")
	// ErrTreeFull: no more leaves can be added.
	ErrTreeFull = errors.New("mls: ratchet tree is full")
)

// MaxTreeLeaves bounds the width of a tree, received or grown. A blank node
// costs one byte on the wire but tens of bytes in memory (node slot, key
// tags, cached hash), so without a bound a hostile ratchet_tree of a few
// megabytes of blanks would cost gigabytes; 2^20 leaves is twenty times
// the largest group Conclave aims at.
const MaxTreeLeaves = 1 << 20

// RatchetTree is the ratchet tree of a group in one epoch. The zero value
// is not usable; build one with NewRatchetTree or NewRatchetTreeFromNodes.
// A RatchetTree is not safe for concurrent use while any goroutine changes
// it; hashing (TreeHash, ParentHash, validation) fills caches and counts
// as a change. Clone only writes to the receiver's ownership token, so
// clones of one tree may be used on different goroutines.
type RatchetTree struct {
	suite     CipherSuite
	leafCount uint32
	members   int
	pages     []*treePage
	// owner marks the pages this tree may change in place.
	owner *treeOwner
	// credUse[c] counts the members whose credential has type c, and
	// credSupport[c] those whose capabilities list c, so that the
	// credential-type rule of RFC 9420 §7.3 costs O(types), not O(members).
	credUse, credSupport map[CredentialType]int
	// last is the index of the last non-blank node (-1 if none): every
	// subtree to its right is blank, which lets resolutions skip the
	// blank right edge of a tree that is not full without visiting it.
	last int
}

// treeOwner is an identity token; it has a size so that distinct
// allocations have distinct addresses.
type treeOwner struct{ _ byte }

const (
	treePageBits = 6
	treePageSize = 1 << treePageBits
)

// treePage holds treePageSize consecutive nodes and their key tags:
// enc[i] and sig[i] are short tags of the encryption key of the node and
// the signature key of a leaf (0 when blank), dense arrays that make the
// uniqueness checks of RFC 9420 §7.3 and §12.4.2 a fast linear scan
// instead of a walk over every node's allocations.
//
// The page also caches hashes in flat arenas rather than in per-node
// allocations: hashes holds the tree hash of each node (Nh bytes per
// slot, valid where the hashed bit is set) and phashes the two parent
// hashes of each parent node (slot i/2, left then right), allocated the
// first time one is computed.
type treePage struct {
	owner   *treeOwner
	nodes   [treePageSize]treeNode
	enc     [treePageSize]uint64
	sig     [treePageSize]uint64
	hashed  treeBits
	phashed [2]treeBits
	hashes  []byte
	phashes []byte
}

// treeBits is a bit per slot of a page.
type treeBits [treePageSize / 64]uint64

func (b *treeBits) get(i NodeIndex) bool { return b[i>>6]&(1<<(i&63)) != 0 }
func (b *treeBits) set(i NodeIndex)      { b[i>>6] |= 1 << (i & 63) }
func (b *treeBits) unset(i NodeIndex)    { b[i>>6] &^= 1 << (i & 63) }

// newPage returns a blank page owned by t.
func (t *RatchetTree) newPage() *treePage {
	return &treePage{owner: t.owner, hashes: make([]byte, treePageSize*t.suite.HashSize())}
}

// newEmptyTree returns a tree of leafCount blank leaves.
func newEmptyTree(cs CipherSuite, leafCount uint32) *RatchetTree {
	t := &RatchetTree{suite: cs, owner: new(treeOwner), last: -1,
		credUse: map[CredentialType]int{}, credSupport: map[CredentialType]int{}}
	t.resize(leafCount)
	return t
}

// resize sets the width of the tree, adding blank pages or dropping pages
// and clearing the tail of the last one, so that slots beyond the width
// are always blank.
func (t *RatchetTree) resize(leafCount uint32) {
	t.leafCount = leafCount
	w := int(NodeWidth(leafCount))
	pages := (w + treePageSize - 1) / treePageSize
	for len(t.pages) < pages {
		t.pages = append(t.pages, t.newPage())
	}
	clear(t.pages[pages:])
	t.pages = t.pages[:pages]
	if tail := w % treePageSize; tail != 0 {
		last := t.pages[pages-1]
		blank := true
		for i := tail; i < treePageSize && blank; i++ {
			x := NodeIndex(i)
			blank = last.nodes[i] == treeNode{} && !last.hashed.get(x) && !last.phashed[0].get(x/2) && !last.phashed[1].get(x/2)
		}
		if !blank {
			last = t.writable(NodeIndex(w - 1))
			clear(last.nodes[tail:])
			clear(last.enc[tail:])
			clear(last.sig[tail:])
			for i := tail; i < treePageSize; i++ {
				last.hashed.unset(NodeIndex(i))
				last.phashed[0].unset(NodeIndex(i / 2))
				last.phashed[1].unset(NodeIndex(i / 2))
			}
		}
	}
}

// at returns node x for reading. x must be inside the tree.
func (t *RatchetTree) at(x NodeIndex) *treeNode {
	return &t.pages[x>>treePageBits].nodes[x&(treePageSize-1)]
}

// writable returns the page of node x, copying it first if it is shared.
func (t *RatchetTree) writable(x NodeIndex) *treePage {
	pg := t.pages[x>>treePageBits]
	if pg.owner != t.owner {
		c := *pg
		c.owner = t.owner
		c.hashes = bytes.Clone(pg.hashes)
		c.phashes = bytes.Clone(pg.phashes)
		pg = &c
		t.pages[x>>treePageBits] = pg
	}
	return pg
}

// mut returns node x for writing.
func (t *RatchetTree) mut(x NodeIndex) *treeNode {
	return &t.writable(x).nodes[x&(treePageSize-1)]
}

// width returns the number of nodes of the tree.
func (t *RatchetTree) width() int { return int(NodeWidth(t.leafCount)) }

// treeKeyTag condenses a public key into 64 bits for the key indexes.
// The last bytes are used because some encodings (uncompressed EC points)
// start with a constant byte. Equal tags are confirmed with a full compare.
func treeKeyTag(k []byte) uint64 {
	var v uint64
	for i := max(0, len(k)-8); i < len(k); i++ {
		v = v<<8 | uint64(k[i])
	}
	return v ^ uint64(len(k))<<56
}

// treeNode is one slot of the array. At most one of leaf and parent is set;
// neither means blank.
type treeNode struct {
	leaf   *LeafNode
	parent *ParentNode
}

func (n *treeNode) blank() bool { return n.leaf == nil && n.parent == nil }

// NewRatchetTree returns a one-member tree with leaf at index 0, as the
// creator of a group has (RFC 9420 §11). The tree keeps the pointer.
func NewRatchetTree(cs CipherSuite, leaf *LeafNode) (*RatchetTree, error) {
	if err := cs.check(); err != nil {
		return nil, err
	}
	if leaf == nil {
		return nil, fmt.Errorf("%w: nil leaf", ErrInvalidTree)
	}
	t := newEmptyTree(cs, 1)
	t.setNode(0, leaf, nil)
	return t, nil
}

// NewRatchetTreeFromNodes builds a tree from its serialized form (the
// ratchet_tree extension, RFC 9420 §12.4.3.3): the last node must be
// non-blank, leaves sit at even positions and parents at odd ones, and the
// array is padded with blanks to a full tree. Unmerged-leaf lists must be
// sorted and name leaves below their node. Nothing else is checked here:
// call Validate (or its parts) before trusting a tree received from others.
// The tree keeps the node pointers.
func NewRatchetTreeFromNodes(cs CipherSuite, nodes TreeNodes) (*RatchetTree, error) {
	if err := cs.check(); err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%w: no nodes", ErrInvalidTree)
	}
	if nodes[len(nodes)-1] == nil {
		return nil, fmt.Errorf("%w: last node is blank", ErrInvalidTree)
	}
	if uint64(len(nodes)) > uint64(NodeWidth(MaxTreeLeaves)) {
		return nil, fmt.Errorf("%w: %d nodes", ErrInvalidTree, len(nodes))
	}
	leaves := uint32(1)
	for NodeWidth(leaves) < uint32(len(nodes)) {
		leaves *= 2
	}
	t := newEmptyTree(cs, leaves)
	for i, n := range nodes {
		if n == nil {
			continue
		}
		x := NodeIndex(i)
		switch {
		case n.Leaf != nil && n.Parent == nil && x.IsLeaf():
			t.setNode(x, n.Leaf, nil)
		case n.Parent != nil && n.Leaf == nil && !x.IsLeaf():
			if err := treeCheckUnmergedShape(x, n.Parent.UnmergedLeaves); err != nil {
				return nil, err
			}
			t.setNode(x, nil, n.Parent)
		default:
			return nil, fmt.Errorf("%w: node %d has the wrong type for its position", ErrInvalidTree, i)
		}
	}
	return t, nil
}

// UnmarshalRatchetTree decodes the ratchet_tree extension encoding
// (optional<Node> ratchet_tree<V>) into a tree; see NewRatchetTreeFromNodes.
func UnmarshalRatchetTree(cs CipherSuite, b []byte) (*RatchetTree, error) {
	var nodes TreeNodes
	if err := nodes.Unmarshal(b); err != nil {
		return nil, err
	}
	return NewRatchetTreeFromNodes(cs, nodes)
}

// treeCheckUnmergedShape requires unmerged leaves to be strictly increasing
// and below x, so that no later code can index outside the tree through
// them.
func treeCheckUnmergedShape(x NodeIndex, unmerged []LeafIndex) error {
	lo, hi := treeLeafRange(x)
	for i, l := range unmerged {
		if l < lo || l > hi {
			return &UnmergedLeavesError{Node: x, Leaf: l, Reason: "not a descendant of the node"}
		}
		if i > 0 && unmerged[i-1] >= l {
			return &UnmergedLeavesError{Node: x, Leaf: l, Reason: "list not strictly increasing"}
		}
	}
	return nil
}

// treeLeafRange returns the first and last leaf below node x.
func treeLeafRange(x NodeIndex) (lo, hi LeafIndex) {
	k := x.Level()
	span := uint64(1)<<k - 1
	return LeafIndex((uint64(x) - span) / 2), LeafIndex((uint64(x) + span) / 2)
}

// treeIsAncestor reports whether a is x or an ancestor of x.
func treeIsAncestor(a, x NodeIndex) bool {
	k := a.Level()
	span := uint64(1)<<k - 1
	return uint64(x)+span >= uint64(a) && uint64(x) <= uint64(a)+span
}

// Nodes returns the tree in its serialized form, without trailing blank
// nodes. The Leaf and Parent values are the tree's own (read-only).
func (t *RatchetTree) Nodes() TreeNodes {
	end := t.width()
	for end > 0 && t.at(NodeIndex(end-1)).blank() {
		end--
	}
	out := make(TreeNodes, end)
	for i := range out {
		n := t.at(NodeIndex(i))
		if !n.blank() {
			out[i] = &Node{Leaf: n.leaf, Parent: n.parent}
		}
	}
	return out
}

// Marshal encodes the tree as the ratchet_tree extension carries it.
func (t *RatchetTree) Marshal() ([]byte, error) { return t.Nodes().Marshal() }

// CipherSuite returns the suite the tree's hashes and keys use.
func (t *RatchetTree) CipherSuite() CipherSuite { return t.suite }

// LeafCount returns the width of the tree in leaves (a power of two),
// including blank leaves.
func (t *RatchetTree) LeafCount() uint32 { return t.leafCount }

// NodeCount returns the number of nodes of the full tree.
func (t *RatchetTree) NodeCount() uint32 { return NodeWidth(t.leafCount) }

// MemberCount returns the number of non-blank leaves.
func (t *RatchetTree) MemberCount() int { return t.members }

// Root returns the root node index.
func (t *RatchetTree) Root() NodeIndex { return Root(t.leafCount) }

// Leaf returns the leaf node at index i, or nil if it is blank or outside
// the tree. The value is shared: do not modify it.
func (t *RatchetTree) Leaf(i LeafIndex) *LeafNode {
	if uint64(i) >= uint64(t.leafCount) {
		return nil
	}
	return t.at(i.Node()).leaf
}

// ParentNode returns the parent node at x, or nil if it is blank, a leaf
// position or outside the tree. The value is shared: do not modify it.
func (t *RatchetTree) ParentNode(x NodeIndex) *ParentNode {
	if uint64(x) >= uint64(t.width()) {
		return nil
	}
	return t.at(x).parent
}

// Blank reports whether node x is blank (nodes outside the tree are).
func (t *RatchetTree) Blank(x NodeIndex) bool {
	return uint64(x) >= uint64(t.width()) || t.at(x).blank()
}

// EncryptionKey returns the HPKE public key of node x, or nil if blank.
func (t *RatchetTree) EncryptionKey(x NodeIndex) []byte {
	if uint64(x) >= uint64(t.width()) {
		return nil
	}
	n := t.at(x)
	switch {
	case n.leaf != nil:
		return n.leaf.EncryptionKey
	case n.parent != nil:
		return n.parent.EncryptionKey
	}
	return nil
}

// Members iterates over the non-blank leaves in index order.
func (t *RatchetTree) Members() iter.Seq2[LeafIndex, *LeafNode] {
	return func(yield func(LeafIndex, *LeafNode) bool) {
		for i := uint32(0); i < t.leafCount; i++ {
			if l := t.at(NodeIndex(2 * i)).leaf; l != nil {
				if !yield(LeafIndex(i), l) {
					return
				}
			}
		}
	}
}

// Resolution returns the resolution of node x (RFC 9420 §4.1.1): x itself
// and its unmerged leaves if x is not blank, else the resolutions of its
// children. Nodes outside the tree have an empty resolution.
func (t *RatchetTree) Resolution(x NodeIndex) []NodeIndex {
	return t.appendResolution(nil, x, nil)
}

// appendResolution appends the resolution of x to out, leaving out the
// leaves in excluded (sorted).
func (t *RatchetTree) appendResolution(out []NodeIndex, x NodeIndex, excluded []LeafIndex) []NodeIndex {
	if uint64(x) >= uint64(t.width()) {
		return out
	}
	n := t.at(x)
	switch {
	case n.leaf != nil:
		if l, _ := x.Leaf(); !treeContainsLeaf(excluded, l) {
			out = append(out, x)
		}
		return out
	case n.parent != nil:
		out = append(out, x)
		for _, l := range n.parent.UnmergedLeaves {
			if !treeContainsLeaf(excluded, l) {
				out = append(out, l.Node())
			}
		}
		return out
	case x.IsLeaf() || t.blankBeyond(x):
		return out
	}
	l, _ := x.Left()
	r, _ := x.Right()
	return t.appendResolution(t.appendResolution(out, l, excluded), r, excluded)
}

func treeContainsLeaf(sorted []LeafIndex, l LeafIndex) bool {
	_, found := slices.BinarySearch(sorted, l)
	return found
}

// resolutionEmpty reports whether the resolution of x is empty, that is,
// whether the subtree under x is all blank. It stops at the first
// non-blank node.
func (t *RatchetTree) resolutionEmpty(x NodeIndex) bool {
	if !t.at(x).blank() {
		return false
	}
	if x.IsLeaf() || t.blankBeyond(x) {
		return true
	}
	l, _ := x.Left()
	r, _ := x.Right()
	return t.resolutionEmpty(l) && t.resolutionEmpty(r)
}

// FilteredDirectPath returns the filtered direct path of leaf l (RFC 9420
// §4.1.2): its direct path without the nodes whose copath child has an
// empty resolution. The leaf need not be a member.
func (t *RatchetTree) FilteredDirectPath(l LeafIndex) []NodeIndex {
	if uint64(l) >= uint64(t.leafCount) {
		return nil
	}
	var out []NodeIndex
	x := l.Node()
	for {
		p, ok := x.Parent(t.leafCount)
		if !ok {
			return out
		}
		s, _ := x.Sibling(t.leafCount)
		if !t.resolutionEmpty(s) {
			out = append(out, p)
		}
		x = p
	}
}

// blankBeyond reports whether the whole subtree under x lies after the
// last non-blank node.
func (t *RatchetTree) blankBeyond(x NodeIndex) bool {
	span := int64(1)<<x.Level() - 1
	return int64(x)-span > int64(t.last)
}

// copathChild returns the child of p that is not an ancestor of x (or x).
func copathChild(p, x NodeIndex) NodeIndex {
	l, _ := p.Left()
	r, _ := p.Right()
	if x < p {
		return r
	}
	return l
}

// Clone returns an independent copy of the tree for staging changes. It
// copies the list of pages and gives both trees a new ownership token, so
// that each copies a page before its first change to it; it costs no
// hashing and O(n/treePageSize) time.
func (t *RatchetTree) Clone() *RatchetTree {
	c := *t
	c.pages = slices.Clone(t.pages)
	c.owner = new(treeOwner)
	t.owner = new(treeOwner)
	c.credUse = maps.Clone(t.credUse)
	c.credSupport = maps.Clone(t.credSupport)
	return &c
}

// setNode installs a new value at x and drops the caches of x and its
// ancestors.
func (t *RatchetTree) setNode(x NodeIndex, leaf *LeafNode, parent *ParentNode) {
	pg := t.writable(x)
	i := x & (treePageSize - 1)
	n := &pg.nodes[i]
	var enc []byte
	if x.IsLeaf() {
		switch {
		case n.leaf == nil && leaf != nil:
			t.members++
		case n.leaf != nil && leaf == nil:
			t.members--
		}
		t.countCredentials(n.leaf, -1)
		t.countCredentials(leaf, 1)
		pg.sig[i] = 0
		if leaf != nil {
			enc = leaf.EncryptionKey
			pg.sig[i] = treeKeyTag(leaf.SignatureKey)
		}
	} else if parent != nil {
		enc = parent.EncryptionKey
	}
	pg.enc[i] = 0
	if enc != nil {
		pg.enc[i] = treeKeyTag(enc)
	}
	n.leaf, n.parent = leaf, parent
	if leaf != nil || parent != nil {
		t.last = max(t.last, int(x))
	} else if int(x) == t.last {
		t.findLast()
	}
	t.invalidate(x)
}

// countCredentials adds d to the credential counts of leaf.
func (t *RatchetTree) countCredentials(leaf *LeafNode, d int) {
	if leaf == nil {
		return
	}
	t.credUse[leaf.Credential.Type] += d
	creds := leaf.Capabilities.Credentials
	for i, c := range creds {
		if !slices.Contains(creds[:i], c) { // count a type listed twice once
			t.credSupport[c] += d
		}
	}
}

// findLast moves last back to the last non-blank node.
func (t *RatchetTree) findLast() {
	for t.last >= 0 && t.at(NodeIndex(t.last)).blank() {
		t.last--
	}
}

// invalidate drops the cached hashes of x and of all its ancestors.
func (t *RatchetTree) invalidate(x NodeIndex) {
	for {
		t.dropHashes(x)
		p, ok := x.Parent(t.leafCount)
		if !ok {
			return
		}
		x = p
	}
}

// dropHashes drops the cached hashes of node x.
func (t *RatchetTree) dropHashes(x NodeIndex) {
	pg, i := t.pages[x>>treePageBits], x&(treePageSize-1)
	if pg.hashed.get(i) || pg.phashed[0].get(i/2) || pg.phashed[1].get(i/2) {
		pg = t.writable(x)
		pg.hashed.unset(i)
		pg.phashed[0].unset(i / 2)
		pg.phashed[1].unset(i / 2)
	}
}

// blankDirectPath blanks every parent node above leaf l.
func (t *RatchetTree) blankDirectPath(l LeafIndex) {
	x := l.Node()
	for {
		p, ok := x.Parent(t.leafCount)
		if !ok {
			return
		}
		if !t.at(p).blank() {
			pg := t.writable(p)
			pg.nodes[p&(treePageSize-1)] = treeNode{}
			pg.enc[p&(treePageSize-1)] = 0
			if int(p) == t.last {
				t.findLast()
			}
		}
		t.dropHashes(p)
		x = p
	}
}

// FreeLeaf returns the leaf AddLeaf would fill next: the leftmost blank
// leaf, or LeafCount() if the tree is full and would be extended.
func (t *RatchetTree) FreeLeaf() LeafIndex {
	for j := uint32(0); j < t.leafCount; j++ {
		if t.at(NodeIndex(2 * j)).blank() {
			return LeafIndex(j)
		}
	}
	return LeafIndex(t.leafCount)
}

// AddLeaf places leaf at the leftmost blank leaf, extending the tree if
// there is none, and records it as unmerged at every non-blank ancestor
// (RFC 9420 §12.1.1). It returns the new member's index. The tree keeps
// the pointer. Validating the leaf (or its KeyPackage) is the caller's
// job, before the call.
func (t *RatchetTree) AddLeaf(leaf *LeafNode) (LeafIndex, error) {
	if leaf == nil {
		return 0, fmt.Errorf("%w: nil leaf", ErrInvalidTree)
	}
	i := t.FreeLeaf()
	if uint32(i) == t.leafCount {
		if t.leafCount >= MaxTreeLeaves {
			return 0, ErrTreeFull
		}
		t.extend()
	}
	x := i.Node()
	t.setNode(x, leaf, nil)
	for {
		p, ok := x.Parent(t.leafCount)
		if !ok {
			break
		}
		if pn := t.at(p).parent; pn != nil {
			np := *pn
			np.UnmergedLeaves = treeInsertLeaf(pn.UnmergedLeaves, i)
			t.mut(p).parent = &np
		}
		x = p
	}
	return i, nil
}

// treeInsertLeaf returns a new sorted list with l added.
func treeInsertLeaf(sorted []LeafIndex, l LeafIndex) []LeafIndex {
	pos, found := slices.BinarySearch(sorted, l)
	if found {
		return slices.Clone(sorted)
	}
	out := make([]LeafIndex, 0, len(sorted)+1)
	out = append(out, sorted[:pos]...)
	out = append(out, l)
	return append(out, sorted[pos:]...)
}

// extend doubles the tree: the old tree becomes the left subtree of a new
// blank root (RFC 9420 §7.7). Cached hashes of the old nodes stay valid.
func (t *RatchetTree) extend() {
	t.resize(t.leafCount * 2)
}

// UpdateLeaf replaces the member at leaf i and blanks its direct path, as
// an Update proposal does (RFC 9420 §12.1.2). The tree keeps the pointer.
func (t *RatchetTree) UpdateLeaf(i LeafIndex, leaf *LeafNode) error {
	if leaf == nil {
		return fmt.Errorf("%w: nil leaf", ErrInvalidTree)
	}
	if t.Leaf(i) == nil {
		return fmt.Errorf("%w: update of leaf %d", ErrBlankLeaf, i)
	}
	t.blankDirectPath(i)
	t.setNode(i.Node(), leaf, nil)
	return nil
}

// RemoveLeaf blanks leaf i and its direct path, then truncates the tree
// while its right half is blank (RFC 9420 §12.1.3).
func (t *RatchetTree) RemoveLeaf(i LeafIndex) error {
	if t.Leaf(i) == nil {
		return fmt.Errorf("%w: removal of leaf %d", ErrBlankLeaf, i)
	}
	t.blankDirectPath(i)
	t.setNode(i.Node(), nil, nil)
	t.truncate()
	return nil
}

// truncate halves the tree while the right subtree of the root holds no
// non-blank node; the root itself goes with it, blank or not.
func (t *RatchetTree) truncate() {
	// The right subtree starts after the root, at leafCount.
	for t.leafCount > 1 && t.last < int(t.leafCount) {
		t.leafCount /= 2
		t.last = min(t.last, int(NodeWidth(t.leafCount))-1)
		t.findLast()
	}
	t.resize(t.leafCount)
}

// FindEncryptionKey returns a non-blank node whose encryption key is key.
func (t *RatchetTree) FindEncryptionKey(key []byte) (NodeIndex, bool) {
	tag := treeKeyTag(key)
	for pi, pg := range t.pages {
		for i, v := range pg.enc {
			if x := NodeIndex(pi<<treePageBits + i); v == tag && bytes.Equal(t.EncryptionKey(x), key) {
				return x, true
			}
		}
	}
	return 0, false
}

// FindSignatureKey returns a member whose signature key is key.
func (t *RatchetTree) FindSignatureKey(key []byte) (LeafIndex, bool) {
	tag := treeKeyTag(key)
	for pi, pg := range t.pages {
		for i, v := range pg.sig {
			if v == tag {
				x := NodeIndex(pi<<treePageBits + i)
				if leaf := t.at(x).leaf; leaf != nil && bytes.Equal(leaf.SignatureKey, key) {
					return LeafIndex(x / 2), true
				}
			}
		}
	}
	return 0, false
}
