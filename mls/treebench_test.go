package mls

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
)

// treeBench is a big group built directly, without running n commits: the
// tree a group of n members reaches when each member, in index order,
// joins and then commits with an UpdatePath. Every parent node with a
// member in its right subtree is set by the rightmost member below it, so
// paths and parent-hash chains are exactly those of such a history, and
// the tree passes full validation. Every key is distinct and derived from
// the member's index; path secrets are derived as TreeKEM does, and the
// builder keeps every private key so any member's state can be produced.
type treeBench struct {
	cs       CipherSuite
	groupID  []byte
	tree     *RatchetTree
	signers  []*Signer
	leafPriv [][]byte
	nodePriv map[NodeIndex][]byte
}

func treeBenchSecret(tag string, i uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], i)
	h := sha256.Sum256(append([]byte(tag), b[:]...))
	return h[:]
}

func newTreeBench(tb testing.TB, n uint32) *treeBench {
	cs := treeTestSuite
	bt := &treeBench{cs: cs, groupID: []byte("bench group"), nodePriv: map[NodeIndex][]byte{}}
	leafCount := uint32(1)
	for leafCount < n {
		leafCount *= 2
	}
	t := newEmptyTree(cs, leafCount)
	bt.tree = t
	caps := Capabilities{Versions: []ProtocolVersion{ProtocolVersionMLS10}, CipherSuites: []CipherSuite{cs}, Credentials: []CredentialType{CredentialTypeBasic}}
	for r := range n {
		rl := LeafIndex(r)
		sigPriv, _, err := cs.GenerateSignatureKeyPair(seededReaderFrom(treeBenchSecret("sig", r)))
		if err != nil {
			tb.Fatal(err)
		}
		signer, err := cs.NewSigner(sigPriv)
		if err != nil {
			tb.Fatal(err)
		}
		encPriv, encPub, err := cs.DeriveKeyPair(treeBenchSecret("leaf", r))
		if err != nil {
			tb.Fatal(err)
		}
		bt.signers = append(bt.signers, signer)
		bt.leafPriv = append(bt.leafPriv, encPriv)

		// r's filtered direct path when it committed (members 0..r): the
		// ancestors with r in their right subtree. It keeps the lower
		// ones, those where no later member sits below.
		var fdp []NodeIndex
		x := rl.Node()
		for p, ok := x.Parent(leafCount); ok; p, ok = p.Parent(leafCount) {
			if x > p {
				fdp = append(fdp, p)
			}
			x = p
		}
		kept := 0
		for kept < len(fdp) {
			_, hi := treeLeafRange(fdp[kept])
			if min(uint32(hi), n-1) != r {
				break
			}
			kept++
		}
		secret := treeBenchSecret("path", r)
		for i := range kept {
			kp, err := treeNodeKeyPair(cs, secret)
			if err != nil {
				tb.Fatal(err)
			}
			bt.nodePriv[fdp[i]] = kp.priv
			t.setNode(fdp[i], nil, &ParentNode{EncryptionKey: kp.pub, UnmergedLeaves: []LeafIndex{}})
			if secret, err = cs.DeriveSecret(secret, "path"); err != nil {
				tb.Fatal(err)
			}
		}
		// Parent hashes from the top of what r still owns down to its leaf.
		// The top one pointed at a node a later member has replaced since;
		// its value no longer matters, so it is a stand-in.
		ph := []byte{}
		if kept < len(fdp) {
			ph = treeBenchSecret("stale", r)
		}
		for i := kept - 1; i >= 0; i-- {
			old := t.at(fdp[i]).parent
			t.setNode(fdp[i], nil, &ParentNode{EncryptionKey: old.EncryptionKey, ParentHash: ph, UnmergedLeaves: old.UnmergedLeaves})
			left, _ := fdp[i].Left()
			ph = t.parentHashOf(old.EncryptionKey, ph, t.nodeTreeHash(left))
		}
		if kept == 0 && len(fdp) > 0 {
			ph = treeBenchSecret("stale leaf", r)
		}
		leaf := &LeafNode{EncryptionKey: encPub, SignatureKey: signer.Public(),
			Credential: NewBasicCredential(fmt.Appendf(nil, "member %d", r)), Capabilities: caps,
			Source: LeafNodeSourceCommit, ParentHash: ph, Extensions: Extensions{}}
		if err := leaf.Sign(nil, signer, bt.groupID, rl); err != nil {
			tb.Fatal(err)
		}
		t.setNode(rl.Node(), leaf, nil)
	}
	t.TreeHash()
	return bt
}

