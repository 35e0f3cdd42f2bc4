package datastore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Groups stores MLS group state, the retained secrets of past epochs, the
// message keys kept for out-of-order messages, and the decided Commits.
type Groups struct{ s *Store }

// Groups returns the group store.
func (s *Store) Groups() Groups { return Groups{s} }

// NewGroup is a group this node starts holding: one it created, or one it
// joined from a Welcome.
type NewGroup struct {
	GroupID      []byte
	Epoch        uint64
	State        []byte // MLS group state at Epoch
	EpochSecrets []byte // the secrets of Epoch (secret tree, ratchet heads)
	// KeyPackageRef, for a join, is the KeyPackage whose init key decrypted
	// the Welcome; Join deletes it (unless it is a last-resort KeyPackage) in
	// the same batch that stores the group.
	KeyPackageRef []byte
}

// EpochTransition ends epoch Decision.Epoch of a group with the decided
// Commit and starts epoch Decision.Epoch+1.
type EpochTransition struct {
	GroupID []byte
	// Decision is the Commit decided for the epoch being ended (Epoch is
	// that epoch, which must be the stored one), with its certificate and
	// Welcome. It is kept for catch-up. Its GroupID may be left empty.
	Decision Decision
	// State is the MLS group state of the new epoch.
	State []byte
	// EpochSecrets are the secrets of the new epoch.
	EpochSecrets []byte
	// KeepPastEpochs is how many epochs before the new one keep their
	// secrets and message keys (docs/profile.md's retention window). Older
	// ones are deleted in the same batch.
	KeepPastEpochs uint64
}

// RatchetUpdate records what decrypting (or encrypting) in an epoch did to
// its secret tree.
type RatchetUpdate struct {
	GroupID []byte
	Epoch   uint64
	// Secrets, when non-nil, replace the epoch's secrets (the ratchet heads
	// after advancing).
	Secrets []byte
	// Retain are message keys skipped over, kept for messages still to come.
	Retain []RatchetKey
	// Used are message keys that have been used; they are deleted.
	Used []KeyID
}

// GroupInfo names a stored group and its epoch.
type GroupInfo struct {
	GroupID []byte
	Epoch   uint64
}

// Create stores a group this node created. Synced. ErrExists if the group
// is already stored.
func (st Groups) Create(ctx context.Context, g NewGroup) error {
	if len(g.KeyPackageRef) != 0 {
		return invalidf("Create takes no KeyPackageRef; use Join")
	}
	return st.start(ctx, g)
}

// Join stores a group joined through a Welcome and, in the same synced
// batch, deletes the KeyPackage (and so its init private key) that the
// Welcome used, unless it is a last-resort KeyPackage. ErrExists if the
// group is already stored; ErrNotFound if the KeyPackage is not.
func (st Groups) Join(ctx context.Context, g NewGroup) error {
	if len(g.KeyPackageRef) == 0 {
		return invalidf("Join needs the KeyPackageRef the Welcome used")
	}
	return st.start(ctx, g)
}

func (st Groups) start(ctx context.Context, g NewGroup) error {
	if len(g.GroupID) == 0 {
		return invalidf("group without an ID")
	}
	s := st.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	s.groupMu.Lock()
	defer s.groupMu.Unlock()
	bg := s.keys.group(g.GroupID)
	if ok, err := s.has(ctx, stateKey(bg)); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("%w: group %x", ErrExists, g.GroupID)
	}
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	if len(g.KeyPackageRef) != 0 {
		kpKey := s.keys.keyPackageKey(g.KeyPackageRef)
		kp, err := getRecord(ctx, s, kindKeyPackage, kpKey, unmarshalKeyPackage)
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("datastore: join group %x: KeyPackage %x: %w", g.GroupID, g.KeyPackageRef, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !kp.LastResort {
			if err := b.del(ctx, kpKey); err != nil {
				return err
			}
		}
	}
	gs := GroupState{GroupID: g.GroupID, Epoch: g.Epoch, State: g.State, UpdatedAt: time.Now()}
	if err := b.put(ctx, kindGroupState, stateKey(bg), gs.marshal()); err != nil {
		return err
	}
	es := epochSecrets{GroupID: g.GroupID, Epoch: g.Epoch, Secrets: g.EpochSecrets}
	if err := b.put(ctx, kindEpochSecrets, secretsKey(bg, g.Epoch), es.marshal()); err != nil {
		return err
	}
	return b.commit(ctx, true)
}

