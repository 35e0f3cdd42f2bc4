package consensus

import (
	"crypto/sha256"
	"fmt"
	"math"
)

// MessageType names one step of the protocol.
type MessageType uint8

// The protocol's messages. See docs/consensus.md for the full exchange.
const (
	// MsgPrepare (phase 1a), broadcast by a proposer: "promise me Ballot".
	MsgPrepare MessageType = 1 + iota
	// MsgPromise (phase 1b), to the proposer: a promise for Ballot, carrying
	// the sender's last accepted ballot and value (AcceptedBallot, Value).
	MsgPromise
	// MsgNack, to a proposer: Ballot was refused because the sender promised
	// the higher ballot Promised.
	MsgNack
	// MsgAccept (phase 2a), broadcast by a proposer: "accept Value under
	// Ballot".
	MsgAccept
	// MsgAccepted (phase 2b), to the proposer: a signed vote for the value
	// of Ballot.
	MsgAccepted
	// MsgDecide, sent to a member that asks or that is still working on a
	// decided epoch: the decided Value with its Certificate (whose ballot is
	// Ballot). It is self-contained, for catch-up.
	MsgDecide
	// MsgLearn, to one member: "send me the decision if you know it". Ballot
	// is zero.
	MsgLearn
	// MsgCommitted, broadcast by the proposer once it holds a quorum of
	// votes: the Certificate and the SHA-256 Digest of the decided value,
	// without the value, which the members that voted already hold. A
	// member that does not hold it asks the sender with MsgLearn.
	MsgCommitted
)

func (t MessageType) String() string {
	switch t {
	case MsgPrepare:
		return "Prepare"
	case MsgPromise:
		return "Promise"
	case MsgNack:
		return "Nack"
	case MsgAccept:
		return "Accept"
	case MsgAccepted:
		return "Accepted"
	case MsgDecide:
		return "Decide"
	case MsgLearn:
		return "Learn"
	case MsgCommitted:
		return "Committed"
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Message is one protocol message. Which fields are meaningful depends on
// Type (see the MessageType constants); the others are zero after decoding
// and ignored by encoding.
//
// Messages carry no sender signature: the transport must authenticate From
// (the node sends them inside MLS PrivateMessages, whose sender is the
// signing leaf). Only votes are signed, because certificates must be
// checkable by anyone later.
type Message struct {
	Type   MessageType
	Epoch  uint64
	From   uint32 // sender's leaf index
	Ballot Ballot

	AcceptedBallot Ballot            // Promise: the sender's last accepted ballot, zero if none
	Promised       Ballot            // Nack: the higher ballot the sender promised
	Value          []byte            // Promise (empty if none accepted), Accept, Decide
	Signature      []byte            // Accepted: the vote signature
	Digest         [sha256.Size]byte // Committed: SHA-256 of the decided value
	Certificate    *Certificate      // Decide, Committed
}

// headerSize is version, type, epoch, from and ballot.
const headerSize = 1 + 1 + 8 + 4 + 8

// Size returns the length of m's encoding without building it.
func (m *Message) Size() int {
	n := headerSize
	switch m.Type {
	case MsgPromise:
		n += 8 + 4 + len(m.Value)
	case MsgNack:
		n += 8
	case MsgAccept:
		n += 4 + len(m.Value)
	case MsgAccepted:
		n += 2 + len(m.Signature)
	case MsgDecide:
		n += 4 + len(m.Value)
		if m.Certificate != nil {
			n += m.Certificate.votesSize()
		}
	case MsgCommitted:
		n += sha256.Size
		if m.Certificate != nil {
			n += m.Certificate.votesSize()
		}
	}
	return n
}

// MarshalBinary encodes m. It fails only if m could not be decoded again
// (an unknown type, a value or signature out of bounds, a Decide whose
// certificate names another ballot).
func (m *Message) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, m.Size()))
}

// AppendBinary appends m's encoding to b.
func (m *Message) AppendBinary(b []byte) ([]byte, error) {
	if err := m.checkEncodable(); err != nil {
		return nil, err
	}
	b = append(b, wireVersion, byte(m.Type))
	b = appendU64(b, m.Epoch)
	b = appendU32(b, m.From)
	b = appendBallot(b, m.Ballot)
	switch m.Type {
	case MsgPromise:
		b = appendBallot(b, m.AcceptedBallot)
		b = appendValue(b, m.Value)
	case MsgNack:
		b = appendBallot(b, m.Promised)
	case MsgAccept:
		b = appendValue(b, m.Value)
	case MsgAccepted:
		b = appendSig(b, m.Signature)
	case MsgDecide:
		b = appendValue(b, m.Value)
		b = m.Certificate.appendVotes(b)
	case MsgCommitted:
		b = append(b, m.Digest[:]...)
		b = m.Certificate.appendVotes(b)
	}
	return b, nil
}

