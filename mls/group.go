package mls

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Errors of the group API. Each is wrapped with context; test with errors.Is.
// Errors about a message's framing (wrong group or epoch, bad membership tag,
// bad signature) come from the Protector (framing.go) and are returned
// unchanged.
var (
	// ErrInvalidProposalList: a Commit's proposals break a rule of RFC 9420
	// §12.2; the *ProposalListError says which.
	ErrInvalidProposalList = errors.New("mls: invalid proposal list")
	// ErrInvalidProposal: a single proposal is invalid for its type (§12.1).
	ErrInvalidProposal = errors.New("mls: invalid proposal")
	// ErrUnknownProposal: a Commit refers to a proposal that is not cached.
	ErrUnknownProposal = errors.New("mls: commit refers to an unknown proposal")
	// ErrPathRequired: a Commit without an UpdatePath covers proposals that
	// require one, or none at all (§12.4).
	ErrPathRequired = errors.New("mls: commit requires an update path")
	// ErrInvalidPath: a Commit's UpdatePath is malformed or does not decrypt.
	ErrInvalidPath = errors.New("mls: invalid update path")
	// ErrPSKNotFound: a PreSharedKey is not available to this client.
	ErrPSKNotFound = errors.New("mls: pre-shared key not available")
	// ErrCommitPending: the group already has an own pending Commit.
	ErrCommitPending = errors.New("mls: a commit is already pending")
	// ErrNoPendingCommit: there is no own pending Commit.
	ErrNoPendingCommit = errors.New("mls: no pending commit")
	// ErrStaleCommit: a staged Commit was staged against another epoch or
	// another Group value than the one it is merged into.
	ErrStaleCommit = errors.New("mls: staged commit does not belong to the group's current state")
	// ErrOwnCommit: a received Commit was sent by this member but is not the
	// pending one.
	ErrOwnCommit = errors.New("mls: commit from own leaf that is not pending")
	// ErrInactive: the group can no longer be used to send: this member was
	// removed, or a ReInit was committed.
	ErrInactive = errors.New("mls: group is no longer active")
	// ErrEpochNotRetained: a message is for a past epoch whose secrets were
	// erased, or for a future epoch.
	ErrEpochNotRetained = errors.New("mls: epoch not retained")
	// ErrWelcomeNotForUs: no entry of the Welcome is for the key package.
	ErrWelcomeNotForUs = errors.New("mls: welcome is not addressed to this key package")
	// ErrMissingRatchetTree: a joiner has no ratchet tree (no ratchet_tree
	// extension and none supplied out of band).
	ErrMissingRatchetTree = errors.New("mls: ratchet tree not available")
	// ErrInvalidGroupInfo: a GroupInfo (in a Welcome or for an external join)
	// is inconsistent.
	ErrInvalidGroupInfo = errors.New("mls: invalid group info")
	// ErrWrongTreeHash: a ratchet tree does not hash to the tree_hash of the
	// GroupContext it is supposed to belong to.
	ErrWrongTreeHash = errors.New("mls: ratchet tree does not match the group's tree hash")
	// ErrInvalidResumption: a ReInit or branch Welcome does not match the
	// group it resumes (§11.2, §11.3).
	ErrInvalidResumption = errors.New("mls: invalid resumption of a prior group")
)

// DefaultEpochRetention is how many past epochs a Group keeps the message
// keys of, so that application messages delayed across a Commit still
// decrypt.
const DefaultEpochRetention = 2

// GroupOptions configure a Group. They are not part of the marshaled state:
// pass the same options to UnmarshalGroup.
type GroupOptions struct {
	// Config supplies randomness, time and the secret-tree limits.
	Config *Config

	// EpochRetention is how many past epochs' message keys are kept for late
	// application messages; the secrets of older epochs are erased. Zero
	// means DefaultEpochRetention, a negative value keeps none.
	EpochRetention int

	// UnboundedLifetimes accepts KeyPackages whose total lifetime exceeds
	// MaxLeafLifetime (they must still cover the current time). Some
	// implementations and the interop test vectors issue lifetimes of
	// [0, 2^64-1]; a deployment that only talks to itself leaves this off.
	UnboundedLifetimes bool
}

func (o *GroupOptions) retention() int {
	switch {
	case o.EpochRetention == 0:
		return DefaultEpochRetention
	case o.EpochRetention < 0:
		return 0
	}
	return o.EpochRetention
}

