package consensus

import (
	"fmt"
)

// HardState is what an acceptor must keep across crashes: the highest ballot
// it promised, and the last ballot and value it accepted. A node persists it
// (synchronously, per group and epoch) whenever Ready.State is set, before
// sending Ready.Messages, and hands it back through Storage after a restart.
//
// The proposer needs no durable state of its own: before it sends a Prepare
// or an Accept for ballot b, its own acceptor promises b, so the persisted
// Promised also stops it from reusing a ballot after a restart.
type HardState struct {
	Epoch    uint64
	Promised Ballot
	Accepted Ballot
	Value    []byte // the value accepted under Accepted; nil if none
}

// IsZero reports whether h is the state of an acceptor that never promised.
func (h HardState) IsZero() bool {
	return h.Promised.IsZero() && h.Accepted.IsZero() && len(h.Value) == 0
}

func (h HardState) check() error {
	if err := checkBallotEncodable("promised", h.Promised); err != nil {
		return err
	}
	if err := checkBallotEncodable("accepted", h.Accepted); err != nil {
		return err
	}
	if err := checkValueEncodable("value", h.Value, true); err != nil {
		return err
	}
	if h.Accepted.IsZero() != (len(h.Value) == 0) {
		return fmt.Errorf("%w: accepted ballot %v with %d value bytes", ErrMalformed, h.Accepted, len(h.Value))
	}
	if h.Promised.Less(h.Accepted) {
		return fmt.Errorf("%w: promised %v below accepted %v", ErrMalformed, h.Promised, h.Accepted)
	}
	return nil
}

// MarshalBinary encodes h for storage.
func (h HardState) MarshalBinary() ([]byte, error) {
	if err := h.check(); err != nil {
		return nil, fmt.Errorf("consensus: encode state: %w", err)
	}
	b := make([]byte, 0, 1+8+8+8+4+len(h.Value))
	b = append(b, wireVersion)
	b = appendU64(b, h.Epoch)
	b = appendBallot(b, h.Promised)
	b = appendBallot(b, h.Accepted)
	return appendValue(b, h.Value), nil
}

// UnmarshalBinary decodes a stored state strictly; a corrupt record is an
// error, never a silently reset acceptor.
func (h *HardState) UnmarshalBinary(data []byte) error {
	r := reader{buf: append([]byte(nil), data...)}
	if v := r.u8("version"); r.err == nil && v != wireVersion {
		r.fail("unknown version %d", v)
	}
	var out HardState
	out.Epoch = r.u64("epoch")
	out.Promised = r.ballot("promised")
	out.Accepted = r.ballot("accepted")
	out.Value = r.value("value", MaxValueSize)
	err := r.end("state")
	if err == nil {
		if len(out.Value) == 0 {
			out.Value = nil
		}
		err = out.check()
	}
	if err != nil {
		return fmt.Errorf("consensus: decode state: %w", err)
	}
	*h = out
	return nil
}

// Storage gives a new Instance the acceptor state persisted for its group
// and epoch. A node implements it over its datastore; it returns the zero
// HardState when nothing was stored.
type Storage interface {
	InitialState() (HardState, error)
}
