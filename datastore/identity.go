package datastore

import (
	"context"
	"errors"
	"fmt"
)

// Identities stores the node's long-term identity. Writes are synced.
type Identities struct{ s *Store }

// Identity returns the identity store.
func (s *Store) Identity() Identities { return Identities{s} }

// Get returns the node identity, or ErrNotFound before Create.
func (st Identities) Get(ctx context.Context) (Identity, error) {
	if err := st.s.enter(); err != nil {
		return Identity{}, err
	}
	defer st.s.life.RUnlock()
	return getRecord(ctx, st.s, kindIdentity, nsIdentity, unmarshalIdentity)
}

// Create stores the node identity once; it returns ErrExists if there is
// one already, so a node never silently changes its peer ID. Synced.
func (st Identities) Create(ctx context.Context, id Identity) error {
	if len(id.PrivateKey) == 0 {
		return invalidf("identity without a private key")
	}
	s := st.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	s.groupMu.Lock()
	defer s.groupMu.Unlock()
	if _, err := s.get(ctx, kindIdentity, nsIdentity); err == nil {
		return fmt.Errorf("%w: the node already has an identity", ErrExists)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	if err := b.put(ctx, kindIdentity, nsIdentity, id.marshal()); err != nil {
		return err
	}
	return b.commit(ctx, true)
}

// KeyPackages stores the private keys of the node's published KeyPackages,
// by KeyPackageRef. Writes are synced: a KeyPackage must be on disk before
// it is published, and gone once used.
type KeyPackages struct{ s *Store }

// KeyPackages returns the KeyPackage store.
func (s *Store) KeyPackages() KeyPackages { return KeyPackages{s} }

// Put stores a KeyPackage with its private keys. Synced.
func (st KeyPackages) Put(ctx context.Context, kp KeyPackage) error {
	if len(kp.Ref) == 0 {
		return invalidf("KeyPackage without a ref")
	}
	s := st.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	if err := b.put(ctx, kindKeyPackage, s.keys.keyPackageKey(kp.Ref), kp.marshal()); err != nil {
		return err
	}
	return b.commit(ctx, true)
}

// Get returns the KeyPackage with the given ref, or ErrNotFound.
func (st KeyPackages) Get(ctx context.Context, ref []byte) (KeyPackage, error) {
	if err := st.s.enter(); err != nil {
		return KeyPackage{}, err
	}
	defer st.s.life.RUnlock()
	return getRecord(ctx, st.s, kindKeyPackage, st.s.keys.keyPackageKey(ref), unmarshalKeyPackage)
}

// List returns every stored KeyPackage (in no particular order).
func (st KeyPackages) List(ctx context.Context) ([]KeyPackage, error) {
	return listAll(ctx, st.s, nsKeyPackage, kindKeyPackage, unmarshalKeyPackage)
}

// Delete removes a KeyPackage and its private keys (for example when it
// expires). Joining a group through Groups.Join deletes the KeyPackage it
// used in the same batch. Synced; deleting an absent ref is not an error.
func (st KeyPackages) Delete(ctx context.Context, ref []byte) error {
	s := st.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	if err := b.del(ctx, s.keys.keyPackageKey(ref)); err != nil {
		return err
	}
	return b.commit(ctx, true)
}

// Contacts stores the peers the user knows and their verification state.
// Writes are synced.
type Contacts struct{ s *Store }

// Contacts returns the contact store.
func (s *Store) Contacts() Contacts { return Contacts{s} }

// Put creates or replaces a contact. Synced.
func (st Contacts) Put(ctx context.Context, c Contact) error {
	if len(c.PeerID) == 0 {
		return invalidf("contact without a peer ID")
	}
	if c.Verification > KeyChanged {
		return invalidf("unknown verification state %d", c.Verification)
	}
	s := st.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	if err := b.put(ctx, kindContact, s.keys.contactKey(c.PeerID), c.marshal()); err != nil {
		return err
	}
	return b.commit(ctx, true)
}

// Get returns the contact with the given peer ID, or ErrNotFound.
func (st Contacts) Get(ctx context.Context, peerID []byte) (Contact, error) {
	if err := st.s.enter(); err != nil {
		return Contact{}, err
	}
	defer st.s.life.RUnlock()
	return getRecord(ctx, st.s, kindContact, st.s.keys.contactKey(peerID), unmarshalContact)
}

// List returns every contact (in no particular order).
func (st Contacts) List(ctx context.Context) ([]Contact, error) {
	return listAll(ctx, st.s, nsContact, kindContact, unmarshalContact)
}

// Delete removes a contact. Synced; deleting an absent contact is not an
// error.
func (st Contacts) Delete(ctx context.Context, peerID []byte) error {
	s := st.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	if err := b.del(ctx, s.keys.contactKey(peerID)); err != nil {
		return err
	}
	return b.commit(ctx, true)
}

// listAll decodes every record under prefix.
func listAll[T any](ctx context.Context, s *Store, prefix string, k kind, dec func([]byte) (T, error)) ([]T, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.life.RUnlock()
	var out []T
	err := s.scan(ctx, span{prefix: prefix}, func(key string, v []byte) (bool, error) {
		r, err := decodeRecord(s, k, key, v, dec)
		if err != nil {
			return false, err
		}
		out = append(out, r)
		return true, nil
	})
	return out, err
}