// Identity is a client's long-term signing identity and what it advertises
// in its leaves.
type Identity struct {
	// SignaturePrivateKey is the private key in the cipher suite's
	// signature scheme (the format of CipherSuite.GenerateSignatureKeyPair).
	SignaturePrivateKey []byte
	Credential          Credential
	// Capabilities advertised in the leaf; nil means DefaultCapabilities.
	Capabilities *Capabilities
	// LeafExtensions are put into every LeafNode of this client.
	LeafExtensions Extensions
}

// DefaultCapabilities returns the capabilities of this implementation for a
// group of suite cs: MLS 1.0, the suite, both credential types, and the
// non-default extension types it understands (none of the RFC's default
// extensions and proposals need to be listed).
func DefaultCapabilities(cs CipherSuite) Capabilities {
	return Capabilities{
		Versions:     []ProtocolVersion{ProtocolVersionMLS10},
		CipherSuites: []CipherSuite{cs},
		Extensions:   []ExtensionType{},
		Proposals:    []ProposalType{},
		Credentials:  []CredentialType{CredentialTypeBasic, CredentialTypeX509},
	}
}

func (id *Identity) capabilities(cs CipherSuite) Capabilities {
	if id.Capabilities != nil {
		return *id.Capabilities
	}
	return DefaultCapabilities(cs)
}

// Member is one member of the group as its leaf presents it.
type Member struct {
	Leaf          LeafIndex
	Credential    Credential
	SignatureKey  []byte
	EncryptionKey []byte
}

func memberOf(l LeafIndex, ln *LeafNode) Member {
	return Member{Leaf: l, Credential: ln.Credential, SignatureKey: ln.SignatureKey, EncryptionKey: ln.EncryptionKey}
}

// Group is one member's state of one MLS group: the current epoch (group
// context, ratchet tree with this member's private keys, key schedule,
// message protection), the proposals received in the epoch, an own pending
// Commit if any, and the message keys of a bounded number of past epochs.
//
// Changes to the epoch happen only in Merge: Commit prepares an own Commit
// and keeps it pending, Process stages a received Commit after validating
// it completely, and Merge applies exactly one of them. A message that is
// rejected leaves the Group unchanged. A Group is not safe for concurrent
// use.
type Group struct {
	opts   GroupOptions
	signer *Signer
	sigKey []byte // the signature private key, for marshaling
	own    LeafIndex

	ep epochState

	// active is false once this member was removed or a ReInit committed.
	active bool
	// reinit holds the parameters of a committed ReInit proposal.
	reinit *ReInit
	// resumeUsage allows resumption PSKs of this usage while Reinitialize
	// or Branch builds the first Commit of a new group.
	resumeUsage ResumptionPSKUsage

	proposals []*cachedProposal
	pending   *PendingCommit

	past         []*pastEpoch    // oldest first
	resumption   []resumptionPSK // own resumption PSKs, oldest first
	externalPSKs []externalPSK   // sorted by ID
	extraPSKs    []resumptionPSK // resumption PSKs of other groups
}

// epochState is everything that describes one epoch of the group.
type epochState struct {
	ctx             GroupContext
	tree            *RatchetTree
	priv            *TreePrivateKeys
	secrets         *EpochSecrets // the keys still needed; message keys live in protector
	interim         []byte        // interim transcript hash
	confirmationTag []byte        // of the Commit that started the epoch
	protector       *Protector
	// psec are copies of the secrets protector was made from, so that the
	// state can be marshaled without reaching into the Protector.
	psec protectorSecrets
}

// protectorSecrets are the sender_data_secret and membership_key of an
// epoch.
type protectorSecrets struct {
	senderData []byte
	membership []byte
}

func (s *protectorSecrets) erase() {
	clear(s.senderData)
	clear(s.membership)
}

// pastEpoch keeps what is needed to read late application messages of an
// epoch after it ended: its Protector, and the old value of every leaf the
// following Commits changed (leaves not listed are unchanged since).
type pastEpoch struct {
	epoch     uint64
	protector *Protector
	psec      protectorSecrets
	// changed maps the leaves that the Commit ending this epoch changed to
	// their value in this epoch (nil: blank).
	changed map[LeafIndex]*LeafNode
}

type resumptionPSK struct {
	groupID []byte
	epoch   uint64
	psk     []byte
}

type externalPSK struct {
	id  []byte
	psk []byte
}

// CipherSuite returns the group's cipher suite.
func (g *Group) CipherSuite() CipherSuite { return g.ep.ctx.CipherSuite }

// GroupID returns the group ID.
func (g *Group) GroupID() []byte { return bytes.Clone(g.ep.ctx.GroupID) }

// Epoch returns the current epoch.
func (g *Group) Epoch() uint64 { return g.ep.ctx.Epoch }

