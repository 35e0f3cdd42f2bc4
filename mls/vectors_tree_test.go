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
		})
	}
	tally.report()
}

