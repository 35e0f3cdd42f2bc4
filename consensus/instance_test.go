package consensus

import (
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"testing"
)

func newTestInstance(t testing.TB, self uint32, members []uint32, epoch uint64) *Instance {
	t.Helper()
	in, err := New(Config{
		GroupID: []byte("g"), Epoch: epoch, Self: self, Members: members,
		Signer: simSigner(self), Verifier: simVerifier{},
		Validate: func([]byte) error { return nil },
		Rand:     rand.New(rand.NewPCG(1, 2)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestNewRejectsBadConfig(t *testing.T) {
	ok := Config{Self: 1, Members: []uint32{1, 2, 3}, Signer: simSigner(1), Verifier: simVerifier{},
		Validate: func([]byte) error { return nil }, Rand: rand.New(rand.NewPCG(1, 2))}
	tests := []struct {
		name   string
		modify func(*Config)
		want   error
	}{
		{"no members", func(c *Config) { c.Members = nil }, ErrInvalidConfig},
		{"duplicate member", func(c *Config) { c.Members = []uint32{1, 2, 2} }, ErrInvalidConfig},
		{"self not a member", func(c *Config) { c.Self = 9 }, ErrNotMember},
		{"no signer", func(c *Config) { c.Signer = nil }, ErrInvalidConfig},
		{"no rand", func(c *Config) { c.Rand = nil }, ErrInvalidConfig},
		{"state of another epoch", func(c *Config) {
			c.Storage = staticStorage(HardState{Epoch: 5, Promised: Ballot{2, 1}})
		}, ErrInvalidConfig},
		{"state naming a non-member", func(c *Config) {
			c.Storage = staticStorage(HardState{Promised: Ballot{2, 9}})
		}, ErrInvalidConfig},
		{"inconsistent state", func(c *Config) {
			c.Storage = staticStorage(HardState{Promised: Ballot{1, 1}, Accepted: Ballot{2, 1}, Value: []byte("v")})
		}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.modify(&c)
			if _, err := New(c); !errors.Is(err, tt.want) {
				t.Fatalf("New error %v, want %v", err, tt.want)
			}
		})
	}
	// Members in any order are accepted and the caller's slice is kept.
	c := ok
	c.Members = []uint32{3, 1, 2}
	in, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Members[0] != 3 || in.Coordinator() != 1 {
		t.Fatalf("members %v, coordinator %d", c.Members, in.Coordinator())
	}
}

func TestStepRejectsWhatNoCorrectMemberSends(t *testing.T) {
	tests := []struct {
		name string
		m    Message
		want error
	}{
		{"other epoch", Message{Type: MsgPrepare, Epoch: 8, From: 2, Ballot: Ballot{2, 2}}, ErrWrongEpoch},
		{"non-member", Message{Type: MsgPrepare, Epoch: 7, From: 9, Ballot: Ballot{2, 9}}, ErrNotMember},
		{"prepare for someone else's ballot", Message{Type: MsgPrepare, Epoch: 7, From: 2, Ballot: Ballot{2, 3}}, ErrProtocol},
		{"prepare in the fast round", Message{Type: MsgPrepare, Epoch: 7, From: 2, Ballot: Ballot{1, 2}}, ErrProtocol},
		{"fast accept by a non-coordinator", Message{Type: MsgAccept, Epoch: 7, From: 3, Ballot: Ballot{1, 3}, Value: []byte("v")}, ErrProtocol},
		{"promise reporting a later acceptance", Message{Type: MsgPromise, Epoch: 7, From: 2, Ballot: Ballot{2, 1}, AcceptedBallot: Ballot{3, 0}, Value: []byte("v")}, ErrProtocol},
		{"nack citing a lower promise", Message{Type: MsgNack, Epoch: 7, From: 2, Ballot: Ballot{3, 1}, Promised: Ballot{2, 0}}, ErrProtocol},
		{"decide without certificate", Message{Type: MsgDecide, Epoch: 7, From: 2, Ballot: Ballot{2, 2}, Value: []byte("v")}, ErrProtocol},
		{"decide with a forged certificate", Message{Type: MsgDecide, Epoch: 7, From: 2, Ballot: Ballot{2, 2}, Value: []byte("v"),
			Certificate: &Certificate{Ballot: Ballot{2, 2}, Votes: []Vote{{0, []byte("x")}, {2, []byte("y")}, {3, []byte("z")}}}}, ErrInvalidCertificate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newTestInstance(t, 1, []uint32{0, 1, 2, 3, 4}, 7)
			if err := in.Step(tt.m); !errors.Is(err, tt.want) {
				t.Fatalf("Step error %v, want %v", err, tt.want)
			}
			if in.HasReady() {
				t.Fatalf("a rejected message produced output: %+v", in.Ready())
			}
		})
	}
}

func TestVerifyCertificate(t *testing.T) {
	members := []uint32{4, 1, 7, 9, 12}
	value := []byte("commit")
	group := []byte("g")
	vote := func(leaf uint32, b Ballot, v []byte) Vote {
		sig := simMAC(leaf, VoteContent(group, 3, b, sha256.Sum256(v)))
		return Vote{Leaf: leaf, Signature: sig[:]}
	}
	b := Ballot{2, 7}
	good := Certificate{Ballot: b, Votes: []Vote{vote(1, b, value), vote(4, b, value), vote(9, b, value)}}
	if err := VerifyCertificate(group, 3, members, value, &good, simVerifier{}); err != nil {
		t.Fatalf("valid certificate rejected: %v", err)
	}
	tests := []struct {
		name  string
		cert  Certificate
		value []byte
		epoch uint64
	}{
		{"too few votes", Certificate{Ballot: b, Votes: good.Votes[:2]}, value, 3},
		{"other value", good, []byte("other"), 3},
		{"other epoch", good, value, 4},
		{"duplicate voter", Certificate{Ballot: b, Votes: []Vote{vote(1, b, value), vote(1, b, value), vote(4, b, value)}}, value, 3},
		{"non-member voter", Certificate{Ballot: b, Votes: []Vote{vote(1, b, value), vote(4, b, value), vote(5, b, value)}}, value, 3},
		{"votes under another ballot", Certificate{Ballot: b, Votes: []Vote{vote(1, b, value), vote(4, b, value), vote(9, Ballot{3, 7}, value)}}, value, 3},
		{"fast ballot of a non-coordinator", Certificate{Ballot: Ballot{1, 7}, Votes: []Vote{vote(1, Ballot{1, 7}, value), vote(4, Ballot{1, 7}, value), vote(9, Ballot{1, 7}, value)}}, value, 3},
		{"zero ballot", Certificate{Votes: good.Votes}, value, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := VerifyCertificate(group, tt.epoch, members, tt.value, &tt.cert, simVerifier{}); !errors.Is(err, ErrInvalidCertificate) {
				t.Fatalf("error %v, want ErrInvalidCertificate", err)
			}
		})
	}
}

func TestProposeRules(t *testing.T) {
	in := newTestInstance(t, 1, []uint32{1, 2, 3}, 0)
	if err := in.Propose(nil); !errors.Is(err, ErrInvalidValue) {
		t.Fatalf("empty value: %v", err)
	}
	if err := in.Propose([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := in.Propose([]byte("b")); !errors.Is(err, ErrProposalPending) {
		t.Fatalf("second proposal: %v", err)
	}
}

// TestSingleMemberDecidesAlone: a group of one is its own quorum.
func TestSingleMemberDecidesAlone(t *testing.T) {
	in := newTestInstance(t, 5, []uint32{5}, 0)
	if err := in.Propose([]byte("solo")); err != nil {
		t.Fatal(err)
	}
	rd := in.Ready()
	if rd.Decision == nil || string(rd.Decision.Value) != "solo" || rd.State == nil {
		t.Fatalf("ready %+v", rd)
	}
	if err := VerifyCertificate([]byte("g"), 0, []uint32{5}, rd.Decision.Value, &rd.Decision.Certificate, simVerifier{}); err != nil {
		t.Fatal(err)
	}
}

// TestStateBoundedAfterDecision: once decided, an instance drops its
// proposer bookkeeping; what remains does not grow with traffic.
func TestStateBoundedAfterDecision(t *testing.T) {
	in := newTestInstance(t, 5, []uint32{5}, 0)
	_ = in.Propose([]byte("solo"))
	in.Advance()
	if in.granted != nil || in.sigs != nil {
		t.Fatal("proposer state kept after the decision")
	}
}

// TestTakeoverIsLinear: when a proposer crashes after a quorum accepted its
// value, the acceptors that take over must not all start ballots at once,
// or a large group would exchange n² messages.
func TestTakeoverIsLinear(t *testing.T) {
	const n = 201
	members := make([]uint32, n)
	for i := range members {
		members[i] = uint32(i)
	}
	nodes := make(map[uint32]*Instance, n)
	for _, m := range members {
		in, err := New(Config{
			GroupID: []byte("g"), Epoch: 0, Self: m, Members: members,
			Signer: simSigner(m), Verifier: simVerifier{},
			Validate: func([]byte) error { return nil },
			Rand:     rand.New(rand.NewPCG(uint64(m), 3)),
		})
		if err != nil {
			t.Fatal(err)
		}
		nodes[m] = in
	}
	// The coordinator (member 0) proposes; everyone accepts; its votes are
	// lost with it.
	if err := nodes[0].Propose([]byte("v")); err != nil {
		t.Fatal(err)
	}
	accept := nodes[0].Ready().Messages[0].Message
	delete(nodes, 0)
	for _, m := range members[1:] {
		if err := nodes[m].Step(accept); err != nil {
			t.Fatal(err)
		}
		nodes[m].Advance()
	}
	// Tick everyone, then deliver every message at once, until all decide.
	sends, prepares := 0, 0
	for tick := 0; tick < 1000; tick++ {
		for _, m := range members[1:] {
			nodes[m].Tick()
		}
		for {
			var queue []Envelope
			for _, m := range members[1:] {
				queue = append(queue, nodes[m].Ready().Messages...)
				nodes[m].Advance()
			}
			if len(queue) == 0 {
				break
			}
			for _, env := range queue {
				sends++
				if env.Message.Type == MsgPrepare {
					prepares++
				}
				for _, r := range members[1:] {
					if r != env.Message.From && (env.Broadcast() || env.To == r) {
						_ = nodes[r].Step(env.Message)
					}
				}
			}
		}
		decided := 0
		for _, m := range members[1:] {
			if nodes[m].Decision() != nil {
				decided++
			}
		}
		if decided == n-1 {
			if sends > 3*n || prepares > takeoverGroup {
				t.Fatalf("takeover took %d sends, %d prepares for %d members", sends, prepares, n)
			}
			t.Logf("%d members decided %d ticks after the proposer crashed: %d sends, %d prepares", n-1, tick+1, sends, prepares)
			if string(nodes[1].Decision().Value) != "v" {
				t.Fatalf("decided %q, want the crashed proposer's accepted value", nodes[1].Decision().Value)
			}
			return
		}
	}
	t.Fatal("no decision after the proposer crashed")
}

// TestRoundTrips counts one-way message delays until a decision with no
// contention: the coordinator decides after one round trip and everyone
// knows after one and a half; any other member decides after two and
// everyone knows after two and a half.
func TestRoundTrips(t *testing.T) {
	for _, tt := range []struct {
		name                  string
		proposer              uint32
		proposerHops, allHops int
	}{
		{"coordinator", 0, 2, 3},
		{"other member", 4, 4, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			members := []uint32{0, 1, 2, 3, 4}
			nodes := map[uint32]*Instance{}
			for _, m := range members {
				nodes[m] = newTestInstance(t, m, members, 0)
			}
			if err := nodes[tt.proposer].Propose([]byte("v")); err != nil {
				t.Fatal(err)
			}
			proposerHops, allHops := -1, -1
			for hop := 1; hop <= 10 && allHops < 0; hop++ {
				var wave []Envelope
				for _, m := range members {
					wave = append(wave, nodes[m].Ready().Messages...)
					nodes[m].Advance()
				}
				for _, env := range wave {
					for _, r := range members {
						if r != env.Message.From && (env.Broadcast() || env.To == r) {
							if err := nodes[r].Step(env.Message); err != nil {
								t.Fatal(err)
							}
						}
					}
				}
				decided := 0
				for _, m := range members {
					if nodes[m].Decision() != nil {
						decided++
					}
				}
				if proposerHops < 0 && nodes[tt.proposer].Decision() != nil {
					proposerHops = hop
				}
				if decided == len(members) {
					allHops = hop
				}
			}
			if proposerHops != tt.proposerHops || allHops != tt.allHops {
				t.Fatalf("proposer decided after %d one-way delays, everyone after %d; want %d and %d", proposerHops, allHops, tt.proposerHops, tt.allHops)
			}
		})
	}
}