func (m *Message) checkEncodable() error {
	wrap := func(err error) error { return fmt.Errorf("consensus: encode %v: %w", m.Type, err) }
	if err := checkBallotEncodable("ballot", m.Ballot); err != nil {
		return wrap(err)
	}
	switch m.Type {
	case MsgLearn:
		if !m.Ballot.IsZero() {
			return wrap(fmt.Errorf("%w: learn carries ballot %v", ErrMalformed, m.Ballot))
		}
		return nil
	}
	if m.Ballot.IsZero() {
		return wrap(fmt.Errorf("%w: zero ballot", ErrMalformed))
	}
	switch m.Type {
	case MsgPrepare:
	case MsgPromise:
		if err := checkBallotEncodable("accepted ballot", m.AcceptedBallot); err != nil {
			return wrap(err)
		}
		if err := checkValueEncodable("value", m.Value, true); err != nil {
			return wrap(err)
		}
		if m.AcceptedBallot.IsZero() != (len(m.Value) == 0) {
			return wrap(fmt.Errorf("%w: accepted ballot %v with %d value bytes", ErrMalformed, m.AcceptedBallot, len(m.Value)))
		}
	case MsgNack:
		if err := checkBallotEncodable("promised", m.Promised); err != nil {
			return wrap(err)
		}
	case MsgAccept:
		if err := checkValueEncodable("value", m.Value, false); err != nil {
			return wrap(err)
		}
	case MsgAccepted:
		if err := checkSigEncodable("signature", m.Signature); err != nil {
			return wrap(err)
		}
	case MsgDecide, MsgCommitted:
		if m.Type == MsgDecide {
			if err := checkValueEncodable("value", m.Value, false); err != nil {
				return wrap(err)
			}
		}
		if m.Certificate == nil {
			return wrap(fmt.Errorf("%w: decide without certificate", ErrMalformed))
		}
		if m.Certificate.Ballot != m.Ballot {
			return wrap(fmt.Errorf("%w: certificate ballot %v, message ballot %v", ErrMalformed, m.Certificate.Ballot, m.Ballot))
		}
		if err := m.Certificate.checkVotesEncodable(); err != nil {
			return wrap(err)
		}
	default:
		return wrap(fmt.Errorf("%w: unknown message type %d", ErrMalformed, uint8(m.Type)))
	}
	return nil
}

// UnmarshalBinary decodes data strictly into m: the version must be known,
// every length in bounds, no bytes left over, and the result must encode
// back to exactly data. Value, Signature and the certificate's signatures
// share one copy of data, so the caller may reuse data afterwards.
func (m *Message) UnmarshalBinary(data []byte) error {
	data = append([]byte(nil), data...)
	r := reader{buf: data}
	if v := r.u8("version"); r.err == nil && v != wireVersion {
		r.fail("unknown version %d", v)
	}
	var out Message
	out.Type = MessageType(r.u8("type"))
	out.Epoch = r.u64("epoch")
	out.From = r.u32("from")
	out.Ballot = r.ballot("ballot")
	if r.err == nil {
		if out.Type == MsgLearn {
			if !out.Ballot.IsZero() {
				r.fail("learn carries ballot %v", out.Ballot)
			}
		} else if out.Ballot.IsZero() {
			r.fail("%v with zero ballot", out.Type)
		}
	}
	if r.err == nil {
		switch out.Type {
		case MsgPrepare, MsgLearn:
		case MsgPromise:
			out.AcceptedBallot = r.ballot("accepted ballot")
			out.Value = r.value("value", MaxValueSize)
			if r.err == nil && out.AcceptedBallot.IsZero() != (len(out.Value) == 0) {
				r.fail("accepted ballot %v with %d value bytes", out.AcceptedBallot, len(out.Value))
			}
		case MsgNack:
			out.Promised = r.ballot("promised")
		case MsgAccept:
			out.Value = r.value("value", MaxValueSize)
			if r.err == nil && len(out.Value) == 0 {
				r.fail("empty value")
			}
		case MsgAccepted:
			out.Signature = r.sig("signature")
		case MsgDecide:
			out.Value = r.value("value", MaxValueSize)
			if r.err == nil && len(out.Value) == 0 {
				r.fail("empty value")
			}
			out.Certificate = &Certificate{Ballot: out.Ballot}
			out.Certificate.readVotes(&r)
		case MsgCommitted:
			copy(out.Digest[:], r.take(sha256.Size, "digest"))
			out.Certificate = &Certificate{Ballot: out.Ballot}
			out.Certificate.readVotes(&r)
		default:
			r.fail("unknown message type %d", uint8(out.Type))
		}
	}
	if err := r.end("message"); err != nil {
		return fmt.Errorf("consensus: decode message: %w", err)
	}
	if len(out.Value) == 0 {
		out.Value = nil
	}
	*m = out
	return nil
}

// DecodeMessage decodes one message; see Message.UnmarshalBinary.
func DecodeMessage(data []byte) (Message, error) {
	var m Message
	err := m.UnmarshalBinary(data)
	return m, err
}

// Envelope is a message with its destination.
type Envelope struct {
	To      uint32 // a member's leaf index, or ToAll
	Message Message
}

// ToAll as an Envelope destination means every other member of the epoch.
const ToAll uint32 = math.MaxUint32

// Broadcast reports whether e goes to every other member of the epoch.
func (e Envelope) Broadcast() bool { return e.To == ToAll }
