package mls

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
)

// TreeKEM (RFC 9420 §7.4-7.6): creating an UpdatePath as a committer,
// merging and decrypting one as a receiver, and the private keys a member
// holds for its leaf and the parent nodes above it.

// Errors about UpdatePaths and TreeKEM private state.
var (
	// ErrInvalidUpdatePath: an UpdatePath does not fit the tree (wrong
	// number of nodes or ciphertexts, a key already in the tree, ...).
	ErrInvalidUpdatePath = errors.New("mls: invalid update path")
	// ErrNoPathSecret: the receiver holds no private key that any
	// ciphertext of the UpdatePath was encrypted to.
	ErrNoPathSecret = errors.New("mls: no decryptable path secret")
	// ErrPathKeyMismatch: a public key derived from a path secret differs
	// from the one in the tree or the UpdatePath.
	ErrPathKeyMismatch = errors.New("mls: derived public key does not match")
)

// TreePrivateKeys is a member's TreeKEM private state: the HPKE private key
// of its leaf and those of the parent nodes above it that it knows. Methods
// that change the state return a new value, so a pending Commit never
// disturbs the state of the current epoch.
type TreePrivateKeys struct {
	suite CipherSuite
	leaf  LeafIndex
	own   treeKeyPair
	nodes []treeNodeKey // sorted by node, ancestors of leaf only
}

type treeKeyPair struct{ priv, pub []byte }

type treeNodeKey struct {
	node NodeIndex
	treeKeyPair
}

// NewTreePrivateKeys returns the private state of the member at leaf with
// the HPKE private key of its leaf (from its KeyPackage or a previous
// commit), knowing no parent node yet.
func NewTreePrivateKeys(cs CipherSuite, leaf LeafIndex, encryptionPriv []byte) (*TreePrivateKeys, error) {
	pub, err := cs.HPKEPublicFromPrivate(encryptionPriv)
	if err != nil {
		return nil, err
	}
	return &TreePrivateKeys{suite: cs, leaf: leaf, own: treeKeyPair{bytes.Clone(encryptionPriv), pub}}, nil
}

// CipherSuite returns the suite of the keys.
func (p *TreePrivateKeys) CipherSuite() CipherSuite { return p.suite }

// Leaf returns the member's leaf index.
func (p *TreePrivateKeys) Leaf() LeafIndex { return p.leaf }

// LeafPrivateKey returns the HPKE private key of the member's leaf.
func (p *TreePrivateKeys) LeafPrivateKey() []byte { return bytes.Clone(p.own.priv) }

// NodePrivateKey returns the HPKE private key held for parent node x.
func (p *TreePrivateKeys) NodePrivateKey(x NodeIndex) ([]byte, bool) {
	if k := p.find(x); k != nil {
		return bytes.Clone(k.priv), true
	}
	return nil, false
}

// Nodes returns the parent nodes whose private keys are held, ascending.
func (p *TreePrivateKeys) Nodes() []NodeIndex {
	out := make([]NodeIndex, len(p.nodes))
	for i, k := range p.nodes {
		out[i] = k.node
	}
	return out
}

func (p *TreePrivateKeys) find(x NodeIndex) *treeNodeKey {
	i, ok := slices.BinarySearchFunc(p.nodes, x, func(k treeNodeKey, x NodeIndex) int { return int(int64(k.node) - int64(x)) })
	if !ok {
		return nil
	}
	return &p.nodes[i]
}

// keyFor returns the private key for node x if the one held matches pub.
func (p *TreePrivateKeys) keyFor(x NodeIndex, pub []byte) []byte {
	if x == p.leaf.Node() {
		if bytes.Equal(p.own.pub, pub) {
			return p.own.priv
		}
		return nil
	}
	if k := p.find(x); k != nil && bytes.Equal(k.pub, pub) {
		return k.priv
	}
	return nil
}

// Clone returns a copy that shares no mutable state with p.
func (p *TreePrivateKeys) Clone() *TreePrivateKeys {
	c := *p
	c.nodes = slices.Clone(p.nodes)
	return &c
}