// Transition applies an epoch transition as one synced batch: the new
// group state and epoch secrets are stored, the decision is recorded, and
// the secrets and message keys of epochs past the retention window, and the
// consensus acceptor records of the ended epoch and earlier, are deleted. A
// crash leaves either the old epoch or the new one. It returns an
// *EpochConflictError if the stored epoch is not Decision.Epoch.
func (st Groups) Transition(ctx context.Context, t EpochTransition) error {
	if len(t.GroupID) == 0 {
		return invalidf("transition without a group ID")
	}
	if t.Decision.Epoch == ^uint64(0) {
		return invalidf("epoch counter exhausted")
	}
	s := st.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	s.groupMu.Lock()
	defer s.groupMu.Unlock()
	bg := s.keys.group(t.GroupID)
	cur, err := s.storedEpoch(ctx, bg)
	if err != nil {
		return fmt.Errorf("datastore: transition of group %x: %w", t.GroupID, err)
	}
	if cur != t.Decision.Epoch {
		return &EpochConflictError{GroupID: t.GroupID, Stored: cur, Want: t.Decision.Epoch}
	}
	next := cur + 1
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	gs := GroupState{GroupID: t.GroupID, Epoch: next, State: t.State, UpdatedAt: time.Now()}
	if err := b.put(ctx, kindGroupState, stateKey(bg), gs.marshal()); err != nil {
		return err
	}
	es := epochSecrets{GroupID: t.GroupID, Epoch: next, Secrets: t.EpochSecrets}
	if err := b.put(ctx, kindEpochSecrets, secretsKey(bg, next), es.marshal()); err != nil {
		return err
	}
	d := t.Decision
	d.GroupID = t.GroupID
	if d.DecidedAt.IsZero() {
		d.DecidedAt = time.Now()
	}
	if err := b.put(ctx, kindDecision, decisionKey(bg, cur), d.marshal()); err != nil {
		return err
	}
	cutoff := uint64(0)
	if next > t.KeepPastEpochs {
		cutoff = next - t.KeepPastEpochs
	}
	if err := s.deleteSpan(ctx, b, span{prefix: secretsPrefix(bg), to: secretsKey(bg, cutoff)}); err != nil {
		return err
	}
	if err := s.deleteSpan(ctx, b, span{prefix: ratchetPrefix(bg), to: ratchetPrefix(bg) + hex64(cutoff)}); err != nil {
		return err
	}
	if err := s.deleteSpan(ctx, b, span{prefix: consensusPrefix(bg), to: acceptorKey(bg, next)}); err != nil {
		return err
	}
	return b.commit(ctx, true)
}

// storedEpoch reads the epoch of the stored group state.
func (s *Store) storedEpoch(ctx context.Context, bg string) (uint64, error) {
	gs, err := getRecord(ctx, s, kindGroupState, stateKey(bg), unmarshalGroupState)
	if err != nil {
		return 0, err
	}
	return gs.Epoch, nil
}

