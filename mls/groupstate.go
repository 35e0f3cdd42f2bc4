package mls

import (
	"bytes"
	"errors"
	"fmt"
)

// groupStateVersion is the version of the marshaled Group format. A
// decoder accepts exactly this version; a future format gets a new number
// and a migration.
const groupStateVersion = 1

// ErrGroupState reports a marshaled group state that is malformed or
// inconsistent.
var ErrGroupState = errors.New("mls: invalid group state")

// Marshal encodes the complete state of the group for storage: signing key,
// current epoch (tree with private keys, key schedule, secret tree),
// retained past epochs, PSKs, cached proposals and the own pending Commit.
// The encoding holds secrets. It is deterministic: unmarshaling and
// marshaling again gives the same bytes.
//
//	struct {
//	    uint16 format;                    // 1
//	    opaque signature_private_key<V>;
//	    uint32 own_leaf;
//	    bool active;
//	    optional<ReInit> reinit;
//	    EpochState current;
//	    PastEpoch past<V>;
//	    ResumptionPSK resumption<V>;
//	    ExternalPSK external_psks<V>;
//	    ResumptionPSK other_groups_psks<V>;
//	    CachedProposal proposals<V>;
//	    optional<PendingCommit> pending;
//	} GroupState;
func (g *Group) Marshal() ([]byte, error) {
	var e Encoder
	g.marshal(&e)
	return e.Result()
}

// UnmarshalGroup decodes a state written by Group.Marshal. opts are the
// options the Group runs with (they are not stored). Any inconsistency,
// including trailing bytes, is an error wrapping ErrGroupState.
func UnmarshalGroup(opts GroupOptions, b []byte) (*Group, error) {
	g := &Group{opts: opts}
	d := NewDecoder(b)
	g.unmarshal(d)
	if err := d.Finish(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGroupState, err)
	}
	return g, nil
}

func (g *Group) marshal(e *Encoder) {
	e.Uint16(groupStateVersion)
	e.Opaque(g.sigKey)
	e.Uint32(uint32(g.own))
	e.Bool(g.active)
	marshalOptionalReInit(e, g.reinit)
	g.ep.marshal(e)
	e.Vector(func(e *Encoder) {
		for _, p := range g.past {
			e.Uint64(p.epoch)
			marshalProtectorState(e, p.protector, &p.psec)
			marshalChanged(e, p.changed)
		}
	})
	marshalResumptionPSKs(e, g.resumption)
	e.Vector(func(e *Encoder) {
		for _, p := range g.externalPSKs {
			e.Opaque(p.id)
			e.Opaque(p.psk)
		}
	})
	marshalResumptionPSKs(e, g.extraPSKs)
	e.Vector(func(e *Encoder) {
		for _, c := range g.proposals {
			e.Opaque(c.ref)
			c.proposal.marshal(e)
			c.sender.marshal(e)
			marshalOptionalOpaque(e, c.updatePriv)
		}
	})
	e.Optional(g.pending != nil)
	if g.pending != nil {
		g.pending.marshal(e)
	}
}

