package mls

import (
	"errors"
	"fmt"
	"math/bits"
	"sort"
)

// Errors from the sender ratchets of the secret tree. They are wrapped in a
// *GenerationError that says which leaf, ratchet and generation.
var (
	// ErrGenerationTooFarAhead: the generation is further ahead of the
	// ratchet than Config.MaxForwardDistance allows.
	ErrGenerationTooFarAhead = errors.New("mls: generation too far ahead")
	// ErrGenerationUsed: the key of that generation was already used or was
	// discarded (too old to retain). A message seen twice lands here.
	ErrGenerationUsed = errors.New("mls: generation already used or expired")
	// ErrRatchetExhausted: the ratchet has produced all 2^32 generations.
	ErrRatchetExhausted = errors.New("mls: ratchet exhausted")
)

// GenerationError reports a generation that a ratchet cannot serve.
type GenerationError struct {
	Leaf       LeafIndex
	Ratchet    RatchetType
	Generation uint32
	Next       uint64 // the ratchet's next unused generation
	Err        error  // ErrGenerationTooFarAhead, ErrGenerationUsed or ErrRatchetExhausted
}

func (e *GenerationError) Error() string {
	return fmt.Sprintf("%v: leaf %d %v ratchet generation %d (next is %d)", e.Err, e.Leaf, e.Ratchet, e.Generation, e.Next)
}

func (e *GenerationError) Unwrap() error { return e.Err }

// RatchetType selects one of the two sender ratchets of a leaf.
type RatchetType uint8

// The two ratchets of every leaf (RFC 9420 §9).
const (
	RatchetHandshake   RatchetType = 0 // proposals and commits
	RatchetApplication RatchetType = 1 // application data
)

func (r RatchetType) String() string {
	if r == RatchetHandshake {
		return "handshake"
	}
	return "application"
}

// RatchetKey is the AEAD key and nonce of one ratchet generation.
type RatchetKey struct {
	Generation uint32
	Key        []byte
	Nonce      []byte
}

func (k *RatchetKey) erase() {
	clear(k.Key)
	clear(k.Nonce)
}

// SecretTree derives the per-sender, per-generation message keys of one
// epoch from its encryption_secret (RFC 9420 §9). Secrets are derived
// lazily, only down to the leaves that send, and every secret is erased as
// soon as it is consumed: a tree node once its children exist, a ratchet
// secret once the next one exists, a key once it has encrypted or decrypted
// a message. Keys skipped over by out-of-order messages are retained,
// bounded by the Config. A SecretTree is not safe for concurrent use.
type SecretTree struct {
	suite      CipherSuite
	leafCount  uint32
	depth      int // the tree has 2^depth leaf positions
	maxForward uint32
	maxRetain  int
	// nodes holds the unconsumed tree-node secrets, keyed by node index.
	// Initially only the root; a node is replaced by its two children when
	// a leaf below it is first used.
	nodes    map[uint64][]byte
	ratchets map[LeafIndex]*[2]ratchet
	kdf      *labelKDF
}

// NewSecretTree returns the secret tree of a group of leafCount leaves (the
// width of the ratchet tree, blank leaves included) rooted at
// encryptionSecret. The tree keeps its own copy of the secret; the caller
// should erase its copy once no longer needed. cfg supplies the
// out-of-order limits.
func NewSecretTree(cfg *Config, cs CipherSuite, encryptionSecret []byte, leafCount uint32) (*SecretTree, error) {
	if !cs.Supported() {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedCipherSuite, cs)
	}
	if leafCount == 0 || leafCount > 1<<31 {
		return nil, fmt.Errorf("mls: secret tree of %d leaves", leafCount)
	}
	if len(encryptionSecret) != cs.HashSize() {
		return nil, fmt.Errorf("%w: encryption secret of %d bytes, want %d", ErrInvalidLength, len(encryptionSecret), cs.HashSize())
	}
	depth := bits.Len32(leafCount - 1)
	t := &SecretTree{
		suite:      cs,
		leafCount:  leafCount,
		depth:      depth,
		maxForward: cfg.maxForwardDistance(),
		maxRetain:  cfg.maxRetainedKeys(),
		nodes:      map[uint64][]byte{nodeIndex(depth, 0): append([]byte(nil), encryptionSecret...)},
		ratchets:   make(map[LeafIndex]*[2]ratchet),
		kdf:        newLabelKDF(cs),
	}
	return t, nil
}

// nodeIndex is the array index (RFC 9420 Appendix C) of the node at the
// given level whose subtree is the pos-th of that level, counting from the
// left.
func nodeIndex(level int, pos uint64) uint64 {
	return pos<<(level+1) | (1<<level - 1)
}

// LeafCount returns the number of leaves the tree was created with.
func (t *SecretTree) LeafCount() uint32 { return t.leafCount }

