package mls

import (
	"bytes"
	"fmt"
	"time"
)

// Default lifetime of the leaves this package creates with a key_package
// source: valid from an hour before creation (clock skew) for 90 days.
const (
	defaultLifetimeSkew = time.Hour
	defaultLifetimeSpan = 90 * 24 * time.Hour
)

func defaultLifetime(cfg *Config) Lifetime {
	now := cfg.Now()
	return Lifetime{
		NotBefore: uint64(now.Add(-defaultLifetimeSkew).Unix()),
		NotAfter:  uint64(now.Add(defaultLifetimeSpan).Unix()),
	}
}

// KeyPackageBundle is a KeyPackage with the private keys its owner needs to
// join a group from a Welcome that uses it.
type KeyPackageBundle struct {
	KeyPackage           *KeyPackage
	InitPrivateKey       []byte
	EncryptionPrivateKey []byte
	SignaturePrivateKey  []byte
}

// KeyPackageOptions control NewKeyPackage.
type KeyPackageOptions struct {
	// Lifetime of the leaf; zero means valid from an hour ago for 90 days.
	Lifetime Lifetime
	// LastResort marks the KeyPackage as a last-resort one
	// (draft-ietf-mls-extensions).
	LastResort bool
	// Extensions of the KeyPackage (not of its leaf).
	Extensions Extensions
}

// NewKeyPackage creates and signs a KeyPackage for id in suite cs with fresh
// init and encryption keys (RFC 9420 §10).
func NewKeyPackage(cfg *Config, cs CipherSuite, id Identity, opts *KeyPackageOptions) (*KeyPackageBundle, error) {
	if opts == nil {
		opts = &KeyPackageOptions{}
	}
	signer, err := newIdentitySigner(cs, &id)
	if err != nil {
		return nil, err
	}
	leaf, leafPriv, err := newOwnLeaf(cfg, cs, &id, signer, LeafNodeSourceKeyPackage)
	if err != nil {
		return nil, err
	}
	leaf.Lifetime = opts.Lifetime
	if leaf.Lifetime == (Lifetime{}) {
		leaf.Lifetime = defaultLifetime(cfg)
	}
	exts := append(Extensions{}, opts.Extensions...)
	if opts.LastResort && !exts.Has(ExtensionTypeAppDataDictionary) {
		data, err := lastResortDictionary()
		if err != nil {
			return nil, err
		}
		exts = append(exts, Extension{Type: ExtensionTypeAppDataDictionary, Data: data})
		if !containsValue(leaf.Capabilities.Extensions, ExtensionTypeAppDataDictionary) {
			leaf.Capabilities.Extensions = append(append([]ExtensionType(nil), leaf.Capabilities.Extensions...), ExtensionTypeAppDataDictionary)
		}
	}
	if err := leaf.Sign(cfg.Random(), signer, nil, 0); err != nil {
		return nil, err
	}
	initPriv, initPub, err := cs.GenerateHPKEKeyPair(cfg.Random())
	if err != nil {
		return nil, fmt.Errorf("mls: generating init key: %w", err)
	}
	kp := &KeyPackage{
		Version:     ProtocolVersionMLS10,
		CipherSuite: cs,
		InitKey:     initPub,
		LeafNode:    *leaf,
		Extensions:  exts,
	}
	if err := kp.Sign(cfg.Random(), signer); err != nil {
		return nil, err
	}
	return &KeyPackageBundle{
		KeyPackage:           kp,
		InitPrivateKey:       initPriv,
		EncryptionPrivateKey: leafPriv,
		SignaturePrivateKey:  bytes.Clone(id.SignaturePrivateKey),
	}, nil
}

// lastResortDictionary is the app_data_dictionary extension data holding
// the last_resort_key_package component with empty data.
func lastResortDictionary() ([]byte, error) {
	var e Encoder
	e.Vector(func(e *Encoder) {
		e.Uint16(uint16(ComponentLastResortKeyPackage))
		e.Opaque(nil)
	})
	return e.Result()
}