func (g *Group) unmarshal(d *Decoder) {
	if v := d.Uint16(); d.Err() == nil && v != groupStateVersion {
		d.Fail(fmt.Errorf("%w: format version %d, want %d", ErrInvalidValue, v, groupStateVersion))
		return
	}
	g.sigKey = d.Opaque()
	g.own = LeafIndex(d.Uint32())
	g.active = d.Bool()
	g.reinit = unmarshalOptionalReInit(d)
	g.ep.unmarshal(d, g.cfg())
	if d.Err() != nil {
		return
	}
	cs := g.ep.ctx.CipherSuite
	signer, err := cs.NewSigner(g.sigKey)
	if err != nil {
		d.Fail(err)
		return
	}
	g.signer = signer
	if g.ep.priv.Leaf() != g.own {
		d.Fail(fmt.Errorf("%w: private keys for leaf %d, own leaf %d", ErrInvalidValue, g.ep.priv.Leaf(), g.own))
		return
	}
	if ln := g.ep.tree.Leaf(g.own); ln == nil || !bytes.Equal(ln.SignatureKey, signer.Public()) {
		d.Fail(fmt.Errorf("%w: own leaf does not carry the signature key", ErrInvalidValue))
		return
	}
	v := d.Vector()
	for v.More() {
		p := &pastEpoch{epoch: v.Uint64()}
		p.protector, p.psec = unmarshalProtectorState(v, g.cfg(), cs)
		p.changed = unmarshalChanged(v)
		if v.Err() != nil {
			return
		}
		if p.protector.Epoch() != p.epoch || p.epoch >= g.ep.ctx.Epoch || (len(g.past) > 0 && g.past[len(g.past)-1].epoch >= p.epoch) {
			v.Fail(fmt.Errorf("%w: past epoch %d out of order", ErrInvalidValue, p.epoch))
			return
		}
		g.past = append(g.past, p)
	}
	g.resumption = unmarshalResumptionPSKs(d, cs)
	v = d.Vector()
	for v.More() {
		p := externalPSK{id: v.Opaque(), psk: v.Opaque()}
		if v.Err() == nil && len(g.externalPSKs) > 0 && bytes.Compare(g.externalPSKs[len(g.externalPSKs)-1].id, p.id) >= 0 {
			v.Fail(fmt.Errorf("%w: external PSKs not in order", ErrInvalidValue))
		}
		g.externalPSKs = append(g.externalPSKs, p)
	}
	g.extraPSKs = unmarshalResumptionPSKs(d, cs)
	v = d.Vector()
	for v.More() {
		c := &cachedProposal{ref: v.Opaque(), proposal: new(Proposal)}
		c.proposal.unmarshal(v)
		c.sender.unmarshal(v)
		c.updatePriv = unmarshalOptionalOpaque(v)
		if v.Err() == nil && len(c.ref) != cs.HashSize() {
			v.Fail(fmt.Errorf("%w: proposal reference of %d bytes", ErrInvalidValue, len(c.ref)))
		}
		g.proposals = append(g.proposals, c)
	}
	if d.Optional() {
		g.pending = unmarshalPendingCommit(d, g)
	}
}

func marshalOptionalOpaque(e *Encoder, b []byte) {
	e.Optional(b != nil)
	if b != nil {
		e.Opaque(b)
	}
}

func unmarshalOptionalOpaque(d *Decoder) []byte {
	if d.Optional() {
		return d.Opaque()
	}
	return nil
}

func marshalOptionalReInit(e *Encoder, r *ReInit) {
	e.Optional(r != nil)
	if r != nil {
		e.Opaque(r.GroupID)
		e.Uint16(uint16(r.Version))
		e.Uint16(uint16(r.CipherSuite))
		r.Extensions.marshal(e)
	}
}

func unmarshalOptionalReInit(d *Decoder) *ReInit {
	if !d.Optional() {
		return nil
	}
	r := &ReInit{GroupID: d.Opaque(), Version: ProtocolVersion(d.Uint16()), CipherSuite: CipherSuite(d.Uint16())}
	r.Extensions.unmarshal(d)
	return r
}

func marshalResumptionPSKs(e *Encoder, list []resumptionPSK) {
	e.Vector(func(e *Encoder) {
		for _, r := range list {
			e.Opaque(r.groupID)
			e.Uint64(r.epoch)
			e.Opaque(r.psk)
		}
	})
}

func unmarshalResumptionPSKs(d *Decoder, cs CipherSuite) []resumptionPSK {
	var out []resumptionPSK
	v := d.Vector()
	for v.More() {
		r := resumptionPSK{groupID: v.Opaque(), epoch: v.Uint64(), psk: v.Opaque()}
		if v.Err() == nil && len(r.psk) != cs.HashSize() {
			v.Fail(fmt.Errorf("%w: resumption PSK of %d bytes", ErrInvalidValue, len(r.psk)))
		}
		out = append(out, r)
	}
	return out
}

