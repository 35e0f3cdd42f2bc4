package mls

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// passiveClientVector is one case of the passive-client-*.json files.
type passiveClientVector struct {
	CipherSuite  CipherSuite `json:"cipher_suite"`
	ExternalPSKs []struct {
		PSKID hexBytes `json:"psk_id"`
		PSK   hexBytes `json:"psk"`
	} `json:"external_psks"`
	KeyPackage                hexBytes `json:"key_package"`
	SignaturePriv             hexBytes `json:"signature_priv"`
	EncryptionPriv            hexBytes `json:"encryption_priv"`
	InitPriv                  hexBytes `json:"init_priv"`
	Welcome                   hexBytes `json:"welcome"`
	RatchetTree               hexBytes `json:"ratchet_tree"`
	InitialEpochAuthenticator hexBytes `json:"initial_epoch_authenticator"`
	Epochs                    []struct {
		Proposals          []hexBytes `json:"proposals"`
		Commit             hexBytes   `json:"commit"`
		EpochAuthenticator hexBytes   `json:"epoch_authenticator"`
	} `json:"epochs"`
}

func grpDecodeMessage(b []byte) (*MLSMessage, error) {
	var m MLSMessage
	if err := m.Unmarshal(b); err != nil {
		return nil, err
	}
	return &m, nil
}

// run joins the group as the vector's passive client and follows every
// epoch, checking the epoch authenticators.
func (v *passiveClientVector) run() error {
	kpMsg, err := grpDecodeMessage(v.KeyPackage)
	if err != nil || kpMsg.KeyPackage == nil {
		return fmt.Errorf("key package: %v", err)
	}
	kp := kpMsg.KeyPackage
	cs := v.CipherSuite
	// Some generators strip leading zero bytes of P-521 private keys.
	v.SignaturePriv = padP521Scalar(cs, v.SignaturePriv)
	v.EncryptionPriv = padP521Scalar(cs, v.EncryptionPriv)
	v.InitPriv = padP521Scalar(cs, v.InitPriv)
	sigPub, err := cs.SignatureKeyPairFromPrivate(v.SignaturePriv)
	if err != nil || !bytes.Equal(sigPub, kp.LeafNode.SignatureKey) {
		return fmt.Errorf("signature_priv does not match the key package: %v", err)
	}
	for _, c := range []struct {
		name      string
		priv, pub []byte
	}{{"encryption", v.EncryptionPriv, kp.LeafNode.EncryptionKey}, {"init", v.InitPriv, kp.InitKey}} {
		pub, err := cs.HPKEPublicFromPrivate(c.priv)
		if err != nil || !bytes.Equal(pub, c.pub) {
			return fmt.Errorf("%s_priv does not match the key package: %v", c.name, err)
		}
	}
	w, err := grpDecodeMessage(v.Welcome)
	if err != nil || w.Welcome == nil {
		return fmt.Errorf("welcome: %v", err)
	}
	// The vectors' leaves carry lifetimes from when they were generated;
	// judge them at a time inside the joiner's own lifetime.
	at := kp.LeafNode.Lifetime.NotBefore
	cfg := &Config{Rand: grpConfig(uint64(cs)).Rand, Time: func() time.Time { return time.Unix(int64(at), 0) }}
	opts := JoinOptions{GroupOptions: GroupOptions{Config: cfg, UnboundedLifetimes: true}}
	for _, p := range v.ExternalPSKs {
		opts.ExternalPSKs = append(opts.ExternalPSKs, ExternalPSK{ID: p.PSKID, PSK: p.PSK})
	}
	if v.RatchetTree != nil {
		if err := opts.RatchetTree.Unmarshal(v.RatchetTree); err != nil {
			return fmt.Errorf("ratchet tree: %v", err)
		}
	}
	kpb := &KeyPackageBundle{KeyPackage: kp, InitPrivateKey: v.InitPriv, EncryptionPrivateKey: v.EncryptionPriv, SignaturePrivateKey: v.SignaturePriv}
	g, err := JoinFromWelcome(opts, w.Welcome, kpb)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if !bytes.Equal(g.EpochAuthenticator(), v.InitialEpochAuthenticator) {
		return fmt.Errorf("initial epoch authenticator differs")
	}
	for i, ep := range v.Epochs {
		for j, pb := range ep.Proposals {
			m, err := grpDecodeMessage(pb)
			if err != nil {
				return fmt.Errorf("epoch %d proposal %d: %v", i, j, err)
			}
			if _, err := g.Process(m); err != nil {
				return fmt.Errorf("epoch %d proposal %d: %w", i, j, err)
			}
		}
		m, err := grpDecodeMessage(ep.Commit)
		if err != nil {
			return fmt.Errorf("epoch %d commit: %v", i, err)
		}
		r, err := g.Process(m)
		if err != nil {
			return fmt.Errorf("epoch %d commit: %w", i, err)
		}
		if r.Kind != ReceivedCommit {
			return fmt.Errorf("epoch %d: commit processed as %v", i, r.Kind)
		}
		if _, err := g.Merge(r.Commit); err != nil {
			return fmt.Errorf("epoch %d merge: %w", i, err)
		}
		if !bytes.Equal(g.EpochAuthenticator(), ep.EpochAuthenticator) {
			return fmt.Errorf("epoch %d: epoch authenticator differs", i)
		}
	}
	return nil
}

