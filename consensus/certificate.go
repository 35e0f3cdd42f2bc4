package consensus

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
)

// Vote is one member's signature on a (ballot, value) pair.
type Vote struct {
	Leaf      uint32
	Signature []byte
}

// Certificate proves that a value was decided for an epoch: votes by a
// quorum (a strict majority) of the epoch's members for the same value under
// the same ballot, sorted by leaf index. Any member of that epoch, or anyone
// who knows the epoch's member set and leaf signature keys, can check it with
// VerifyCertificate.
type Certificate struct {
	Ballot Ballot
	Votes  []Vote
}

// Quorum returns the size of a strict majority of n members.
func Quorum(n int) int { return n/2 + 1 }

// coordinator returns the member that may use the fast round in epoch: the
// member at position epoch mod n of the sorted member set, so that the role
// rotates from epoch to epoch.
func coordinator(epoch uint64, sortedMembers []uint32) uint32 {
	return sortedMembers[epoch%uint64(len(sortedMembers))]
}

// voteLabel separates vote signatures from every other use of a leaf key.
const voteLabel = "conclave/consensus/vote/v1\x00"

// VoteContent returns the bytes a member signs to vote for the value whose
// SHA-256 digest is digest, under ballot b, in the given group and epoch.
func VoteContent(groupID []byte, epoch uint64, b Ballot, digest [sha256.Size]byte) []byte {
	c := make([]byte, 0, len(voteLabel)+2+len(groupID)+8+8+sha256.Size)
	c = append(c, voteLabel...)
	c = binary.BigEndian.AppendUint16(c, uint16(len(groupID)))
	c = append(c, groupID...)
	c = binary.BigEndian.AppendUint64(c, epoch)
	c = appendBallot(c, b)
	return append(c, digest[:]...)
}

// VerifyCertificate checks that cert proves value was decided in the given
// group and epoch, whose member set is members (leaf indices, in any order):
// at least a quorum of distinct members, each with a valid vote signature
// for value under cert.Ballot. It needs no other state, so a node catching up
// can use it on a certificate received from anyone.
func VerifyCertificate(groupID []byte, epoch uint64, members []uint32, value []byte, cert *Certificate, v Verifier) error {
	sorted, err := sortedMembers(members)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCertificate, err)
	}
	return verifyCertificate(groupID, epoch, sorted, Quorum(len(sorted)), sha256.Sum256(value), cert, v)
}

// verifyCertificate is VerifyCertificate on an already sorted member set,
// with an explicit quorum, for the value whose SHA-256 digest is digest.
func verifyCertificate(groupID []byte, epoch uint64, members []uint32, quorum int, digest [sha256.Size]byte, cert *Certificate, v Verifier) error {
	if cert == nil {
		return fmt.Errorf("%w: missing", ErrInvalidCertificate)
	}
	if cert.Ballot.IsZero() {
		return fmt.Errorf("%w: zero ballot", ErrInvalidCertificate)
	}
	if cert.Ballot.Round == FastRound && cert.Ballot.Leaf != coordinator(epoch, members) {
		return fmt.Errorf("%w: fast ballot %v by a non-coordinator", ErrInvalidCertificate, cert.Ballot)
	}
	if _, ok := slices.BinarySearch(members, cert.Ballot.Leaf); !ok {
		return fmt.Errorf("%w: ballot %v: leaf %d: %w", ErrInvalidCertificate, cert.Ballot, cert.Ballot.Leaf, ErrNotMember)
	}
	if len(cert.Votes) < quorum {
		return fmt.Errorf("%w: %d votes, quorum is %d of %d", ErrInvalidCertificate, len(cert.Votes), quorum, len(members))
	}
	content := VoteContent(groupID, epoch, cert.Ballot, digest)
	i := 0 // members[i] is the first member not below the current vote's leaf
	for k, vote := range cert.Votes {
		if k > 0 && vote.Leaf <= cert.Votes[k-1].Leaf {
			return fmt.Errorf("%w: votes not strictly sorted at leaf %d", ErrInvalidCertificate, vote.Leaf)
		}
		for i < len(members) && members[i] < vote.Leaf {
			i++
		}
		if i == len(members) || members[i] != vote.Leaf {
			return fmt.Errorf("%w: vote by leaf %d: %w", ErrInvalidCertificate, vote.Leaf, ErrNotMember)
		}
		if err := v.Verify(vote.Leaf, content, vote.Signature); err != nil {
			return fmt.Errorf("%w: vote by leaf %d: %w", ErrInvalidCertificate, vote.Leaf, err)
		}
	}
	return nil
}

