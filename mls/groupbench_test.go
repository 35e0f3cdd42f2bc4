package mls

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// grpBenchSizes are the group sizes of the group benchmarks.
var grpBenchSizes = []int{2, 10, 100, 1000, 10000}

func init() {
	if s := os.Getenv("MLS_GROUP_BENCH_SIZES"); s != "" {
		grpBenchSizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err == nil && n > 0 {
				grpBenchSizes = append(grpBenchSizes, n)
			}
		}
	}
}

// grpFixture is a group of n members in one epoch, as it looks after every
// member has committed at least once: every parent node is filled, so a
// path encrypts to O(log n) nodes. It is built directly (the paths of all
// even leaves are applied in turn, as their Commits would, without the
// encryption), which takes seconds instead of the hours n real Commits
// would take at 10,000 members. The tree is parent-hash valid and every
// leaf is signed, so a joiner validates it like any other.
type grpFixture struct {
	cs      CipherSuite
	groupID []byte
	tree    *RatchetTree
	leafKey map[LeafIndex]treeKeyPair
	nodeKey map[NodeIndex]treeKeyPair
	sigKey  map[LeafIndex][]byte
	ctx     GroupContext
	cfg     *Config
}

func grpBuildFixture(tb testing.TB, n int) *grpFixture {
	tb.Helper()
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	cfg := grpConfig(uint64(n))
	f := &grpFixture{cs: cs, groupID: []byte(fmt.Sprintf("bench-%d", n)), cfg: cfg,
		leafKey: map[LeafIndex]treeKeyPair{}, nodeKey: map[NodeIndex]treeKeyPair{}, sigKey: map[LeafIndex][]byte{}}
	nodes := make(TreeNodes, 2*n-1)
	for i := range n {
		l := LeafIndex(i)
		sig, _, err := cs.GenerateSignatureKeyPair(cfg.Random())
		if err != nil {
			tb.Fatal(err)
		}
		f.sigKey[l] = sig
		kpb, err := NewKeyPackage(cfg, cs, Identity{SignaturePrivateKey: sig, Credential: NewBasicCredential([]byte(fmt.Sprintf("m%d", i)))}, nil)
		if err != nil {
			tb.Fatal(err)
		}
		f.leafKey[l] = treeKeyPair{kpb.EncryptionPrivateKey, kpb.KeyPackage.LeafNode.EncryptionKey}
		ln := kpb.KeyPackage.LeafNode
		nodes[2*i] = &Node{Leaf: &ln}
	}
	tree, err := NewRatchetTreeFromNodes(cs, nodes)
	if err != nil {
		tb.Fatal(err)
	}
	for x := NodeIndex(1); uint32(x) < NodeWidth(tree.LeafCount()); x += 2 {
		priv, pub, err := cs.GenerateHPKEKeyPair(cfg.Random())
		if err != nil {
			tb.Fatal(err)
		}
		f.nodeKey[x] = treeKeyPair{priv, pub}
	}
	for i := 0; i < n; i += 2 {
		l := LeafIndex(i)
		fdp := tree.FilteredDirectPath(l)
		if len(fdp) == 0 {
			continue
		}
		keys := make([][]byte, len(fdp))
		for j, x := range fdp {
			keys[j] = f.nodeKey[x].pub
		}
		pl, err := tree.planPath(l, keys)
		if err != nil {
			tb.Fatal(err)
		}
		leaf := *tree.Leaf(l)
		leaf.Source = LeafNodeSourceCommit
		leaf.Lifetime = Lifetime{}
		leaf.ParentHash = pl.leafParentHash
		signer, err := cs.NewSigner(f.sigKey[l])
		if err != nil {
			tb.Fatal(err)
		}
		if err := leaf.Sign(cfg.Random(), signer, f.groupID, l); err != nil {
			tb.Fatal(err)
		}
		tree.applyPlan(pl, &leaf)
	}
	f.tree = tree
	f.ctx = GroupContext{Version: ProtocolVersionMLS10, CipherSuite: cs, GroupID: f.groupID, Epoch: 7,
		TreeHash: tree.TreeHash(), ConfirmedTranscriptHash: bytes.Repeat([]byte{1}, cs.HashSize()), Extensions: Extensions{}}
	return f
}

