package datastore

import (
	"context"
	"fmt"
)

// Consensus stores the consensus acceptor state of each (group, epoch): what
// an acceptor promised and accepted, which must be on disk before its reply
// is sent. Records are opaque bytes from the consensus package. Writes are
// synced. Groups.Transition deletes the records of the epoch it ends and of
// earlier ones: the recorded decision answers for them from then on.
type Consensus struct{ s *Store }

// Consensus returns the consensus store.
func (s *Store) Consensus() Consensus { return Consensus{s} }

// SaveAcceptor stores the acceptor state of one epoch, replacing the
// previous one, and returns only once it is on stable storage. It returns an
// *EpochConflictError if the epoch is already decided.
func (st Consensus) SaveAcceptor(ctx context.Context, groupID []byte, epoch uint64, state []byte) error {
	if len(groupID) == 0 {
		return invalidf("acceptor state without a group ID")
	}
	s := st.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	s.groupMu.Lock() // against a concurrent Transition of this epoch
	defer s.groupMu.Unlock()
	bg := s.keys.group(groupID)
	if decided, err := s.has(ctx, decisionKey(bg, epoch)); err != nil {
		return err
	} else if decided {
		return fmt.Errorf("datastore: acceptor state for decided epoch %d: %w", epoch, &EpochConflictError{GroupID: groupID, Stored: epoch + 1, Want: epoch})
	}
	b, err := s.newBatch(ctx)
	if err != nil {
		return err
	}
	r := acceptorRecord{GroupID: groupID, Epoch: epoch, State: state}
	if err := b.put(ctx, kindAcceptor, acceptorKey(bg, epoch), r.marshal()); err != nil {
		return err
	}
	return b.commit(ctx, true)
}

// Acceptor returns the acceptor state of one epoch, or ErrNotFound.
func (st Consensus) Acceptor(ctx context.Context, groupID []byte, epoch uint64) ([]byte, error) {
	s := st.s
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.life.RUnlock()
	r, err := getRecord(ctx, s, kindAcceptor, acceptorKey(s.keys.group(groupID), epoch), unmarshalAcceptor)
	if err != nil {
		return nil, err
	}
	return r.State, nil
}

// AcceptorEpochs lists the epochs of a group with stored acceptor state,
// oldest first: what a restarting node reloads.
func (st Consensus) AcceptorEpochs(ctx context.Context, groupID []byte) ([]uint64, error) {
	s := st.s
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.life.RUnlock()
	bg := s.keys.group(groupID)
	prefix := consensusPrefix(bg)
	var out []uint64
	err := s.scan(ctx, span{prefix: prefix, keysOnly: true}, func(key string, _ []byte) (bool, error) {
		e, err := parseHex64(key[len(prefix):])
		if err != nil {
			return false, &CorruptRecordError{Key: key, Record: kindAcceptor.String(), Err: err}
		}
		out = append(out, e)
		return true, nil
	})
	return out, err
}