// makeGroupInfo builds and signs the GroupInfo of the epoch next, with the
// external_pub extension and, if withTree, the ratchet_tree extension.
func (g *Group) makeGroupInfo(next *epochState, secrets *EpochSecrets, tag []byte, withTree bool) (*GroupInfo, error) {
	_, extPub, err := secrets.ExternalKeyPair()
	if err != nil {
		return nil, err
	}
	pubData, err := (&ExternalPub{PublicKey: extPub}).Marshal()
	if err != nil {
		return nil, err
	}
	exts := Extensions{{Type: ExtensionTypeExternalPub, Data: pubData}}
	if withTree {
		treeData, err := next.tree.Marshal()
		if err != nil {
			return nil, err
		}
		exts = append(exts, Extension{Type: ExtensionTypeRatchetTree, Data: treeData})
	}
	gi := &GroupInfo{
		GroupContext:    next.ctx,
		Extensions:      exts,
		ConfirmationTag: tag,
		Signer:          g.own,
	}
	if err := gi.Sign(g.rand(), g.signer); err != nil {
		return nil, err
	}
	return gi, nil
}

// GroupInfo returns a signed GroupInfo of the current epoch, with
// external_pub and, if withTree, the ratchet tree: what an external joiner
// needs.
func (g *Group) GroupInfo(withTree bool) (*MLSMessage, error) {
	if !g.active {
		return nil, ErrInactive
	}
	gi, err := g.makeGroupInfo(&g.ep, g.ep.secrets, g.ep.confirmationTag, withTree)
	if err != nil {
		return nil, err
	}
	return NewGroupInfoMessage(gi), nil
}

// makeWelcome encrypts gi for the members a Commit adds (RFC 9420
// §12.4.3.1).
func (g *Group) makeWelcome(gi *GroupInfo, secrets *EpochSecrets, a *appliedProposals, paths *UpdatePathResult) (*Welcome, error) {
	cs := g.CipherSuite()
	giBytes, err := gi.Marshal()
	if err != nil {
		return nil, err
	}
	key, nonce, err := WelcomeKeyNonce(cs, secrets.WelcomeSecret)
	if err != nil {
		return nil, err
	}
	encGI, err := cs.Seal(key, nonce, nil, giBytes)
	clear(key)
	if err != nil {
		return nil, err
	}
	w := &Welcome{CipherSuite: cs, EncryptedGroupInfo: encGI, Secrets: make([]EncryptedGroupSecrets, 0, len(a.addedKPs))}
	for i, kp := range a.addedKPs {
		gs := GroupSecrets{JoinerSecret: secrets.JoinerSecret, PSKs: a.psks}
		if gs.PSKs == nil {
			gs.PSKs = []PreSharedKeyID{}
		}
		if paths != nil {
			if ps, ok := paths.PathSecretFor(a.added[i]); ok {
				gs.PathSecret = &PathSecret{PathSecret: ps}
			}
		}
		pt, err := gs.Marshal()
		if err != nil {
			return nil, err
		}
		kem, ct, err := cs.EncryptWithLabel(g.rand(), kp.InitKey, "Welcome", encGI, pt)
		clear(pt)
		if err != nil {
			return nil, fmt.Errorf("mls: encrypting group secrets: %w", err)
		}
		ref, err := kp.Ref()
		if err != nil {
			return nil, err
		}
		w.Secrets = append(w.Secrets, EncryptedGroupSecrets{NewMember: ref, EncryptedGroupSecrets: HPKECiphertext{KEMOutput: kem, Ciphertext: ct}})
	}
	return w, nil
}

// ExternalPSK is an external pre-shared key and its ID.
type ExternalPSK struct {
	ID  []byte
	PSK []byte
}

// JoinOptions control JoinFromWelcome.
type JoinOptions struct {
	GroupOptions
	// RatchetTree is the group's tree when the Welcome carries none (the
	// tree obtained out of band). It is checked against the tree hash.
	RatchetTree TreeNodes
	// ExternalPSKs are the external PSKs the Welcome may name; they are
	// kept in the joined group's state.
	ExternalPSKs []ExternalPSK
	// Resumed are groups whose resumption PSKs the Welcome may name: the old
	// group of a ReInit or the parent of a branch.
	Resumed []*Group
	// Parallel, if set, runs independent jobs (the leaf-signature checks of
	// the received tree, split by leaf range) and returns the first error.
	// This package starts no goroutines; a caller with several cores passes
	// a runner that does. Nil runs the jobs in order.
	Parallel func(jobs []func() error) error
	// ParallelJobs is how many jobs the checks are split into when Parallel
	// is set; zero means 8.
	ParallelJobs int
}