// leafRatchets returns the two ratchets of leaf, deriving them (and the tree
// nodes above it) on first use.
func (t *SecretTree) leafRatchets(leaf LeafIndex, rt RatchetType) (*[2]ratchet, error) {
	if rt != RatchetHandshake && rt != RatchetApplication {
		return nil, fmt.Errorf("mls: unknown ratchet type %d", uint8(rt))
	}
	if uint32(leaf) >= t.leafCount {
		return nil, fmt.Errorf("%w: leaf %d outside a tree of %d leaves", ErrInvalidSender, leaf, t.leafCount)
	}
	if r, ok := t.ratchets[leaf]; ok {
		return r, nil
	}
	cs := t.suite
	// Walk down from the root. Exactly one node on the path holds a secret:
	// split it and every node below it on the path into its two children.
	for level := t.depth; level > 0; level-- {
		pos := uint64(leaf) >> level
		x := nodeIndex(level, pos)
		secret, ok := t.nodes[x]
		if !ok {
			continue
		}
		left, err := t.kdf.expand(secret, "tree", []byte("left"), cs.HashSize())
		if err != nil {
			return nil, err
		}
		right, err := t.kdf.expand(secret, "tree", []byte("right"), cs.HashSize())
		if err != nil {
			return nil, err
		}
		clear(secret)
		delete(t.nodes, x)
		t.nodes[nodeIndex(level-1, 2*pos)] = left
		t.nodes[nodeIndex(level-1, 2*pos+1)] = right
	}
	x := nodeIndex(0, uint64(leaf))
	secret, ok := t.nodes[x]
	if !ok {
		// Unreachable unless the tree's invariant is broken; never panic.
		return nil, fmt.Errorf("mls: secret tree has no secret for leaf %d", leaf)
	}
	hs, err := t.kdf.expand(secret, "handshake", nil, cs.HashSize())
	if err != nil {
		return nil, err
	}
	app, err := t.kdf.expand(secret, "application", nil, cs.HashSize())
	if err != nil {
		return nil, err
	}
	clear(secret)
	delete(t.nodes, x)
	r := &[2]ratchet{{secret: hs}, {secret: app}}
	t.ratchets[leaf] = r
	return r, nil
}

// SendKey returns the next unused key of leaf's ratchet and deletes it from
// the tree: it must encrypt exactly one message.
func (t *SecretTree) SendKey(leaf LeafIndex, rt RatchetType) (RatchetKey, error) {
	return t.nextSendKey(leaf, rt)
}

func (t *SecretTree) nextSendKey(leaf LeafIndex, rt RatchetType) (RatchetKey, error) {
	rs, err := t.leafRatchets(leaf, rt)
	if err != nil {
		return RatchetKey{}, err
	}
	r := &rs[rt]
	if r.next > maxGeneration {
		return RatchetKey{}, &GenerationError{Leaf: leaf, Ratchet: rt, Generation: maxGeneration, Next: r.next, Err: ErrRatchetExhausted}
	}
	k, next, err := r.derive(t.kdf, uint32(r.next))
	if err != nil {
		return RatchetKey{}, err
	}
	r.advance(next)
	return k, nil
}

// ReceiveKey returns the key of the given generation of leaf's ratchet and
// deletes it from the tree, moving the ratchet forward (and retaining the
// keys skipped over) if needed. Use it only once the key has served; to try a
// key first, the Protector uses the two-step receiveKey.
func (t *SecretTree) ReceiveKey(leaf LeafIndex, rt RatchetType, generation uint32) (RatchetKey, error) {
	step, err := t.receiveKey(leaf, rt, generation)
	if err != nil {
		return RatchetKey{}, err
	}
	k := RatchetKey{Generation: generation, Key: append([]byte(nil), step.key.Key...), Nonce: append([]byte(nil), step.key.Nonce...)}
	step.commit()
	return k, nil
}

// maxGeneration is the last generation a ratchet can produce.
const maxGeneration = 1<<32 - 1

// ratchet is one sender ratchet of a leaf.
type ratchet struct {
	secret []byte // ratchet secret of generation next
	next   uint64 // next generation to derive; 2^32 once exhausted
	// retained are keys of generations below next that were skipped and
	// not yet used, in increasing generation order.
	retained []RatchetKey
}

// derive computes the key of generation gen (== r.next) and the ratchet
// secret of gen+1, without changing r.
func (r *ratchet) derive(kdf *labelKDF, gen uint32) (RatchetKey, []byte, error) {
	cs := kdf.cs
	key, err := kdf.treeSecret(r.secret, "key", gen, cs.AEADKeySize())
	if err != nil {
		return RatchetKey{}, nil, err
	}
	nonce, err := kdf.treeSecret(r.secret, "nonce", gen, cs.AEADNonceSize())
	if err != nil {
		return RatchetKey{}, nil, err
	}
	next, err := kdf.treeSecret(r.secret, "secret", gen, cs.HashSize())
	if err != nil {
		return RatchetKey{}, nil, err
	}
	return RatchetKey{Generation: gen, Key: key, Nonce: nonce}, next, nil
}

