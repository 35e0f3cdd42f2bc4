package mls

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"
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

// MaxLeafLifetime is the longest lifetime (not_after - not_before) accepted
// for a key_package leaf; RFC 9420 §7.2 requires applications to bound it.
// A year and a bit lets year-long KeyPackages (as other implementations and
// the interop vectors use) through while refusing effectively eternal ones.
const MaxLeafLifetime = 400 * 24 * time.Hour

// Default proposal and extension types (RFC 9420 §7.2) need not and must
// not be listed in capabilities: every client supports them.
func treeDefaultExtension(t ExtensionType) bool { return t >= 1 && t <= 5 }
func treeDefaultProposal(t ProposalType) bool   { return t >= 1 && t <= 7 }

// ValidateLeafNode applies RFC 9420 §7.3 to leaf, a leaf node that appears
// with the given source (key_package: in a KeyPackage or an Add; update:
// in an Update proposal; commit: in an UpdatePath) for the group with
// context gc (pass the extensions that will be in force, e.g. after a
// GroupContextExtensions proposal) whose current tree is t. at is the leaf
// the node replaces for update and commit (its index is signed); it is
// ignored for key_package. For a commit by an external joiner, at is the
// leaf it will take (FreeLeaf) and may be blank. It checks the source, the lifetime (key_package,
// with cfg's clock), the capabilities against the group's version, suite,
// extensions and required_capabilities and the leaf's own extensions and
// credential, that every member supports the credential type and the leaf
// supports theirs, the key encodings, that the keys are new to the tree
// (an update or commit leaf must change its encryption key), and last the
// signature. Whether the credential itself is acceptable (X.509 chains,
// identities) is the application's decision, outside this package.
// Errors are *LeafNodeError wrapping a sentinel or a *DuplicateKeyError.
func (t *RatchetTree) ValidateLeafNode(cfg *Config, gc *GroupContext, leaf *LeafNode, source LeafNodeSource, at LeafIndex) error {
	pos := int64(at)
	if source == LeafNodeSourceKeyPackage {
		pos = -1
	}
	fail := func(err error) error { return &LeafNodeError{Leaf: pos, Err: err} }
	if leaf.Source != source {
		return fail(fmt.Errorf("%w: %v, want %v", ErrLeafNodeSource, leaf.Source, source))
	}
	if source == LeafNodeSourceUpdate && t.Leaf(at) == nil {
		return fail(fmt.Errorf("%w: update of leaf %d", ErrBlankLeaf, at))
	}
	if source == LeafNodeSourceKeyPackage {
		if err := treeCheckLifetime(cfg, leaf.Lifetime); err != nil {
			return fail(err)
		}
	}
	if err := treeCheckCapabilities(gc, leaf); err != nil {
		return fail(err)
	}
	if err := t.checkCredentialSupport(leaf, at, source != LeafNodeSourceKeyPackage); err != nil {
		return fail(err)
	}
	if err := t.suite.ValidateHPKEPublicKey(leaf.EncryptionKey); err != nil {
		return fail(fmt.Errorf("%w: encryption key: %w", ErrInvalidLeafNode, err))
	}
	if err := t.suite.ValidateSignaturePublicKey(leaf.SignatureKey); err != nil {
		return fail(fmt.Errorf("%w: signature key: %w", ErrInvalidLeafNode, err))
	}
	if l, ok := t.FindSignatureKey(leaf.SignatureKey); ok && (source == LeafNodeSourceKeyPackage || l != at) {
		return fail(&DuplicateKeyError{Kind: "signature", First: l.Node(), Second: at.Node()})
	}
	if x, ok := t.FindEncryptionKey(leaf.EncryptionKey); ok {
		if source != LeafNodeSourceKeyPackage && x == at.Node() {
			return fail(fmt.Errorf("%w: encryption key unchanged", ErrInvalidLeafNode))
		}
		return fail(&DuplicateKeyError{Kind: "encryption", First: x, Second: at.Node()})
	}
	if err := leaf.Verify(t.suite, gc.GroupID, at); err != nil {
		return fail(err)
	}
	return nil
}

