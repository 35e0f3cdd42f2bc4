package mls

import (
	"bytes"
	"errors"
	"maps"
	"testing"
)

// treeTestPath returns a group, the tree before a commit by leaf 0, and
// that commit's UpdatePath result.
func treeTestPath(t *testing.T) (*treeSim, *RatchetTree, *UpdatePathParams, *UpdatePathResult) {
	t.Helper()
	s := treeTestGroup(t)
	before := s.tree.Clone()
	params := &UpdatePathParams{Sender: 0, GroupID: s.groupID, GroupContext: s.groupContext}
	res, err := s.tree.CreateUpdatePath(s.rnd, params, s.members[0].signer, s.tree.Leaf(0))
	if err != nil {
		t.Fatal(err)
	}
	return s, before, params, res
}

func treeBytes(t *testing.T, tree *RatchetTree) []byte {
	t.Helper()
	b, err := tree.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProcessUpdatePathRejects(t *testing.T) {
	s, before, params, res := treeTestPath(t)
	orig := treeBytes(t, before)
	origHash := before.TreeHash()
	receiver := LeafIndex(2)
	priv := s.privs[receiver]

	clonePath := func() *UpdatePath {
		var p UpdatePath
		b, _ := res.Path.Marshal()
		if err := p.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		return &p
	}
	var ph *ParentHashError
	for _, c := range []struct {
		name string
		edit func(p *UpdatePath, params *UpdatePathParams)
		is   error
		as   any
	}{
		{"leaf parent hash", func(p *UpdatePath, _ *UpdatePathParams) { p.LeafNode.ParentHash[0] ^= 1 }, ErrParentHashMismatch, &ph},
		{"node key changed", func(p *UpdatePath, _ *UpdatePathParams) {
			p.Nodes[len(p.Nodes)-1].EncryptionKey = bytes.Clone(before.Leaf(1).EncryptionKey)
		}, ErrParentHashMismatch, nil},
		{"missing node", func(p *UpdatePath, _ *UpdatePathParams) { p.Nodes = p.Nodes[:len(p.Nodes)-1] }, ErrInvalidUpdatePath, nil},
		{"missing ciphertext", func(p *UpdatePath, _ *UpdatePathParams) {
			p.Nodes[0].EncryptedPathSecret = p.Nodes[0].EncryptedPathSecret[1:]
		}, ErrInvalidUpdatePath, nil},
		{"wrong leaf source", func(p *UpdatePath, _ *UpdatePathParams) { p.LeafNode.Source = LeafNodeSourceUpdate }, ErrLeafNodeSource, nil},
		{"corrupt ciphertext", func(p *UpdatePath, _ *UpdatePathParams) {
			for i := range p.Nodes {
				for j := range p.Nodes[i].EncryptedPathSecret {
					p.Nodes[i].EncryptedPathSecret[j].Ciphertext[0] ^= 1
				}
			}
		}, ErrDecryption, nil},
		{"other group context", func(_ *UpdatePath, params *UpdatePathParams) {
			params.GroupContext = func(th []byte) ([]byte, error) {
				b, err := s.groupContext(th)
				return append(b[:len(b)-1:len(b)-1], 9), err
			}
		}, ErrDecryption, nil},
		{"blank sender", func(_ *UpdatePath, params *UpdatePathParams) { params.Sender = 60 }, ErrBlankLeaf, nil},
		{"receiver excluded", func(_ *UpdatePath, params *UpdatePathParams) { params.Excluded = []LeafIndex{receiver} }, ErrNoPathSecret, nil},
	} {
		p := clonePath()
		pp := *params
		c.edit(p, &pp)
		work := before.Clone()
		_, _, err := work.ProcessUpdatePath(&pp, priv, p)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !errors.Is(err, c.is) {
			t.Errorf("%s: error %v is not %v", c.name, err, c.is)
		}
		if c.as != nil && !errors.As(err, c.as) {
			t.Errorf("%s: error %v has the wrong type", c.name, err)
		}
		if !bytes.Equal(treeBytes(t, work), orig) || !bytes.Equal(work.TreeHash(), origHash) ||
			work.members != before.members || work.last != before.last ||
			!maps.Equal(work.credUse, before.credUse) || !maps.Equal(work.credSupport, before.credSupport) {
			t.Errorf("%s: tree changed by a rejected path", c.name)
		}
	}
	// The untouched path still works for the same receiver.
	work := before.Clone()
	if _, secret, err := work.ProcessUpdatePath(params, priv, res.Path); err != nil || !bytes.Equal(secret, res.CommitSecret) {
		t.Fatalf("good path: %v", err)
	}
}

func TestCreateUpdatePathFailureLeavesTree(t *testing.T) {
	s := treeTestGroup(t)
	orig := treeBytes(t, s.tree)
	boom := errors.New("no context")
	params := &UpdatePathParams{Sender: 1, GroupID: s.groupID, GroupContext: func([]byte) ([]byte, error) { return nil, boom }}
	if _, err := s.tree.CreateUpdatePath(s.rnd, params, s.members[1].signer, s.tree.Leaf(1)); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	if !bytes.Equal(treeBytes(t, s.tree), orig) {
		t.Fatal("tree changed by a failed CreateUpdatePath")
	}
	s.check()
}

func TestTreePrivateKeysRoundTrip(t *testing.T) {
	s, _, _, res := treeTestPath(t)
	for _, p := range []*TreePrivateKeys{res.Private, s.privs[2], s.privs[5]} {
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var q TreePrivateKeys
		if err := q.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		b2, _ := q.Marshal()
		if !bytes.Equal(b, b2) {
			t.Fatal("round trip changed the bytes")
		}
		if q.Leaf() != p.Leaf() || !bytes.Equal(q.LeafPrivateKey(), p.LeafPrivateKey()) || len(q.Nodes()) != len(p.Nodes()) {
			t.Fatal("round trip changed the keys")
		}
	}
	if err := res.Private.Check(s.tree); err != nil {
		t.Fatal(err)
	}
	b, _ := res.Private.Marshal()
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"truncated", b[:len(b)-1]},
		{"trailing", append(bytes.Clone(b), 0)},
		{"unknown suite", append([]byte{0x77, 0x77}, b[2:]...)},
	} {
		var q TreePrivateKeys
		if err := q.Unmarshal(c.b); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

func TestTreePrivateKeysWithPathSecret(t *testing.T) {
	s, _, _, res := treeTestPath(t)
	// A joiner's Welcome path secret: every member below the committer's
	// path can rebuild its keys from the secret of their common ancestor.
	for l := range s.tree.Members() {
		if l == 0 {
			continue
		}
		secret, ok := res.PathSecretFor(l)
		if !ok {
			t.Fatalf("no path secret for %d", l)
		}
		p, err := s.privs[l].WithPathSecret(s.tree, CommonAncestor(0, l.Node()), secret)
		if err != nil {
			t.Fatalf("leaf %d: %v", l, err)
		}
		if err := p.Check(s.tree); err != nil {
			t.Fatalf("leaf %d: %v", l, err)
		}
		bad := bytes.Clone(secret)
		bad[0] ^= 1
		if _, err := s.privs[l].WithPathSecret(s.tree, CommonAncestor(0, l.Node()), bad); !errors.Is(err, ErrPathKeyMismatch) {
			t.Fatalf("leaf %d, wrong secret: %v", l, err)
		}
	}
	if _, ok := res.PathSecretFor(0); ok {
		t.Fatal("path secret for the committer itself")
	}
}

// FuzzTreePrivateKeys: any accepted encoding re-encodes to the same bytes.
func FuzzTreePrivateKeys(f *testing.F) {
	s := newTreeSim(f, 21)
	s.commit(0, 4, nil, nil, true)
	for _, p := range s.privs {
		b, _ := p.Marshal()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p TreePrivateKeys
		if err := p.Unmarshal(b); err != nil {
			return
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip: %x -> %x", b, out)
		}
	})
}

