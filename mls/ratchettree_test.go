package mls

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
)

const treeTestSuite = MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519

// treeTestMember is a client of the tree tests: its signer and the leaf
// it would join with.
type treeTestMember struct {
	signer  *Signer
	leaf    *LeafNode
	encPriv []byte
}

// newTreeTestMember makes a client with a key_package leaf whose keys
// come from rnd.
func newTreeTestMember(tb testing.TB, cs CipherSuite, rnd io.Reader, id string) *treeTestMember {
	tb.Helper()
	sigPriv, _, err := cs.GenerateSignatureKeyPair(rnd)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := cs.NewSigner(sigPriv)
	if err != nil {
		tb.Fatal(err)
	}
	encPriv, encPub, err := cs.GenerateHPKEKeyPair(rnd)
	if err != nil {
		tb.Fatal(err)
	}
	leaf := &LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  signer.Public(),
		Credential:    NewBasicCredential([]byte(id)),
		Capabilities: Capabilities{
			Versions:     []ProtocolVersion{ProtocolVersionMLS10},
			CipherSuites: []CipherSuite{cs},
			Credentials:  []CredentialType{CredentialTypeBasic},
		},
		Source:     LeafNodeSourceKeyPackage,
		Lifetime:   Lifetime{NotBefore: 1_700_000_000, NotAfter: 1_700_000_000 + 90*86400},
		Extensions: Extensions{},
	}
	if err := leaf.Sign(rnd, signer, nil, 0); err != nil {
		tb.Fatal(err)
	}
	return &treeTestMember{signer: signer, leaf: leaf, encPriv: encPriv}
}

// treeSim is a group of in-memory TreeKEM members sharing one public tree:
// each commit is created by one member and processed by all others, which
// must agree on the commit secret and hold keys consistent with the tree.
type treeSim struct {
	tb      testing.TB
	cs      CipherSuite
	rnd     *rand.ChaCha8
	groupID []byte
	epoch   uint64
	tree    *RatchetTree
	members map[LeafIndex]*treeTestMember
	privs   map[LeafIndex]*TreePrivateKeys
	next    int
}

func newTreeSim(tb testing.TB, seed byte) *treeSim {
	s := &treeSim{tb: tb, cs: treeTestSuite, rnd: seededReader(seed), groupID: []byte("tree sim"),
		members: map[LeafIndex]*treeTestMember{}, privs: map[LeafIndex]*TreePrivateKeys{}}
	m := s.newMember()
	tree, err := NewRatchetTree(s.cs, m.leaf)
	if err != nil {
		tb.Fatal(err)
	}
	s.tree = tree
	s.members[0] = m
	s.privs[0] = s.mustPriv(0, m.encPriv)
	return s
}

func (s *treeSim) newMember() *treeTestMember {
	s.next++
	return newTreeTestMember(s.tb, s.cs, s.rnd, fmt.Sprintf("member %d", s.next))
}

func (s *treeSim) mustPriv(l LeafIndex, encPriv []byte) *TreePrivateKeys {
	p, err := NewTreePrivateKeys(s.cs, l, encPriv)
	if err != nil {
		s.tb.Fatal(err)
	}
	return p
}

func (s *treeSim) groupContext(treeHash []byte) ([]byte, error) {
	gc := GroupContext{Version: ProtocolVersionMLS10, CipherSuite: s.cs, GroupID: s.groupID, Epoch: s.epoch + 1,
		TreeHash: treeHash, ConfirmedTranscriptHash: []byte{}, Extensions: Extensions{}}
	return gc.Marshal()
}

func (s *treeSim) randomMember(r *rand.Rand) LeafIndex {
	ls := slices.Sorted(func(yield func(LeafIndex) bool) {
		for l := range s.members {
			if !yield(l) {
				return
			}
		}
	})
	return ls[r.IntN(len(ls))]
}