// OwnLeaf returns this member's leaf index.
func (g *Group) OwnLeaf() LeafIndex { return g.own }

// Active reports whether this member can still send in the group: false
// after it was removed or a ReInit was committed.
func (g *Group) Active() bool { return g.active }

// PendingReInit returns the parameters of a committed ReInit, or nil.
func (g *Group) PendingReInit() *ReInit { return g.reinit }

// GroupContext returns a copy of the current GroupContext.
func (g *Group) GroupContext() GroupContext {
	c := g.ep.ctx
	c.GroupID = bytes.Clone(c.GroupID)
	c.TreeHash = bytes.Clone(c.TreeHash)
	c.ConfirmedTranscriptHash = bytes.Clone(c.ConfirmedTranscriptHash)
	c.Extensions = append(Extensions(nil), c.Extensions...)
	return c
}

// Extensions returns the group context extensions.
func (g *Group) Extensions() Extensions { return append(Extensions(nil), g.ep.ctx.Extensions...) }

// TreeHash returns the tree hash of the current ratchet tree.
func (g *Group) TreeHash() []byte { return bytes.Clone(g.ep.ctx.TreeHash) }

// EpochAuthenticator returns the epoch authenticator (RFC 9420 §8.7).
func (g *Group) EpochAuthenticator() []byte { return bytes.Clone(g.ep.secrets.EpochAuthenticator) }

// ConfirmationTag returns the confirmation tag of the Commit that started
// the current epoch.
func (g *Group) ConfirmationTag() []byte { return bytes.Clone(g.ep.confirmationTag) }

// Export derives an exported secret (MLS-Exporter, RFC 9420 §8.5).
func (g *Group) Export(label string, context []byte, length int) ([]byte, error) {
	return g.ep.secrets.Export(label, context, length)
}

// ResumptionPSK returns the resumption PSK of the given epoch of this group
// if it is still retained (the current and the retained past epochs).
func (g *Group) ResumptionPSK(epoch uint64) ([]byte, bool) {
	for _, r := range g.resumption {
		if r.epoch == epoch {
			return bytes.Clone(r.psk), true
		}
	}
	return nil, false
}

// RatchetTree returns the current ratchet tree in its wire form, as the
// ratchet_tree extension carries it (for joiners given the tree out of band).
func (g *Group) RatchetTree() TreeNodes { return g.ep.tree.Nodes() }

// Members returns the members of the group in leaf order.
func (g *Group) Members() []Member {
	out := make([]Member, 0, g.ep.tree.MemberCount())
	for l, ln := range g.ep.tree.Members() {
		out = append(out, memberOf(l, ln))
	}
	return out
}

// Member returns the member at leaf l.
func (g *Group) Member(l LeafIndex) (Member, bool) {
	ln := g.ep.tree.Leaf(l)
	if ln == nil {
		return Member{}, false
	}
	return memberOf(l, ln), true
}

// SetExternalPSK stores an external PSK under id, replacing any earlier
// value. PSKs are part of the marshaled state.
func (g *Group) SetExternalPSK(id, psk []byte) {
	g.DeleteExternalPSK(id)
	g.externalPSKs = append(g.externalPSKs, externalPSK{id: bytes.Clone(id), psk: bytes.Clone(psk)})
	sortExternalPSKs(g.externalPSKs)
}

// DeleteExternalPSK erases the external PSK stored under id.
func (g *Group) DeleteExternalPSK(id []byte) {
	for i, p := range g.externalPSKs {
		if bytes.Equal(p.id, id) {
			clear(p.psk)
			g.externalPSKs = append(g.externalPSKs[:i], g.externalPSKs[i+1:]...)
			return
		}
	}
}

func (g *Group) cfg() *Config { return g.opts.Config }

func (g *Group) rand() io.Reader { return g.opts.Config.Random() }

// newOwnLeaf creates a LeafNode for this client with a fresh encryption key
// pair. The caller sets the source-specific fields and signs it.
func newOwnLeaf(cfg *Config, cs CipherSuite, id *Identity, signer *Signer, source LeafNodeSource) (*LeafNode, []byte, error) {
	priv, pub, err := cs.GenerateHPKEKeyPair(cfg.Random())
	if err != nil {
		return nil, nil, fmt.Errorf("mls: generating leaf key: %w", err)
	}
	ln := &LeafNode{
		EncryptionKey: pub,
		SignatureKey:  signer.Public(),
		Credential:    id.Credential,
		Capabilities:  id.capabilities(cs),
		Source:        source,
		Extensions:    append(Extensions{}, id.LeafExtensions...),
	}
	return ln, priv, nil
}

