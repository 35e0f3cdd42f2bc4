package mls

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
)

func TestVectorTreeOperations(t *testing.T) {
	var cases []struct {
		CipherSuite    CipherSuite `json:"cipher_suite"`
		TreeBefore     hexBytes    `json:"tree_before"`
		Proposal       hexBytes    `json:"proposal"`
		ProposalSender uint32      `json:"proposal_sender"`
		TreeHashBefore hexBytes    `json:"tree_hash_before"`
		TreeAfter      hexBytes    `json:"tree_after"`
		TreeHashAfter  hexBytes    `json:"tree_hash_after"`
	}
	const file = "tree-operations.json"
	loadVectors(t, file, &cases)
	tally := newVectorTally(t, file)
	for i, c := range cases {
		tally.run(fmt.Sprintf("%d/suite%d", i, c.CipherSuite), func(t *testing.T) {
			tree, err := UnmarshalRatchetTree(c.CipherSuite, c.TreeBefore)
			if err != nil {
				t.Fatal(err)
			}
			if got := tree.TreeHash(); !bytes.Equal(got, c.TreeHashBefore) {
				t.Fatalf("tree hash before = %x, want %x", got, c.TreeHashBefore)
			}
			var p Proposal
			if err := p.Unmarshal(c.Proposal); err != nil {
				t.Fatal(err)
			}
			switch p.Type {
			case ProposalTypeAdd:
				_, err = tree.AddLeaf(&p.KeyPackage.LeafNode)
			case ProposalTypeUpdate:
				err = tree.UpdateLeaf(LeafIndex(c.ProposalSender), p.LeafNode)
			case ProposalTypeRemove:
				err = tree.RemoveLeaf(p.Removed)
			default:
				t.Fatalf("unexpected proposal type %v", p.Type)
			}
			if err != nil {
				t.Fatal(err)
			}
			after, err := tree.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, c.TreeAfter) {
				t.Fatalf("tree after differs")
			}
			if got := tree.TreeHash(); !bytes.Equal(got, c.TreeHashAfter) {
				t.Fatalf("tree hash after = %x, want %x", got, c.TreeHashAfter)
			}
			// A tree rebuilt from the bytes hashes the same as the one
			// whose caches were updated incrementally.
			fresh, err := UnmarshalRatchetTree(c.CipherSuite, after)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(fresh.TreeHash(), c.TreeHashAfter) {
				t.Fatal("rebuilt tree hashes differently")
			}
		})
	}
	tally.report()
}

func TestVectorTreeValidation(t *testing.T) {
	var cases []struct {
		CipherSuite CipherSuite `json:"cipher_suite"`
		Tree        hexBytes    `json:"tree"`
		GroupID     hexBytes    `json:"group_id"`
		Resolutions [][]uint32  `json:"resolutions"`
		TreeHashes  []hexBytes  `json:"tree_hashes"`
	}
	const file = "tree-validation.json"
	loadVectors(t, file, &cases)
	tally := newVectorTally(t, file)
	for i, c := range cases {
		tally.run(fmt.Sprintf("%d/suite%d", i, c.CipherSuite), func(t *testing.T) {
			tree, err := UnmarshalRatchetTree(c.CipherSuite, c.Tree)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Resolutions) != int(tree.NodeCount()) || len(c.TreeHashes) != int(tree.NodeCount()) {
				t.Fatalf("vector has %d resolutions and %d hashes for %d nodes", len(c.Resolutions), len(c.TreeHashes), tree.NodeCount())
			}
			for x := range c.Resolutions {
				got := tree.Resolution(NodeIndex(x))
				want := make([]NodeIndex, len(c.Resolutions[x]))
				for j, v := range c.Resolutions[x] {
					want[j] = NodeIndex(v)
				}
				if !slices.Equal(got, want) {
					t.Errorf("resolution of %d = %v, want %v", x, got, want)
				}
				if h := tree.NodeTreeHash(NodeIndex(x)); !bytes.Equal(h, c.TreeHashes[x]) {
					t.Errorf("tree hash of %d = %x, want %x", x, h, c.TreeHashes[x])
				}
			}
			if err := tree.VerifyParentHashes(); err != nil {
				t.Errorf("parent hashes: %v", err)
			}
			if err := tree.VerifyLeafSignatures(c.GroupID, 0, LeafIndex(tree.LeafCount())); err != nil {
				t.Errorf("leaf signatures: %v", err)
			}
			gc := &GroupContext{Version: ProtocolVersionMLS10, CipherSuite: c.CipherSuite, GroupID: c.GroupID}
			if err := tree.Validate(gc); err != nil {
				t.Errorf("full validation: %v", err)
			}
		})
	}
	tally.report()
}

type treeKEMVector struct {
	CipherSuite             CipherSuite `json:"cipher_suite"`
	GroupID                 hexBytes    `json:"group_id"`
	Epoch                   uint64      `json:"epoch"`
	ConfirmedTranscriptHash hexBytes    `json:"confirmed_transcript_hash"`
	RatchetTree             hexBytes    `json:"ratchet_tree"`
	LeavesPrivate           []struct {
		Index          uint32   `json:"index"`
		EncryptionPriv hexBytes `json:"encryption_priv"`
		SignaturePriv  hexBytes `json:"signature_priv"`
		PathSecrets    []struct {
			Node       uint32   `json:"node"`
			PathSecret hexBytes `json:"path_secret"`
		} `json:"path_secrets"`
	} `json:"leaves_private"`
	UpdatePaths []struct {
		Sender        uint32     `json:"sender"`
		UpdatePath    hexBytes   `json:"update_path"`
		PathSecrets   []hexBytes `json:"path_secrets"`
		CommitSecret  hexBytes   `json:"commit_secret"`
		TreeHashAfter hexBytes   `json:"tree_hash_after"`
	} `json:"update_paths"`
}

