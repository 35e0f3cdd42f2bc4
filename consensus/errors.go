package consensus

import "errors"

// Sentinel errors, for errors.Is. Every error returned by this package wraps
// one of them with context.
var (
	// ErrMalformed reports bytes that do not decode strictly: a bad version,
	// an unknown type, a length out of bounds, trailing bytes, or a field
	// combination the encoding never produces.
	ErrMalformed = errors.New("consensus: malformed encoding")

	// ErrInvalidConfig reports a Config that cannot describe an instance.
	ErrInvalidConfig = errors.New("consensus: invalid config")

	// ErrWrongEpoch reports a message addressed to another epoch's instance.
	ErrWrongEpoch = errors.New("consensus: message for another epoch")

	// ErrNotMember reports a message or certificate naming a leaf that is not
	// a member of the instance's epoch.
	ErrNotMember = errors.New("consensus: not a member of the epoch")

	// ErrProtocol reports a message that decodes but breaks the protocol's
	// rules (a ballot the sender may not use, a promise that contradicts its
	// ballot, two values under one ballot).
	ErrProtocol = errors.New("consensus: protocol violation")

	// ErrInvalidValue reports a value that the Validator rejected, or one that
	// is empty or too large.
	ErrInvalidValue = errors.New("consensus: invalid value")

	// ErrInvalidCertificate reports a certificate that does not prove a
	// decision: too few votes, a vote by a non-member, a duplicate or a bad
	// signature.
	ErrInvalidCertificate = errors.New("consensus: invalid certificate")

	// ErrDecided reports a proposal made after the instance decided; the
	// caller carries its value into the next epoch.
	ErrDecided = errors.New("consensus: epoch already decided")

	// ErrProposalPending reports a second proposal while one is in flight.
	ErrProposalPending = errors.New("consensus: a proposal is already pending")

	// ErrConflictingDecision reports a valid certificate for a value other
	// than the one this instance decided. It can only happen if more than a
	// quorum's worth of members broke the protocol; the node should stop and
	// report it loudly.
	ErrConflictingDecision = errors.New("consensus: conflicting decision")
)