// seededReaderFrom is a deterministic reader seeded with 32 bytes.
func seededReaderFrom(seed []byte) *treeSeeded {
	s := treeSeeded{}
	copy(s.seed[:], seed)
	return &s
}

// treeSeeded expands its seed with SHA-256 in counter mode.
type treeSeeded struct {
	seed [32]byte
	ctr  uint64
	buf  []byte
}

func (r *treeSeeded) Read(p []byte) (int, error) {
	for i := range p {
		if len(r.buf) == 0 {
			var c [8]byte
			binary.BigEndian.PutUint64(c[:], r.ctr)
			r.ctr++
			h := sha256.Sum256(append(r.seed[:], c[:]...))
			r.buf = h[:]
		}
		p[i] = r.buf[0]
		r.buf = r.buf[1:]
	}
	return len(p), nil
}

// private returns member l's TreeKEM state: its leaf key and the keys of
// its non-blank ancestors.
func (bt *treeBench) private(tb testing.TB, l LeafIndex) *TreePrivateKeys {
	p, err := NewTreePrivateKeys(bt.cs, l, bt.leafPriv[l])
	if err != nil {
		tb.Fatal(err)
	}
	for _, x := range l.Node().DirectPath(bt.tree.leafCount) {
		if !bt.tree.Blank(x) {
			pub, _ := bt.cs.HPKEPublicFromPrivate(bt.nodePriv[x])
			p.set(x, treeKeyPair{bt.nodePriv[x], pub})
		}
	}
	return p
}

func (bt *treeBench) groupContext(treeHash []byte) ([]byte, error) {
	gc := GroupContext{Version: ProtocolVersionMLS10, CipherSuite: bt.cs, GroupID: bt.groupID, Epoch: 1,
		TreeHash: treeHash, ConfirmedTranscriptHash: make([]byte, 32), Extensions: Extensions{}}
	return gc.Marshal()
}

func (bt *treeBench) gc() *GroupContext {
	return &GroupContext{Version: ProtocolVersionMLS10, CipherSuite: bt.cs, GroupID: bt.groupID, Extensions: Extensions{}}
}

func TestTreeBenchBuilderIsValid(t *testing.T) {
	for _, n := range []uint32{1, 2, 3, 10, 33} {
		bt := newTreeBench(t, n)
		if err := bt.tree.Validate(bt.gc()); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		for l := range n {
			if err := bt.private(t, LeafIndex(l)).Check(bt.tree); err != nil {
				t.Fatalf("n=%d, member %d: %v", n, l, err)
			}
		}
		if n < 2 {
			continue
		}
		// The last member, sibling of no one to its right, can process a
		// path from member 0 and vice versa.
		params := &UpdatePathParams{Sender: 0, GroupID: bt.groupID, GroupContext: bt.groupContext}
		work := bt.tree.Clone()
		res, err := work.CreateUpdatePath(seededReader(1), params, bt.signers[0], work.Leaf(0))
		if err != nil {
			t.Fatal(err)
		}
		recv := bt.tree.Clone()
		if _, secret, err := recv.ProcessUpdatePath(params, bt.private(t, LeafIndex(n-1)), res.Path); err != nil || string(secret) != string(res.CommitSecret) {
			t.Fatalf("n=%d: %v", n, err)
		}
	}
}

var treeBenchSizes = []uint32{2, 10, 100, 1000, 10000}