// WithLeafKey returns a copy holding priv as the leaf's private key (after
// an Update of the member's own leaf) and no parent keys, since an Update
// blanks the direct path.
func (p *TreePrivateKeys) WithLeafKey(priv []byte) (*TreePrivateKeys, error) {
	return NewTreePrivateKeys(p.suite, p.leaf, priv)
}

// Prune returns a copy without the keys of parent nodes that are blank in
// t or whose public key in t differs from the one held (nodes blanked or
// replaced since they were derived), and without nodes outside t.
func (p *TreePrivateKeys) Prune(t *RatchetTree) *TreePrivateKeys {
	c := *p
	c.nodes = nil
	for _, k := range p.nodes {
		if bytes.Equal(t.EncryptionKey(k.node), k.pub) {
			c.nodes = append(c.nodes, k)
		}
	}
	return &c
}

// Check verifies that every key held matches tree t: the leaf and each
// parent node are non-blank and carry the public key of the private key.
// It recomputes the public keys from the private ones.
func (p *TreePrivateKeys) Check(t *RatchetTree) error {
	if t.suite != p.suite {
		return fmt.Errorf("%w: private keys for suite %v, tree uses %v", ErrPathKeyMismatch, p.suite, t.suite)
	}
	check := func(x NodeIndex, k treeKeyPair) error {
		pub, err := p.suite.HPKEPublicFromPrivate(k.priv)
		if err != nil {
			return err
		}
		if !bytes.Equal(pub, k.pub) || !bytes.Equal(t.EncryptionKey(x), pub) {
			return fmt.Errorf("%w: private key of node %d", ErrPathKeyMismatch, x)
		}
		return nil
	}
	if err := check(p.leaf.Node(), p.own); err != nil {
		return err
	}
	for _, k := range p.nodes {
		if err := check(k.node, k.treeKeyPair); err != nil {
			return err
		}
	}
	return nil
}

// WithPathSecret returns a copy that also holds the keys derived from
// pathSecret for node x and for each non-blank ancestor of x, deriving the
// next path secret at each, as a joiner does with the path_secret of its
// Welcome (RFC 9420 §12.4.3.1) and as the treekem test vectors set up a
// member. Every derived public key must match the tree. x must be an
// ancestor of the member's leaf.
func (p *TreePrivateKeys) WithPathSecret(t *RatchetTree, x NodeIndex, pathSecret []byte) (*TreePrivateKeys, error) {
	if x.IsLeaf() || !x.InTree(t.leafCount) || !treeIsAncestor(x, p.leaf.Node()) {
		return nil, fmt.Errorf("%w: node %d is not above leaf %d", ErrInvalidUpdatePath, x, p.leaf)
	}
	c := p.Clone()
	secret := pathSecret
	for {
		if !t.Blank(x) {
			kp, err := treeNodeKeyPair(t.suite, secret)
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(kp.pub, t.EncryptionKey(x)) {
				return nil, fmt.Errorf("%w: node %d", ErrPathKeyMismatch, x)
			}
			c.set(x, kp)
			if secret, err = t.suite.DeriveSecret(secret, "path"); err != nil {
				return nil, err
			}
		}
		parent, ok := x.Parent(t.leafCount)
		if !ok {
			return c, nil
		}
		x = parent
	}
}

func (p *TreePrivateKeys) set(x NodeIndex, kp treeKeyPair) {
	if k := p.find(x); k != nil {
		k.treeKeyPair = kp
		return
	}
	p.nodes = append(p.nodes, treeNodeKey{x, kp})
	slices.SortFunc(p.nodes, func(a, b treeNodeKey) int { return int(int64(a.node) - int64(b.node)) })
}

// treeNodeKeyPair derives a node's key pair from its path secret.
func treeNodeKeyPair(cs CipherSuite, pathSecret []byte) (treeKeyPair, error) {
	nodeSecret, err := cs.DeriveSecret(pathSecret, "node")
	if err != nil {
		return treeKeyPair{}, err
	}
	priv, pub, err := cs.DeriveKeyPair(nodeSecret)
	return treeKeyPair{priv, pub}, err
}

