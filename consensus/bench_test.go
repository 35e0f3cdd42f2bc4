package consensus

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchGroup is a whole epoch's worth of instances wired back to back:
// every message is encoded, decoded and delivered at once, so the numbers
// are the protocol's own cost without network waits.
type benchGroup struct {
	nodes      map[uint32]*Instance
	members    []uint32
	sends      int
	deliveries int
	bytesSent  int
	bytesRecv  int
	propTime   time.Duration
	queue      []benchMsg
}

type benchMsg struct {
	to   uint32
	data []byte
}

func newBenchGroup(b *testing.B, members []uint32, signers map[uint32]Signer, verifier Verifier) *benchGroup {
	g := &benchGroup{nodes: make(map[uint32]*Instance, len(members)), members: members}
	for _, m := range members {
		in, err := New(Config{
			GroupID: []byte("bench"), Epoch: 0, Self: m, Members: members,
			Signer: signers[m], Verifier: verifier,
			Validate: func([]byte) error { return nil },
			Rand:     rand.New(rand.NewPCG(uint64(m), 1)),
		})
		if err != nil {
			b.Fatal(err)
		}
		g.nodes[m] = in
	}
	return g
}

func (g *benchGroup) flush(b *testing.B, from uint32) {
	in := g.nodes[from]
	if !in.HasReady() {
		return
	}
	rd := in.Ready()
	for _, env := range rd.Messages {
		data, err := env.Message.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		g.sends++
		g.bytesSent += len(data)
		if env.Broadcast() {
			for _, r := range g.members {
				if r != from {
					g.queue = append(g.queue, benchMsg{r, data})
				}
			}
		} else {
			g.queue = append(g.queue, benchMsg{env.To, data})
		}
	}
	in.Advance()
}

// decide runs one decision proposed by proposer and returns once every
// member has decided.
func (g *benchGroup) decide(b *testing.B, proposer uint32, value []byte) {
	start := time.Now()
	if err := g.nodes[proposer].Propose(value); err != nil {
		b.Fatal(err)
	}
	g.flush(b, proposer)
	g.propTime += time.Since(start)
	for len(g.queue) > 0 {
		q := g.queue[0]
		g.queue = g.queue[1:]
		g.deliveries++
		g.bytesRecv += len(q.data)
		var t0 time.Time
		if q.to == proposer {
			t0 = time.Now()
		}
		m, err := DecodeMessage(q.data)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.nodes[q.to].Step(m); err != nil {
			b.Fatal(err)
		}
		g.flush(b, q.to)
		if q.to == proposer {
			g.propTime += time.Since(t0)
		}
	}
	for _, m := range g.members {
		if d := g.nodes[m].Decision(); d == nil {
			b.Fatalf("member %d did not decide", m)
		}
	}
}

type ed25519Signer ed25519.PrivateKey

func (s ed25519Signer) Sign(c []byte) ([]byte, error) {
	return ed25519.Sign(ed25519.PrivateKey(s), c), nil
}

type ed25519Verifier map[uint32]ed25519.PublicKey

var errBadEd25519 = errors.New("bench: bad signature")

func (v ed25519Verifier) Verify(leaf uint32, c, sig []byte) error {
	if !ed25519.Verify(v[leaf], c, sig) {
		return errBadEd25519
	}
	return nil
}

func benchKeys(members []uint32, real bool) (map[uint32]Signer, Verifier) {
	signers := make(map[uint32]Signer, len(members))
	if !real {
		for _, m := range members {
			signers[m] = simSigner(m)
		}
		return signers, simVerifier{}
	}
	pubs := ed25519Verifier{}
	for _, m := range members {
		seed := sha256.Sum256(binary.BigEndian.AppendUint32(nil, m))
		priv := ed25519.NewKeyFromSeed(seed[:])
		signers[m] = ed25519Signer(priv)
		pubs[m] = priv.Public().(ed25519.PublicKey)
	}
	return signers, pubs
}

// benchDecision measures one decision per iteration in a group of n, from
// creating the epoch's instances to every member holding the checked
// certificate. fast selects the coordinator as proposer (no phase 1).
func benchDecision(b *testing.B, n int, fast, realSigs bool) {
	members := make([]uint32, n)
	for i := range members {
		members[i] = uint32(2 * i) // sparse leaf indices, as after removals
	}
	signers, verifier := benchKeys(members, realSigs)
	value := make([]byte, 1024)
	proposer := coordinator(0, members)
	if !fast {
		proposer = members[n-1]
	}
	var total benchGroup
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for range b.N {
		g := newBenchGroup(b, members, signers, verifier)
		g.decide(b, proposer, value)
		total.sends += g.sends
		total.deliveries += g.deliveries
		total.bytesSent += g.bytesSent
		total.bytesRecv += g.bytesRecv
		total.propTime += g.propTime
	}
	cpu := processCPU() - cpu0
	per := float64(b.N)
	b.ReportMetric(float64(cpu.Microseconds())/per/1000, "cpu-ms/decision")
	b.ReportMetric(float64(total.sends)/per, "sends/decision")
	b.ReportMetric(float64(total.deliveries)/per, "deliveries/decision")
	b.ReportMetric(float64(total.bytesSent)/per, "sent-B/decision")
	b.ReportMetric(float64(total.bytesRecv)/per, "delivered-B/decision")
	b.ReportMetric(float64(total.propTime.Microseconds())/per, "proposer-µs/decision")
}