// marshalChanged writes a leaf → old value map in leaf order.
func marshalChanged(e *Encoder, m map[LeafIndex]*LeafNode) {
	leaves := make([]LeafIndex, 0, len(m))
	for l := range m {
		leaves = append(leaves, l)
	}
	sortLeaves(leaves)
	e.Vector(func(e *Encoder) {
		for _, l := range leaves {
			e.Uint32(uint32(l))
			e.Optional(m[l] != nil)
			if m[l] != nil {
				m[l].marshal(e)
			}
		}
	})
}

func unmarshalChanged(d *Decoder) map[LeafIndex]*LeafNode {
	m := map[LeafIndex]*LeafNode{}
	v := d.Vector()
	last := int64(-1)
	for v.More() {
		l := LeafIndex(v.Uint32())
		var ln *LeafNode
		if v.Optional() {
			ln = new(LeafNode)
			ln.unmarshal(v)
		}
		if v.Err() == nil && int64(l) <= last {
			v.Fail(fmt.Errorf("%w: changed leaves not in order", ErrInvalidValue))
		}
		last = int64(l)
		m[l] = ln
	}
	return m
}

func sortLeaves(l []LeafIndex) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j-1] > l[j]; j-- {
			l[j-1], l[j] = l[j], l[j-1]
		}
	}
}

// marshal writes an epoch:
//
//	struct {
//	    GroupContext context;
//	    optional<Node> ratchet_tree<V>;
//	    TreePrivateKeys private_keys;
//	    opaque exporter<V>; opaque external<V>; opaque confirmation_key<V>;
//	    opaque membership_key<V>; opaque resumption_psk<V>;
//	    opaque epoch_authenticator<V>; opaque init_secret<V>;
//	    opaque confirmation_tag<V>;
//	    ProtectorState protector;
//	} EpochState;
//
// The interim transcript hash is recomputed from the confirmation tag.
func (ep *epochState) marshal(e *Encoder) {
	ep.ctx.marshal(e)
	nodes := ep.tree.Nodes()
	nodes.marshal(e)
	ep.priv.marshal(e)
	s := ep.secrets
	for _, b := range [][]byte{s.ExporterSecret, s.ExternalSecret, s.ConfirmationKey, s.MembershipKey, s.ResumptionPSK, s.EpochAuthenticator, s.InitSecret} {
		e.Opaque(b)
	}
	e.Opaque(ep.confirmationTag)
	marshalProtectorState(e, ep.protector, &ep.psec)
}

