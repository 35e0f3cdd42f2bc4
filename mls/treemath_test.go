package mls

import (
	"fmt"
	"slices"
	"testing"
)

func TestVectorTreeMath(t *testing.T) {
	var cases []struct {
		NLeaves uint32    `json:"n_leaves"`
		NNodes  uint32    `json:"n_nodes"`
		Root    NodeIndex `json:"root"`
		Left    []*NodeIndex
		Right   []*NodeIndex
		Parent  []*NodeIndex
		Sibling []*NodeIndex
	}
	loadVectors(t, "tree-math.json", &cases)
	tally := newVectorTally(t, "tree-math.json")
	for _, c := range cases {
		tally.run(fmt.Sprintf("n_leaves=%d", c.NLeaves), func(t *testing.T) {
			if got := NodeWidth(c.NLeaves); got != c.NNodes {
				t.Errorf("NodeWidth = %d, want %d", got, c.NNodes)
			}
			if got := Root(c.NLeaves); got != c.Root {
				t.Errorf("Root = %d, want %d", got, c.Root)
			}
			check := func(name string, want []*NodeIndex, f func(NodeIndex) (NodeIndex, bool)) {
				if len(want) != int(c.NNodes) {
					t.Fatalf("%s: %d entries for %d nodes", name, len(want), c.NNodes)
				}
				for i, w := range want {
					got, ok := f(NodeIndex(i))
					switch {
					case w == nil && ok:
						t.Errorf("%s(%d) = %d, want none", name, i, got)
					case w != nil && (!ok || got != *w):
						t.Errorf("%s(%d) = %d,%v, want %d", name, i, got, ok, *w)
					}
				}
			}
			check("left", c.Left, NodeIndex.Left)
			check("right", c.Right, NodeIndex.Right)
			check("parent", c.Parent, func(x NodeIndex) (NodeIndex, bool) { return x.Parent(c.NLeaves) })
			check("sibling", c.Sibling, func(x NodeIndex) (NodeIndex, bool) { return x.Sibling(c.NLeaves) })
		})
	}
	tally.report()
}

func TestTreeMathPaths(t *testing.T) {
	// Tree with 8 leaves (RFC 9420 §4.1 figure): root 7.
	tests := []struct {
		x       NodeIndex
		nLeaves uint32
		direct  []NodeIndex
		copath  []NodeIndex
	}{
		{0, 8, []NodeIndex{1, 3, 7}, []NodeIndex{2, 5, 11}},
		{10, 8, []NodeIndex{9, 11, 7}, []NodeIndex{8, 13, 3}},
		{7, 8, nil, nil},
		{0, 1, nil, nil},
		{4, 4, []NodeIndex{5, 3}, []NodeIndex{6, 1}},
		{99, 8, nil, nil}, // outside the tree
	}
	for _, tc := range tests {
		if got := tc.x.DirectPath(tc.nLeaves); !slices.Equal(got, tc.direct) {
			t.Errorf("DirectPath(%d, %d) = %v, want %v", tc.x, tc.nLeaves, got, tc.direct)
		}
		if got := tc.x.Copath(tc.nLeaves); !slices.Equal(got, tc.copath) {
			t.Errorf("Copath(%d, %d) = %v, want %v", tc.x, tc.nLeaves, got, tc.copath)
		}
	}
}

func TestTreeMathEdges(t *testing.T) {
	if NodeWidth(0) != 0 || Root(0) != 0 {
		t.Errorf("empty tree: width %d root %d", NodeWidth(0), Root(0))
	}
	if _, ok := NodeIndex(5).Parent(2); ok {
		t.Error("Parent outside the tree reported ok")
	}
	if got := NodeWidth(1<<32 - 1); got != NodeWidth(MaxLeaves) {
		t.Errorf("NodeWidth saturates: got %d", got)
	}
	if _, ok := NodeIndex(1<<32 - 1).Right(); ok {
		t.Error("Right of the all-ones index reported ok")
	}
	if LeafIndex(3).Node() != 6 {
		t.Error("leaf 3 is node 6")
	}
	if l, ok := NodeIndex(6).Leaf(); !ok || l != 3 {
		t.Error("node 6 is leaf 3")
	}
	if _, ok := NodeIndex(7).Leaf(); ok {
		t.Error("node 7 is not a leaf")
	}
	for _, tc := range []struct{ x, y, want NodeIndex }{
		{0, 2, 1}, {0, 6, 3}, {0, 14, 7}, {4, 6, 5}, {1, 5, 3}, {3, 0, 3}, {8, 8, 8},
	} {
		if got := CommonAncestor(tc.x, tc.y); got != tc.want {
			t.Errorf("CommonAncestor(%d, %d) = %d, want %d", tc.x, tc.y, got, tc.want)
		}
	}
}
