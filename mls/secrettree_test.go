package mls

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// seededReader returns a deterministic source of randomness for tests.
func seededReader(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

func testSecret(cs CipherSuite, seed byte) []byte {
	b := make([]byte, cs.HashSize())
	_, _ = seededReader(seed).Read(b)
	return b
}

func newTestTree(t *testing.T, cfg *Config, leaves uint32) *SecretTree {
	t.Helper()
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	tree, err := NewSecretTree(cfg, cs, testSecret(cs, 1), leaves)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func wantGenerationError(t *testing.T, err, sentinel error, gen uint32) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("got %v, want %v", err, sentinel)
	}
	var ge *GenerationError
	if !errors.As(err, &ge) || ge.Generation != gen {
		t.Fatalf("got %v, want a *GenerationError for generation %d", err, gen)
	}
}

func TestSecretTreeSendMatchesReceive(t *testing.T) {
	sender := newTestTree(t, nil, 4)
	receiver := newTestTree(t, nil, 4)
	for gen := range uint32(5) {
		for _, rt := range []RatchetType{RatchetHandshake, RatchetApplication} {
			sk, err := sender.SendKey(2, rt)
			if err != nil {
				t.Fatal(err)
			}
			if sk.Generation != gen {
				t.Fatalf("send generation %d, want %d", sk.Generation, gen)
			}
			rk, err := receiver.ReceiveKey(2, rt, gen)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sk.Key, rk.Key) || !bytes.Equal(sk.Nonce, rk.Nonce) {
				t.Fatalf("%v generation %d: sender and receiver keys differ", rt, gen)
			}
		}
	}
	// The ratchets are per leaf and type: other leaves start at 0.
	k, err := sender.SendKey(3, RatchetApplication)
	if err != nil || k.Generation != 0 {
		t.Fatalf("leaf 3: generation %d, %v", k.Generation, err)
	}
}

func TestSecretTreeOutOfOrder(t *testing.T) {
	tree := newTestTree(t, &Config{MaxForwardDistance: 10, MaxRetainedKeys: 3}, 2)
	ref := newTestTree(t, nil, 2)
	var want []RatchetKey
	for range 20 {
		k, err := ref.SendKey(1, RatchetApplication)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, k)
	}
	get := func(gen uint32) error {
		k, err := tree.ReceiveKey(1, RatchetApplication, gen)
		if err == nil && !bytes.Equal(k.Key, want[gen].Key) {
			t.Fatalf("generation %d: wrong key", gen)
		}
		return err
	}

	// 11 ahead of generation 0 is too far; 10 is not.
	wantGenerationError(t, get(11), ErrGenerationTooFarAhead, 11)
	if err := get(10); err != nil {
		t.Fatal(err)
	}
	// Only the newest 3 skipped keys (7, 8, 9) are retained.
	wantGenerationError(t, get(6), ErrGenerationUsed, 6)
	for _, gen := range []uint32{8, 7, 9} {
		if err := get(gen); err != nil {
			t.Fatalf("generation %d: %v", gen, err)
		}
	}
	// Each key serves once: replays fail.
	for _, gen := range []uint32{7, 8, 9, 10} {
		wantGenerationError(t, get(gen), ErrGenerationUsed, gen)
	}
	if err := get(11); err != nil {
		t.Fatal(err)
	}
	// Retained keys beyond the limit drop the oldest.
	if err := get(16); err != nil { // skips 12..15: keeps 13, 14, 15
		t.Fatal(err)
	}
	wantGenerationError(t, get(12), ErrGenerationUsed, 12)
	if err := get(13); err != nil {
		t.Fatal(err)
	}
}

func TestSecretTreeNoRetention(t *testing.T) {
	tree := newTestTree(t, &Config{MaxRetainedKeys: -1}, 2)
	if _, err := tree.ReceiveKey(0, RatchetHandshake, 3); err != nil {
		t.Fatal(err)
	}
	wantGenerationError(t, func() error { _, err := tree.ReceiveKey(0, RatchetHandshake, 2); return err }(), ErrGenerationUsed, 2)
	if n := len(tree.ratchets[0][RatchetHandshake].retained); n != 0 {
		t.Fatalf("%d keys retained, want 0", n)
	}
}