// marshal writes the private state:
//
//	struct {
//	    CipherSuite cipher_suite;
//	    uint32 leaf;
//	    HPKEPrivateKey leaf_priv; HPKEPublicKey leaf_pub;
//	    struct { uint32 node; HPKEPrivateKey priv; HPKEPublicKey pub; } nodes<V>;
//	} TreePrivateKeys;
func (p *TreePrivateKeys) marshal(e *Encoder) {
	e.Uint16(uint16(p.suite))
	e.Uint32(uint32(p.leaf))
	e.Opaque(p.own.priv)
	e.Opaque(p.own.pub)
	e.Vector(func(e *Encoder) {
		for _, k := range p.nodes {
			e.Uint32(uint32(k.node))
			e.Opaque(k.priv)
			e.Opaque(k.pub)
		}
	})
}

// unmarshal accepts only what marshal writes: a supported suite, keys of
// the suite's sizes, and parent nodes above the leaf in increasing order.
func (p *TreePrivateKeys) unmarshal(d *Decoder) {
	*p = TreePrivateKeys{suite: CipherSuite(d.Uint16()), leaf: LeafIndex(d.Uint32())}
	if d.Err() != nil {
		return
	}
	if err := p.suite.check(); err != nil {
		d.Fail(err)
		return
	}
	key := func(d *Decoder) treeKeyPair {
		kp := treeKeyPair{d.Opaque(), d.Opaque()}
		if d.Err() == nil && (len(kp.priv) != p.suite.HPKEPrivateKeySize() || len(kp.pub) != p.suite.HPKEPublicKeySize()) {
			d.Fail(fmt.Errorf("%w: HPKE key of the wrong size", ErrInvalidValue))
		}
		return kp
	}
	if uint64(p.leaf) >= MaxLeaves {
		d.Fail(fmt.Errorf("%w: leaf index %d", ErrInvalidValue, p.leaf))
		return
	}
	p.own = key(d)
	v := d.Vector()
	for v.More() {
		x := NodeIndex(v.Uint32())
		kp := key(v)
		if v.Err() != nil {
			return
		}
		if x.IsLeaf() || !treeIsAncestor(x, p.leaf.Node()) || (len(p.nodes) > 0 && p.nodes[len(p.nodes)-1].node >= x) {
			v.Fail(fmt.Errorf("%w: private key for node %d", ErrInvalidValue, x))
			return
		}
		p.nodes = append(p.nodes, treeNodeKey{x, kp})
	}
}

// Marshal encodes the private state for storage. It holds secrets.
func (p *TreePrivateKeys) Marshal() ([]byte, error) { return encode(p) }

// Unmarshal decodes a private state; trailing bytes are an error.
func (p *TreePrivateKeys) Unmarshal(b []byte) error { return decodeAll(b, p) }

// UpdatePathParams describes the Commit an UpdatePath belongs to.
type UpdatePathParams struct {
	// Sender is the committer's leaf. It must be non-blank: for an
	// external commit, place the joiner's leaf first with AddLeaf (at
	// FreeLeaf), then create or merge the path there.
	Sender LeafIndex
	// GroupID binds the committer's new leaf signature (LeafNodeTBS).
	GroupID []byte
	// Excluded lists the leaves added by the same Commit, which receive
	// the path secret through the Welcome instead (RFC 9420 §7.6).
	Excluded []LeafIndex
	// GroupContext returns the encoded provisional GroupContext for the
	// tree hash of the tree with the path merged (RFC 9420 §12.4.2); it is
	// the context of the path secret encryption.
	GroupContext func(treeHash []byte) ([]byte, error)
}

// UpdatePathResult is what a committer gets from CreateUpdatePath.
type UpdatePathResult struct {
	Path         *UpdatePath
	Private      *TreePrivateKeys // the committer's state for the new epoch
	CommitSecret []byte
	sender       LeafIndex
	secrets      []treeNodeSecret // path secrets along the filtered direct path
}

type treeNodeSecret struct {
	node   NodeIndex
	secret []byte
}

// PathSecretFor returns the path secret a member added by the Commit at
// leaf joiner receives in its GroupSecrets: the one of the lowest common
// ancestor of the committer and the joiner (RFC 9420 §12.4.3.1).
func (r *UpdatePathResult) PathSecretFor(joiner LeafIndex) ([]byte, bool) {
	if joiner == r.sender {
		return nil, false
	}
	x := CommonAncestor(r.sender.Node(), joiner.Node())
	for _, s := range r.secrets {
		if s.node == x {
			return bytes.Clone(s.secret), true
		}
	}
	return nil, false
}

