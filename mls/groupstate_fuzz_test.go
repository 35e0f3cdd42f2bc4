package mls

import (
	"bytes"
	"testing"
)

// FuzzGroupState feeds arbitrary bytes to UnmarshalGroup: it must never
// panic, and whatever it accepts must marshal back to the same bytes.
func FuzzGroupState(f *testing.F) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	alice := grpNewMember(f, cs, 31, "alice")
	bob := grpNewMember(f, cs, 32, "bob")
	alice.create(f, cs, "fuzz")
	add := func(s *grpMember) {
		b, err := s.g.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	add(alice)
	kp := bob.keyPackage(f, cs)
	pc := grpCommitAll(f, alice, &CommitOptions{Proposals: []Proposal{{Type: ProposalTypeAdd, KeyPackage: kp.KeyPackage}}})
	bob.join(f, pc.Welcome, kp)
	grpSend(f, alice, "x", bob)
	grpCommitAll(f, bob, nil, alice)
	if _, err := alice.g.ProposeUpdate(nil); err != nil {
		f.Fatal(err)
	}
	if _, err := alice.g.Commit(&CommitOptions{SkipCached: true}); err != nil {
		f.Fatal(err)
	}
	add(alice)
	add(bob)
	opts := GroupOptions{Config: grpConfig(33)}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := UnmarshalGroup(opts, b)
		if err != nil {
			return
		}
		out, err := g.Marshal()
		if err != nil {
			t.Fatalf("accepted state does not marshal: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip changed the state: %d bytes in, %d out", len(b), len(out))
		}
	})
}

// FuzzGroupProcess feeds arbitrary messages to a member of a three-member
// group: nothing may panic, and a rejected message must leave the state
// byte for byte as it was.
func FuzzGroupProcess(f *testing.F) {
	alice, bob, carol := grpThree(f, 700)
	add := func(m *MLSMessage) {
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	app, err := alice.g.EncryptApplication([]byte("hello"), []byte("ad"))
	if err != nil {
		f.Fatal(err)
	}
	add(app)
	prop, err := carol.g.ProposeUpdate(nil)
	if err != nil {
		f.Fatal(err)
	}
	add(prop)
	pc, err := alice.g.Commit(nil)
	if err != nil {
		f.Fatal(err)
	}
	add(pc.Commit)
	pc2, err := carol.g.Commit(&CommitOptions{SendOptions: SendOptions{Encrypt: true}, Proposals: []Proposal{{Type: ProposalTypeRemove, Removed: alice.g.OwnLeaf()}}})
	if err != nil {
		f.Fatal(err)
	}
	add(pc2.Commit)
	state, err := bob.g.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	opts := bob.opts()
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := UnmarshalGroup(opts, state)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.ProcessBytes(b); err == nil {
			return
		}
		// The secret tree derives a sender's ratchets lazily, and a message
		// whose sender data decrypts but whose content does not leaves that
		// (deterministic) derivation behind. Derive every leaf in both
		// states before comparing: what must not change is everything
		// else, and no ratchet generation may have been consumed.
		ref, err := UnmarshalGroup(opts, state)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(grpWarmedState(t, g), grpWarmedState(t, ref)) {
			t.Fatal("a rejected message changed the state")
		}
	})
}

// grpWarmedState derives the ratchets of every leaf in every secret tree of
// g and returns the marshaled state.
func grpWarmedState(t *testing.T, g *Group) []byte {
	protectors := []*Protector{g.ep.protector}
	for _, p := range g.past {
		protectors = append(protectors, p.protector)
	}
	for _, p := range protectors {
		st := p.SecretTree()
		for l := LeafIndex(0); uint32(l) < st.LeafCount(); l++ {
			if _, err := st.leafRatchets(l, RatchetHandshake); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