// advance replaces the current secret by the next one, erasing it.
func (r *ratchet) advance(next []byte) {
	clear(r.secret)
	r.secret = next
	r.next++
}

// receiveStep is a key found or derived for a received message, not yet
// applied to the tree. commit applies it once the message has verified;
// discard erases it and leaves the tree untouched.
type receiveStep struct {
	r   *ratchet
	key RatchetKey
	// When the key was retained: its position in r.retained.
	retainedAt int
	// When the ratchet moves forward: the keys skipped over (the newest
	// ones only, up to the retention limit), the secret of the generation
	// after the key, and the retention limit.
	forward   bool
	skipped   []RatchetKey
	newSecret []byte
	maxRetain int
}

func (t *SecretTree) receiveKey(leaf LeafIndex, rt RatchetType, gen uint32) (*receiveStep, error) {
	rs, err := t.leafRatchets(leaf, rt)
	if err != nil {
		return nil, err
	}
	r := &rs[rt]
	genErr := func(e error) error {
		return &GenerationError{Leaf: leaf, Ratchet: rt, Generation: gen, Next: r.next, Err: e}
	}
	if uint64(gen) < r.next {
		i := sort.Search(len(r.retained), func(i int) bool { return r.retained[i].Generation >= gen })
		if i == len(r.retained) || r.retained[i].Generation != gen {
			return nil, genErr(ErrGenerationUsed)
		}
		return &receiveStep{r: r, key: r.retained[i], retainedAt: i}, nil
	}
	if uint64(gen)-r.next > uint64(t.maxForward) {
		return nil, genErr(ErrGenerationTooFarAhead)
	}

	// Derive forward from r.next to gen on scratch copies. Only the newest
	// maxRetain skipped keys could be kept, so older ones are not derived.
	step := &receiveStep{r: r, forward: true, maxRetain: t.maxRetain}
	secret := r.secret
	keepFrom := uint64(0)
	if skip := uint64(gen) - r.next; skip > uint64(t.maxRetain) {
		keepFrom = uint64(gen) - uint64(t.maxRetain)
	}
	cs := t.suite
	for g := r.next; ; g++ {
		var next []byte
		if g == uint64(gen) || g >= keepFrom {
			k, n, err := (&ratchet{secret: secret}).derive(t.kdf, uint32(g))
			if err != nil {
				step.discard()
				return nil, err
			}
			next = n
			if g == uint64(gen) {
				step.key = k
			} else {
				step.skipped = append(step.skipped, k)
			}
		} else {
			n, err := t.kdf.treeSecret(secret, "secret", uint32(g), cs.HashSize())
			if err != nil {
				step.discard()
				return nil, err
			}
			next = n
		}
		if g != r.next {
			clear(secret) // a scratch secret, never the ratchet's own
		}
		secret = next
		if g == uint64(gen) {
			break
		}
	}
	step.newSecret = secret
	return step, nil
}

// commit applies the step: the key is deleted and, if the ratchet moved
// forward, the skipped keys are retained (oldest dropped beyond the limit).
func (s *receiveStep) commit() {
	r := s.r
	s.key.erase()
	if !s.forward {
		r.retained = append(r.retained[:s.retainedAt], r.retained[s.retainedAt+1:]...)
		return
	}
	r.retained = append(r.retained, s.skipped...)
	if drop := len(r.retained) - s.maxRetain; drop > 0 {
		for i := range drop {
			r.retained[i].erase()
		}
		r.retained = append(r.retained[:0], r.retained[drop:]...)
	}
	clear(r.secret)
	r.secret = s.newSecret
	r.next = uint64(s.key.Generation) + 1
}

// discard erases what the step derived and leaves the tree unchanged.
func (s *receiveStep) discard() {
	if !s.forward {
		return // the key still belongs to r.retained
	}
	s.key.erase()
	for i := range s.skipped {
		s.skipped[i].erase()
	}
	clear(s.newSecret)
}

// Erase overwrites every secret the tree still holds (node secrets, ratchet
// secrets, retained keys) and empties it. Later key requests fail with
// ErrGenerationUsed for leaves already in use and ErrInvalidSender otherwise.
func (t *SecretTree) Erase() {
	for x, s := range t.nodes {
		clear(s)
		delete(t.nodes, x)
	}
	for _, rs := range t.ratchets {
		for i := range rs {
			r := &rs[i]
			clear(r.secret)
			r.secret = nil
			r.next = maxGeneration + 1
			for j := range r.retained {
				r.retained[j].erase()
			}
			r.retained = nil
		}
	}
	t.leafCount = 0
}