// treePathPlan is an UpdatePath checked against the tree and turned into
// the nodes to install, before anything is changed.
type treePathPlan struct {
	sender  LeafIndex
	fdp     []NodeIndex
	copaths []NodeIndex // copath child of each fdp node
	parents []*ParentNode
	// leafParentHash is the parent hash the sender's leaf must carry.
	leafParentHash []byte
}

// planPath computes the filtered direct path of sender and the parent
// nodes (with parent hashes) that the given public keys produce.
func (t *RatchetTree) planPath(sender LeafIndex, keys [][]byte) (*treePathPlan, error) {
	fdp := t.FilteredDirectPath(sender)
	if len(keys) != len(fdp) {
		return nil, fmt.Errorf("%w: %d path nodes for a filtered direct path of %d", ErrInvalidUpdatePath, len(keys), len(fdp))
	}
	pl := &treePathPlan{sender: sender, fdp: fdp, copaths: make([]NodeIndex, len(fdp)), parents: make([]*ParentNode, len(fdp))}
	prev := sender.Node()
	for i, x := range fdp {
		pl.copaths[i] = copathChild(x, prev)
		prev = x
	}
	// Parent hashes run from the root down: each node's is the parent
	// hash of the next node up the filtered path, whose unmerged leaves
	// are empty, so the original sibling tree hash is the cached tree hash
	// of the (untouched) copath child.
	var ph []byte
	for i := len(fdp) - 1; i >= 0; i-- {
		pl.parents[i] = &ParentNode{EncryptionKey: keys[i], ParentHash: ph, UnmergedLeaves: []LeafIndex{}}
		ph = t.parentHashOf(keys[i], ph, t.nodeTreeHash(pl.copaths[i]))
	}
	if ph == nil {
		ph = []byte{}
	}
	pl.leafParentHash = ph
	for i := range pl.parents {
		if pl.parents[i].ParentHash == nil {
			pl.parents[i].ParentHash = []byte{}
		}
	}
	return pl, nil
}

// treeSaved is a snapshot of the pages a path merge overwrites.
type treeSaved struct {
	pages                map[int]*treePage
	members, last        int
	credUse, credSupport map[CredentialType]int
}

// applyPlan merges a planned path with the sender's new leaf into the tree
// and returns what it overwrote.
func (t *RatchetTree) applyPlan(pl *treePathPlan, leaf *LeafNode) *treeSaved {
	// The merge writes only the sender's leaf and its direct path; the
	// pages holding them are kept as they are, and since a tree never
	// changes a page it does not own, the tree gets a new owner token so
	// that the merge copies them instead.
	s := &treeSaved{pages: map[int]*treePage{}, members: t.members, last: t.last,
		credUse: maps.Clone(t.credUse), credSupport: maps.Clone(t.credSupport)}
	x := pl.sender.Node()
	for {
		s.pages[int(x>>treePageBits)] = t.pages[x>>treePageBits]
		p, ok := x.Parent(t.leafCount)
		if !ok {
			break
		}
		x = p
	}
	t.owner = new(treeOwner)
	t.blankDirectPath(pl.sender)
	for i, x := range pl.fdp {
		t.setNode(x, nil, pl.parents[i])
	}
	t.setNode(pl.sender.Node(), leaf, nil)
	return s
}

// restore undoes applyPlan.
func (t *RatchetTree) restore(s *treeSaved) {
	for i, pg := range s.pages {
		t.pages[i] = pg
	}
	t.members, t.last, t.credUse, t.credSupport = s.members, s.last, s.credUse, s.credSupport
}