func TestSecretTreeInvalidInput(t *testing.T) {
	tree := newTestTree(t, nil, 3)
	if _, err := tree.SendKey(3, RatchetApplication); !errors.Is(err, ErrInvalidSender) {
		t.Errorf("leaf outside the tree: got %v, want ErrInvalidSender", err)
	}
	if _, err := tree.ReceiveKey(0, RatchetType(7), 0); err == nil {
		t.Errorf("unknown ratchet type accepted")
	}
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	for _, c := range []struct {
		name   string
		suite  CipherSuite
		secret []byte
		leaves uint32
	}{
		{"no leaves", cs, testSecret(cs, 1), 0},
		{"short secret", cs, make([]byte, 5), 2},
		{"unknown suite", CipherSuite(0x7777), testSecret(cs, 1), 2},
	} {
		if _, err := NewSecretTree(nil, c.suite, c.secret, c.leaves); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

// TestSecretTreeDeletion checks the deletion schedule of RFC 9420 §9.2: the
// secrets a key was derived from are erased, not only forgotten.
func TestSecretTreeDeletion(t *testing.T) {
	tree := newTestTree(t, nil, 4)
	root := tree.nodes[nodeIndex(tree.depth, 0)]
	if _, err := tree.SendKey(1, RatchetApplication); err != nil {
		t.Fatal(err)
	}
	if !allZero(root) {
		t.Errorf("root secret not erased after use")
	}
	// Left path consumed: remaining node secrets are the right subtree
	// (node 5) and leaf 0 (node 0); leaf 1's secret became its ratchets.
	if len(tree.nodes) != 2 || tree.nodes[5] == nil || tree.nodes[0] == nil {
		t.Errorf("unexpected node secrets after deriving leaf 1: %v", mapKeys(tree.nodes))
	}
	r := &tree.ratchets[1][RatchetApplication]
	old := r.secret
	k, err := tree.SendKey(1, RatchetApplication)
	if err != nil {
		t.Fatal(err)
	}
	if !allZero(old) {
		t.Errorf("ratchet secret of generation 1 not erased after stepping past it")
	}
	if k.Generation != 1 {
		t.Fatalf("generation %d", k.Generation)
	}

	// A retained key is erased when used.
	rx := newTestTree(t, nil, 4)
	if _, err := rx.ReceiveKey(2, RatchetHandshake, 2); err != nil {
		t.Fatal(err)
	}
	retained := rx.ratchets[2][RatchetHandshake].retained
	if len(retained) != 2 {
		t.Fatalf("%d retained keys, want 2", len(retained))
	}
	key0 := retained[0].Key
	if _, err := rx.ReceiveKey(2, RatchetHandshake, 0); err != nil {
		t.Fatal(err)
	}
	if !allZero(key0) {
		t.Errorf("retained key not erased after use")
	}
	if n := len(rx.ratchets[2][RatchetHandshake].retained); n != 1 {
		t.Errorf("%d retained keys after using one, want 1", n)
	}
}

// TestSecretTreeDiscardLeavesState checks that a looked-up but discarded
// key (a message that failed to verify) changes nothing.
func TestSecretTreeDiscardLeavesState(t *testing.T) {
	tree := newTestTree(t, nil, 2)
	step, err := tree.receiveKey(0, RatchetApplication, 5)
	if err != nil {
		t.Fatal(err)
	}
	step.discard()
	r := &tree.ratchets[0][RatchetApplication]
	if r.next != 0 || len(r.retained) != 0 || allZero(r.secret) {
		t.Fatalf("discarded step changed the ratchet: next %d, %d retained", r.next, len(r.retained))
	}
	ref := newTestTree(t, nil, 2)
	for gen := range uint32(6) {
		got, err := tree.ReceiveKey(0, RatchetApplication, gen)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ref.SendKey(0, RatchetApplication)
		if !bytes.Equal(got.Key, want.Key) {
			t.Fatalf("generation %d: wrong key after discard", gen)
		}
	}
	// Discarding a retained key keeps it retained.
	if _, err := tree.ReceiveKey(0, RatchetApplication, 9); err != nil {
		t.Fatal(err)
	}
	step, err = tree.receiveKey(0, RatchetApplication, 7)
	if err != nil {
		t.Fatal(err)
	}
	step.discard()
	if _, err := tree.ReceiveKey(0, RatchetApplication, 7); err != nil {
		t.Fatalf("retained key lost by discard: %v", err)
	}
}

func TestSecretTreeExhausted(t *testing.T) {
	tree := newTestTree(t, nil, 1)
	rs, err := tree.leafRatchets(0, RatchetApplication)
	if err != nil {
		t.Fatal(err)
	}
	rs[RatchetApplication].next = maxGeneration
	if _, err := tree.SendKey(0, RatchetApplication); err != nil {
		t.Fatal(err)
	}
	_, err = tree.SendKey(0, RatchetApplication)
	wantGenerationError(t, err, ErrRatchetExhausted, maxGeneration)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return len(b) > 0
}

func mapKeys(m map[uint64][]byte) []uint64 {
	var ks []uint64
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestSecretTreeErase(t *testing.T) {
	tree := newTestTree(t, nil, 4)
	k, err := tree.SendKey(1, RatchetApplication)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.ReceiveKey(1, RatchetHandshake, 3); err != nil {
		t.Fatal(err)
	}
	var secrets [][]byte
	for _, s := range tree.nodes {
		secrets = append(secrets, s)
	}
	r := tree.ratchets[1]
	secrets = append(secrets, r[0].secret, r[1].secret, r[0].retained[0].Key)
	tree.Erase()
	for i, s := range secrets {
		if !allZero(s) {
			t.Errorf("secret %d not erased", i)
		}
	}
	if allZero(k.Key) {
		t.Error("Erase touched a key already handed out")
	}
	if _, err := tree.SendKey(1, RatchetApplication); err == nil {
		t.Error("erased tree still produces keys")
	}
	if _, err := tree.ReceiveKey(2, RatchetApplication, 0); !errors.Is(err, ErrInvalidSender) {
		t.Errorf("erased tree: got %v, want ErrInvalidSender", err)
	}
}

// TestSecretTreeModel drives one ratchet with seeded random generations
// (in order, reordered, replayed, far ahead) and compares every outcome and
// key with a simple model of the policy: a key serves once, at most
// MaxForwardDistance ahead, and only the newest MaxRetainedKeys skipped keys
// are kept.
func TestSecretTreeModel(t *testing.T) {
	const maxForward, maxRetain, steps = 40, 8, 3000
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 99))
		tree := newTestTree(t, &Config{MaxForwardDistance: maxForward, MaxRetainedKeys: maxRetain}, 2)
		ref := newTestTree(t, nil, 2)
		var keys []RatchetKey
		keyOf := func(gen uint32) RatchetKey {
			for uint32(len(keys)) <= gen {
				k, err := ref.SendKey(0, RatchetHandshake)
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, k)
			}
			return keys[gen]
		}
		next := uint64(0)
		retained := map[uint64]bool{}
		for step := range steps {
			g := int64(next) + rng.Int64N(30) - 20
			if rng.IntN(20) == 0 {
				g = int64(next) + maxForward + rng.Int64N(5) - 2
			}
			if g < 0 {
				g = 0
			}
			gen := uint64(g)
			var want error
			switch {
			case gen < next && !retained[gen]:
				want = ErrGenerationUsed
			case gen >= next && gen-next > maxForward:
				want = ErrGenerationTooFarAhead
			}
			got, err := tree.ReceiveKey(0, RatchetHandshake, uint32(gen))
			if !errors.Is(err, want) || (want == nil) != (err == nil) {
				t.Fatalf("seed %d step %d generation %d (next %d): got %v, want %v", seed, step, gen, next, err, want)
			}
			if err != nil {
				continue
			}
			if !bytes.Equal(got.Key, keyOf(uint32(gen)).Key) || !bytes.Equal(got.Nonce, keyOf(uint32(gen)).Nonce) {
				t.Fatalf("seed %d step %d: wrong key for generation %d", seed, step, gen)
			}
			if gen < next {
				delete(retained, gen)
				continue
			}
			for s := next; s < gen; s++ {
				retained[s] = true
			}
			next = gen + 1
			for len(retained) > maxRetain {
				oldest := next
				for s := range retained {
					oldest = min(oldest, s)
				}
				delete(retained, oldest)
			}
		}
		if n := len(tree.ratchets[0][RatchetHandshake].retained); n != len(retained) {
			t.Fatalf("seed %d: %d keys retained, model has %d", seed, n, len(retained))
		}
	}
}