// commit applies adds, removes and updates (an Update proposal from each
// leaf in updates) and, if withPath, an UpdatePath from committer, then
// has every other member process it.
func (s *treeSim) commit(committer LeafIndex, adds int, removes []LeafIndex, updates []LeafIndex, withPath bool) {
	tb := s.tb
	tb.Helper()
	type pendingUpdate struct {
		l    LeafIndex
		priv []byte
	}
	var ups []pendingUpdate
	for _, l := range updates {
		nm := newTreeTestMember(tb, s.cs, s.rnd, "update")
		leaf := *s.tree.Leaf(l)
		leaf.EncryptionKey = nm.leaf.EncryptionKey
		leaf.Source = LeafNodeSourceUpdate
		leaf.Lifetime = Lifetime{}
		leaf.ParentHash = nil
		if err := leaf.Sign(s.rnd, s.members[l].signer, s.groupID, l); err != nil {
			tb.Fatal(err)
		}
		if err := s.tree.ValidateLeafNode(nil, &GroupContext{Version: 1, CipherSuite: s.cs, GroupID: s.groupID}, &leaf, LeafNodeSourceUpdate, l); err != nil {
			tb.Fatalf("update of leaf %d: %v", l, err)
		}
		if err := s.tree.UpdateLeaf(l, &leaf); err != nil {
			tb.Fatal(err)
		}
		ups = append(ups, pendingUpdate{l, nm.encPriv})
	}
	for _, l := range removes {
		if err := s.tree.RemoveLeaf(l); err != nil {
			tb.Fatal(err)
		}
		delete(s.members, l)
		delete(s.privs, l)
	}
	var added []LeafIndex
	for range adds {
		m := s.newMember()
		l, err := s.tree.AddLeaf(m.leaf)
		if err != nil {
			tb.Fatal(err)
		}
		s.members[l] = m
		s.privs[l] = s.mustPriv(l, m.encPriv)
		added = append(added, l)
	}
	for _, u := range ups {
		p, err := s.privs[u.l].WithLeafKey(u.priv)
		if err != nil {
			tb.Fatal(err)
		}
		s.privs[u.l] = p
	}
	for l, p := range s.privs {
		s.privs[l] = p.Prune(s.tree)
	}
	s.epoch++
	if !withPath {
		return
	}
	before := s.tree.Clone()
	params := &UpdatePathParams{Sender: committer, GroupID: s.groupID, Excluded: added, GroupContext: s.groupContext}
	res, err := s.tree.CreateUpdatePath(s.rnd, params, s.members[committer].signer, s.tree.Leaf(committer))
	if err != nil {
		tb.Fatalf("create path from %d: %v", committer, err)
	}
	s.privs[committer] = res.Private
	for l, p := range s.privs {
		if l == committer {
			continue
		}
		if slices.Contains(added, l) {
			x := CommonAncestor(committer.Node(), l.Node())
			secret, ok := res.PathSecretFor(l)
			if !ok {
				tb.Fatalf("no path secret for joiner %d", l)
			}
			np, err := p.WithPathSecret(s.tree, x, secret)
			if err != nil {
				tb.Fatalf("joiner %d: %v", l, err)
			}
			s.privs[l] = np
			continue
		}
		work := before.Clone()
		np, commitSecret, err := work.ProcessUpdatePath(params, p, res.Path)
		if err != nil {
			tb.Fatalf("member %d processing path from %d: %v", l, committer, err)
		}
		if !bytes.Equal(commitSecret, res.CommitSecret) {
			tb.Fatalf("member %d: commit secret differs", l)
		}
		if !bytes.Equal(work.TreeHash(), s.tree.TreeHash()) {
			tb.Fatalf("member %d: tree hash differs after processing", l)
		}
		s.privs[l] = np
	}
}