// checkFreshKeys rejects path keys that already appear in the tree or
// twice in the path (RFC 9420 §12.4.2). The sender's own leaf, which the
// path replaces, is left out: that its key changes is a LeafNode rule
// (ValidateLeafNode), and an external joiner's leaf is already in place.
// It is one pass over the key tags of the tree, checking each against the
// few tags of the path.
func (t *RatchetTree) checkFreshKeys(sender LeafIndex, leafKey []byte, keys [][]byte) error {
	all := append([][]byte{leafKey}, keys...)
	tags := make([]uint64, len(all))
	var filter [4]uint64 // a 256-bit Bloom filter of the path's tags
	for i, k := range all {
		tags[i] = treeKeyTag(k)
		filter[tags[i]>>6&3] |= 1 << (tags[i] & 63)
		for _, k2 := range all[:i] {
			if bytes.Equal(k, k2) {
				return fmt.Errorf("%w: encryption key repeated in the path", ErrInvalidUpdatePath)
			}
		}
	}
	w := t.width()
	for pi, pg := range t.pages {
		for i, v := range pg.enc {
			if v == 0 || filter[v>>6&3]&(1<<(v&63)) == 0 || !slices.Contains(tags, v) {
				continue
			}
			x := NodeIndex(pi<<treePageBits + i)
			if int(x) >= w || x == sender.Node() {
				continue
			}
			for _, k := range all {
				if bytes.Equal(t.EncryptionKey(x), k) {
					return fmt.Errorf("%w: encryption key already in node %d", ErrInvalidUpdatePath, x)
				}
			}
		}
	}
	return nil
}

// CreateUpdatePath refreshes the committer's leaf and filtered direct path
// (RFC 9420 §7.4, §7.5) in t, which must already have the Commit's
// proposals applied, and encrypts the path secrets to the copath. leaf is
// the template of the committer's new leaf (credential, capabilities,
// extensions, signature key); its encryption key, source, parent hash and
// signature are set here and it is signed with signer. On error t is
// unchanged.
func (t *RatchetTree) CreateUpdatePath(rand io.Reader, params *UpdatePathParams, signer *Signer, leaf *LeafNode) (*UpdatePathResult, error) {
	cs := t.suite
	sender := params.Sender
	if t.Leaf(sender) == nil {
		return nil, fmt.Errorf("%w: committer at leaf %d", ErrBlankLeaf, sender)
	}
	if signer == nil || leaf == nil || params.GroupContext == nil {
		return nil, fmt.Errorf("%w: missing signer, leaf template or group context", ErrInvalidUpdatePath)
	}
	excluded := slices.Sorted(slices.Values(params.Excluded))
	fdp := t.FilteredDirectPath(sender)

	leafPriv, leafPub, err := cs.GenerateHPKEKeyPair(rand)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, cs.HashSize())
	if _, err := io.ReadFull(rand, secret); err != nil {
		return nil, fmt.Errorf("mls: reading randomness: %w", err)
	}
	res := &UpdatePathResult{sender: sender, secrets: make([]treeNodeSecret, len(fdp))}
	priv := &TreePrivateKeys{suite: cs, leaf: sender, own: treeKeyPair{leafPriv, leafPub}, nodes: make([]treeNodeKey, len(fdp))}
	keys := make([][]byte, len(fdp))
	for i, x := range fdp {
		kp, err := treeNodeKeyPair(cs, secret)
		if err != nil {
			return nil, err
		}
		res.secrets[i] = treeNodeSecret{x, secret}
		priv.nodes[i] = treeNodeKey{x, kp}
		keys[i] = kp.pub
		if secret, err = cs.DeriveSecret(secret, "path"); err != nil {
			return nil, err
		}
	}
	// With an empty filtered direct path (a lone member) the commit secret
	// is the fresh random secret itself: nobody else needs to derive it.
	res.CommitSecret = secret
	slices.SortFunc(priv.nodes, func(a, b treeNodeKey) int { return int(int64(a.node) - int64(b.node)) })
	res.Private = priv
	// The keys are fresh random ones, so unlike a received path they need
	// no check against the tree.
	pl, err := t.planPath(sender, keys)
	if err != nil {
		return nil, err
	}

	nl := *leaf
	nl.EncryptionKey = leafPub
	nl.Source = LeafNodeSourceCommit
	nl.Lifetime = Lifetime{}
	nl.ParentHash = pl.leafParentHash
	if err := nl.Sign(rand, signer, params.GroupID, sender); err != nil {
		return nil, err
	}

	saved := t.applyPlan(pl, &nl)
	path, err := t.encryptPath(rand, pl, res.secrets, excluded, params.GroupContext)
	if err != nil {
		t.restore(saved)
		return nil, err
	}
	path.LeafNode = nl
	res.Path = path
	return res, nil
}