// FuzzRatchetTreeFromNodes: an accepted tree re-encodes to the same bytes,
// and hashing, resolutions, filtered paths and validation never panic.
func FuzzRatchetTreeFromNodes(f *testing.F) {
	// A small tree with a path and an unmerged leaf: big seeds make the
	// fuzzer's minimization of each new input slow.
	s := newTreeSim(f, 22)
	s.commit(0, 2, nil, nil, true)
	s.commit(1, 1, nil, nil, false)
	b, _ := s.tree.Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		tree, err := UnmarshalRatchetTree(treeTestSuite, b)
		if err != nil {
			return
		}
		out, err := tree.Marshal()
		if err != nil {
			return // a node that cannot be encoded (checked by the core's codec)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip: %x -> %x", b, out)
		}
		tree.TreeHash()
		for x := range tree.NodeCount() {
			tree.Resolution(NodeIndex(x))
		}
		for l := range tree.LeafCount() {
			tree.FilteredDirectPath(LeafIndex(l))
		}
		_ = tree.ValidateStructure(s.gc())
	})
}

func TestMergeUpdatePathRejectsKnownKey(t *testing.T) {
	s, before, params, res := treeTestPath(t)
	for _, reuse := range []NodeIndex{2, 6} { // a leaf's key, and another
		var p UpdatePath
		b, _ := res.Path.Marshal()
		if err := p.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		keys := make([][]byte, len(p.Nodes))
		for i := range p.Nodes {
			keys[i] = p.Nodes[i].EncryptionKey
		}
		keys[len(keys)-1] = bytes.Clone(before.EncryptionKey(reuse))
		p.Nodes[len(keys)-1].EncryptionKey = keys[len(keys)-1]
		// A consistent, signed leaf: only the key reuse is wrong.
		pl, err := before.planPath(params.Sender, keys)
		if err != nil {
			t.Fatal(err)
		}
		p.LeafNode.ParentHash = pl.leafParentHash
		if err := p.LeafNode.Sign(s.rnd, s.members[0].signer, s.groupID, params.Sender); err != nil {
			t.Fatal(err)
		}
		work := before.Clone()
		if err := work.MergeUpdatePath(params, &p); !errors.Is(err, ErrInvalidUpdatePath) {
			t.Fatalf("key of node %d reused: %v", reuse, err)
		}
		if !bytes.Equal(work.TreeHash(), before.TreeHash()) {
			t.Fatal("tree changed")
		}
	}
}