func TestVectorTreeKEM(t *testing.T) {
	var cases []treeKEMVector
	const file = "treekem.json"
	loadVectors(t, file, &cases)
	tally := newVectorTally(t, file)
	for i, c := range cases {
		tally.run(fmt.Sprintf("%d/suite%d", i, c.CipherSuite), func(t *testing.T) { testTreeKEMVector(t, &c) })
	}
	tally.report()
}

func testTreeKEMVector(t *testing.T, c *treeKEMVector) {
	cs := c.CipherSuite
	tree, err := UnmarshalRatchetTree(cs, c.RatchetTree)
	if err != nil {
		t.Fatal(err)
	}
	privs := map[LeafIndex]*TreePrivateKeys{}
	signers := map[LeafIndex]*Signer{}
	for _, lp := range c.LeavesPrivate {
		l := LeafIndex(lp.Index)
		p, err := NewTreePrivateKeys(cs, l, lp.EncryptionPriv)
		if err != nil {
			t.Fatal(err)
		}
		for _, ps := range lp.PathSecrets {
			kp, err := treeNodeKeyPair(cs, ps.PathSecret)
			if err != nil {
				t.Fatal(err)
			}
			p.set(NodeIndex(ps.Node), kp)
		}
		if err := p.Check(tree); err != nil {
			t.Fatalf("leaf %d: private state inconsistent with the tree: %v", l, err)
		}
		privs[l] = p
		if signers[l], err = cs.NewSigner(lp.SignaturePriv); err != nil {
			t.Fatal(err)
		}
	}
	groupContext := func(treeHash []byte) ([]byte, error) {
		gc := GroupContext{Version: ProtocolVersionMLS10, CipherSuite: cs, GroupID: c.GroupID, Epoch: c.Epoch,
			TreeHash: treeHash, ConfirmedTranscriptHash: c.ConfirmedTranscriptHash, Extensions: Extensions{}}
		return gc.Marshal()
	}
	treeBytes, _ := tree.Marshal()
	for _, up := range c.UpdatePaths {
		sender := LeafIndex(up.Sender)
		var path UpdatePath
		if err := path.Unmarshal(up.UpdatePath); err != nil {
			t.Fatal(err)
		}
		params := &UpdatePathParams{Sender: sender, GroupID: c.GroupID, GroupContext: groupContext}
		if err := path.LeafNode.Verify(cs, c.GroupID, sender); err != nil {
			t.Fatalf("sender %d leaf: %v", sender, err)
		}
		merged := tree.Clone()
		if err := merged.MergeUpdatePath(params, &path); err != nil {
			t.Fatalf("sender %d: merge: %v", sender, err)
		}
		if err := merged.VerifyParentHashes(); err != nil {
			t.Fatalf("sender %d: tree after merge: %v", sender, err)
		}
		if got := merged.TreeHash(); !bytes.Equal(got, up.TreeHashAfter) {
			t.Fatalf("sender %d: tree hash after = %x, want %x", sender, got, up.TreeHashAfter)
		}
		for j := range tree.LeafCount() {
			r := LeafIndex(j)
			if r == sender || tree.Leaf(r) == nil {
				continue
			}
			work := tree.Clone()
			_, ps, commit, err := work.processUpdatePath(params, privs[r], &path)
			if err != nil {
				t.Fatalf("sender %d, receiver %d: %v", sender, r, err)
			}
			if !bytes.Equal(ps, up.PathSecrets[r]) {
				t.Errorf("sender %d, receiver %d: path secret %x, want %x", sender, r, ps, up.PathSecrets[r])
			}
			if !bytes.Equal(commit, up.CommitSecret) {
				t.Errorf("sender %d, receiver %d: commit secret %x, want %x", sender, r, commit, up.CommitSecret)
			}
			if !bytes.Equal(work.TreeHash(), up.TreeHashAfter) {
				t.Errorf("sender %d, receiver %d: tree hash after processing differs", sender, r)
			}
		}
		// Our own UpdatePath from the same sender, processed by everyone.
		created := tree.Clone()
		res, err := created.CreateUpdatePath(seededReader(byte(sender)), params, signers[sender], tree.Leaf(sender))
		if err != nil {
			t.Fatalf("sender %d: create: %v", sender, err)
		}
		if err := res.Private.Check(created); err != nil {
			t.Fatalf("sender %d: committer's new keys: %v", sender, err)
		}
		for j := range tree.LeafCount() {
			r := LeafIndex(j)
			if r == sender || tree.Leaf(r) == nil {
				continue
			}
			work := tree.Clone()
			next, commit, err := work.ProcessUpdatePath(params, privs[r], res.Path)
			if err != nil {
				t.Fatalf("sender %d, receiver %d, own path: %v", sender, r, err)
			}
			if !bytes.Equal(commit, res.CommitSecret) {
				t.Errorf("sender %d, receiver %d: own path commit secret differs", sender, r)
			}
			if !bytes.Equal(work.TreeHash(), created.TreeHash()) {
				t.Errorf("sender %d, receiver %d: own path tree hash differs", sender, r)
			}
			// The derived keys were checked against the path while
			// processing; here only that they were stored for the path.
			for _, x := range work.FilteredDirectPath(sender) {
				if treeIsAncestor(x, r.Node()) {
					if _, ok := next.NodePrivateKey(x); !ok {
						t.Errorf("sender %d, receiver %d: no key stored for node %d", sender, r, x)
					}
				}
			}
		}
		// Neither operation touched the tree they were given.
		if after, _ := tree.Marshal(); !bytes.Equal(after, treeBytes) {
			t.Fatal("original tree changed")
		}
	}
}
