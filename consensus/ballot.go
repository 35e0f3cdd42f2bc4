package consensus

import "fmt"

// Ballot numbers a proposal attempt. Ballots are totally ordered by Round,
// then by Leaf, so two members never share a ballot. The zero Ballot means
// "none" and is smaller than every real ballot.
//
// Round 1 (FastRound) belongs to the epoch's coordinator alone, which may
// start it directly in phase 2; every other attempt uses a round of 2 or
// more and starts with phase 1.
type Ballot struct {
	Round uint32
	Leaf  uint32
}

// FastRound is the round the coordinator uses to skip phase 1.
const FastRound = 1

// IsZero reports whether b is the "no ballot" value.
func (b Ballot) IsZero() bool { return b.Round == 0 }

// Less reports whether b orders strictly before o.
func (b Ballot) Less(o Ballot) bool {
	if b.Round != o.Round {
		return b.Round < o.Round
	}
	return b.Leaf < o.Leaf
}

func (b Ballot) String() string {
	if b.IsZero() {
		return "none"
	}
	return fmt.Sprintf("%d.%d", b.Round, b.Leaf)
}
