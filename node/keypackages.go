package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/gossip"
	"github.com/conclave-im/conclave/mls"
)

// keyPackagePool holds the node's published KeyPackages: per cipher suite,
// single-use ones handed out once each and a last-resort one served when
// those run out. The private keys live in the datastore (synced before a
// KeyPackage is ever served); the pool keeps the records in memory too, so
// that a Welcome can be matched without a scan of the store.
type keyPackagePool struct {
	byRef  map[string]*datastore.KeyPackage
	suites map[string]mls.CipherSuite
	served map[string]bool
	// serveLog holds, per requesting peer, when it was served, for the
	// profile's per-peer rate limit.
	serveLog map[peer.ID][]time.Time
}

func loadKeyPackagePool(ctx context.Context, n *Node) (*keyPackagePool, error) {
	p := &keyPackagePool{
		byRef:    make(map[string]*datastore.KeyPackage),
		suites:   make(map[string]mls.CipherSuite),
		served:   make(map[string]bool),
		serveLog: make(map[peer.ID][]time.Time),
	}
	recs, err := n.store.KeyPackages().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("node: load KeyPackages: %w", err)
	}
	want := n.prof.LeafCapabilities()
	for i := range recs {
		rec := &recs[i]
		var m mls.MLSMessage
		if err := m.Unmarshal(rec.KeyPackage); err != nil || m.KeyPackage == nil {
			n.log.Error("stored KeyPackage does not parse; deleting it", "err", err)
			if err := n.store.KeyPackages().Delete(ctx, rec.Ref); err != nil {
				return nil, fmt.Errorf("node: delete unreadable KeyPackage: %w", err)
			}
			continue
		}
		p.byRef[string(rec.Ref)] = rec
		p.suites[string(rec.Ref)] = m.KeyPackage.CipherSuite
		if !rec.ServedAt.IsZero() {
			p.served[string(rec.Ref)] = true
		}
		if !rec.ServedAt.IsZero() || hasCapabilities(m.KeyPackage.LeafNode.Capabilities, want) {
			continue
		}
		// Issued under an older profile (e.g. before a group extension
		// became required): groups of this version could not add it.
		if err := n.store.KeyPackages().Delete(ctx, rec.Ref); err != nil {
			return nil, fmt.Errorf("node: delete outdated KeyPackage: %w", err)
		}
		delete(p.byRef, string(rec.Ref))
		delete(p.suites, string(rec.Ref))
	}
	if err := p.expire(ctx, n); err != nil {
		return nil, err
	}
	if err := p.refill(ctx, n); err != nil {
		return nil, err
	}
	return p, nil
}

// hasCapabilities reports whether have lists every extension type want
// does (the capabilities that later profiles add are extension types).
func hasCapabilities(have mls.Capabilities, want mls.Capabilities) bool {
	for _, e := range want.Extensions {
		if !slices.Contains(have.Extensions, e) {
			return false
		}
	}
	return true
}

// expire deletes the KeyPackages, with their private keys, that expired
// longer than ExpiredInitKeyGrace ago: a Welcome to them can no longer be
// accepted.
func (p *keyPackagePool) expire(ctx context.Context, n *Node) error {
	now := n.clock.Now()
	for ref, rec := range p.byRef {
		if !now.After(rec.NotAfter.Add(n.prof.KeyPackages.ExpiredInitKeyGrace)) {
			continue
		}
		if err := n.store.KeyPackages().Delete(ctx, rec.Ref); err != nil {
			return fmt.Errorf("node: delete expired KeyPackage: %w", err)
		}
		delete(p.byRef, ref)
		delete(p.suites, ref)
		delete(p.served, ref)
	}
	return nil
}

// keyPackageCheckInterval is how often a running node expires and renews
// its KeyPackages (the lifetimes themselves are in the profile).
const keyPackageCheckInterval = 10 * time.Minute

// maintainKeyPackages expires and renews the pool on a running node, so
// that a node up for months keeps serving current KeyPackages.
func (n *Node) maintainKeyPackages(now time.Time) {
	if now.Sub(n.st.lastPoolCheck) < keyPackageCheckInterval {
		return
	}
	n.st.lastPoolCheck = now
	p := n.st.pool
	if err := p.expire(n.ctx, n); err != nil {
		n.log.Error("KeyPackage expiry", "err", err)
	}
	if err := p.refill(n.ctx, n); err != nil {
		n.log.Error("KeyPackage renewal", "err", err)
	}
}