// BenchmarkRatchetTree measures the tree operations of a commit for groups
// of each size with suite 1:
//
//	create:   CreateUpdatePath by member 0 (full filtered direct path);
//	process:  ProcessUpdatePath of that path by member 1, the worst case
//	          (sibling: it derives every node up to the root);
//	hash:     an UpdateLeaf and the new root tree hash;
//	clone:    Clone, what staging a commit costs before any change;
//	validate-structure: everything a joiner checks but signatures;
//	validate: all of it, signatures on one core;
//	memory:   retained heap of a tree decoded from the wire with its
//	          hashes computed, per member.
func BenchmarkRatchetTree(b *testing.B) {
	for _, n := range treeBenchSizes {
		var bt *treeBench
		get := func(b *testing.B) *treeBench {
			if bt == nil {
				b.StopTimer()
				bt = newTreeBench(b, n)
				b.StartTimer()
			}
			return bt
		}
		prefix := fmt.Sprintf("members=%d/", n)
		b.Run(prefix+"create", func(b *testing.B) {
			bt := get(b)
			tree := bt.tree.Clone()
			params := &UpdatePathParams{Sender: 0, GroupID: bt.groupID, GroupContext: bt.groupContext}
			rnd := seededReader(3)
			defer treeReportCPU(b)()
			for b.Loop() {
				// Each iteration is the next commit of member 0 on the tree
				// the previous one left: same size and shape.
				if _, err := tree.CreateUpdatePath(rnd, params, bt.signers[0], tree.Leaf(0)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(prefix+"process", func(b *testing.B) {
			bt := get(b)
			params := &UpdatePathParams{Sender: 0, GroupID: bt.groupID, GroupContext: bt.groupContext}
			res, err := bt.tree.Clone().CreateUpdatePath(seededReader(4), params, bt.signers[0], bt.tree.Leaf(0))
			if err != nil {
				b.Fatal(err)
			}
			priv := bt.private(b, 1)
			defer treeReportCPU(b)()
			for b.Loop() {
				work := bt.tree.Clone() // staging: a few page copies
				if _, _, err := work.ProcessUpdatePath(params, priv, res.Path); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(prefix+"hash", func(b *testing.B) {
			bt := get(b)
			tree := bt.tree.Clone()
			a, c := *tree.Leaf(1), *tree.Leaf(1)
			c.Signature = append([]byte(nil), c.Signature...)
			c.Signature[0] ^= 1
			leaves := [2]*LeafNode{&a, &c}
			i := 0
			defer treeReportCPU(b)()
			for b.Loop() {
				if err := tree.UpdateLeaf(1, leaves[i&1]); err != nil {
					b.Fatal(err)
				}
				tree.TreeHash()
				i++
			}
		})
		b.Run(prefix+"clone", func(b *testing.B) {
			bt := get(b)
			for b.Loop() {
				bt.tree.Clone()
			}
		})
		validate := func(full bool) func(b *testing.B) {
			return func(b *testing.B) {
				bt := get(b)
				nodes := bt.tree.Nodes()
				var cpu int64
				for b.Loop() {
					b.StopTimer()
					fresh, err := NewRatchetTreeFromNodes(bt.cs, nodes)
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					start := processCPUTime()
					if full {
						err = fresh.Validate(bt.gc())
					} else {
						err = fresh.ValidateStructure(bt.gc())
					}
					cpu += processCPUTime() - start
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
			}
		}
		b.Run(prefix+"validate-structure", validate(false))
		b.Run(prefix+"validate", validate(true))
		b.Run(prefix+"memory", func(b *testing.B) {
			bt := get(b)
			wire, err := bt.tree.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			var perMember float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				tree, err := UnmarshalRatchetTree(bt.cs, wire)
				if err != nil {
					b.Fatal(err)
				}
				tree.TreeHash()
				runtime.GC()
				runtime.ReadMemStats(&after)
				perMember = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
				runtime.KeepAlive(tree)
			}
			b.ReportMetric(perMember, "B/member")
		})
	}
}

// treeReportCPU starts measuring the process CPU time (user and system,
// GC included) and returns a function that reports it per operation. On a
// shared machine wall time mostly measures the wait for a CPU.
func treeReportCPU(b *testing.B) func() {
	start := processCPUTime()
	return func() {
		b.ReportMetric(float64(processCPUTime()-start)/float64(b.N), "cpu-ns/op")
	}
}