// deleteSpan adds a delete for every key in sp to b.
func (s *Store) deleteSpan(ctx context.Context, b *batch, sp span) error {
	sp.keysOnly = true
	var doomed []string
	if err := s.scan(ctx, sp, func(key string, _ []byte) (bool, error) {
		doomed = append(doomed, key)
		return true, nil
	}); err != nil {
		return err
	}
	for _, k := range doomed {
		if err := b.del(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) has(ctx context.Context, key string) (bool, error) {
	ok, err := s.ds.Has(ctx, dsKey(key))
	if err != nil {
		return false, fmt.Errorf("datastore: read %s: %w", key, err)
	}
	return ok, nil
}

// SaveState replaces the group state within its epoch (for example after
// proposals were cached). Synced. It returns an *EpochConflictError if the
// stored epoch differs from state.Epoch: moving to another epoch is
// Transition's job.
func (st Groups) SaveState(ctx context.Context, state GroupState) error {
	s := st.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	s.groupMu.Lock()
	defer s.groupMu.Unlock()
	bg := s.keys.group(state.GroupID)
	cur, err := s.storedEpoch(ctx, bg)
	if err != nil {
		return fmt.Errorf("datastore: save state of group %x: %w", state.GroupID, err)
	}
	if cur != state.Epoch {
		return &EpochConflictError{GroupID: state.GroupID, Stored: cur, Want: state.Epoch}
	}
	state.UpdatedAt = time.Now()
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	if err := b.put(ctx, kindGroupState, stateKey(bg), state.marshal()); err != nil {
		return err
	}
	return b.commit(ctx, true)
}

// State returns the stored state of a group, or ErrNotFound.
func (st Groups) State(ctx context.Context, groupID []byte) (GroupState, error) {
	if err := st.s.enter(); err != nil {
		return GroupState{}, err
	}
	defer st.s.life.RUnlock()
	return getRecord(ctx, st.s, kindGroupState, stateKey(st.s.keys.group(groupID)), unmarshalGroupState)
}

// List returns every stored group and its epoch (in no particular order).
func (st Groups) List(ctx context.Context) ([]GroupInfo, error) {
	s := st.s
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.life.RUnlock()
	var out []GroupInfo
	err := s.scan(ctx, span{prefix: nsGroup}, func(key string, v []byte) (bool, error) {
		if k, _ := recordKindOf(key); k != kindGroupState {
			return true, nil
		}
		gs, err := decodeRecord(s, kindGroupState, key, v, unmarshalGroupState)
		if err != nil {
			return false, err
		}
		out = append(out, GroupInfo{GroupID: gs.GroupID, Epoch: gs.Epoch})
		return true, nil
	})
	return out, err
}

// EpochSecrets returns the stored secrets of one epoch of a group, or
// ErrNotFound if that epoch is not retained.
func (st Groups) EpochSecrets(ctx context.Context, groupID []byte, epoch uint64) ([]byte, error) {
	s := st.s
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.life.RUnlock()
	es, err := getRecord(ctx, s, kindEpochSecrets, secretsKey(s.keys.group(groupID), epoch), unmarshalEpochSecrets)
	if err != nil {
		return nil, err
	}
	return es.Secrets, nil
}

// RetainedEpochs lists the epochs of a group whose secrets are stored,
// oldest first.
func (st Groups) RetainedEpochs(ctx context.Context, groupID []byte) ([]uint64, error) {
	s := st.s
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.life.RUnlock()
	bg := s.keys.group(groupID)
	var out []uint64
	err := s.scan(ctx, span{prefix: secretsPrefix(bg), keysOnly: true}, func(key string, _ []byte) (bool, error) {
		e, err := parseHex64(key[len(secretsPrefix(bg)):])
		if err != nil {
			return false, &CorruptRecordError{Key: key, Record: kindEpochSecrets.String(), Err: err}
		}
		out = append(out, e)
		return true, nil
	})
	return out, err
}

// Ratchet applies a RatchetUpdate as one buffered batch: durable at the
// next synced write, Sync or Close. (A crash inside that window can leave a
// used key on disk; it is deleted with its epoch at the latest.) It returns
// ErrNotFound if the epoch is no longer retained, so that a late update can
// never bring back secrets that a transition deleted.
func (st Groups) Ratchet(ctx context.Context, u RatchetUpdate) error {
	s := st.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	s.groupMu.Lock()
	defer s.groupMu.Unlock()
	bg := s.keys.group(u.GroupID)
	if ok, err := s.has(ctx, secretsKey(bg, u.Epoch)); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("datastore: ratchet update for epoch %d of group %x, which is not retained: %w", u.Epoch, u.GroupID, ErrNotFound)
	}
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	if u.Secrets != nil {
		es := epochSecrets{GroupID: u.GroupID, Epoch: u.Epoch, Secrets: u.Secrets}
		if err := b.put(ctx, kindEpochSecrets, secretsKey(bg, u.Epoch), es.marshal()); err != nil {
			return err
		}
	}
	for _, k := range u.Retain {
		if k.Epoch != u.Epoch {
			return invalidf("retained key of epoch %d in an update of epoch %d", k.Epoch, u.Epoch)
		}
		if err := b.put(ctx, kindRatchetKey, ratchetKeyKey(bg, k.KeyID), k.marshal()); err != nil {
			return err
		}
	}
	for _, id := range u.Used {
		if err := b.del(ctx, ratchetKeyKey(bg, id)); err != nil {
			return err
		}
	}
	return b.commit(ctx, false)
}

// RatchetKey returns a retained message key, or ErrNotFound.
func (st Groups) RatchetKey(ctx context.Context, groupID []byte, id KeyID) (RatchetKey, error) {
	s := st.s
	if err := s.enter(); err != nil {
		return RatchetKey{}, err
	}
	defer s.life.RUnlock()
	return getRecord(ctx, s, kindRatchetKey, ratchetKeyKey(s.keys.group(groupID), id), unmarshalRatchetKey)
}

// Decision returns the decision that ended an epoch, or ErrNotFound.
func (st Groups) Decision(ctx context.Context, groupID []byte, epoch uint64) (Decision, error) {
	s := st.s
	if err := s.enter(); err != nil {
		return Decision{}, err
	}
	defer s.life.RUnlock()
	return getRecord(ctx, s, kindDecision, decisionKey(s.keys.group(groupID), epoch), unmarshalDecision)
}

// Decisions returns up to limit decisions from epoch from on, in epoch
// order: what a member that was away needs to catch up.
func (st Groups) Decisions(ctx context.Context, groupID []byte, from uint64, limit int) ([]Decision, error) {
	s := st.s
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.life.RUnlock()
	bg := s.keys.group(groupID)
	var out []Decision
	err := s.scan(ctx, span{prefix: decisionPrefix(bg), from: decisionKey(bg, from), limit: limit}, func(key string, v []byte) (bool, error) {
		d, err := decodeRecord(s, kindDecision, key, v, unmarshalDecision)
		if err != nil {
			return false, err
		}
		out = append(out, d)
		return true, nil
	})
	return out, err
}

// PruneDecisions deletes the decisions of epochs before the given one, once
// no member can still need them for catch-up. Synced.
func (st Groups) PruneDecisions(ctx context.Context, groupID []byte, before uint64) error {
	s := st.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	bg := s.keys.group(groupID)
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	if err := s.deleteSpan(ctx, b, span{prefix: decisionPrefix(bg), to: decisionKey(bg, before)}); err != nil {
		return err
	}
	return b.commit(ctx, true)
}

// Delete removes everything the store holds about a group except its
// decrypted history (History.Delete removes that): state, secrets, message
// keys, decisions, consensus records, message log, sync cursors. Synced.
func (st Groups) Delete(ctx context.Context, groupID []byte) error {
	s := st.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	s.groupMu.Lock()
	defer s.groupMu.Unlock()
	bg := s.keys.group(groupID)
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	for _, p := range []string{groupPrefix(bg), consensusPrefix(bg), decisionPrefix(bg), nsLog + bg + "/", nsLogID + bg + "/", syncCursorPrefix(bg)} {
		if err := s.deleteSpan(ctx, b, span{prefix: p}); err != nil {
			return err
		}
	}
	if err := b.commit(ctx, true); err != nil {
		return err
	}
	s.forgetSeq(nsLog + bg + "/")
	return nil
}