// encryptPath encrypts each path secret to the resolution of its copath
// child, leaving out excluded leaves, under the provisional GroupContext
// of the tree with the path merged.
func (t *RatchetTree) encryptPath(rand io.Reader, pl *treePathPlan, secrets []treeNodeSecret, excluded []LeafIndex, groupContext func([]byte) ([]byte, error)) (*UpdatePath, error) {
	gc, err := groupContext(t.TreeHash())
	if err != nil {
		return nil, err
	}
	path := &UpdatePath{Nodes: make([]UpdatePathNode, len(pl.fdp))}
	var res []NodeIndex
	for i := range pl.fdp {
		res = t.appendResolution(res[:0], pl.copaths[i], excluded)
		cts := make([]HPKECiphertext, len(res))
		for j, r := range res {
			kem, ct, err := t.suite.EncryptWithLabel(rand, t.EncryptionKey(r), "UpdatePathNode", gc, secrets[i].secret)
			if err != nil {
				return nil, fmt.Errorf("mls: encrypting path secret to node %d: %w", r, err)
			}
			cts[j] = HPKECiphertext{KEMOutput: kem, Ciphertext: ct}
		}
		path.Nodes[i] = UpdatePathNode{EncryptionKey: pl.parents[i].EncryptionKey, EncryptedPathSecret: cts}
	}
	return path, nil
}

// MergeUpdatePath merges another member's UpdatePath into t (RFC 9420
// §7.5, receiver side, public part): it checks the number of path nodes
// and of ciphertexts, that the new keys are not already in the tree, that
// the leaf's source is commit and that its parent_hash is the parent hash
// of its filtered direct path. It does not verify the leaf's signature or
// other LeafNode rules: call ValidateLeafNode first. t must already have
// the Commit's other proposals applied. On error t is unchanged.
func (t *RatchetTree) MergeUpdatePath(params *UpdatePathParams, path *UpdatePath) error {
	_, _, err := t.mergeUpdatePath(params, path)
	return err
}

func (t *RatchetTree) mergeUpdatePath(params *UpdatePathParams, path *UpdatePath) (*treePathPlan, *treeSaved, error) {
	sender := params.Sender
	if path == nil {
		return nil, nil, fmt.Errorf("%w: no path", ErrInvalidUpdatePath)
	}
	if t.Leaf(sender) == nil {
		return nil, nil, fmt.Errorf("%w: committer at leaf %d", ErrBlankLeaf, sender)
	}
	if path.LeafNode.Source != LeafNodeSourceCommit {
		return nil, nil, &LeafNodeError{Leaf: int64(sender), Err: fmt.Errorf("%w: %v in an UpdatePath", ErrLeafNodeSource, path.LeafNode.Source)}
	}
	keys := make([][]byte, len(path.Nodes))
	for i := range path.Nodes {
		keys[i] = path.Nodes[i].EncryptionKey
	}
	pl, err := t.planPath(sender, keys)
	if err != nil {
		return nil, nil, err
	}
	excluded := slices.Sorted(slices.Values(params.Excluded))
	var res []NodeIndex
	for i := range pl.fdp {
		res = t.appendResolution(res[:0], pl.copaths[i], excluded)
		if n := len(path.Nodes[i].EncryptedPathSecret); n != len(res) {
			return nil, nil, fmt.Errorf("%w: %d ciphertexts for node %d, resolution has %d", ErrInvalidUpdatePath, n, pl.fdp[i], len(res))
		}
	}
	if !bytes.Equal(path.LeafNode.ParentHash, pl.leafParentHash) {
		return nil, nil, &ParentHashError{Node: sender.Node(), Reason: "committer's leaf parent_hash does not match its path"}
	}
	if err := t.checkFreshKeys(sender, path.LeafNode.EncryptionKey, keys); err != nil {
		return nil, nil, err
	}
	leaf := path.LeafNode
	return pl, t.applyPlan(pl, &leaf), nil
}

