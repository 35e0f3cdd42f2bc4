package mls

import (
	"bytes"
	"errors"
	"testing"
)

// testKeyPackage builds and signs a key package for cs from r.
func testKeyPackage(t testing.TB, cs CipherSuite, r *testRand, identity string) (*KeyPackage, *Signer) {
	t.Helper()
	sigPriv, _, err := cs.GenerateSignatureKeyPair(r)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cs.NewSigner(sigPriv)
	if err != nil {
		t.Fatal(err)
	}
	_, encPub, err := cs.GenerateHPKEKeyPair(r)
	if err != nil {
		t.Fatal(err)
	}
	_, initPub, err := cs.GenerateHPKEKeyPair(r)
	if err != nil {
		t.Fatal(err)
	}
	kp := &KeyPackage{
		Version:     ProtocolVersionMLS10,
		CipherSuite: cs,
		InitKey:     initPub,
		LeafNode: LeafNode{
			EncryptionKey: encPub,
			SignatureKey:  s.Public(),
			Credential:    NewBasicCredential([]byte(identity)),
			Capabilities: Capabilities{
				Versions:     []ProtocolVersion{ProtocolVersionMLS10},
				CipherSuites: []CipherSuite{cs, 0x0a0a},
				Extensions:   []ExtensionType{0x1a1a},
				Proposals:    []ProposalType{},
				Credentials:  []CredentialType{CredentialTypeBasic},
			},
			Source:     LeafNodeSourceKeyPackage,
			Lifetime:   Lifetime{NotBefore: 1, NotAfter: 1 << 40},
			Extensions: Extensions{{Type: 0x2a2a, Data: []byte("grease")}},
		},
		Extensions: Extensions{{Type: 0xff00, Data: []byte{1, 2, 3}}},
	}
	if err := kp.LeafNode.Sign(r, s, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := kp.Sign(r, s); err != nil {
		t.Fatal(err)
	}
	return kp, s
}

func TestSignedObjects(t *testing.T) {
	for _, cs := range allSuites {
		t.Run(cs.String(), func(t *testing.T) {
			r := newTestRand("signed " + cs.String())
			kp, s := testKeyPackage(t, cs, r, "alice")
			if err := kp.Verify(); err != nil {
				t.Fatalf("key package: %v", err)
			}
			if err := kp.LeafNode.Verify(cs, nil, 0); err != nil {
				t.Fatalf("leaf node: %v", err)
			}
			// GREASE and unknown values survive a round trip, and so does the signature.
			b, err := kp.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var back KeyPackage
			if err := back.Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			if err := back.Verify(); err != nil {
				t.Errorf("decoded key package: %v", err)
			}
			if back.LeafNode.Capabilities.CipherSuites[1] != 0x0a0a || !back.Extensions.Has(0xff00) {
				t.Error("GREASE or unknown values lost")
			}
			tampered := back
			tampered.InitKey = flip(back.InitKey, 3)
			if err := tampered.Verify(); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("tampered key package: %v, want ErrInvalidSignature", err)
			}

			// A leaf from an update binds group ID and leaf index.
			leaf := kp.LeafNode
			leaf.Source = LeafNodeSourceUpdate
			if err := leaf.Sign(r, s, []byte("group"), 3); err != nil {
				t.Fatal(err)
			}
			if err := leaf.Verify(cs, []byte("group"), 3); err != nil {
				t.Errorf("update leaf: %v", err)
			}
			if err := leaf.Verify(cs, []byte("group"), 4); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("update leaf at another index: %v, want ErrInvalidSignature", err)
			}
			if err := leaf.Verify(cs, []byte("other"), 3); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("update leaf in another group: %v, want ErrInvalidSignature", err)
			}

			gi := GroupInfo{
				GroupContext: GroupContext{
					Version: ProtocolVersionMLS10, CipherSuite: cs, GroupID: []byte("group"), Epoch: 7,
					TreeHash: bytes.Repeat([]byte{1}, cs.HashSize()), ConfirmedTranscriptHash: bytes.Repeat([]byte{2}, cs.HashSize()),
					Extensions: Extensions{},
				},
				Extensions:      Extensions{{Type: ExtensionTypeExternalPub, Data: []byte{0}}},
				ConfirmationTag: bytes.Repeat([]byte{3}, cs.HashSize()),
				Signer:          2,
			}
			if err := gi.Sign(r, s); err != nil {
				t.Fatal(err)
			}
			if err := gi.Verify(s.Public()); err != nil {
				t.Errorf("group info: %v", err)
			}
			gi.Signer = 1
			if err := gi.Verify(s.Public()); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("tampered group info: %v, want ErrInvalidSignature", err)
			}

			ref, err := kp.Ref()
			if err != nil || len(ref) != cs.HashSize() {
				t.Errorf("Ref: %x, %v", ref, err)
			}
		})
	}
}