// member returns the Group of the member at leaf l.
func (f *grpFixture) member(tb testing.TB, l LeafIndex) *Group {
	tb.Helper()
	cs := f.cs
	signer, err := cs.NewSigner(f.sigKey[l])
	if err != nil {
		tb.Fatal(err)
	}
	priv := &TreePrivateKeys{suite: cs, leaf: l, own: f.leafKey[l]}
	for _, x := range l.Node().DirectPath(f.tree.LeafCount()) {
		if !f.tree.Blank(x) {
			priv.nodes = append(priv.nodes, treeNodeKey{x, f.nodeKey[x]})
		}
	}
	slices.SortFunc(priv.nodes, func(a, b treeNodeKey) int { return int(int64(a.node) - int64(b.node)) })
	if err := priv.Check(f.tree); err != nil {
		tb.Fatal(err)
	}
	g := &Group{opts: GroupOptions{Config: grpConfig(uint64(l) + 7)}, signer: signer, sigKey: f.sigKey[l], own: l, active: true}
	g.ep.ctx = f.ctx
	g.ep.tree = f.tree.Clone()
	g.ep.priv = priv
	secrets, err := DeriveEpochSecrets(&f.ctx, make([]byte, cs.HashSize()), nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tag := ConfirmationTag(cs, secrets.ConfirmationKey, f.ctx.ConfirmedTranscriptHash)
	if err := g.ep.finish(g.cfg(), secrets, tag); err != nil {
		tb.Fatal(err)
	}
	g.noteResumption()
	return g
}

// TestGroupFixture checks that the benchmark fixture is a real group: two
// members agree, a Commit of one is accepted by the other, and a joiner
// validates the tree.
func TestGroupFixture(t *testing.T) {
	f := grpBuildFixture(t, 13)
	a, b := f.member(t, 0), f.member(t, 12)
	pc, err := a.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.Process(pc.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Commit.EpochAuthenticator(), pc.Staged().EpochAuthenticator()) {
		t.Fatal("members disagree")
	}
	if err := f.tree.Validate(&f.ctx); err != nil {
		t.Fatal(err)
	}
	// A joiner validates the tree, with and without a parallel runner.
	joiner := grpNewMember(t, f.cs, 98, "joiner")
	kpb := joiner.keyPackage(t, f.cs)
	a.DiscardPending()
	pc, err = a.Commit(&CommitOptions{Proposals: []Proposal{{Type: ProposalTypeAdd, KeyPackage: kpb.KeyPackage}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range []func([]func() error) error{nil, grpRunParallel} {
		g, err := JoinFromWelcome(JoinOptions{GroupOptions: joiner.opts(), Parallel: run, ParallelJobs: 3}, pc.Welcome.Welcome, kpb)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(g.EpochAuthenticator(), pc.Staged().EpochAuthenticator()) {
			t.Fatal("joiner disagrees")
		}
	}
}

func BenchmarkGroupCommit(b *testing.B) {
	for _, n := range grpBenchSizes {
		f := grpBuildFixture(b, n)
		alice, bob := f.member(b, 0), f.member(b, LeafIndex(n-1))
		b.Run(fmt.Sprintf("create/n=%d", n), func(b *testing.B) {
			grpLoop(b, func() {
				if _, err := alice.Commit(nil); err != nil {
					b.Fatal(err)
				}
				alice.DiscardPending()
			})
		})
		pc, err := alice.Commit(nil)
		if err != nil {
			b.Fatal(err)
		}
		alice.DiscardPending()
		b.Run(fmt.Sprintf("process/n=%d", n), func(b *testing.B) {
			grpLoop(b, func() {
				if _, err := bob.Process(pc.Commit); err != nil {
					b.Fatal(err)
				}
			})
			cb, _ := pc.Commit.Marshal()
			b.ReportMetric(float64(len(cb)), "commit-bytes")
		})
	}
}

func BenchmarkGroupAdd(b *testing.B) {
	for _, n := range grpBenchSizes {
		f := grpBuildFixture(b, n)
		alice := f.member(b, 0)
		joiner := grpNewMember(b, f.cs, 99, "joiner")
		kpb := joiner.keyPackage(b, f.cs)
		add := &CommitOptions{Proposals: []Proposal{{Type: ProposalTypeAdd, KeyPackage: kpb.KeyPackage}}}
		pc, err := alice.Commit(add)
		if err != nil {
			b.Fatal(err)
		}
		alice.DiscardPending()
		b.Run(fmt.Sprintf("commit+welcome/n=%d", n), func(b *testing.B) {
			grpLoop(b, func() {
				if _, err := alice.Commit(add); err != nil {
					b.Fatal(err)
				}
				alice.DiscardPending()
			})
			cb, _ := pc.Commit.Marshal()
			wb, _ := pc.Welcome.Marshal()
			b.ReportMetric(float64(len(cb)), "commit-bytes")
			b.ReportMetric(float64(len(wb)), "welcome-bytes")
		})
		b.Run(fmt.Sprintf("join/n=%d", n), func(b *testing.B) {
			grpLoop(b, func() {
				if _, err := JoinFromWelcome(JoinOptions{GroupOptions: joiner.opts()}, pc.Welcome.Welcome, kpb); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run(fmt.Sprintf("join-parallel/n=%d", n), func(b *testing.B) {
			opts := JoinOptions{GroupOptions: joiner.opts(), Parallel: grpRunParallel, ParallelJobs: 2 * runtime.GOMAXPROCS(0)}
			grpLoop(b, func() {
				if _, err := JoinFromWelcome(opts, pc.Welcome.Welcome, kpb); err != nil {
					b.Fatal(err)
				}
			})
		})
		oob := &CommitOptions{Proposals: add.Proposals, OutOfBandTree: true}
		b.Run(fmt.Sprintf("commit+welcome-oob-tree/n=%d", n), func(b *testing.B) {
			var wb []byte
			grpLoop(b, func() {
				pc, err := alice.Commit(oob)
				if err != nil {
					b.Fatal(err)
				}
				wb, _ = pc.Welcome.Marshal()
				alice.DiscardPending()
			})
			b.ReportMetric(float64(len(wb)), "welcome-bytes")
		})
		b.Run(fmt.Sprintf("remove/n=%d", n), func(b *testing.B) {
			remove := &CommitOptions{Proposals: []Proposal{{Type: ProposalTypeRemove, Removed: LeafIndex(n - 1)}}}
			var cb []byte
			grpLoop(b, func() {
				pc, err := alice.Commit(remove)
				if err != nil {
					b.Fatal(err)
				}
				cb, _ = pc.Commit.Marshal()
				alice.DiscardPending()
			})
			b.ReportMetric(float64(len(cb)), "commit-bytes")
		})
		b.Run(fmt.Sprintf("state/n=%d", n), func(b *testing.B) {
			state, err := alice.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			var g *Group
			var heap uint64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				if g, err = UnmarshalGroup(alice.opts, state); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap = after.HeapAlloc - before.HeapAlloc
			}
			runtime.KeepAlive(g)
			b.ReportMetric(float64(heap), "heap-bytes")
			b.ReportMetric(float64(len(state)), "state-bytes")
		})
	}
}

// grpRunParallel runs jobs on goroutines, as a node passes to
// JoinOptions.Parallel.
func grpRunParallel(jobs []func() error) error {
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = job()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// grpLoop runs op in a benchmark loop and also reports the CPU time per
// operation (user+system time of the process), which the other processes
// sharing this machine disturb much less than wall-clock ns/op.
func grpLoop(b *testing.B, op func()) {
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	n := 0
	for b.Loop() {
		op()
		n++
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := func(r *syscall.Rusage) int64 { return r.Utime.Nano() + r.Stime.Nano() }
	if n > 0 {
		b.ReportMetric(float64(cpu(&after)-cpu(&before))/float64(n), "cpu-ns/op")
	}
}