// BenchmarkDecision: CPU per decision for the whole group (ns/op), with the
// simulator's keyed-hash signatures, 1 KiB values, fast path and classic.
func BenchmarkDecision(b *testing.B) {
	for _, n := range []int{3, 10, 100, 1000} {
		for _, fast := range []bool{true, false} {
			name := fmt.Sprintf("n=%d/classic", n)
			if fast {
				name = fmt.Sprintf("n=%d/fast", n)
			}
			b.Run(name, func(b *testing.B) { benchDecision(b, n, fast, false) })
		}
	}
}

// BenchmarkDecisionEd25519 is the fast path with real Ed25519 vote
// signatures: every member verifies the quorum's signatures in the
// certificate, so the group's total grows with n squared.
func BenchmarkDecisionEd25519(b *testing.B) {
	for _, n := range []int{3, 10, 100} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) { benchDecision(b, n, true, true) })
	}
}

// recordedDecision is the traffic of one fast-path decision, captured once
// so that the proposer's and one member's share can be measured alone.
type recordedDecision struct {
	members []uint32
	value   []byte
	accept  []byte   // the coordinator's Accept
	votes   [][]byte // every other member's Accepted
	decide  []byte   // the coordinator's Decide
}

func recordDecision(b *testing.B, n int) recordedDecision {
	members := make([]uint32, n)
	for i := range members {
		members[i] = uint32(2 * i)
	}
	signers, verifier := benchKeys(members, false)
	rec := recordedDecision{members: members, value: make([]byte, 1024)}
	g := newBenchGroup(b, members, signers, verifier)
	proposer := coordinator(0, members)
	if err := g.nodes[proposer].Propose(rec.value); err != nil {
		b.Fatal(err)
	}
	rd := g.nodes[proposer].Ready()
	rec.accept, _ = rd.Messages[0].Message.MarshalBinary()
	g.nodes[proposer].Advance()
	for _, m := range members {
		if m == proposer {
			continue
		}
		msg, _ := DecodeMessage(rec.accept)
		if err := g.nodes[m].Step(msg); err != nil {
			b.Fatal(err)
		}
		vote, _ := g.nodes[m].Ready().Messages[0].Message.MarshalBinary()
		rec.votes = append(rec.votes, vote)
	}
	for _, v := range rec.votes {
		msg, _ := DecodeMessage(v)
		if err := g.nodes[proposer].Step(msg); err != nil {
			b.Fatal(err)
		}
		if d := g.nodes[proposer].Ready(); d.Decision != nil {
			rec.decide, _ = d.Messages[len(d.Messages)-1].Message.MarshalBinary()
			break
		}
	}
	if rec.decide == nil {
		b.Fatal("no decision recorded")
	}
	return rec
}

func benchInstance(b *testing.B, self uint32, members []uint32) *Instance {
	in, err := New(Config{
		GroupID: []byte("bench"), Self: self, Members: members,
		Signer: simSigner(self), Verifier: simVerifier{},
		Validate: func([]byte) error { return nil },
		Rand:     rand.New(rand.NewPCG(uint64(self), 1)),
	})
	if err != nil {
		b.Fatal(err)
	}
	return in
}

// BenchmarkDecisionShare splits a fast-path decision into the proposer's
// work (create the instance, propose, check q − 1 votes, build and encode
// the certificate) and one other member's (create the instance, check and
// vote for the Accept, check the certificate of the Decide). The group's
// total is about proposer + (n − 1) × member.
func BenchmarkDecisionShare(b *testing.B) {
	for _, n := range []int{3, 10, 100, 1000} {
		rec := recordDecision(b, n)
		proposer := coordinator(0, rec.members)
		b.Run(fmt.Sprintf("n=%d/proposer", n), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				in := benchInstance(b, proposer, rec.members)
				if err := in.Propose(rec.value); err != nil {
					b.Fatal(err)
				}
				in.Advance()
				for _, v := range rec.votes {
					m, err := DecodeMessage(v)
					if err != nil {
						b.Fatal(err)
					}
					if err := in.Step(m); err != nil {
						b.Fatal(err)
					}
					if in.Decision() != nil {
						break
					}
				}
				rd := in.Ready()
				if _, err := rd.Messages[len(rd.Messages)-1].Message.MarshalBinary(); err != nil {
					b.Fatal(err)
				}
				in.Advance()
			}
		})
		b.Run(fmt.Sprintf("n=%d/member", n), func(b *testing.B) {
			b.ReportAllocs()
			member := rec.members[len(rec.members)-1]
			for range b.N {
				in := benchInstance(b, member, rec.members)
				m, _ := DecodeMessage(rec.accept)
				if err := in.Step(m); err != nil {
					b.Fatal(err)
				}
				if _, err := in.Ready().Messages[0].Message.MarshalBinary(); err != nil {
					b.Fatal(err)
				}
				in.Advance()
				m, err := DecodeMessage(rec.decide)
				if err != nil {
					b.Fatal(err)
				}
				if err := in.Step(m); err != nil || in.Decision() == nil {
					b.Fatalf("decide: %v", err)
				}
			}
		})
	}
}