func newIdentitySigner(cs CipherSuite, id *Identity) (*Signer, error) {
	if err := checkSuite(cs); err != nil {
		return nil, err
	}
	s, err := cs.NewSigner(id.SignaturePrivateKey)
	if err != nil {
		return nil, fmt.Errorf("mls: signature key: %w", err)
	}
	return s, nil
}

// NewGroup creates a one-member group (RFC 9420 §11) with this client as
// its creator at leaf 0, in epoch 0.
func NewGroup(opts GroupOptions, cs CipherSuite, groupID []byte, id Identity, extensions Extensions) (*Group, error) {
	signer, err := newIdentitySigner(cs, &id)
	if err != nil {
		return nil, err
	}
	if err := extensions.CheckDuplicates(); err != nil {
		return nil, err
	}
	cfg := opts.Config
	leaf, leafPriv, err := newOwnLeaf(cfg, cs, &id, signer, LeafNodeSourceKeyPackage)
	if err != nil {
		return nil, err
	}
	leaf.Lifetime = defaultLifetime(cfg)
	if err := leaf.Sign(cfg.Random(), signer, nil, 0); err != nil {
		return nil, err
	}
	if err := treeCheckCapabilities(&GroupContext{Version: ProtocolVersionMLS10, CipherSuite: cs, Extensions: extensions}, leaf); err != nil {
		return nil, err
	}
	tree, err := NewRatchetTree(cs, leaf)
	if err != nil {
		return nil, err
	}
	g := &Group{
		opts:   opts,
		signer: signer,
		sigKey: bytes.Clone(id.SignaturePrivateKey),
		own:    0,
		active: true,
	}
	g.ep.tree = tree
	if g.ep.priv, err = NewTreePrivateKeys(cs, 0, leafPriv); err != nil {
		return nil, err
	}
	g.ep.ctx = GroupContext{
		Version:                 ProtocolVersionMLS10,
		CipherSuite:             cs,
		GroupID:                 bytes.Clone(groupID),
		Epoch:                   0,
		TreeHash:                tree.TreeHash(),
		ConfirmedTranscriptHash: []byte{},
		Extensions:              append(Extensions{}, extensions...),
	}
	initSecret := make([]byte, cs.HashSize())
	if _, err := io.ReadFull(cfg.Random(), initSecret); err != nil {
		return nil, fmt.Errorf("mls: reading randomness: %w", err)
	}
	secrets, err := DeriveEpochSecrets(&g.ep.ctx, initSecret, nil, nil)
	clear(initSecret)
	if err != nil {
		return nil, err
	}
	tag := ConfirmationTag(cs, secrets.ConfirmationKey, g.ep.ctx.ConfirmedTranscriptHash)
	if err := g.ep.finish(cfg, secrets, tag); err != nil {
		return nil, err
	}
	g.noteResumption()
	return g, nil
}

// finish completes an epoch from its key schedule output: the interim
// transcript hash, the Protector, and the secrets trimmed to what later use
// needs.
func (ep *epochState) finish(cfg *Config, secrets *EpochSecrets, confirmationTag []byte) error {
	cs := ep.ctx.CipherSuite
	interim, err := InterimTranscriptHash(cs, ep.ctx.ConfirmedTranscriptHash, confirmationTag)
	if err != nil {
		return err
	}
	p, err := secrets.NewProtector(cfg, &ep.ctx, ep.tree.LeafCount())
	if err != nil {
		return err
	}
	ep.interim = interim
	ep.confirmationTag = confirmationTag
	ep.protector = p
	ep.psec = protectorSecrets{senderData: bytes.Clone(secrets.SenderDataSecret), membership: bytes.Clone(secrets.MembershipKey)}
	// The protector holds its own copies; what stays is what later
	// operations need (exporter, external join, confirmation and
	// membership keys for own messages, resumption, authenticator, init).
	clear(secrets.JoinerSecret)
	clear(secrets.WelcomeSecret)
	clear(secrets.SenderDataSecret)
	clear(secrets.EncryptionSecret)
	secrets.JoinerSecret, secrets.WelcomeSecret, secrets.SenderDataSecret, secrets.EncryptionSecret = nil, nil, nil, nil
	ep.secrets = secrets
	return nil
}

// noteResumption records the current epoch's resumption PSK and drops those
// beyond the retention.
func (g *Group) noteResumption() {
	g.resumption = append(g.resumption, resumptionPSK{
		groupID: bytes.Clone(g.ep.ctx.GroupID),
		epoch:   g.ep.ctx.Epoch,
		psk:     bytes.Clone(g.ep.secrets.ResumptionPSK),
	})
	if drop := len(g.resumption) - (g.opts.retention() + 1); drop > 0 {
		for i := range drop {
			clear(g.resumption[i].psk)
		}
		g.resumption = append(g.resumption[:0], g.resumption[drop:]...)
	}
}

