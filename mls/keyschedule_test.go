package mls

import (
	"bytes"
	"errors"
	"testing"
)

func testGroupContext(cs CipherSuite, epoch uint64) *GroupContext {
	return &GroupContext{
		Version:                 ProtocolVersionMLS10,
		CipherSuite:             cs,
		GroupID:                 []byte("group"),
		Epoch:                   epoch,
		TreeHash:                testSecret(cs, 10),
		ConfirmedTranscriptHash: testSecret(cs, 11),
	}
}

// TestExternalInit checks that a joiner's and the members' halves of an
// external join agree on the init_secret, for every suite (suites 4 to 6
// have 64-byte external secrets, the DeriveKeyPair trap).
func TestExternalInit(t *testing.T) {
	for _, cs := range allSuites {
		t.Run(cs.String(), func(t *testing.T) {
			s, err := DeriveEpochSecrets(testGroupContext(cs, 3), testSecret(cs, 1), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			priv, pub, err := s.ExternalKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			kemOutput, joinerInit, err := ExternalInit(cs, seededReader(5), pub)
			if err != nil {
				t.Fatal(err)
			}
			if len(joinerInit) != cs.HashSize() {
				t.Fatalf("init secret of %d bytes", len(joinerInit))
			}
			memberInit, err := ExternalInitSecret(cs, priv, kemOutput)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(joinerInit, memberInit) {
				t.Fatal("joiner and members derive different init secrets")
			}
			if _, err := ExternalInitSecret(cs, priv, kemOutput[:len(kemOutput)-1]); !errors.Is(err, ErrDecryption) {
				t.Errorf("short KEM output: got %v, want ErrDecryption", err)
			}
			if _, _, err := ExternalInit(cs, seededReader(5), pub[:5]); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("bad external_pub: got %v, want ErrInvalidKey", err)
			}
		})
	}
}

// TestJoinerPath checks that a new member, starting from the joiner secret
// of a Welcome, derives the same epoch as the members.
func TestJoinerPath(t *testing.T) {
	cs := MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448
	gc := testGroupContext(cs, 4)
	psks := []PSKInput{{
		ID:  PreSharedKeyID{Type: PSKTypeResumption, Usage: ResumptionPSKUsageApplication, PSKGroupID: []byte("group"), PSKEpoch: 2, PSKNonce: testSecret(cs, 7)},
		PSK: testSecret(cs, 8),
	}}
	pskSecret, err := PSKSecret(cs, psks)
	if err != nil {
		t.Fatal(err)
	}
	members, err := DeriveEpochSecrets(gc, testSecret(cs, 1), testSecret(cs, 2), pskSecret)
	if err != nil {
		t.Fatal(err)
	}
	welcome, err := WelcomeSecret(cs, members.JoinerSecret, pskSecret)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(welcome, members.WelcomeSecret) {
		t.Fatal("welcome secret differs")
	}
	key, nonce, err := WelcomeKeyNonce(cs, welcome)
	if err != nil || len(key) != cs.AEADKeySize() || len(nonce) != cs.AEADNonceSize() {
		t.Fatalf("welcome key/nonce: %d, %d bytes, %v", len(key), len(nonce), err)
	}
	joiner, err := EpochSecretsFromJoiner(gc, members.JoinerSecret, pskSecret)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(joiner.EpochAuthenticator, members.EpochAuthenticator) || !bytes.Equal(joiner.InitSecret, members.InitSecret) {
		t.Fatal("joiner and members disagree on the epoch")
	}
	// Any change of input changes the epoch.
	for name, gc2 := range map[string]*GroupContext{
		"epoch":   testGroupContext(cs, 5),
		"context": {Version: gc.Version, CipherSuite: cs, GroupID: []byte("other"), Epoch: 4},
	} {
		other, err := DeriveEpochSecrets(gc2, testSecret(cs, 1), testSecret(cs, 2), pskSecret)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(other.EpochAuthenticator, members.EpochAuthenticator) {
			t.Errorf("%s change does not change the epoch", name)
		}
	}
	noPSK, err := DeriveEpochSecrets(gc, testSecret(cs, 1), testSecret(cs, 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(noPSK.EpochAuthenticator, members.EpochAuthenticator) {
		t.Error("the PSK does not change the epoch")
	}
	if _, err := EpochSecretsFromJoiner(gc, members.JoinerSecret[:5], nil); !errors.Is(err, ErrInvalidLength) {
		t.Errorf("short joiner secret: got %v", err)
	}
	if _, err := DeriveEpochSecrets(testGroupContext(CipherSuite(0x99), 1), nil, nil, nil); !errors.Is(err, ErrUnsupportedCipherSuite) {
		t.Errorf("unknown suite: got %v", err)
	}
}

func TestPSKSecretEmpty(t *testing.T) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	s, err := PSKSecret(cs, nil)
	if err != nil || !bytes.Equal(s, make([]byte, cs.HashSize())) {
		t.Fatalf("no PSKs: %x, %v", s, err)
	}
	if _, err := PSKSecret(cs, []PSKInput{{ID: PreSharedKeyID{Type: 9}}}); err == nil {
		t.Error("invalid PSK type accepted")
	}
}

func TestEpochSecretsErase(t *testing.T) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	gc := testGroupContext(cs, 1)
	s, err := DeriveEpochSecrets(gc, testSecret(cs, 1), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.NewProtector(nil, gc, 2)
	if err != nil {
		t.Fatal(err)
	}
	s.Erase()
	for _, b := range [][]byte{s.EncryptionSecret, s.InitSecret, s.MembershipKey, s.JoinerSecret} {
		if !allZero(b) {
			t.Fatal("secret not erased")
		}
	}
	// The Protector kept its own copies.
	f := &protectFixture{cs: cs, gc: gc, sender: p, receiver: p}
	priv, pub, _ := cs.GenerateSignatureKeyPair(seededReader(9))
	f.signer, _ = cs.NewSigner(priv)
	f.pub = pub
	ac := f.signed(t, WireFormatPrivateMessage, ContentTypeApplication)
	pm, err := p.ProtectPrivate(ac)
	if err != nil {
		t.Fatal(err)
	}
	rx, err := NewProtector(nil, gc, make([]byte, cs.HashSize()), make([]byte, cs.HashSize()), p.SecretTree())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rx.UnprotectPrivate(pm, f.keys()); !errors.Is(err, ErrDecryption) {
		t.Fatalf("wrong sender data secret: got %v, want ErrDecryption", err)
	}
}

func TestConfirmationTag(t *testing.T) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	key, hash := testSecret(cs, 1), testSecret(cs, 2)
	tag := ConfirmationTag(cs, key, hash)
	if err := VerifyConfirmationTag(cs, key, hash, tag); err != nil {
		t.Fatal(err)
	}
	tag[0] ^= 1
	if err := VerifyConfirmationTag(cs, key, hash, tag); !errors.Is(err, ErrBadConfirmationTag) {
		t.Fatalf("got %v, want ErrBadConfirmationTag", err)
	}
	if _, err := ConfirmedTranscriptHash(cs, nil, &AuthenticatedContent{Content: FramedContent{ContentType: ContentTypeProposal}}); !errors.Is(err, ErrWrongContentType) {
		t.Fatalf("transcript hash over a proposal: got %v", err)
	}
}
