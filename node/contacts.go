package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/identity"
)

// ErrSafetyCodeMismatch reports a safety code that is not the one of this
// node and the contact: someone may be impersonating one of the two.
var ErrSafetyCodeMismatch = errors.New("node: safety code does not match")

// ErrUnknownContact reports a peer that is not among the contacts.
var ErrUnknownContact = errors.New("node: unknown contact")

// SafetyCode returns the code the user compares out of band with the
// person behind peerID (docs/identity.md §3).
func (n *Node) SafetyCode(peerID string) (string, error) {
	id, err := identity.ParsePeerID(peerID)
	if err != nil {
		return "", fmt.Errorf("node: safety code: %w", err)
	}
	return n.codes.Code(id).String(), nil
}

// VerifyContact records that the user compared the safety code with the
// person behind peerID and it matched. A code that does not match is
// ErrSafetyCodeMismatch and changes nothing.
func (n *Node) VerifyContact(ctx context.Context, peerID, name, code string) error {
	id, err := identity.ParsePeerID(peerID)
	if err != nil {
		return fmt.Errorf("node: verify contact: %w", err)
	}
	got, err := identity.ParseSafetyCode(code)
	if err != nil {
		return fmt.Errorf("node: verify contact: %w", err)
	}
	want := n.codes.Code(id)
	if got != want {
		return ErrSafetyCodeMismatch
	}
	now := n.clock.Now()
	c := datastore.Contact{
		PeerID:       []byte(peerID),
		Name:         name,
		IdentityKey:  id.PublicKey(),
		Verification: datastore.Verified,
		SafetyCode:   want.Digits(),
		AddedAt:      now,
		VerifiedAt:   now,
	}
	if old, err := n.store.Contacts().Get(ctx, c.PeerID); err == nil {
		c.AddedAt = old.AddedAt
		if c.Name == "" {
			c.Name = old.Name
		}
	}
	if err := n.store.Contacts().Put(ctx, c); err != nil {
		return fmt.Errorf("node: store contact: %w", err)
	}
	return nil
}

// ContactVerification returns how far the user verified peerID.
func (n *Node) ContactVerification(ctx context.Context, peerID string) (datastore.Verification, error) {
	c, err := n.store.Contacts().Get(ctx, []byte(peerID))
	if errors.Is(err, datastore.ErrNotFound) {
		return datastore.Unverified, nil
	}
	if err != nil {
		return datastore.Unverified, fmt.Errorf("node: contact: %w", err)
	}
	return c.Verification, nil
}

// AddContact records peerID under name. Adding a peer that is already a
// contact renames it and keeps its verification state.
func (n *Node) AddContact(ctx context.Context, peerID, name string) (datastore.Contact, error) {
	id, err := identity.ParsePeerID(peerID)
	if err != nil {
		return datastore.Contact{}, fmt.Errorf("node: add contact: %w", err)
	}
	c, err := n.store.Contacts().Get(ctx, []byte(peerID))
	switch {
	case errors.Is(err, datastore.ErrNotFound):
		c = datastore.Contact{
			PeerID:       []byte(peerID),
			IdentityKey:  id.PublicKey(),
			Verification: datastore.Unverified,
			AddedAt:      n.clock.Now(),
		}
	case err != nil:
		return datastore.Contact{}, fmt.Errorf("node: contact: %w", err)
	}
	c.Name = name
	if err := n.store.Contacts().Put(ctx, c); err != nil {
		return datastore.Contact{}, fmt.Errorf("node: store contact: %w", err)
	}
	return c, nil
}

// RenameContact changes a contact's name; ErrUnknownContact if peerID is
// not a contact.
func (n *Node) RenameContact(ctx context.Context, peerID, name string) (datastore.Contact, error) {
	c, err := n.Contact(ctx, peerID)
	if err != nil {
		return datastore.Contact{}, err
	}
	c.Name = name
	if err := n.store.Contacts().Put(ctx, c); err != nil {
		return datastore.Contact{}, fmt.Errorf("node: store contact: %w", err)
	}
	return c, nil
}

// Contact returns one contact; ErrUnknownContact if peerID is not one.
func (n *Node) Contact(ctx context.Context, peerID string) (datastore.Contact, error) {
	c, err := n.store.Contacts().Get(ctx, []byte(peerID))
	if errors.Is(err, datastore.ErrNotFound) {
		return datastore.Contact{}, fmt.Errorf("%w: %s", ErrUnknownContact, peerID)
	}
	if err != nil {
		return datastore.Contact{}, fmt.Errorf("node: contact: %w", err)
	}
	return c, nil
}

// Contacts lists every contact.
func (n *Node) Contacts(ctx context.Context) ([]datastore.Contact, error) {
	cs, err := n.store.Contacts().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("node: contacts: %w", err)
	}
	return cs, nil
}