// externalSenders decodes the external_senders extension of exts.
func externalSenders(exts Extensions) (ExternalSenders, error) {
	ext, ok := exts.Find(ExtensionTypeExternalSenders)
	if !ok {
		return nil, nil
	}
	var s ExternalSenders
	if err := s.Unmarshal(ext.Data); err != nil {
		return nil, fmt.Errorf("mls: external_senders extension: %w", err)
	}
	return s, nil
}

// validateKeyPackage checks an Add's KeyPackage against the group (RFC 9420
// §10.1), with exts as the group context extensions in force.
func (g *Group) validateKeyPackage(tree *RatchetTree, kp *KeyPackage, exts Extensions) error {
	gc := g.contextWith(exts)
	err := tree.ValidateKeyPackage(g.cfg(), &gc, kp)
	if err != nil && g.opts.UnboundedLifetimes && errors.Is(err, ErrLifetime) {
		return g.validateKeyPackageUnbounded(tree, &gc, kp)
	}
	return err
}

// validateKeyPackageUnbounded is RatchetTree.ValidateKeyPackage without the
// bound on the total lifetime, for GroupOptions.UnboundedLifetimes.
func (g *Group) validateKeyPackageUnbounded(t *RatchetTree, gc *GroupContext, kp *KeyPackage) error {
	leaf := &kp.LeafNode
	fail := func(err error) error { return &LeafNodeError{Leaf: -1, Err: err} }
	now := g.cfg().Now().Unix()
	if now < 0 || uint64(now) < leaf.Lifetime.NotBefore || uint64(now) > leaf.Lifetime.NotAfter {
		return fail(fmt.Errorf("%w: now %d, lifetime [%d, %d]", ErrLifetime, now, leaf.Lifetime.NotBefore, leaf.Lifetime.NotAfter))
	}
	if kp.Version != gc.Version || kp.CipherSuite != gc.CipherSuite || leaf.Source != LeafNodeSourceKeyPackage {
		return fmt.Errorf("%w: version, suite or leaf source", ErrInvalidKeyPackage)
	}
	if err := t.suite.ValidateHPKEPublicKey(kp.InitKey); err != nil || bytes.Equal(kp.InitKey, leaf.EncryptionKey) {
		return fmt.Errorf("%w: init key", ErrInvalidKeyPackage)
	}
	if err := treeCheckCapabilities(gc, leaf); err != nil {
		return fail(err)
	}
	if err := t.checkCredentialSupport(leaf, 0, false); err != nil {
		return fail(err)
	}
	if err := t.suite.ValidateHPKEPublicKey(leaf.EncryptionKey); err != nil {
		return fail(fmt.Errorf("%w: encryption key: %w", ErrInvalidLeafNode, err))
	}
	if err := t.suite.ValidateSignaturePublicKey(leaf.SignatureKey); err != nil {
		return fail(fmt.Errorf("%w: signature key: %w", ErrInvalidLeafNode, err))
	}
	if l, ok := t.FindSignatureKey(leaf.SignatureKey); ok {
		return fail(&DuplicateKeyError{Kind: "signature", First: l.Node()})
	}
	if x, ok := t.FindEncryptionKey(leaf.EncryptionKey); ok {
		return fail(&DuplicateKeyError{Kind: "encryption", First: x})
	}
	if err := leaf.Verify(t.suite, gc.GroupID, 0); err != nil {
		return fail(err)
	}
	if err := kp.Verify(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	return nil
}

// validateLeafNode checks a new leaf for leaf position l of the current tree.
func (g *Group) validateLeafNode(ln *LeafNode, source LeafNodeSource, l LeafIndex, exts Extensions) error {
	return g.validateLeafNodeIn(g.ep.tree, ln, source, l, exts)
}

// validateLeafNodeIn applies the LeafNode rules of RFC 9420 §7.3 to a leaf
// that is to replace leaf l of tree (l is ignored for key_package leaves).
func (g *Group) validateLeafNodeIn(tree *RatchetTree, ln *LeafNode, source LeafNodeSource, l LeafIndex, exts Extensions) error {
	gc := g.contextWith(exts)
	return tree.ValidateLeafNode(g.cfg(), &gc, ln, source, l)
}

// contextWith returns the current GroupContext with the extensions exts.
func (g *Group) contextWith(exts Extensions) GroupContext {
	gc := g.ep.ctx
	gc.Extensions = exts
	return gc
}