func grpPassiveClientVectors(t *testing.T, file string) {
	var cases []passiveClientVector
	loadVectors(t, file, &cases)
	tally := newVectorTally(t, file)
	for i := range cases {
		c := &cases[i]
		tally.run(fmt.Sprintf("%d/%v", i, c.CipherSuite), func(t *testing.T) {
			if err := c.run(); err != nil {
				t.Fatal(err)
			}
		})
	}
	tally.report()
}

func TestVectorPassiveClientWelcome(t *testing.T) {
	grpPassiveClientVectors(t, "passive-client-welcome.json")
}

func TestVectorPassiveClientHandlingCommit(t *testing.T) {
	grpPassiveClientVectors(t, "passive-client-handling-commit.json")
}

func TestVectorPassiveClientRandom(t *testing.T) {
	grpPassiveClientVectors(t, "passive-client-random.json")
}

// TestVectorWelcome decrypts each Welcome of welcome.json, checks the
// GroupInfo signature with signer_pub and its confirmation tag against the
// key schedule of the joiner secret (no PSKs).
func TestVectorWelcome(t *testing.T) {
	var cases []struct {
		CipherSuite CipherSuite `json:"cipher_suite"`
		InitPriv    hexBytes    `json:"init_priv"`
		SignerPub   hexBytes    `json:"signer_pub"`
		KeyPackage  hexBytes    `json:"key_package"`
		Welcome     hexBytes    `json:"welcome"`
	}
	loadVectors(t, "welcome.json", &cases)
	tally := newVectorTally(t, "welcome.json")
	for i := range cases {
		c := &cases[i]
		tally.run(c.CipherSuite.String(), func(t *testing.T) {
			cs := c.CipherSuite
			kpMsg, err := grpDecodeMessage(c.KeyPackage)
			if err != nil || kpMsg.KeyPackage == nil {
				t.Fatalf("key package: %v", err)
			}
			wMsg, err := grpDecodeMessage(c.Welcome)
			if err != nil || wMsg.Welcome == nil {
				t.Fatalf("welcome: %v", err)
			}
			w := wMsg.Welcome
			ref, err := kpMsg.KeyPackage.Ref()
			if err != nil {
				t.Fatal(err)
			}
			egs, ok := w.Find(ref)
			if !ok {
				t.Fatal(ErrWelcomeNotForUs)
			}
			pt, err := cs.DecryptWithLabel(padP521Scalar(cs, c.InitPriv), "Welcome", w.EncryptedGroupInfo, egs.EncryptedGroupSecrets.KEMOutput, egs.EncryptedGroupSecrets.Ciphertext)
			if err != nil {
				t.Fatal(err)
			}
			var gs GroupSecrets
			if err := gs.Unmarshal(pt); err != nil {
				t.Fatal(err)
			}
			welcomeSecret, err := WelcomeSecret(cs, gs.JoinerSecret, nil)
			if err != nil {
				t.Fatal(err)
			}
			key, nonce, err := WelcomeKeyNonce(cs, welcomeSecret)
			if err != nil {
				t.Fatal(err)
			}
			giBytes, err := cs.Open(key, nonce, nil, w.EncryptedGroupInfo)
			if err != nil {
				t.Fatal(err)
			}
			var gi GroupInfo
			if err := gi.Unmarshal(giBytes); err != nil {
				t.Fatal(err)
			}
			if err := gi.Verify(c.SignerPub); err != nil {
				t.Fatal(err)
			}
			secrets, err := EpochSecretsFromJoiner(&gi.GroupContext, gs.JoinerSecret, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConfirmationTag(cs, secrets.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag); err != nil {
				t.Fatal(err)
			}
		})
	}
	tally.report()
}
