package mls_test

import (
	"bytes"
	"fmt"

	"github.com/conclave-im/conclave/mls"
)

// Example shows the life of a group as a consensus-ordered node drives it:
// a Commit is created and kept pending, the other members validate it
// (staged, not applied), the group decides, and everyone merges exactly
// the decided Commit.
func Example() {
	cs := mls.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	cfg := &mls.Config{} // crypto/rand and time.Now
	identity := func(name string) mls.Identity {
		priv, _, err := cs.GenerateSignatureKeyPair(cfg.Random())
		if err != nil {
			panic(err)
		}
		return mls.Identity{SignaturePrivateKey: priv, Credential: mls.NewBasicCredential([]byte(name))}
	}
	opts := mls.GroupOptions{Config: cfg}

	alice, err := mls.NewGroup(opts, cs, []byte("example"), identity("alice"), nil)
	if err != nil {
		panic(err)
	}
	bobKP, err := mls.NewKeyPackage(cfg, cs, identity("bob"), nil)
	if err != nil {
		panic(err)
	}

	// Alice commits an Add; the Commit stays pending until the group decides.
	pending, err := alice.Commit(&mls.CommitOptions{Proposals: []mls.Proposal{{Type: mls.ProposalTypeAdd, KeyPackage: bobKP.KeyPackage}}})
	if err != nil {
		panic(err)
	}
	// ... consensus decides pending.Commit ...
	res, err := alice.Merge(pending.Staged())
	if err != nil {
		panic(err)
	}
	fmt.Println("epoch", res.Epoch, "added", string(res.Diff.Added[0].Credential.Identity))

	bob, err := mls.JoinFromWelcome(mls.JoinOptions{GroupOptions: opts}, pending.Welcome.Welcome, bobKP)
	if err != nil {
		panic(err)
	}

	// Bob commits; Alice validates the Commit without applying it, then
	// merges it once it is decided.
	pending, err = bob.Commit(nil)
	if err != nil {
		panic(err)
	}
	wire, err := pending.Commit.Marshal()
	if err != nil {
		panic(err)
	}
	received, err := alice.ProcessBytes(wire)
	if err != nil {
		panic(err) // invalid: vote against it
	}
	staged := received.Commit
	if _, err := alice.Merge(staged); err != nil {
		panic(err)
	}
	if _, err := bob.Merge(pending.Staged()); err != nil {
		panic(err)
	}
	fmt.Println("same epoch authenticator:", bytes.Equal(alice.EpochAuthenticator(), bob.EpochAuthenticator()))

	// Application data.
	msg, err := alice.EncryptApplication([]byte("hi bob"), []byte("header"))
	if err != nil {
		panic(err)
	}
	got, err := bob.Process(msg)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s from %s\n", got.ApplicationData, got.Credential.Identity)

	// The state goes to storage and comes back byte for byte.
	state, err := bob.Marshal()
	if err != nil {
		panic(err)
	}
	bob, err = mls.UnmarshalGroup(opts, state)
	if err != nil {
		panic(err)
	}
	fmt.Println("members:", len(bob.Members()))
	// Output:
	// epoch 1 added bob
	// same epoch authenticator: true
	// hi bob from alice
	// members: 2
}
