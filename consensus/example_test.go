package consensus_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/conclave-im/conclave/consensus"
)

type signer ed25519.PrivateKey

func (s signer) Sign(content []byte) ([]byte, error) {
	return ed25519.Sign(ed25519.PrivateKey(s), content), nil
}

type verifier map[uint32]ed25519.PublicKey

func (v verifier) Verify(leaf uint32, content, sig []byte) error {
	if !ed25519.Verify(v[leaf], content, sig) {
		return errors.New("bad signature")
	}
	return nil
}

// A three-member group decides the Commit that ends epoch 5. Here the
// "network" delivers every message at once; a node sends the encoded bytes
// over its transport instead, after persisting Ready.State.
func Example() {
	members := []uint32{0, 2, 5}
	keys, pubs := map[uint32]signer{}, verifier{}
	for _, m := range members {
		seed := make([]byte, ed25519.SeedSize)
		seed[0] = byte(m)
		priv := ed25519.NewKeyFromSeed(seed)
		keys[m], pubs[m] = signer(priv), priv.Public().(ed25519.PublicKey)
	}
	nodes := map[uint32]*consensus.Instance{}
	for _, m := range members {
		in, err := consensus.New(consensus.Config{
			GroupID: []byte("group"), Epoch: 5, Self: m, Members: members,
			Signer: keys[m], Verifier: pubs,
			Validate: func(v []byte) error { return nil }, // the node checks the Commit with mls/
			Rand:     rand.New(rand.NewPCG(uint64(m), 0)),
		})
		if err != nil {
			panic(err)
		}
		nodes[m] = in
	}
	if err := nodes[2].Propose([]byte("commit+welcome")); err != nil {
		panic(err)
	}
	var decision *consensus.Decision
	for pending := true; pending; {
		pending = false
		for _, from := range members {
			in := nodes[from]
			if !in.HasReady() {
				continue
			}
			pending = true
			rd := in.Ready()
			// rd.State would be persisted here, before sending.
			for _, env := range rd.Messages {
				wire, _ := env.Message.MarshalBinary()
				for _, to := range members {
					if to != from && (env.Broadcast() || env.To == to) {
						m, err := consensus.DecodeMessage(wire)
						if err == nil {
							_ = nodes[to].Step(m)
						}
					}
				}
			}
			if rd.Decision != nil {
				decision = rd.Decision
			}
			in.Advance()
		}
	}
	err := consensus.VerifyCertificate([]byte("group"), 5, members, decision.Value, &decision.Certificate, pubs)
	fmt.Printf("decided %q under ballot %v with %d votes, certificate ok: %v\n",
		decision.Value, decision.Certificate.Ballot, len(decision.Certificate.Votes), err == nil)
	// Output: decided "commit+welcome" under ballot 2.2 with 2 votes, certificate ok: true
}