func TestSignatureBadInput(t *testing.T) {
	for _, cs := range allSuites {
		r := newTestRand("bad " + cs.String())
		priv, pub, err := cs.GenerateSignatureKeyPair(r)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := cs.SignWithLabel(r, priv, "L", []byte("content"))
		if err != nil {
			t.Fatal(err)
		}
		bad := []struct {
			name     string
			pub, sig []byte
		}{
			{"flipped signature", pub, flip(sig, len(sig)/2)},
			{"short signature", pub, sig[:len(sig)-1]},
			{"empty signature", pub, nil},
			{"long signature", pub, append(append([]byte(nil), sig...), 0)},
			{"empty key", nil, sig},
			{"short key", pub[1:], sig},
			{"garbage key", bytes.Repeat([]byte{0xff}, len(pub)), sig},
		}
		for _, b := range bad {
			if err := cs.VerifyWithLabel(b.pub, "L", []byte("content"), b.sig); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("suite %d %s: %v, want ErrInvalidSignature", cs, b.name, err)
			}
		}
		// Short ECDSA scalars are accepted as the same integer without its
		// leading zeros (see NewSigner); an over-long key never is.
		if _, err := cs.NewSigner(append(append([]byte(nil), priv...), 0)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("suite %d long private key: %v, want ErrInvalidKey", cs, err)
		}
	}
	if _, err := CipherSuite(0x0a0a).NewSigner(nil); !errors.Is(err, ErrUnsupportedCipherSuite) {
		t.Errorf("unknown suite: %v, want ErrUnsupportedCipherSuite", err)
	}
	if err := CipherSuite(99).VerifyWithLabel(nil, "L", nil, nil); !errors.Is(err, ErrUnsupportedCipherSuite) {
		t.Errorf("unknown suite verify: %v", err)
	}
}

func TestGenerateSignatureKeyPairDeterministic(t *testing.T) {
	for _, cs := range allSuites {
		p1, q1, err1 := cs.GenerateSignatureKeyPair(newTestRand("k"))
		p2, q2, err2 := cs.GenerateSignatureKeyPair(newTestRand("k"))
		if err1 != nil || err2 != nil || !bytes.Equal(p1, p2) || !bytes.Equal(q1, q2) {
			t.Errorf("suite %d: key generation is not a function of rand", cs)
		}
	}
}

func TestNilRandomness(t *testing.T) {
	for _, cs := range allSuites {
		if _, _, err := cs.GenerateSignatureKeyPair(nil); !errors.Is(err, ErrNoRandomness) {
			t.Errorf("suite %d GenerateSignatureKeyPair(nil): %v", cs, err)
		}
		if _, _, err := cs.GenerateHPKEKeyPair(nil); !errors.Is(err, ErrNoRandomness) {
			t.Errorf("suite %d GenerateHPKEKeyPair(nil): %v", cs, err)
		}
		_, pub, err := cs.GenerateHPKEKeyPair(newTestRand("nil"))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := cs.EncryptWithLabel(nil, pub, "L", nil, nil); !errors.Is(err, ErrNoRandomness) {
			t.Errorf("suite %d EncryptWithLabel(nil): %v", cs, err)
		}
	}
}