// usable reports whether rec may still be handed out: not served yet and
// not within RenewBefore of its expiry.
func (p *keyPackagePool) usable(n *Node, rec *datastore.KeyPackage, now time.Time) bool {
	return !p.served[string(rec.Ref)] && now.Add(n.prof.KeyPackages.RenewBefore).Before(rec.NotAfter)
}

// refill tops up every suite's single-use KeyPackages to PoolSize once they
// fall below RefillBelow, and makes sure a fresh last-resort one exists.
func (p *keyPackagePool) refill(ctx context.Context, n *Node) error {
	now := n.clock.Now()
	for _, cs := range n.prof.Crypto.CipherSuites {
		single, lastResort := 0, false
		for ref, rec := range p.byRef {
			if p.suites[ref] != cs || !p.usable(n, rec, now) {
				continue
			}
			if rec.LastResort {
				if now.Sub(rec.CreatedAt) < n.prof.KeyPackages.LastResortRotation {
					lastResort = true
				}
			} else {
				single++
			}
		}
		if single < n.prof.KeyPackages.RefillBelow || single == 0 {
			for ; single < n.prof.KeyPackages.PoolSize; single++ {
				if err := p.generate(ctx, n, cs, false); err != nil {
					return err
				}
			}
		}
		if !lastResort {
			if err := p.generate(ctx, n, cs, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// generate creates one KeyPackage with a fresh signature key bound to the
// node identity, and stores it (synced) before it can be served.
func (p *keyPackagePool) generate(ctx context.Context, n *Node, cs mls.CipherSuite, lastResort bool) error {
	id, _, err := n.newMLSIdentity(cs)
	if err != nil {
		return err
	}
	now := n.clock.Now()
	lt := n.prof.IssueLifetime(now)
	kpb, err := mls.NewKeyPackage(n.mlsConfig(), cs, id, &mls.KeyPackageOptions{Lifetime: lt, LastResort: lastResort})
	if err != nil {
		return fmt.Errorf("node: new KeyPackage: %w", err)
	}
	ref, err := kpb.KeyPackage.Ref()
	if err != nil {
		return fmt.Errorf("node: KeyPackage ref: %w", err)
	}
	msg, err := mls.NewKeyPackageMessage(kpb.KeyPackage).Marshal()
	if err != nil {
		return fmt.Errorf("node: encode KeyPackage: %w", err)
	}
	rec := &datastore.KeyPackage{
		Ref:                 ref,
		KeyPackage:          msg,
		InitPrivateKey:      kpb.InitPrivateKey,
		LeafPrivateKey:      kpb.EncryptionPrivateKey,
		SignaturePrivateKey: kpb.SignaturePrivateKey,
		CreatedAt:           now,
		NotAfter:            time.Unix(int64(lt.NotAfter), 0),
		LastResort:          lastResort,
	}
	if err := n.store.KeyPackages().Put(ctx, *rec); err != nil {
		return fmt.Errorf("node: store KeyPackage: %w", err)
	}
	p.byRef[string(ref)] = rec
	p.suites[string(ref)] = cs
	return nil
}

// serveKeyPackage hands a peer one KeyPackage of the suite: a single-use
// one if any is left (never the same one twice), else the last-resort one.
func (n *Node) serveKeyPackage(from peer.ID, suite uint16) ([]byte, error) {
	p := n.st.pool
	now := n.clock.Now()
	cs := mls.CipherSuite(suite)
	if !n.prof.AcceptsCipherSuite(cs) {
		return nil, fmt.Errorf("node: cipher suite %v: %w", cs, gossip.ErrNotFound)
	}
	window := now.Add(-n.prof.KeyPackages.ServeWindow)
	log := p.serveLog[from][:0]
	for _, t := range p.serveLog[from] {
		if t.After(window) {
			log = append(log, t)
		}
	}
	if len(log) >= n.prof.KeyPackages.ServeLimit {
		p.serveLog[from] = log
		return nil, fmt.Errorf("node: %s fetched %d KeyPackages within %v: %w", from, len(log), n.prof.KeyPackages.ServeWindow, gossip.ErrBusy)
	}
	var pick, lastResort *datastore.KeyPackage
	for ref, rec := range p.byRef {
		if p.suites[ref] != cs || !p.usable(n, rec, now) {
			continue
		}
		if rec.LastResort {
			if lastResort == nil || rec.CreatedAt.After(lastResort.CreatedAt) {
				lastResort = rec
			}
		} else if pick == nil || rec.CreatedAt.Before(pick.CreatedAt) {
			pick = rec
		}
	}
	if pick == nil {
		pick = lastResort
	}
	if pick == nil {
		return nil, fmt.Errorf("node: no KeyPackage for %v: %w", cs, gossip.ErrNotFound)
	}
	if !pick.LastResort {
		// Marked before it leaves, so that a restart never serves it twice.
		served := *pick
		served.ServedAt = now
		if err := n.store.KeyPackages().Put(n.ctx, served); err != nil {
			return nil, fmt.Errorf("node: mark KeyPackage served: %w", err)
		}
		*pick = served
		p.served[string(pick.Ref)] = true
	}
	p.serveLog[from] = append(log, now)
	if err := p.refill(n.ctx, n); err != nil {
		n.log.Error("KeyPackage pool refill failed", "err", err)
	}
	return pick.KeyPackage, nil
}

// bundle returns the KeyPackage with the private keys a Welcome to it needs.
func (p *keyPackagePool) bundle(ref []byte) (*mls.KeyPackageBundle, *datastore.KeyPackage, error) {
	rec, ok := p.byRef[string(ref)]
	if !ok {
		return nil, nil, errors.New("node: unknown KeyPackage")
	}
	var m mls.MLSMessage
	if err := m.Unmarshal(rec.KeyPackage); err != nil || m.KeyPackage == nil {
		return nil, nil, fmt.Errorf("node: stored KeyPackage does not parse: %v", err)
	}
	return &mls.KeyPackageBundle{
		KeyPackage:           m.KeyPackage,
		InitPrivateKey:       rec.InitPrivateKey,
		EncryptionPrivateKey: rec.LeafPrivateKey,
		SignaturePrivateKey:  rec.SignaturePrivateKey,
	}, rec, nil
}

// findWelcomeKeyPackage returns the ref of the node's KeyPackage a Welcome
// is addressed to.
func (p *keyPackagePool) findWelcomeKeyPackage(w *mls.Welcome) ([]byte, bool) {
	for ref := range p.byRef {
		if _, ok := w.Find(mls.KeyPackageRef(ref)); ok {
			return []byte(ref), true
		}
	}
	return nil, false
}

// used forgets a KeyPackage whose Welcome was processed; the datastore
// deleted its private keys in the same batch that stored the group (a
// last-resort KeyPackage stays).
func (p *keyPackagePool) used(ref []byte) {
	if rec, ok := p.byRef[string(ref)]; ok && !rec.LastResort {
		delete(p.byRef, string(ref))
		delete(p.suites, string(ref))
		delete(p.served, string(ref))
	}
}

// newMLSIdentity creates a fresh per-membership signature key of suite cs
// and the credential that binds it to the node identity (design.md §2).
func (n *Node) newMLSIdentity(cs mls.CipherSuite) (mls.Identity, []byte, error) {
	priv, pub, err := cs.GenerateSignatureKeyPair(n.rand)
	if err != nil {
		return mls.Identity{}, nil, fmt.Errorf("node: signature key: %w", err)
	}
	cred, err := n.id.IssueCredential(cs, pub)
	if err != nil {
		return mls.Identity{}, nil, fmt.Errorf("node: credential: %w", err)
	}
	caps := n.prof.LeafCapabilities()
	return mls.Identity{SignaturePrivateKey: priv, Credential: cred.MLS(), Capabilities: &caps}, priv, nil
}

func (n *Node) mlsConfig() *mls.Config { return n.prof.MLSConfig(n.rand, n.clock.Now) }

func (n *Node) groupOptions() mls.GroupOptions {
	return mls.GroupOptions{Config: n.mlsConfig(), EpochRetention: n.prof.Epochs.PastEpochs}
}