func (ep *epochState) unmarshal(d *Decoder, cfg *Config) {
	ep.ctx.unmarshal(d)
	var nodes TreeNodes
	nodes.unmarshal(d)
	ep.priv = new(TreePrivateKeys)
	ep.priv.unmarshal(d)
	s := &EpochSecrets{Suite: ep.ctx.CipherSuite}
	for _, p := range []*[]byte{&s.ExporterSecret, &s.ExternalSecret, &s.ConfirmationKey, &s.MembershipKey, &s.ResumptionPSK, &s.EpochAuthenticator, &s.InitSecret} {
		*p = d.Opaque()
	}
	ep.confirmationTag = d.Opaque()
	if d.Err() != nil {
		return
	}
	cs := ep.ctx.CipherSuite
	if err := checkSuite(cs); err != nil {
		d.Fail(err)
		return
	}
	if ep.ctx.Version != ProtocolVersionMLS10 {
		d.Fail(fmt.Errorf("%w: protocol version %d", ErrInvalidValue, ep.ctx.Version))
		return
	}
	for _, b := range [][]byte{s.ExporterSecret, s.ExternalSecret, s.ConfirmationKey, s.MembershipKey, s.ResumptionPSK, s.EpochAuthenticator, s.InitSecret} {
		if len(b) != cs.HashSize() {
			d.Fail(fmt.Errorf("%w: epoch secret of %d bytes", ErrInvalidValue, len(b)))
			return
		}
	}
	ep.secrets = s
	tree, err := NewRatchetTreeFromNodes(cs, nodes)
	if err != nil {
		d.Fail(err)
		return
	}
	if !bytes.Equal(tree.TreeHash(), ep.ctx.TreeHash) {
		d.Fail(ErrWrongTreeHash)
		return
	}
	if ep.priv.CipherSuite() != cs {
		d.Fail(fmt.Errorf("%w: private keys for another suite", ErrInvalidValue))
		return
	}
	if err := ep.priv.Check(tree); err != nil {
		d.Fail(err)
		return
	}
	ep.tree = tree
	if ep.interim, err = InterimTranscriptHash(cs, ep.ctx.ConfirmedTranscriptHash, ep.confirmationTag); err != nil {
		d.Fail(err)
		return
	}
	ep.protector, ep.psec = unmarshalProtectorState(d, cfg, cs)
	if d.Err() != nil {
		return
	}
	if !bytes.Equal(ep.protector.GroupContext(), mustMarshal(&ep.ctx)) || ep.protector.SecretTree().LeafCount() != tree.LeafCount() {
		d.Fail(fmt.Errorf("%w: message protection state of another epoch", ErrInvalidValue))
	}
}

// marshalProtectorState writes the state of a Protector:
//
//	struct {
//	    GroupContext context;
//	    opaque sender_data_secret<V>;
//	    opaque membership_key<V>;
//	    uint32 leaf_count;
//	    struct { uint64 node; opaque secret<V>; } nodes<V>;   // by node
//	    struct { uint32 leaf; Ratchet handshake; Ratchet application; } ratchets<V>; // by leaf
//	} ProtectorState;
//	struct {
//	    opaque secret<V>; uint64 next;
//	    struct { uint32 generation; opaque key<V>; opaque nonce<V>; } retained<V>;
//	} Ratchet;
func marshalProtectorState(e *Encoder, p *Protector, psec *protectorSecrets) {
	var gc GroupContext
	if err := gc.Unmarshal(p.GroupContext()); err != nil {
		e.Fail(err)
		return
	}
	gc.marshal(e)
	e.Opaque(psec.senderData)
	e.Opaque(psec.membership)
	t := p.SecretTree()
	e.Uint32(t.leafCount)
	nodes := make([]uint64, 0, len(t.nodes))
	for x := range t.nodes {
		nodes = append(nodes, x)
	}
	for i := 1; i < len(nodes); i++ {
		for j := i; j > 0 && nodes[j-1] > nodes[j]; j-- {
			nodes[j-1], nodes[j] = nodes[j], nodes[j-1]
		}
	}
	e.Vector(func(e *Encoder) {
		for _, x := range nodes {
			e.Uint64(x)
			e.Opaque(t.nodes[x])
		}
	})
	leaves := make([]LeafIndex, 0, len(t.ratchets))
	for l := range t.ratchets {
		leaves = append(leaves, l)
	}
	sortLeaves(leaves)
	e.Vector(func(e *Encoder) {
		for _, l := range leaves {
			e.Uint32(uint32(l))
			for _, r := range t.ratchets[l] {
				e.Opaque(r.secret)
				e.Uint64(r.next)
				e.Vector(func(e *Encoder) {
					for _, k := range r.retained {
						e.Uint32(k.Generation)
						e.Opaque(k.Key)
						e.Opaque(k.Nonce)
					}
				})
			}
		}
	})
}

func unmarshalProtectorState(d *Decoder, cfg *Config, cs CipherSuite) (*Protector, protectorSecrets) {
	p, psec := unmarshalProtector(d, cfg, cs)
	if d.Err() != nil {
		return nil, protectorSecrets{}
	}
	return p, psec
}

