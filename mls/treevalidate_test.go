package mls

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"
)

// treeTestGroup returns a simulated group of 6 members with a populated
// tree, unmerged leaves included (the last add has no path).
func treeTestGroup(t *testing.T) *treeSim {
	s := newTreeSim(t, 11)
	s.commit(0, 3, nil, nil, true)
	s.commit(2, 1, nil, nil, true)
	s.commit(1, 1, nil, nil, false)
	s.check()
	return s
}

func (s *treeSim) gc() *GroupContext {
	return &GroupContext{Version: ProtocolVersionMLS10, CipherSuite: s.cs, GroupID: s.groupID, Extensions: Extensions{}}
}

// tampered returns a copy of s's tree whose nodes were changed by edit
// (on copies of the node values).
func (s *treeSim) tampered(t *testing.T, edit func(nodes TreeNodes)) *RatchetTree {
	t.Helper()
	nodes := s.tree.Nodes()
	for i, n := range nodes {
		if n == nil {
			continue
		}
		c := &Node{}
		if n.Leaf != nil {
			l := *n.Leaf
			c.Leaf = &l
		}
		if n.Parent != nil {
			p := *n.Parent
			p.UnmergedLeaves = slices.Clone(p.UnmergedLeaves)
			c.Parent = &p
		}
		nodes[i] = c
	}
	edit(nodes)
	tree, err := NewRatchetTreeFromNodes(s.cs, nodes)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func TestValidateTreeErrors(t *testing.T) {
	s := treeTestGroup(t)
	// Find a parent node with unmerged leaves, and leaves to play with.
	var withUnmerged NodeIndex
	for x := NodeIndex(1); uint32(x) < s.tree.NodeCount(); x += 2 {
		if p := s.tree.ParentNode(x); p != nil && len(p.UnmergedLeaves) > 0 {
			withUnmerged = x
		}
	}
	if withUnmerged == 0 {
		t.Fatal("test group has no unmerged leaves")
	}
	// Changing a leaf changes the parent hashes of the nodes whose
	// sibling subtree holds it, except for a leaf still unmerged at every
	// non-blank ancestor: the leaf tests change that one.
	un := s.tree.ParentNode(withUnmerged).UnmergedLeaves[0]
	resign := func(nodes TreeNodes, l LeafIndex) {
		if err := nodes[l.Node()].Leaf.Sign(s.rnd, s.members[l].signer, s.groupID, l); err != nil {
			t.Fatal(err)
		}
	}
	var dup *DuplicateKeyError
	var ph *ParentHashError
	var um *UnmergedLeavesError
	var ln *LeafNodeError
	for _, c := range []struct {
		name string
		edit func(nodes TreeNodes)
		is   error
		as   any
	}{
		{"bad parent hash", func(n TreeNodes) {
			root := Root(s.tree.LeafCount())
			n[root].Parent.EncryptionKey = n[0].Leaf.EncryptionKey[:]
			n[root].Parent.EncryptionKey = bytes.Clone(n[root].Parent.EncryptionKey)
			n[root].Parent.EncryptionKey[0] ^= 1
		}, ErrParentHashMismatch, &ph},
		{"duplicate encryption key", func(n TreeNodes) {
			n[2].Leaf.EncryptionKey = n[0].Leaf.EncryptionKey
			resign(n, 1)
		}, ErrDuplicateKey, &dup},
		{"duplicate signature key", func(n TreeNodes) {
			n[2].Leaf.SignatureKey = n[0].Leaf.SignatureKey
		}, ErrDuplicateKey, &dup},
		{"parent key reused", func(n TreeNodes) {
			n[withUnmerged].Parent.EncryptionKey = n[4].Leaf.EncryptionKey
		}, ErrDuplicateKey, &dup},
		{"unmerged leaf missing at an intermediate node", func(n TreeNodes) {
			// List a member at the root that a non-blank node between
			// them does not list.
			root := Root(s.tree.LeafCount())
			for l := range s.tree.Members() {
				for y, _ := l.Node().Parent(s.tree.LeafCount()); y != root; y, _ = y.Parent(s.tree.LeafCount()) {
					if n[y] != nil && !slices.Contains(n[y].Parent.UnmergedLeaves, l) && !slices.Contains(n[root].Parent.UnmergedLeaves, l) {
						n[root].Parent.UnmergedLeaves = treeInsertLeaf(n[root].Parent.UnmergedLeaves, l)
						return
					}
				}
			}
			t.Fatal("no member to list")
		}, ErrUnmergedLeaves, &um},
		{"unmerged leaf blank", func(n TreeNodes) {
			// Blank a member (not the last node, which must stay) and leave
			// it listed as unmerged.
			lo, hi := treeLeafRange(withUnmerged)
			for l := lo; l <= hi; l++ {
				if int(l.Node()) < len(n)-1 && n[l.Node()] != nil && !slices.Contains(n[withUnmerged].Parent.UnmergedLeaves, l) {
					n[withUnmerged].Parent.UnmergedLeaves = treeInsertLeaf(n[withUnmerged].Parent.UnmergedLeaves, l)
					n[l.Node()] = nil
					break
				}
			}
		}, ErrUnmergedLeaves, &um},
		{"bad leaf signature", func(n TreeNodes) {
			n[un.Node()].Leaf.Signature = bytes.Clone(n[un.Node()].Leaf.Signature)
			n[un.Node()].Leaf.Signature[5] ^= 1
		}, ErrInvalidSignature, &ln},
		{"leaf lacks the group's suite", func(n TreeNodes) {
			n[un.Node()].Leaf.Capabilities.CipherSuites = []CipherSuite{MLS_256_DHKEMP521_AES256GCM_SHA512_P521}
			resign(n, un)
		}, ErrCapabilities, &ln},
		{"credential type not supported by all", func(n TreeNodes) {
			n[un.Node()].Leaf.Credential = Credential{Type: CredentialTypeX509, Certificates: [][]byte{{1, 2, 3}}}
			n[un.Node()].Leaf.Capabilities.Credentials = []CredentialType{CredentialTypeBasic, CredentialTypeX509}
			resign(n, un)
		}, ErrUnsupportedCredential, &ln},
	} {
		tree := s.tampered(t, c.edit)
		err := tree.Validate(s.gc())
		if err == nil {
			t.Errorf("%s: tree accepted", c.name)
			continue
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: error %v is not %v", c.name, err, c.is)
		}
		if c.as != nil && !errors.As(err, c.as) {
			t.Errorf("%s: error %v has the wrong type", c.name, err)
		}
	}
	if err := s.tree.Validate(s.gc()); err != nil {
		t.Fatalf("the untouched tree: %v", err)
	}
}

func TestValidateTreeRequiredCapabilities(t *testing.T) {
	s := treeTestGroup(t)
	rc, _ := (&RequiredCapabilities{ExtensionTypes: []ExtensionType{0xff00}}).Marshal()
	gc := s.gc()
	gc.Extensions = Extensions{{Type: ExtensionTypeRequiredCapabilities, Data: rc}}
	if err := s.tree.ValidateStructure(gc); !errors.Is(err, ErrCapabilities) {
		t.Fatalf("required extension missing: %v", err)
	}
	rc, _ = (&RequiredCapabilities{CredentialTypes: []CredentialType{CredentialTypeBasic}, ProposalTypes: []ProposalType{ProposalTypeAdd}}).Marshal()
	gc.Extensions = Extensions{{Type: ExtensionTypeRequiredCapabilities, Data: rc}}
	if err := s.tree.ValidateStructure(gc); err != nil {
		t.Fatalf("requirements every leaf meets: %v", err)
	}
	gc.Extensions = Extensions{{Type: 0xff01, Data: nil}}
	if err := s.tree.ValidateStructure(gc); !errors.Is(err, ErrCapabilities) {
		t.Fatalf("group extension unsupported by members: %v", err)
	}
}

func TestValidateLeafNode(t *testing.T) {
	s := treeTestGroup(t)
	now := time.Unix(1_700_000_000+86400, 0)
	cfg := &Config{Time: func() time.Time { return now }}
	gc := s.gc()
	newKP := func() *treeTestMember { return newTreeTestMember(t, s.cs, s.rnd, "newcomer") }

	if err := s.tree.ValidateLeafNode(cfg, gc, newKP().leaf, LeafNodeSourceKeyPackage, 0); err != nil {
		t.Fatalf("good key package leaf: %v", err)
	}
	var ln *LeafNodeError
	check := func(name string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) || !errors.As(err, &ln) {
			t.Errorf("%s: got %v, want %v in a *LeafNodeError", name, err, want)
		}
	}
	check("wrong source", s.tree.ValidateLeafNode(cfg, gc, newKP().leaf, LeafNodeSourceUpdate, 1), ErrLeafNodeSource)
	late := &Config{Time: func() time.Time { return now.Add(365 * 24 * time.Hour) }}
	check("expired", s.tree.ValidateLeafNode(late, gc, newKP().leaf, LeafNodeSourceKeyPackage, 0), ErrLifetime)

	m := newKP()
	m.leaf.Lifetime.NotAfter = m.leaf.Lifetime.NotBefore + uint64(2*MaxLeafLifetime/time.Second)
	_ = m.leaf.Sign(s.rnd, m.signer, nil, 0)
	check("lifetime too long", s.tree.ValidateLeafNode(cfg, gc, m.leaf, LeafNodeSourceKeyPackage, 0), ErrLifetime)

	m = newKP()
	m.leaf.Extensions = Extensions{{Type: 0xff02}}
	_ = m.leaf.Sign(s.rnd, m.signer, nil, 0)
	check("own extension not in capabilities", s.tree.ValidateLeafNode(cfg, gc, m.leaf, LeafNodeSourceKeyPackage, 0), ErrCapabilities)

	m = newKP()
	m.leaf.Capabilities.Credentials = []CredentialType{CredentialTypeX509}
	_ = m.leaf.Sign(s.rnd, m.signer, nil, 0)
	check("own credential not in capabilities", s.tree.ValidateLeafNode(cfg, gc, m.leaf, LeafNodeSourceKeyPackage, 0), ErrUnsupportedCredential)

	m = newKP()
	m.leaf.Credential = Credential{Type: CredentialTypeX509, Certificates: [][]byte{{1}}}
	m.leaf.Capabilities.Credentials = []CredentialType{CredentialTypeBasic, CredentialTypeX509}
	_ = m.leaf.Sign(s.rnd, m.signer, nil, 0)
	check("credential members do not support", s.tree.ValidateLeafNode(cfg, gc, m.leaf, LeafNodeSourceKeyPackage, 0), ErrUnsupportedCredential)

	m = newKP()
	m.leaf.SignatureKey = s.tree.Leaf(1).SignatureKey
	check("signature key in use", s.tree.ValidateLeafNode(cfg, gc, m.leaf, LeafNodeSourceKeyPackage, 0), ErrDuplicateKey)

	m = newKP()
	m.leaf.EncryptionKey = s.tree.Leaf(2).EncryptionKey
	_ = m.leaf.Sign(s.rnd, m.signer, nil, 0)
	check("encryption key in use", s.tree.ValidateLeafNode(cfg, gc, m.leaf, LeafNodeSourceKeyPackage, 0), ErrDuplicateKey)

	m = newKP()
	m.leaf.Signature[0] ^= 1
	check("bad signature", s.tree.ValidateLeafNode(cfg, gc, m.leaf, LeafNodeSourceKeyPackage, 0), ErrInvalidSignature)

	// An Update must change the encryption key, and is signed for its leaf.
	up := *s.tree.Leaf(1)
	up.Source = LeafNodeSourceUpdate
	_ = up.Sign(s.rnd, s.members[1].signer, s.groupID, 1)
	check("update keeps encryption key", s.tree.ValidateLeafNode(cfg, gc, &up, LeafNodeSourceUpdate, 1), ErrInvalidLeafNode)
	up.EncryptionKey = newKP().leaf.EncryptionKey
	_ = up.Sign(s.rnd, s.members[1].signer, s.groupID, 1)
	if err := s.tree.ValidateLeafNode(cfg, gc, &up, LeafNodeSourceUpdate, 1); err != nil {
		t.Fatalf("good update: %v", err)
	}
	_ = up.Sign(s.rnd, s.members[1].signer, s.groupID, 3)
	check("update signed for another leaf", s.tree.ValidateLeafNode(cfg, gc, &up, LeafNodeSourceUpdate, 1), ErrInvalidSignature)
}