// TestExternalJoinPath: an external joiner takes the leftmost free leaf,
// creates a path there, and every member places it the same way and
// processes the path.
func TestExternalJoinPath(t *testing.T) {
	s := treeTestGroup(t)
	if err := s.tree.RemoveLeaf(1); err != nil { // leave a hole to fill
		t.Fatal(err)
	}
	for l, p := range s.privs {
		s.privs[l] = p.Prune(s.tree)
	}
	delete(s.privs, 1)
	before := s.tree.Clone()
	joiner := s.newMember()
	at := s.tree.FreeLeaf()
	if at != 1 {
		t.Fatalf("free leaf %d, want 1", at)
	}
	tmpl := *joiner.leaf
	tmpl.Source = LeafNodeSourceCommit
	if _, err := s.tree.AddLeaf(&tmpl); err != nil {
		t.Fatal(err)
	}
	params := &UpdatePathParams{Sender: at, GroupID: s.groupID, GroupContext: s.groupContext}
	res, err := s.tree.CreateUpdatePath(s.rnd, params, joiner.signer, &tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if err := before.ValidateLeafNode(nil, s.gc(), &res.Path.LeafNode, LeafNodeSourceCommit, at); err != nil {
		t.Fatalf("joiner's leaf: %v", err)
	}
	for l, p := range s.privs {
		work := before.Clone()
		if got, err := work.AddLeaf(&res.Path.LeafNode); err != nil || got != at {
			t.Fatalf("member %d places the joiner at %d: %v", l, got, err)
		}
		_, secret, err := work.ProcessUpdatePath(params, p, res.Path)
		if err != nil {
			t.Fatalf("member %d: %v", l, err)
		}
		if !bytes.Equal(secret, res.CommitSecret) || !bytes.Equal(work.TreeHash(), s.tree.TreeHash()) {
			t.Fatalf("member %d disagrees", l)
		}
	}
	if err := s.tree.Validate(s.gc()); err != nil {
		t.Fatal(err)
	}
}