func unmarshalProtector(d *Decoder, cfg *Config, cs CipherSuite) (*Protector, protectorSecrets) {
	var none protectorSecrets
	var gc GroupContext
	gc.unmarshal(d)
	sd := d.Opaque()
	mk := d.Opaque()
	leafCount := d.Uint32()
	if d.Err() != nil {
		return nil, none
	}
	if gc.CipherSuite != cs {
		d.Fail(fmt.Errorf("%w: message protection state for %v", ErrInvalidValue, gc.CipherSuite))
		return nil, none
	}
	t, err := NewSecretTree(cfg, cs, make([]byte, cs.HashSize()), leafCount)
	if err != nil {
		d.Fail(err)
		return nil, none
	}
	clear(t.nodes)
	width := uint64(NodeWidth(1 << t.depth))
	v := d.Vector()
	last := int64(-1)
	for v.More() {
		x := v.Uint64()
		s := v.Opaque()
		if v.Err() != nil {
			return nil, none
		}
		if x >= width || int64(x) <= last || len(s) != cs.HashSize() {
			v.Fail(fmt.Errorf("%w: secret tree node %d", ErrInvalidValue, x))
			return nil, none
		}
		last = int64(x)
		t.nodes[x] = s
	}
	v = d.Vector()
	last = -1
	for v.More() {
		l := LeafIndex(v.Uint32())
		if v.Err() == nil && (int64(l) <= last || uint32(l) >= leafCount) {
			v.Fail(fmt.Errorf("%w: secret tree leaf %d", ErrInvalidValue, l))
			return nil, none
		}
		last = int64(l)
		rs := new([2]ratchet)
		for i := range rs {
			rs[i] = unmarshalRatchet(v, cs)
		}
		t.ratchets[l] = rs
	}
	if d.Err() != nil {
		return nil, none
	}
	p, err := NewProtector(cfg, &gc, sd, mk, t)
	if err != nil {
		d.Fail(err)
		return nil, none
	}
	return p, protectorSecrets{senderData: sd, membership: mk}
}

func unmarshalRatchet(d *Decoder, cs CipherSuite) ratchet {
	r := ratchet{secret: d.Opaque(), next: d.Uint64()}
	v := d.Vector()
	for v.More() {
		k := RatchetKey{Generation: v.Uint32(), Key: v.Opaque(), Nonce: v.Opaque()}
		if v.Err() != nil {
			break
		}
		if uint64(k.Generation) >= r.next || len(k.Key) != cs.AEADKeySize() || len(k.Nonce) != cs.AEADNonceSize() ||
			(len(r.retained) > 0 && r.retained[len(r.retained)-1].Generation >= k.Generation) {
			v.Fail(fmt.Errorf("%w: retained key of generation %d", ErrInvalidValue, k.Generation))
			break
		}
		r.retained = append(r.retained, k)
	}
	if d.Err() == nil && (len(r.secret) != cs.HashSize() || r.next > maxGeneration+1) {
		d.Fail(fmt.Errorf("%w: ratchet at generation %d", ErrInvalidValue, r.next))
	}
	return r
}