func TestValidateKeyPackage(t *testing.T) {
	s := treeTestGroup(t)
	now := time.Unix(1_700_000_000+86400, 0)
	cfg := &Config{Time: func() time.Time { return now }}
	gc := s.gc()
	newKP := func() (*KeyPackage, *treeTestMember) {
		m := newTreeTestMember(t, s.cs, s.rnd, "newcomer")
		_, initPub, _ := s.cs.GenerateHPKEKeyPair(s.rnd)
		kp := &KeyPackage{Version: ProtocolVersionMLS10, CipherSuite: s.cs, InitKey: initPub, LeafNode: *m.leaf, Extensions: Extensions{}}
		if err := kp.Sign(s.rnd, m.signer); err != nil {
			t.Fatal(err)
		}
		return kp, m
	}
	kp, _ := newKP()
	if err := s.tree.ValidateKeyPackage(cfg, gc, kp); err != nil {
		t.Fatalf("good key package: %v", err)
	}
	kp.Version = 2
	if err := s.tree.ValidateKeyPackage(cfg, gc, kp); !errors.Is(err, ErrInvalidKeyPackage) {
		t.Errorf("wrong version: %v", err)
	}
	kp, m := newKP()
	kp.InitKey = kp.LeafNode.EncryptionKey
	_ = kp.Sign(s.rnd, m.signer)
	if err := s.tree.ValidateKeyPackage(cfg, gc, kp); !errors.Is(err, ErrInvalidKeyPackage) {
		t.Errorf("init key equal to encryption key: %v", err)
	}
	kp, _ = newKP()
	kp.Signature[3] ^= 1
	if err := s.tree.ValidateKeyPackage(cfg, gc, kp); !errors.Is(err, ErrInvalidSignature) || !errors.Is(err, ErrInvalidKeyPackage) {
		t.Errorf("bad key package signature: %v", err)
	}
	kp, _ = newKP()
	kp.LeafNode.Lifetime.NotBefore = uint64(now.Unix() + 10)
	if err := s.tree.ValidateKeyPackage(cfg, gc, kp); !errors.Is(err, ErrLifetime) {
		t.Errorf("not yet valid: %v", err)
	}
}