// check compares every cached hash with a recomputation from scratch and
// validates the tree and every member's keys.
func (s *treeSim) check() {
	tb := s.tb
	tb.Helper()
	b, err := s.tree.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	fresh, err := UnmarshalRatchetTree(s.cs, b)
	if err != nil {
		tb.Fatal(err)
	}
	if fresh.last != s.tree.last {
		tb.Fatalf("last non-blank node %d, a recount gives %d", s.tree.last, fresh.last)
	}
	if fresh.LeafCount() != s.tree.LeafCount() || fresh.MemberCount() != s.tree.MemberCount() || s.tree.MemberCount() != len(s.members) {
		tb.Fatalf("shape: %d/%d leaves, %d/%d/%d members", fresh.LeafCount(), s.tree.LeafCount(), fresh.MemberCount(), s.tree.MemberCount(), len(s.members))
	}
	for x := range s.tree.NodeCount() {
		if !bytes.Equal(s.tree.NodeTreeHash(NodeIndex(x)), fresh.NodeTreeHash(NodeIndex(x))) {
			tb.Fatalf("cached tree hash of node %d differs from a recomputation", x)
		}
		if NodeIndex(x).IsLeaf() {
			continue
		}
		l, _ := NodeIndex(x).Left()
		r, _ := NodeIndex(x).Right()
		for _, c := range []NodeIndex{l, r} {
			if !bytes.Equal(s.tree.ParentHash(NodeIndex(x), c), fresh.ParentHash(NodeIndex(x), c)) {
				tb.Fatalf("cached parent hash of node %d toward %d differs from a recomputation", x, c)
			}
		}
	}
	for _, counts := range [][2]map[CredentialType]int{{s.tree.credUse, fresh.credUse}, {s.tree.credSupport, fresh.credSupport}} {
		for c := range counts[0] {
			if counts[0][c] != counts[1][c] {
				tb.Fatalf("credential type %d counted %d times, a recount gives %d", c, counts[0][c], counts[1][c])
			}
		}
	}
	gc := &GroupContext{Version: ProtocolVersionMLS10, CipherSuite: s.cs, GroupID: s.groupID}
	if err := s.tree.Validate(gc); err != nil {
		tb.Fatalf("tree invalid: %v", err)
	}
	for l, p := range s.privs {
		if err := p.Check(s.tree); err != nil {
			tb.Fatalf("member %d keys: %v", l, err)
		}
	}
}

// TestTreeRandomOperations runs random commits (adds with and without a
// path, removes, updates, plain path updates) and after each checks the
// incrementally cached tree and parent hashes against a recomputation
// from scratch, the validity of the tree, and that every member agreed on
// the commit secret and holds keys matching the tree.
func TestTreeRandomOperations(t *testing.T) {
	for seed := range byte(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			s := newTreeSim(t, seed)
			r := rand.New(rand.NewPCG(uint64(seed), 7))
			for step := range 60 {
				c := s.randomMember(r)
				var removes, updates []LeafIndex
				adds := 0
				switch op := r.IntN(6); {
				case op <= 1 || len(s.members) < 3:
					adds = 1 + r.IntN(3)
				case op == 2:
					for l := range s.members {
						if l != c && len(removes) < 1+r.IntN(2) {
							removes = append(removes, l)
						}
					}
					slices.Sort(removes)
				case op == 3:
					if u := s.randomMember(r); u != c {
						updates = []LeafIndex{u}
					}
				}
				withPath := len(removes) > 0 || len(updates) > 0 || r.IntN(3) > 0
				s.commit(c, adds, removes, updates, withPath)
				if t.Failed() {
					t.Fatalf("step %d", step)
				}
				s.check()
			}
		})
	}
}