// sortedMembers returns members sorted, without modifying the argument
// unless it is already sorted, and rejects empty sets and duplicates.
func sortedMembers(members []uint32) ([]uint32, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("%w: empty member set", ErrInvalidConfig)
	}
	if len(members) > MaxMembers {
		return nil, fmt.Errorf("%w: %d members, at most %d", ErrInvalidConfig, len(members), MaxMembers)
	}
	if !slices.IsSorted(members) {
		members = slices.Sorted(slices.Values(members))
	}
	for i := 1; i < len(members); i++ {
		if members[i] == members[i-1] {
			return nil, fmt.Errorf("%w: leaf %d listed twice", ErrInvalidConfig, members[i])
		}
	}
	if members[len(members)-1] == ToAll {
		return nil, fmt.Errorf("%w: leaf %d is reserved", ErrInvalidConfig, ToAll)
	}
	return members, nil
}

// votesSize is the length of the votes part of an encoding.
func (c *Certificate) votesSize() int {
	n := 4
	for _, v := range c.Votes {
		n += 4 + 2 + len(v.Signature)
	}
	return n
}

func (c *Certificate) checkVotesEncodable() error {
	if len(c.Votes) == 0 || len(c.Votes) > MaxMembers {
		return fmt.Errorf("%w: %d votes, want 1..%d", ErrMalformed, len(c.Votes), MaxMembers)
	}
	for i, v := range c.Votes {
		if i > 0 && v.Leaf <= c.Votes[i-1].Leaf {
			return fmt.Errorf("%w: votes not strictly sorted at leaf %d", ErrMalformed, v.Leaf)
		}
		if err := checkSigEncodable("vote signature", v.Signature); err != nil {
			return err
		}
	}
	return nil
}

func (c *Certificate) appendVotes(b []byte) []byte {
	b = appendU32(b, uint32(len(c.Votes)))
	for _, v := range c.Votes {
		b = appendU32(b, v.Leaf)
		b = appendSig(b, v.Signature)
	}
	return b
}

// readVotes decodes the votes part; signatures alias the reader's buffer.
func (c *Certificate) readVotes(r *reader) {
	n := r.u32("vote count")
	if r.err != nil {
		return
	}
	// Each vote takes at least 7 bytes; refuse counts the input cannot hold
	// before allocating for them.
	if n == 0 || n > MaxMembers || uint64(n)*7 > uint64(len(r.buf)) {
		r.fail("vote count %d out of range for %d remaining bytes", n, len(r.buf))
		return
	}
	c.Votes = make([]Vote, n)
	for i := range c.Votes {
		c.Votes[i].Leaf = r.u32("vote leaf")
		c.Votes[i].Signature = r.sig("vote signature")
		if r.err != nil {
			return
		}
		if i > 0 && c.Votes[i].Leaf <= c.Votes[i-1].Leaf {
			r.fail("votes not strictly sorted at leaf %d", c.Votes[i].Leaf)
			return
		}
	}
}

// MarshalBinary encodes the certificate on its own (for storage or catch-up).
func (c *Certificate) MarshalBinary() ([]byte, error) {
	if err := checkBallotEncodable("certificate ballot", c.Ballot); err != nil {
		return nil, fmt.Errorf("consensus: encode certificate: %w", err)
	}
	if err := c.checkVotesEncodable(); err != nil {
		return nil, fmt.Errorf("consensus: encode certificate: %w", err)
	}
	b := make([]byte, 0, 1+8+c.votesSize())
	b = append(b, wireVersion)
	b = appendBallot(b, c.Ballot)
	return c.appendVotes(b), nil
}

// UnmarshalBinary decodes a certificate strictly. The signatures share one
// copy of data.
func (c *Certificate) UnmarshalBinary(data []byte) error {
	r := reader{buf: append([]byte(nil), data...)}
	if v := r.u8("version"); r.err == nil && v != wireVersion {
		r.fail("unknown version %d", v)
	}
	var out Certificate
	out.Ballot = r.ballot("ballot")
	if r.err == nil && out.Ballot.IsZero() {
		r.fail("zero ballot")
	}
	out.readVotes(&r)
	if err := r.end("certificate"); err != nil {
		return fmt.Errorf("consensus: decode certificate: %w", err)
	}
	*c = out
	return nil
}