// validateJoinTree checks a received tree (RFC 9420 §12.4.3.1): structure,
// parent hashes and keys, then the leaf signatures, spread over
// opts.Parallel when given.
func (opts *JoinOptions) validateJoinTree(tree *RatchetTree, gc *GroupContext) error {
	if opts.Parallel == nil {
		return tree.Validate(gc)
	}
	if err := tree.ValidateStructure(gc); err != nil {
		return err
	}
	k := opts.ParallelJobs
	if k <= 0 {
		k = 8
	}
	n := tree.LeafCount()
	step := (n + uint32(k) - 1) / uint32(k)
	var jobs []func() error
	for from := uint32(0); from < n; from += step {
		lo, hi := LeafIndex(from), LeafIndex(min(from+step, n))
		jobs = append(jobs, func() error { return tree.VerifyLeafSignatures(gc.GroupID, lo, hi) })
	}
	return opts.Parallel(jobs)
}

// JoinFromWelcome joins a group from a Welcome addressed to the KeyPackage
// of kpb (RFC 9420 §12.4.3.1).
func JoinFromWelcome(opts JoinOptions, welcome *Welcome, kpb *KeyPackageBundle) (*Group, error) {
	if welcome == nil || kpb == nil || kpb.KeyPackage == nil {
		return nil, fmt.Errorf("%w: no welcome or key package", ErrWelcomeNotForUs)
	}
	kp := kpb.KeyPackage
	cs := kp.CipherSuite
	if welcome.CipherSuite != cs {
		return nil, fmt.Errorf("%w: welcome for %v, key package for %v", ErrInvalidGroupInfo, welcome.CipherSuite, cs)
	}
	signer, err := cs.NewSigner(kpb.SignaturePrivateKey)
	if err != nil {
		return nil, fmt.Errorf("mls: signature key: %w", err)
	}
	ref, err := kp.Ref()
	if err != nil {
		return nil, err
	}
	egs, ok := welcome.Find(ref)
	if !ok {
		return nil, ErrWelcomeNotForUs
	}
	pt, err := cs.DecryptWithLabel(kpb.InitPrivateKey, "Welcome", welcome.EncryptedGroupInfo,
		egs.EncryptedGroupSecrets.KEMOutput, egs.EncryptedGroupSecrets.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("mls: group secrets: %w", err)
	}
	var gs GroupSecrets
	err = gs.Unmarshal(pt)
	clear(pt)
	if err != nil {
		return nil, fmt.Errorf("mls: group secrets: %w", err)
	}
	defer clear(gs.JoinerSecret)

	g := &Group{
		opts:   opts.GroupOptions,
		signer: signer,
		sigKey: bytes.Clone(kpb.SignaturePrivateKey),
		active: true,
	}
	for _, p := range opts.ExternalPSKs {
		g.SetExternalPSK(p.ID, p.PSK)
	}
	var resumed *Group
	var resumedUsage ResumptionPSKUsage
	for _, id := range gs.PSKs {
		if id.Type == PSKTypeResumption && id.Usage != ResumptionPSKUsageApplication {
			if resumed != nil {
				return nil, fmt.Errorf("%w: several reinit or branch PSKs", ErrInvalidResumption)
			}
			for _, r := range opts.Resumed {
				if bytes.Equal(r.ep.ctx.GroupID, id.PSKGroupID) {
					resumed = r
				}
			}
			if resumed == nil {
				return nil, fmt.Errorf("%w: resumption of group %x", ErrPSKNotFound, id.PSKGroupID)
			}
			resumedUsage = id.Usage
		}
	}
	for _, r := range opts.Resumed {
		for _, rp := range r.resumption {
			g.extraPSKs = append(g.extraPSKs, resumptionPSK{groupID: bytes.Clone(rp.groupID), epoch: rp.epoch, psk: bytes.Clone(rp.psk)})
		}
	}
	psks, err := g.pskInputsFor(cs, gs.PSKs)
	if err != nil {
		return nil, err
	}
	pskSecret, err := PSKSecret(cs, psks)
	if err != nil {
		return nil, err
	}
	welcomeSecret, err := WelcomeSecret(cs, gs.JoinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	key, nonce, err := WelcomeKeyNonce(cs, welcomeSecret)
	clear(welcomeSecret)
	if err != nil {
		return nil, err
	}
	giBytes, err := cs.Open(key, nonce, nil, welcome.EncryptedGroupInfo)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("mls: group info: %w", err)
	}
	var gi GroupInfo
	if err := gi.Unmarshal(giBytes); err != nil {
		return nil, fmt.Errorf("mls: group info: %w", err)
	}
	if gi.GroupContext.CipherSuite != cs || gi.GroupContext.Version != ProtocolVersionMLS10 {
		return nil, fmt.Errorf("%w: group of %v version %d", ErrInvalidGroupInfo, gi.GroupContext.CipherSuite, gi.GroupContext.Version)
	}
	tree, err := joinTree(cs, &gi, opts.RatchetTree)
	if err != nil {
		return nil, err
	}
	if err := verifyGroupInfoWithTree(&gi, tree, opts.validateJoinTree); err != nil {
		return nil, err
	}
	own, ok := findLeaf(tree, &kp.LeafNode)
	if !ok {
		return nil, fmt.Errorf("%w: own leaf not in the ratchet tree", ErrInvalidGroupInfo)
	}
	if err := treeCheckCapabilities(&gi.GroupContext, &kp.LeafNode); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidGroupInfo, err)
	}
	var pathSecret []byte
	if gs.PathSecret != nil {
		pathSecret = gs.PathSecret.PathSecret
	}
	priv, err := NewTreePrivateKeys(cs, own, kpb.EncryptionPrivateKey)
	if err != nil {
		return nil, err
	}
	if pathSecret != nil {
		if gi.Signer == own {
			return nil, fmt.Errorf("%w: group info signed by the joiner's own leaf", ErrInvalidGroupInfo)
		}
		priv, err = priv.WithPathSecret(tree, CommonAncestor(own.Node(), gi.Signer.Node()), pathSecret)
		if err != nil {
			return nil, err
		}
	}
	if err := priv.Check(tree); err != nil {
		return nil, err
	}
	secrets, err := EpochSecretsFromJoiner(&gi.GroupContext, bytes.Clone(gs.JoinerSecret), pskSecret)
	if err != nil {
		return nil, err
	}
	if err := VerifyConfirmationTag(cs, secrets.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag); err != nil {
		secrets.Erase()
		return nil, err
	}
	g.own = own
	g.ep.ctx = gi.GroupContext
	g.ep.tree = tree
	g.ep.priv = priv
	if err := g.ep.finish(g.cfg(), secrets, gi.ConfirmationTag); err != nil {
		return nil, err
	}
	if resumed != nil {
		if err := checkResumption(resumed, resumedUsage, g); err != nil {
			return nil, err
		}
	}
	g.noteResumption()
	return g, nil
}