func TestTreeCloneIsIndependent(t *testing.T) {
	s := newTreeSim(t, 9)
	s.commit(0, 300, nil, nil, true) // several pages of nodes
	wire, _ := s.tree.Marshal()
	a, b, c := s.newMember().leaf, s.newMember().leaf, s.newMember().leaf
	// Ops on the original and on a clone, after the clone, and the same
	// ops on trees decoded afresh: each must match its own reference.
	opsClone := func(tr *RatchetTree) {
		if _, err := tr.AddLeaf(a); err != nil {
			t.Fatal(err)
		}
		if err := tr.RemoveLeaf(1); err != nil {
			t.Fatal(err)
		}
		if err := tr.UpdateLeaf(200, b); err != nil {
			t.Fatal(err)
		}
	}
	opsOrig := func(tr *RatchetTree) {
		if err := tr.RemoveLeaf(299); err != nil {
			t.Fatal(err)
		}
		if err := tr.UpdateLeaf(2, c); err != nil {
			t.Fatal(err)
		}
	}
	s.tree.TreeHash() // caches filled before the clone are shared
	cl := s.tree.Clone()
	opsOrig(s.tree)
	opsClone(cl)
	cl2 := cl.Clone()
	opsOrig(cl2) // a clone of a clone, changed where its source was not
	opsClone(s.tree.Clone())
	for _, x := range []struct {
		tree *RatchetTree
		ops  func(*RatchetTree)
	}{{cl, opsClone}, {s.tree, opsOrig}} {
		ref, err := UnmarshalRatchetTree(s.cs, wire)
		if err != nil {
			t.Fatal(err)
		}
		x.ops(ref)
		got, _ := x.tree.Marshal()
		want, _ := ref.Marshal()
		if !bytes.Equal(got, want) || !bytes.Equal(x.tree.TreeHash(), ref.TreeHash()) {
			t.Fatal("a tree and its clone affected each other")
		}
	}
}

func TestTreeAddRemoveShape(t *testing.T) {
	s := newTreeSim(t, 4)
	for range 4 {
		if _, err := s.tree.AddLeaf(s.newMember().leaf); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.tree.LeafCount(); got != 8 {
		t.Fatalf("5 members in %d leaves, want 8", got)
	}
	// The leftmost blank leaf is reused before the tree grows.
	if err := s.tree.RemoveLeaf(1); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.tree.AddLeaf(s.newMember().leaf); l != 1 {
		t.Fatalf("added at %d, want 1", l)
	}
	// Removing the rightmost members truncates down to the last one.
	for _, l := range []LeafIndex{4, 3, 2} {
		if err := s.tree.RemoveLeaf(l); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.tree.LeafCount(); got != 2 {
		t.Fatalf("2 members in %d leaves, want 2", got)
	}
	if err := s.tree.RemoveLeaf(3); err == nil {
		t.Fatal("removed a leaf outside the tree")
	}
	if err := s.tree.UpdateLeaf(7, s.newMember().leaf); err == nil {
		t.Fatal("updated a leaf outside the tree")
	}
}

func TestNewRatchetTreeFromNodesRejects(t *testing.T) {
	s := newTreeSim(t, 5)
	s.commit(0, 3, nil, nil, true)
	nodes := s.tree.Nodes()
	leaf, parent := nodes[0], nodes[1]
	for _, c := range []struct {
		name  string
		nodes TreeNodes
	}{
		{"empty", TreeNodes{}},
		{"trailing blank", append(slices.Clone(nodes), nil)},
		{"parent at leaf position", TreeNodes{parent}},
		{"leaf at parent position", TreeNodes{leaf, leaf, leaf}},
		{"both leaf and parent", TreeNodes{{Leaf: leaf.Leaf, Parent: parent.Parent}}},
		{"unmerged leaf outside node", TreeNodes{leaf, {Parent: &ParentNode{EncryptionKey: []byte{1}, UnmergedLeaves: []LeafIndex{5}}}, leaf}},
		{"unmerged leaves unsorted", TreeNodes{leaf, {Parent: &ParentNode{EncryptionKey: []byte{1}, UnmergedLeaves: []LeafIndex{1, 0}}}, leaf}},
	} {
		if _, err := NewRatchetTreeFromNodes(treeTestSuite, c.nodes); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	if _, err := NewRatchetTreeFromNodes(CipherSuite(0x7777), nodes); err == nil {
		t.Error("unknown suite accepted")
	}
}

func TestNewRatchetTreeFromNodesTooWide(t *testing.T) {
	s := newTreeSim(t, 6)
	nodes := make(TreeNodes, NodeWidth(MaxTreeLeaves)+2)
	nodes[len(nodes)-1] = &Node{Leaf: s.tree.Leaf(0)}
	if _, err := NewRatchetTreeFromNodes(s.cs, nodes); !errors.Is(err, ErrInvalidTree) {
		t.Fatalf("tree wider than MaxTreeLeaves: %v", err)
	}
}