// marshal writes an own pending Commit:
//
//	struct {
//	    MLSMessage commit; optional<MLSMessage> welcome;
//	    Proposal by_value<V>;
//	    struct { Proposal proposal; Sender sender; optional<opaque> ref;
//	             optional<opaque> update_priv; } proposals<V>;
//	    optional<ReInit> reinit;
//	    optional<opaque> own_update_priv;
//	    Member added<V>; Member removed<V>; Member updated<V>;
//	    EpochState next;
//	    uint32 new_own_leaf;
//	    struct { uint32 leaf; optional<LeafNode> old; } changed<V>;
//	} PendingCommit;
func (pc *PendingCommit) marshal(e *Encoder) {
	pc.Commit.marshal(e)
	e.Optional(pc.Welcome != nil)
	if pc.Welcome != nil {
		pc.Welcome.marshal(e)
	}
	e.Vector(func(e *Encoder) {
		for i := range pc.byValue {
			pc.byValue[i].marshal(e)
		}
	})
	sc := pc.staged
	e.Vector(func(e *Encoder) {
		for _, rp := range sc.proposals {
			rp.p.marshal(e)
			rp.sender.marshal(e)
			marshalOptionalOpaque(e, rp.ref)
			marshalOptionalOpaque(e, rp.updatePriv)
		}
	})
	marshalOptionalReInit(e, sc.applied.reinit)
	marshalOptionalOpaque(e, sc.applied.ownUpdatePriv)
	for _, list := range [][]Member{sc.diff.Added, sc.diff.Removed, sc.diff.Updated} {
		e.Vector(func(e *Encoder) {
			for _, m := range list {
				e.Uint32(uint32(m.Leaf))
				m.Credential.marshal(e)
				e.Opaque(m.SignatureKey)
				e.Opaque(m.EncryptionKey)
			}
		})
	}
	sc.next.marshal(e)
	e.Uint32(uint32(sc.newOwn))
	marshalChanged(e, sc.changed)
}

func unmarshalPendingCommit(d *Decoder, g *Group) *PendingCommit {
	pc := &PendingCommit{Commit: new(MLSMessage)}
	pc.Commit.unmarshal(d)
	if d.Optional() {
		pc.Welcome = new(MLSMessage)
		pc.Welcome.unmarshal(d)
	}
	v := d.Vector()
	for v.More() {
		var p Proposal
		p.unmarshal(v)
		pc.byValue = append(pc.byValue, p)
	}
	sc := &StagedCommit{group: g, baseEpoch: g.ep.ctx.Epoch, own: true, committer: MemberSender(g.own), applied: &appliedProposals{}}
	v = d.Vector()
	for v.More() {
		rp := resolvedProposal{p: new(Proposal), index: len(sc.proposals)}
		rp.p.unmarshal(v)
		rp.sender.unmarshal(v)
		rp.ref = unmarshalOptionalOpaque(v)
		rp.updatePriv = unmarshalOptionalOpaque(v)
		sc.proposals = append(sc.proposals, rp)
	}
	sc.applied.reinit = unmarshalOptionalReInit(d)
	sc.applied.ownUpdatePriv = unmarshalOptionalOpaque(d)
	for _, list := range []*[]Member{&sc.diff.Added, &sc.diff.Removed, &sc.diff.Updated} {
		v := d.Vector()
		for v.More() {
			m := Member{Leaf: LeafIndex(v.Uint32())}
			m.Credential.unmarshal(v)
			m.SignatureKey = v.Opaque()
			m.EncryptionKey = v.Opaque()
			*list = append(*list, m)
		}
	}
	sc.next = new(epochState)
	sc.next.unmarshal(d, g.cfg())
	sc.newOwn = LeafIndex(d.Uint32())
	sc.changed = unmarshalChanged(d)
	if d.Err() != nil {
		return nil
	}
	if pc.Commit.WireFormat != WireFormatPublicMessage && pc.Commit.WireFormat != WireFormatPrivateMessage ||
		(pc.Welcome != nil && pc.Welcome.WireFormat != WireFormatWelcome) {
		d.Fail(fmt.Errorf("%w: pending commit messages of the wrong wire format", ErrInvalidValue))
		return nil
	}
	if sc.next.ctx.Epoch != g.ep.ctx.Epoch+1 || !bytes.Equal(sc.next.ctx.GroupID, g.ep.ctx.GroupID) || sc.next.priv.Leaf() != sc.newOwn {
		d.Fail(fmt.Errorf("%w: pending commit for another epoch", ErrInvalidValue))
		return nil
	}
	pc.staged = sc
	return pc
}

// mustMarshal encodes v, or returns nil if it cannot be encoded (which then
// compares unequal to any real encoding).
func mustMarshal(v marshaler) []byte {
	b, err := encode(v)
	if err != nil {
		return nil
	}
	return b
}