// joinTree returns the ratchet tree of a GroupInfo: its ratchet_tree
// extension or the one supplied out of band.
func joinTree(cs CipherSuite, gi *GroupInfo, outOfBand TreeNodes) (*RatchetTree, error) {
	if ext, ok := gi.Extensions.Find(ExtensionTypeRatchetTree); ok {
		t, err := UnmarshalRatchetTree(cs, ext.Data)
		if err != nil {
			return nil, fmt.Errorf("mls: ratchet_tree extension: %w", err)
		}
		return t, nil
	}
	if outOfBand == nil {
		return nil, ErrMissingRatchetTree
	}
	return NewRatchetTreeFromNodes(cs, outOfBand)
}

// verifyGroupInfoWithTree checks a GroupInfo's signature with the signer's
// leaf and the integrity of the tree against its GroupContext (RFC 9420
// §12.4.3.1).
func verifyGroupInfoWithTree(gi *GroupInfo, tree *RatchetTree, validate func(*RatchetTree, *GroupContext) error) error {
	signer := tree.Leaf(gi.Signer)
	if signer == nil {
		return fmt.Errorf("%w: signer leaf %d is blank", ErrInvalidGroupInfo, gi.Signer)
	}
	if err := gi.Verify(signer.SignatureKey); err != nil {
		return err
	}
	if !bytes.Equal(tree.TreeHash(), gi.GroupContext.TreeHash) {
		return ErrWrongTreeHash
	}
	return validate(tree, &gi.GroupContext)
}

// findLeaf returns the leaf of tree that holds exactly ln.
func findLeaf(tree *RatchetTree, ln *LeafNode) (LeafIndex, bool) {
	want, err := ln.Marshal()
	if err != nil {
		return 0, false
	}
	for l, cand := range tree.Members() {
		if !bytes.Equal(cand.EncryptionKey, ln.EncryptionKey) {
			continue
		}
		got, err := cand.Marshal()
		if err == nil && bytes.Equal(got, want) {
			return l, true
		}
	}
	return 0, false
}

