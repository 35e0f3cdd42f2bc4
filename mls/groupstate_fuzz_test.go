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