// ProcessUpdatePath merges another member's UpdatePath into t (see
// MergeUpdatePath) and decrypts it with the receiver's private keys priv
// (RFC 9420 §7.5): it decrypts the path secret of the lowest node of the
// committer's filtered direct path above the receiver, derives the path
// secrets above it, checks that the derived public keys are those of the
// path, and returns the receiver's private state for the new epoch (priv
// is not changed) and the commit secret. On error t is unchanged.
func (t *RatchetTree) ProcessUpdatePath(params *UpdatePathParams, priv *TreePrivateKeys, path *UpdatePath) (*TreePrivateKeys, []byte, error) {
	next, _, commitSecret, err := t.processUpdatePath(params, priv, path)
	return next, commitSecret, err
}

// processUpdatePath also returns the decrypted path secret.
func (t *RatchetTree) processUpdatePath(params *UpdatePathParams, priv *TreePrivateKeys, path *UpdatePath) (next *TreePrivateKeys, pathSecret, commitSecret []byte, err error) {
	if priv == nil || params.GroupContext == nil {
		return nil, nil, nil, fmt.Errorf("%w: missing private keys or group context", ErrInvalidUpdatePath)
	}
	if priv.suite != t.suite {
		return nil, nil, nil, fmt.Errorf("%w: private keys for suite %v", ErrPathKeyMismatch, priv.suite)
	}
	me := priv.leaf
	if me == params.Sender || t.Leaf(me) == nil {
		return nil, nil, nil, fmt.Errorf("%w: receiver at leaf %d cannot process this path", ErrNoPathSecret, me)
	}
	if slices.Contains(params.Excluded, me) {
		return nil, nil, nil, fmt.Errorf("%w: receiver at leaf %d was added by this commit", ErrNoPathSecret, me)
	}
	lca := CommonAncestor(me.Node(), params.Sender.Node())
	pl, saved, err := t.mergeUpdatePath(params, path)
	if err != nil {
		return nil, nil, nil, err
	}
	undo := func() { t.restore(saved) }
	k := slices.Index(pl.fdp, lca)
	if k < 0 {
		undo()
		return nil, nil, nil, fmt.Errorf("%w: common ancestor %d not on the committer's filtered direct path", ErrNoPathSecret, lca)
	}
	excluded := slices.Sorted(slices.Values(params.Excluded))
	res := t.appendResolution(nil, pl.copaths[k], excluded)
	var key []byte
	j := -1
	for i, r := range res {
		if key = priv.keyFor(r, t.EncryptionKey(r)); key != nil {
			j = i
			break
		}
	}
	if j < 0 {
		undo()
		return nil, nil, nil, fmt.Errorf("%w: no key for the resolution of node %d", ErrNoPathSecret, pl.copaths[k])
	}
	gc, err := params.GroupContext(t.TreeHash())
	if err != nil {
		undo()
		return nil, nil, nil, err
	}
	ct := path.Nodes[k].EncryptedPathSecret[j]
	secret, err := t.suite.DecryptWithLabel(key, "UpdatePathNode", gc, ct.KEMOutput, ct.Ciphertext)
	if err != nil {
		undo()
		return nil, nil, nil, fmt.Errorf("mls: path secret for node %d: %w", pl.fdp[k], err)
	}
	if len(secret) != t.suite.HashSize() {
		undo()
		return nil, nil, nil, fmt.Errorf("%w: path secret of %d bytes", ErrInvalidUpdatePath, len(secret))
	}
	pathSecret = secret
	next = priv.Clone()
	// Keys of nodes on the committer's direct path are replaced or blank.
	next.nodes = slices.DeleteFunc(next.nodes, func(n treeNodeKey) bool { return treeIsAncestor(n.node, params.Sender.Node()) })
	for i := k; i < len(pl.fdp); i++ {
		kp, err := treeNodeKeyPair(t.suite, secret)
		if err == nil && !bytes.Equal(kp.pub, path.Nodes[i].EncryptionKey) {
			err = fmt.Errorf("%w: node %d", ErrPathKeyMismatch, pl.fdp[i])
		}
		if err == nil {
			secret, err = t.suite.DeriveSecret(secret, "path")
		}
		if err != nil {
			undo()
			return nil, nil, nil, err
		}
		next.set(pl.fdp[i], kp)
	}
	return next, pathSecret, secret, nil
}