// ValidateKeyPackage applies RFC 9420 §10.1 to kp for the group with
// context gc and tree t: version and suite, the leaf as a key_package leaf
// (ValidateLeafNode), the init key's encoding and difference from the
// leaf's encryption key, and the KeyPackage signature. Errors wrap
// ErrInvalidKeyPackage, or are those of ValidateLeafNode.
func (t *RatchetTree) ValidateKeyPackage(cfg *Config, gc *GroupContext, kp *KeyPackage) error {
	if kp.Version != gc.Version || kp.CipherSuite != gc.CipherSuite || kp.CipherSuite != t.suite {
		return fmt.Errorf("%w: version %d suite %v for a group of version %d suite %v",
			ErrInvalidKeyPackage, kp.Version, kp.CipherSuite, gc.Version, gc.CipherSuite)
	}
	if err := t.suite.ValidateHPKEPublicKey(kp.InitKey); err != nil {
		return fmt.Errorf("%w: init key: %w", ErrInvalidKeyPackage, err)
	}
	if bytes.Equal(kp.InitKey, kp.LeafNode.EncryptionKey) {
		return fmt.Errorf("%w: init key equals the leaf's encryption key", ErrInvalidKeyPackage)
	}
	if err := t.ValidateLeafNode(cfg, gc, &kp.LeafNode, LeafNodeSourceKeyPackage, 0); err != nil {
		return err
	}
	if err := kp.Verify(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	return nil
}

func treeCheckLifetime(cfg *Config, lt Lifetime) error {
	now := cfg.Now().Unix()
	if lt.NotBefore > lt.NotAfter || lt.NotAfter-lt.NotBefore > uint64(MaxLeafLifetime/time.Second) {
		return fmt.Errorf("%w: lifetime [%d, %d] longer than allowed", ErrLifetime, lt.NotBefore, lt.NotAfter)
	}
	if now < 0 || uint64(now) < lt.NotBefore || uint64(now) > lt.NotAfter {
		return fmt.Errorf("%w: now %d, lifetime [%d, %d]", ErrLifetime, now, lt.NotBefore, lt.NotAfter)
	}
	return nil
}

// treeCheckCapabilities checks what a leaf must support by itself: the
// group's version and suite, the group's non-default extensions, the
// required_capabilities, its own extensions and its own credential type.
func treeCheckCapabilities(gc *GroupContext, leaf *LeafNode) error {
	c := &leaf.Capabilities
	if !slices.Contains(c.Versions, gc.Version) {
		return fmt.Errorf("%w: protocol version %d", ErrCapabilities, gc.Version)
	}
	if !slices.Contains(c.CipherSuites, gc.CipherSuite) {
		return fmt.Errorf("%w: cipher suite %v", ErrCapabilities, gc.CipherSuite)
	}
	for _, e := range leaf.Extensions {
		if !treeDefaultExtension(e.Type) && !slices.Contains(c.Extensions, e.Type) {
			return fmt.Errorf("%w: own extension %#04x", ErrCapabilities, uint16(e.Type))
		}
	}
	if !slices.Contains(c.Credentials, leaf.Credential.Type) {
		return fmt.Errorf("%w: own credential type %#04x", ErrUnsupportedCredential, uint16(leaf.Credential.Type))
	}
	for _, e := range gc.Extensions {
		if !treeDefaultExtension(e.Type) && !slices.Contains(c.Extensions, e.Type) {
			return fmt.Errorf("%w: group extension %#04x", ErrCapabilities, uint16(e.Type))
		}
	}
	if ext, ok := gc.Extensions.Find(ExtensionTypeRequiredCapabilities); ok {
		var rc RequiredCapabilities
		if err := rc.Unmarshal(ext.Data); err != nil {
			return fmt.Errorf("%w: required_capabilities: %w", ErrCapabilities, err)
		}
		for _, e := range rc.ExtensionTypes {
			if !treeDefaultExtension(e) && !slices.Contains(c.Extensions, e) {
				return fmt.Errorf("%w: required extension %#04x", ErrCapabilities, uint16(e))
			}
		}
		for _, p := range rc.ProposalTypes {
			if !treeDefaultProposal(p) && !slices.Contains(c.Proposals, p) {
				return fmt.Errorf("%w: required proposal %#04x", ErrCapabilities, uint16(p))
			}
		}
		for _, ct := range rc.CredentialTypes {
			if !slices.Contains(c.Credentials, ct) {
				return fmt.Errorf("%w: required credential %#04x", ErrCapabilities, uint16(ct))
			}
		}
	}
	return nil
}

// checkCredentialSupport checks that every member supports leaf's
// credential type and that leaf supports every member's, leaving out the
// leaf at (when replacing is set), which leaf replaces. It uses the
// tree's per-type counts: O(credential types), not O(members).
func (t *RatchetTree) checkCredentialSupport(leaf *LeafNode, at LeafIndex, replacing bool) error {
	var old *LeafNode
	if replacing {
		old = t.Leaf(at)
	}
	members := t.members
	if old != nil {
		members--
	}
	ct := leaf.Credential.Type
	support := t.credSupport[ct]
	if old != nil && slices.Contains(old.Capabilities.Credentials, ct) {
		support--
	}
	if support != members {
		return fmt.Errorf("%w: %d of %d members do not support credential type %#04x", ErrUnsupportedCredential, members-support, members, uint16(ct))
	}
	for c, n := range t.credUse {
		if old != nil && old.Credential.Type == c {
			n--
		}
		if n > 0 && !slices.Contains(leaf.Capabilities.Credentials, c) {
			return fmt.Errorf("%w: credential type %#04x in use by %d members", ErrUnsupportedCredential, uint16(c), n)
		}
	}
	return nil
}

// Validate checks a tree received from others, as a joiner must (RFC 9420
// §12.4.3.1), for the group with context gc: everything ValidateStructure
// checks, then every leaf signature, on the calling goroutine. Comparing
// TreeHash with the GroupInfo's tree_hash is the caller's part.
//
// Checking the signatures dominates the cost of joining a big group. A
// caller with several cores calls ValidateStructure once and then
// VerifyLeafSignatures over disjoint leaf ranges from separate goroutines
// (those calls only read the tree), instead of Validate.
func (t *RatchetTree) Validate(gc *GroupContext) error {
	if err := t.ValidateStructure(gc); err != nil {
		return err
	}
	return t.VerifyLeafSignatures(gc.GroupID, 0, LeafIndex(t.leafCount))
}

// ValidateStructure checks everything of §12.4.3.1 but leaf signatures:
// every non-blank parent node is parent-hash valid (§7.9.2); every
// unmerged leaf is a non-blank leaf below its node, listed at every
// non-blank node between them; no signature key is used by two leaves and
// no encryption key by two nodes; every leaf supports the group (version,
// suite, extensions, required_capabilities), its own extensions and
// credential type, and every credential type in use. Lifetimes of leaves
// already in the tree are not judged: a member added long ago keeps its
// key_package leaf until it updates, and RFC 9420 §7.3 only recommends the
// check. It fills the hash caches, so it must not run concurrently with
// other calls on t.
func (t *RatchetTree) ValidateStructure(gc *GroupContext) error {
	if gc.CipherSuite != t.suite {
		return fmt.Errorf("%w: tree of suite %v for a group of suite %v", ErrInvalidTree, t.suite, gc.CipherSuite)
	}
	if t.members == 0 {
		return fmt.Errorf("%w: no members", ErrInvalidTree)
	}
	if err := t.checkUnmergedLeaves(); err != nil {
		return err
	}
	if err := t.checkUniqueKeys(); err != nil {
		return err
	}
	if err := t.VerifyParentHashes(); err != nil {
		return err
	}
	inUse := map[CredentialType]bool{}
	for _, m := range t.Members() {
		inUse[m.Credential.Type] = true
	}
	for l, m := range t.Members() {
		if err := treeCheckCapabilities(gc, m); err != nil {
			return &LeafNodeError{Leaf: int64(l), Err: err}
		}
		for ct := range inUse {
			if !slices.Contains(m.Capabilities.Credentials, ct) {
				return &LeafNodeError{Leaf: int64(l), Err: fmt.Errorf("%w: credential type %#04x in use", ErrUnsupportedCredential, uint16(ct))}
			}
		}
		if err := t.suite.ValidateHPKEPublicKey(m.EncryptionKey); err != nil {
			return &LeafNodeError{Leaf: int64(l), Err: fmt.Errorf("%w: encryption key: %w", ErrInvalidLeafNode, err)}
		}
	}
	return nil
}

// VerifyLeafSignatures verifies the signatures of the non-blank leaves in
// [from, to) (clamped to the tree) with groupID as the context of update
// and commit leaves. It only reads t: calls on disjoint (or even
// overlapping) ranges may run concurrently, which is how a caller spreads
// the checks of a big tree over its cores. The first bad leaf gives a
// *LeafNodeError wrapping ErrInvalidSignature.
func (t *RatchetTree) VerifyLeafSignatures(groupID []byte, from, to LeafIndex) error {
	to = min(to, LeafIndex(t.leafCount))
	for l := from; l < to; l++ {
		leaf := t.at(l.Node()).leaf
		if leaf == nil {
			continue
		}
		if err := leaf.Verify(t.suite, groupID, l); err != nil {
			return &LeafNodeError{Leaf: int64(l), Err: err}
		}
	}
	return nil
}

// checkUnmergedLeaves checks §12.4.3.1's unmerged-leaf rules. That the
// entries are sorted and below their node was checked when the tree was
// built.
func (t *RatchetTree) checkUnmergedLeaves() error {
	for x := NodeIndex(1); int(x) < t.width(); x += 2 {
		p := t.at(x).parent
		if p == nil {
			continue
		}
		for _, l := range p.UnmergedLeaves {
			if t.Leaf(l) == nil {
				return &UnmergedLeavesError{Node: x, Leaf: l, Reason: "leaf is blank"}
			}
			for y, _ := l.Node().Parent(t.leafCount); y != x; y, _ = y.Parent(t.leafCount) {
				if q := t.at(y).parent; q != nil && !treeContainsLeaf(q.UnmergedLeaves, l) {
					return &UnmergedLeavesError{Node: x, Leaf: l, Reason: fmt.Sprintf("missing from intermediate node %d", y)}
				}
			}
		}
	}
	return nil
}

// checkUniqueKeys finds a signature key used by two leaves or an
// encryption key used by two nodes, by sorting the key tags.
func (t *RatchetTree) checkUniqueKeys() error {
	type tagged struct {
		tag uint64
		x   NodeIndex
	}
	find := func(kind string, tags func(pg *treePage) *[treePageSize]uint64, key func(x NodeIndex) []byte) error {
		var all []tagged
		for pi, pg := range t.pages {
			for i, v := range tags(pg) {
				if x := NodeIndex(pi<<treePageBits + i); int(x) < t.width() && key(x) != nil {
					all = append(all, tagged{v, x})
				}
			}
		}
		slices.SortFunc(all, func(a, b tagged) int {
			if a.tag != b.tag {
				if a.tag < b.tag {
					return -1
				}
				return 1
			}
			return int(int64(a.x) - int64(b.x))
		})
		for i := 0; i < len(all); i++ {
			for j := i + 1; j < len(all) && all[j].tag == all[i].tag; j++ {
				if bytes.Equal(key(all[i].x), key(all[j].x)) {
					return &DuplicateKeyError{Kind: kind, First: all[i].x, Second: all[j].x}
				}
			}
		}
		return nil
	}
	if err := find("encryption", func(pg *treePage) *[treePageSize]uint64 { return &pg.enc }, t.EncryptionKey); err != nil {
		return err
	}
	return find("signature", func(pg *treePage) *[treePageSize]uint64 { return &pg.sig }, func(x NodeIndex) []byte {
		if leaf := t.at(x).leaf; leaf != nil {
			return leaf.SignatureKey
		}
		return nil
	})
}

// VerifyParentHashes checks that every non-blank parent node is
// parent-hash valid (RFC 9420 §7.9.2, "top down"): exactly one descendant
// D carries its parent hash, with D in the resolution of the child C
// above D and the rest of that resolution exactly the node's unmerged
// leaves below C.
func (t *RatchetTree) VerifyParentHashes() error {
	var res []NodeIndex
	for x := NodeIndex(1); int(x) < t.width(); x += 2 {
		p := t.at(x).parent
		if p == nil {
			continue
		}
		found := 0
		for _, c := range [2]NodeIndex{x ^ NodeIndex(1)<<(x.Level()-1), x ^ NodeIndex(3)<<(x.Level()-1)} {
			ph := t.ParentHash(x, c)
			lo, hi := treeLeafRange(c)
			first, _ := slices.BinarySearch(p.UnmergedLeaves, lo)
			last, _ := slices.BinarySearch(p.UnmergedLeaves, hi+1)
			below := p.UnmergedLeaves[first:last]
			var ok bool
			if res, ok = t.appendResolutionCapped(res[:0], c, len(below)+1); !ok || len(res) != len(below)+1 {
				continue
			}
			for i, d := range res {
				if !bytes.Equal(t.nodeParentHash(d), ph) {
					continue
				}
				if treeSameLeaves(res, i, below) {
					found++
				}
			}
		}
		if found != 1 {
			return &ParentHashError{Node: x, Reason: fmt.Sprintf("%d descendants carry its parent hash, want 1", found)}
		}
	}
	return nil
}

// nodeParentHash returns the parent_hash field of x: a parent node's, or a
// commit leaf's; nil for other nodes.
func (t *RatchetTree) nodeParentHash(x NodeIndex) []byte {
	n := t.at(x)
	switch {
	case n.parent != nil:
		return n.parent.ParentHash
	case n.leaf != nil && n.leaf.Source == LeafNodeSourceCommit:
		return n.leaf.ParentHash
	}
	return nil
}

// treeSameLeaves reports whether res without res[skip] is exactly the
// nodes of the leaves in below (sorted).
func treeSameLeaves(res []NodeIndex, skip int, below []LeafIndex) bool {
	for i, r := range res {
		if i == skip {
			continue
		}
		l, isLeaf := r.Leaf()
		if !isLeaf || !treeContainsLeaf(below, l) {
			return false
		}
	}
	return true // sizes match and entries are distinct nodes
}

// appendResolutionCapped appends the resolution of x to out, giving up
// (false) once it holds more than limit nodes.
func (t *RatchetTree) appendResolutionCapped(out []NodeIndex, x NodeIndex, limit int) ([]NodeIndex, bool) {
	n := t.at(x)
	switch {
	case n.leaf != nil:
		out = append(out, x)
	case n.parent != nil:
		out = append(out, x)
		for _, l := range n.parent.UnmergedLeaves {
			out = append(out, l.Node())
		}
	case !x.IsLeaf():
		l, _ := x.Left()
		r, _ := x.Right()
		var ok bool
		if out, ok = t.appendResolutionCapped(out, l, limit); !ok {
			return out, false
		}
		return t.appendResolutionCapped(out, r, limit)
	}
	return out, len(out) <= limit
}
