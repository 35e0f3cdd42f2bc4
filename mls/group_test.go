package mls

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// grpClock is a fixed clock for reproducible lifetimes.
func grpClock() time.Time { return time.Unix(1_800_000_000, 0) }

// grpConfig returns a Config with seeded randomness.
func grpConfig(seed uint64) *Config {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return &Config{Rand: rand.NewChaCha8(s), Time: grpClock}
}

// grpMember is one in-memory client of a test group.
type grpMember struct {
	name string
	id   Identity
	cfg  *Config
	g    *Group
}

func grpIdentity(t testing.TB, cs CipherSuite, cfg *Config, name string) Identity {
	t.Helper()
	priv, _, err := cs.GenerateSignatureKeyPair(cfg.Random())
	if err != nil {
		t.Fatal(err)
	}
	return Identity{SignaturePrivateKey: priv, Credential: NewBasicCredential([]byte(name))}
}

func grpNewMember(t testing.TB, cs CipherSuite, seed uint64, name string) *grpMember {
	t.Helper()
	cfg := grpConfig(seed)
	return &grpMember{name: name, id: grpIdentity(t, cs, cfg, name), cfg: cfg}
}

func (m *grpMember) opts() GroupOptions { return GroupOptions{Config: m.cfg} }

func (m *grpMember) keyPackage(t testing.TB, cs CipherSuite) *KeyPackageBundle {
	t.Helper()
	kpb, err := NewKeyPackage(m.cfg, cs, m.id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return kpb
}

func (m *grpMember) create(t testing.TB, cs CipherSuite, groupID string) {
	t.Helper()
	g, err := NewGroup(m.opts(), cs, []byte(groupID), m.id, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.g = g
}

func (m *grpMember) join(t testing.TB, welcome *MLSMessage, kpb *KeyPackageBundle) {
	t.Helper()
	g, err := JoinFromWelcome(JoinOptions{GroupOptions: m.opts()}, welcome.Welcome, kpb)
	if err != nil {
		t.Fatalf("%s joining: %v", m.name, err)
	}
	m.g = g
}

// grpRoundTrip encodes and decodes a message, as the network would.
func grpRoundTrip(t testing.TB, m *MLSMessage) *MLSMessage {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var out MLSMessage
	if err := out.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	return &out
}

// grpCommitAll has committer commit, every other listed member process and
// merge the Commit, and returns the pending commit.
func grpCommitAll(t testing.TB, committer *grpMember, opts *CommitOptions, others ...*grpMember) *PendingCommit {
	t.Helper()
	pc, err := committer.g.Commit(opts)
	if err != nil {
		t.Fatalf("%s committing: %v", committer.name, err)
	}
	msg := grpRoundTrip(t, pc.Commit)
	for _, o := range others {
		r, err := o.g.Process(msg)
		if err != nil {
			t.Fatalf("%s processing commit of %s: %v", o.name, committer.name, err)
		}
		if r.Kind != ReceivedCommit {
			t.Fatalf("%s got %v", o.name, r.Kind)
		}
		if _, err := o.g.Merge(r.Commit); err != nil {
			t.Fatalf("%s merging: %v", o.name, err)
		}
	}
	if _, err := committer.g.Merge(pc.Staged()); err != nil {
		t.Fatalf("%s merging own commit: %v", committer.name, err)
	}
	return pc
}

// grpCheckConverged requires every member to be in the same epoch with the
// same epoch authenticator, tree hash and exported secret.
func grpCheckConverged(t testing.TB, members ...*grpMember) {
	t.Helper()
	ref := members[0].g
	refExp, err := ref.Export("test", []byte("ctx"), 32)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members[1:] {
		g := m.g
		if g.Epoch() != ref.Epoch() {
			t.Fatalf("%s at epoch %d, %s at %d", m.name, g.Epoch(), members[0].name, ref.Epoch())
		}
		if !bytes.Equal(g.EpochAuthenticator(), ref.EpochAuthenticator()) {
			t.Fatalf("%s: epoch authenticator differs", m.name)
		}
		if !bytes.Equal(g.TreeHash(), ref.TreeHash()) {
			t.Fatalf("%s: tree hash differs", m.name)
		}
		exp, err := g.Export("test", []byte("ctx"), 32)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(exp, refExp) {
			t.Fatalf("%s: exporter differs", m.name)
		}
	}
}

// grpSend has from encrypt a message and every member of to decrypt it.
func grpSend(t testing.TB, from *grpMember, text string, to ...*grpMember) {
	t.Helper()
	msg, err := from.g.EncryptApplication([]byte(text), []byte("ad:"+text))
	if err != nil {
		t.Fatal(err)
	}
	msg = grpRoundTrip(t, msg)
	for _, m := range to {
		r, err := m.g.Process(msg)
		if err != nil {
			t.Fatalf("%s decrypting from %s: %v", m.name, from.name, err)
		}
		if r.Kind != ReceivedApplication || string(r.ApplicationData) != text || string(r.AuthenticatedData) != "ad:"+text {
			t.Fatalf("%s got %v %q %q", m.name, r.Kind, r.ApplicationData, r.AuthenticatedData)
		}
		if r.Sender != MemberSender(from.g.OwnLeaf()) || string(r.Credential.Identity) != from.name {
			t.Fatalf("%s: sender %+v credential %q", m.name, r.Sender, r.Credential.Identity)
		}
	}
}

func TestGroupLifecycle(t *testing.T) {
	for _, cs := range []CipherSuite{MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, MLS_128_DHKEMP256_AES128GCM_SHA256_P256} {
		t.Run(cs.String(), func(t *testing.T) { grpLifecycle(t, cs) })
	}
}

func grpLifecycle(t *testing.T, cs CipherSuite) {
	alice := grpNewMember(t, cs, 1, "alice")
	bob := grpNewMember(t, cs, 2, "bob")
	carol := grpNewMember(t, cs, 3, "carol")
	alice.create(t, cs, "group-1")

	// Alice adds Bob by value.
	bobKP := bob.keyPackage(t, cs)
	pc := grpCommitAll(t, alice, &CommitOptions{Proposals: []Proposal{{Type: ProposalTypeAdd, KeyPackage: bobKP.KeyPackage}}})
	if pc.Welcome == nil {
		t.Fatal("no welcome")
	}
	bob.join(t, grpRoundTrip(t, pc.Welcome), bobKP)
	grpCheckConverged(t, alice, bob)
	grpSend(t, alice, "hello bob", bob)
	grpSend(t, bob, "hello alice", alice)

	// Alice proposes Carol, Bob commits the proposal by reference.
	carolKP := carol.keyPackage(t, cs)
	prop, err := alice.g.ProposeAdd(carolKP.KeyPackage, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := bob.g.Process(grpRoundTrip(t, prop))
	if err != nil || r.Kind != ReceivedProposal {
		t.Fatalf("bob processing proposal: %v", err)
	}
	pc = grpCommitAll(t, bob, &CommitOptions{SendOptions: SendOptions{Encrypt: true}}, alice)
	carol.join(t, grpRoundTrip(t, pc.Welcome), carolKP)
	grpCheckConverged(t, alice, bob, carol)
	if n := len(alice.g.Members()); n != 3 {
		t.Fatalf("%d members", n)
	}
	grpSend(t, carol, "hi all", alice, bob)

	// Carol proposes an Update, Alice commits it.
	prop, err = carol.g.ProposeUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*grpMember{alice, bob} {
		if _, err := m.g.Process(grpRoundTrip(t, prop)); err != nil {
			t.Fatal(err)
		}
	}
	grpCommitAll(t, alice, nil, bob, carol)
	grpCheckConverged(t, alice, bob, carol)

	// A late message of the previous epoch still decrypts.
	late, err := bob.g.EncryptApplication([]byte("now"), nil)
	if err != nil {
		t.Fatal(err)
	}
	grpCommitAll(t, carol, nil, alice, bob)
	grpCheckConverged(t, alice, bob, carol)
	if r, err := alice.g.Process(grpRoundTrip(t, late)); err != nil || string(r.ApplicationData) != "now" {
		t.Fatalf("late message: %v", err)
	}

	// Carol removes Bob; Bob learns it and cannot read what follows.
	pc, err = carol.g.Commit(&CommitOptions{Proposals: []Proposal{{Type: ProposalTypeRemove, Removed: bob.g.OwnLeaf()}}})
	if err != nil {
		t.Fatal(err)
	}
	msg := grpRoundTrip(t, pc.Commit)
	r, err = bob.g.Process(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Commit.RemovesSelf() {
		t.Fatal("bob not told he is removed")
	}
	res, err := bob.g.Merge(r.Commit)
	if err != nil || !res.Removed || bob.g.Active() {
		t.Fatalf("bob merge: %v %+v", err, res)
	}
	r, err = alice.g.Process(msg)
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Commit.Diff(); len(d.Removed) != 1 || string(d.Removed[0].Credential.Identity) != "bob" {
		t.Fatalf("diff %+v", d)
	}
	if _, err := alice.g.Merge(r.Commit); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.g.Merge(pc.Staged()); err != nil {
		t.Fatal(err)
	}
	grpCheckConverged(t, alice, carol)
	secret, err := carol.g.EncryptApplication([]byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.g.Process(grpRoundTrip(t, secret)); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("removed member: %v", err)
	}
	grpSend(t, carol, "bye bob", alice)
}

func TestGroupTwoMembersAllSuites(t *testing.T) {
	for cs := CipherSuite(1); cs <= 7; cs++ {
		t.Run(cs.String(), func(t *testing.T) {
			a := grpNewMember(t, cs, 10, "a")
			b := grpNewMember(t, cs, 11, "b")
			a.create(t, cs, fmt.Sprintf("g%d", cs))
			kp := b.keyPackage(t, cs)
			pc := grpCommitAll(t, a, &CommitOptions{Proposals: []Proposal{{Type: ProposalTypeAdd, KeyPackage: kp.KeyPackage}}})
			b.join(t, pc.Welcome, kp)
			grpCheckConverged(t, a, b)
			grpCommitAll(t, b, nil, a)
			grpCheckConverged(t, a, b)
			grpSend(t, a, "x", b)
		})
	}
}

// grpReload marshals m's group, checks that unmarshal→marshal gives the same
// bytes, and replaces the group by the decoded one.
func grpReload(t testing.TB, m *grpMember) {
	t.Helper()
	b, err := m.g.Marshal()
	if err != nil {
		t.Fatalf("%s marshal: %v", m.name, err)
	}
	g, err := UnmarshalGroup(m.opts(), b)
	if err != nil {
		t.Fatalf("%s unmarshal: %v", m.name, err)
	}
	b2, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("%s: state not stable across marshal/unmarshal (%d vs %d bytes)", m.name, len(b), len(b2))
	}
	m.g = g
}

func TestGroupStateRoundTrip(t *testing.T) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	alice := grpNewMember(t, cs, 21, "alice")
	bob := grpNewMember(t, cs, 22, "bob")
	carol := grpNewMember(t, cs, 23, "carol")
	alice.create(t, cs, "state")
	grpReload(t, alice)
	kp := bob.keyPackage(t, cs)
	pc := grpCommitAll(t, alice, &CommitOptions{Proposals: []Proposal{{Type: ProposalTypeAdd, KeyPackage: kp.KeyPackage}}})
	bob.join(t, pc.Welcome, kp)
	grpReload(t, bob)
	grpSend(t, alice, "one", bob)
	grpCommitAll(t, bob, nil, alice)
	late, err := alice.g.EncryptApplication([]byte("late"), nil)
	if err != nil {
		t.Fatal(err)
	}
	grpCommitAll(t, alice, nil, bob)
	// A cached proposal and a pending commit survive a reload.
	kpc := carol.keyPackage(t, cs)
	prop, err := alice.g.ProposeAdd(kpc.KeyPackage, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.g.Process(prop); err != nil {
		t.Fatal(err)
	}
	pc, err = bob.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	grpReload(t, alice)
	grpReload(t, bob)
	if r, err := bob.g.Process(late); err != nil || string(r.ApplicationData) != "late" {
		t.Fatalf("late message after reload: %v", err)
	}
	r, err := alice.g.Process(pc.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.Merge(r.Commit); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.g.Merge(bob.g.Pending().Staged()); err != nil {
		t.Fatal(err)
	}
	carol.join(t, pc.Welcome, kpc)
	grpCheckConverged(t, alice, bob, carol)
	grpReload(t, carol)
	grpSend(t, carol, "after reload", alice, bob)
}