// checkResumption applies the ReInit and branch rules of RFC 9420 §11.2,
// §11.3 and §12.4.3.1 to a group g joined with a resumption PSK of usage
// usage from old.
func checkResumption(old *Group, usage ResumptionPSKUsage, g *Group) error {
	ctx := &g.ep.ctx
	if ctx.Epoch != 1 {
		return fmt.Errorf("%w: resumed group starts at epoch %d, not 1", ErrInvalidResumption, ctx.Epoch)
	}
	switch usage {
	case ResumptionPSKUsageReInit:
		r := old.reinit
		if r == nil {
			return fmt.Errorf("%w: the old group committed no reinit", ErrInvalidResumption)
		}
		if !bytes.Equal(r.GroupID, ctx.GroupID) || r.Version != ctx.Version || r.CipherSuite != ctx.CipherSuite {
			return fmt.Errorf("%w: group parameters differ from the reinit proposal", ErrInvalidResumption)
		}
		a, _ := r.Extensions.Marshal()
		b, _ := ctx.Extensions.Marshal()
		if !bytes.Equal(a, b) {
			return fmt.Errorf("%w: extensions differ from the reinit proposal", ErrInvalidResumption)
		}
		if !identitiesSubset(old.ep.tree, g.ep.tree) {
			return fmt.Errorf("%w: a member of the old group is missing", ErrInvalidResumption)
		}
	case ResumptionPSKUsageBranch:
		if ctx.Version != old.ep.ctx.Version || ctx.CipherSuite != old.ep.ctx.CipherSuite {
			return fmt.Errorf("%w: branch changes version or cipher suite", ErrInvalidResumption)
		}
		if !identitiesSubset(g.ep.tree, old.ep.tree) {
			return fmt.Errorf("%w: a member of the branch is not in the parent group", ErrInvalidResumption)
		}
	}
	return nil
}

// identitiesSubset reports whether every member of a is in b, comparing
// credentials (the identity the application sees).
func identitiesSubset(a, b *RatchetTree) bool {
	have := map[string]bool{}
	for _, ln := range b.Members() {
		c, err := ln.Credential.Marshal()
		if err == nil {
			have[string(c)] = true
		}
	}
	for _, ln := range a.Members() {
		c, err := ln.Credential.Marshal()
		if err != nil || !have[string(c)] {
			return false
		}
	}
	return true
}

// pskInputs resolves the PSKs of a Commit to their values.
func (g *Group) pskInputs(ids []PreSharedKeyID) ([]PSKInput, error) {
	return g.pskInputsFor(g.CipherSuite(), ids)
}

func (g *Group) pskInputsFor(cs CipherSuite, ids []PreSharedKeyID) ([]PSKInput, error) {
	out := make([]PSKInput, 0, len(ids))
	for _, id := range ids {
		psk, err := g.lookupPSK(cs, &id)
		if err != nil {
			return nil, err
		}
		out = append(out, PSKInput{ID: id, PSK: psk})
	}
	return out, nil
}

func (g *Group) lookupPSK(cs CipherSuite, id *PreSharedKeyID) ([]byte, error) {
	if len(id.PSKNonce) != cs.HashSize() {
		return nil, fmt.Errorf("%w: psk nonce of %d bytes", ErrInvalidProposal, len(id.PSKNonce))
	}
	switch id.Type {
	case PSKTypeExternal:
		for _, p := range g.externalPSKs {
			if bytes.Equal(p.id, id.PSKID) {
				return p.psk, nil
			}
		}
		return nil, fmt.Errorf("%w: external psk %x", ErrPSKNotFound, id.PSKID)
	case PSKTypeResumption:
		for _, list := range [][]resumptionPSK{g.resumption, g.extraPSKs} {
			for _, r := range list {
				if r.epoch == id.PSKEpoch && bytes.Equal(r.groupID, id.PSKGroupID) {
					return r.psk, nil
				}
			}
		}
		return nil, fmt.Errorf("%w: resumption psk of group %x epoch %d", ErrPSKNotFound, id.PSKGroupID, id.PSKEpoch)
	}
	return nil, fmt.Errorf("%w: psk type %d", ErrPSKNotFound, id.Type)
}

func sortExternalPSKs(list []externalPSK) {
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && bytes.Compare(list[j-1].id, list[j].id) > 0; j-- {
			list[j-1], list[j] = list[j], list[j-1]
		}
	}
}
