package mls

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// vecHex is a hex-encoded byte string in a test-vector file.
type vecHex []byte

func (h *vecHex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// loadVectorFile decodes testdata/<file> into v.
func loadVectorFile(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// vectorCase runs one vector case as a subtest and reports whether it passed.
func vectorCase(t *testing.T, name string, f func(t *testing.T)) bool {
	t.Helper()
	return t.Run(name, f)
}

// reportVectors logs the summary line every vector test prints.
func reportVectors(t *testing.T, file string, passed, total int) {
	t.Helper()
	t.Logf("vectors %s: %d/%d cases passed", file, passed, total)
	if passed != total || total == 0 {
		t.Errorf("vectors %s: %d of %d cases failed", file, total-passed, total)
	}
}

func checkBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got  %x\n want %x", what, got, want)
	}
}

type keyScheduleVector struct {
	CipherSuite       CipherSuite `json:"cipher_suite"`
	GroupID           vecHex      `json:"group_id"`
	InitialInitSecret vecHex      `json:"initial_init_secret"`
	Epochs            []struct {
		TreeHash                vecHex `json:"tree_hash"`
		CommitSecret            vecHex `json:"commit_secret"`
		PSKSecret               vecHex `json:"psk_secret"`
		ConfirmedTranscriptHash vecHex `json:"confirmed_transcript_hash"`
		GroupContext            vecHex `json:"group_context"`
		JoinerSecret            vecHex `json:"joiner_secret"`
		WelcomeSecret           vecHex `json:"welcome_secret"`
		InitSecret              vecHex `json:"init_secret"`
		SenderDataSecret        vecHex `json:"sender_data_secret"`
		EncryptionSecret        vecHex `json:"encryption_secret"`
		ExporterSecret          vecHex `json:"exporter_secret"`
		EpochAuthenticator      vecHex `json:"epoch_authenticator"`
		ExternalSecret          vecHex `json:"external_secret"`
		ConfirmationKey         vecHex `json:"confirmation_key"`
		MembershipKey           vecHex `json:"membership_key"`
		ResumptionPSK           vecHex `json:"resumption_psk"`
		ExternalPub             vecHex `json:"external_pub"`
		Exporter                struct {
			Label   string `json:"label"`
			Context vecHex `json:"context"`
			Length  int    `json:"length"`
			Secret  vecHex `json:"secret"`
		} `json:"exporter"`
	} `json:"epochs"`
}

func TestVectorKeySchedule(t *testing.T) {
	const file = "key-schedule.json"
	var vs []keyScheduleVector
	loadVectorFile(t, file, &vs)
	passed := 0
	for i, v := range vs {
		ok := vectorCase(t, v.CipherSuite.String()+"/"+strconv.Itoa(i), func(t *testing.T) {
			initSecret := []byte(v.InitialInitSecret)
			for n, ep := range v.Epochs {
				gc := &GroupContext{
					Version:                 ProtocolVersionMLS10,
					CipherSuite:             v.CipherSuite,
					GroupID:                 v.GroupID,
					Epoch:                   uint64(n),
					TreeHash:                ep.TreeHash,
					ConfirmedTranscriptHash: ep.ConfirmedTranscriptHash,
				}
				enc, err := gc.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				checkBytes(t, "group_context", enc, ep.GroupContext)
				s, err := DeriveEpochSecrets(gc, initSecret, ep.CommitSecret, ep.PSKSecret)
				if err != nil {
					t.Fatalf("epoch %d: %v", n, err)
				}
				checkBytes(t, "joiner_secret", s.JoinerSecret, ep.JoinerSecret)
				checkBytes(t, "welcome_secret", s.WelcomeSecret, ep.WelcomeSecret)
				welcome, err := WelcomeSecret(v.CipherSuite, s.JoinerSecret, ep.PSKSecret)
				if err != nil {
					t.Fatal(err)
				}
				checkBytes(t, "WelcomeSecret()", welcome, ep.WelcomeSecret)
				checkBytes(t, "init_secret", s.InitSecret, ep.InitSecret)
				checkBytes(t, "sender_data_secret", s.SenderDataSecret, ep.SenderDataSecret)
				checkBytes(t, "encryption_secret", s.EncryptionSecret, ep.EncryptionSecret)
				checkBytes(t, "exporter_secret", s.ExporterSecret, ep.ExporterSecret)
				checkBytes(t, "epoch_authenticator", s.EpochAuthenticator, ep.EpochAuthenticator)
				checkBytes(t, "external_secret", s.ExternalSecret, ep.ExternalSecret)
				checkBytes(t, "confirmation_key", s.ConfirmationKey, ep.ConfirmationKey)
				checkBytes(t, "membership_key", s.MembershipKey, ep.MembershipKey)
				checkBytes(t, "resumption_psk", s.ResumptionPSK, ep.ResumptionPSK)
				_, pub, err := s.ExternalKeyPair()
				if err != nil {
					t.Fatal(err)
				}
				checkBytes(t, "external_pub", pub, ep.ExternalPub)
				exported, err := s.Export(ep.Exporter.Label, ep.Exporter.Context, ep.Exporter.Length)
				if err != nil {
					t.Fatal(err)
				}
				checkBytes(t, "exporter.secret", exported, ep.Exporter.Secret)
				initSecret = s.InitSecret
			}
		})
		if ok {
			passed++
		}
	}
	reportVectors(t, file, passed, len(vs))
}

type pskSecretVector struct {
	CipherSuite CipherSuite `json:"cipher_suite"`
	PSKs        []struct {
		PSKID    vecHex `json:"psk_id"`
		PSK      vecHex `json:"psk"`
		PSKNonce vecHex `json:"psk_nonce"`
	} `json:"psks"`
	PSKSecret vecHex `json:"psk_secret"`
}

func TestVectorPSKSecret(t *testing.T) {
	const file = "psk_secret.json"
	var vs []pskSecretVector
	loadVectorFile(t, file, &vs)
	passed := 0
	for i, v := range vs {
		ok := vectorCase(t, v.CipherSuite.String()+"/"+strconv.Itoa(i), func(t *testing.T) {
			var in []PSKInput
			for _, p := range v.PSKs {
				in = append(in, PSKInput{
					ID:  PreSharedKeyID{Type: PSKTypeExternal, PSKID: p.PSKID, PSKNonce: p.PSKNonce},
					PSK: p.PSK,
				})
			}
			got, err := PSKSecret(v.CipherSuite, in)
			if err != nil {
				t.Fatal(err)
			}
			checkBytes(t, "psk_secret", got, v.PSKSecret)
		})
		if ok {
			passed++
		}
	}
	reportVectors(t, file, passed, len(vs))
}

type transcriptVector struct {
	CipherSuite                  CipherSuite `json:"cipher_suite"`
	ConfirmationKey              vecHex      `json:"confirmation_key"`
	AuthenticatedContent         vecHex      `json:"authenticated_content"`
	InterimTranscriptHashBefore  vecHex      `json:"interim_transcript_hash_before"`
	ConfirmedTranscriptHashAfter vecHex      `json:"confirmed_transcript_hash_after"`
	InterimTranscriptHashAfter   vecHex      `json:"interim_transcript_hash_after"`
}

func TestVectorTranscriptHashes(t *testing.T) {
	const file = "transcript-hashes.json"
	var vs []transcriptVector
	loadVectorFile(t, file, &vs)
	passed := 0
	for i, v := range vs {
		ok := vectorCase(t, v.CipherSuite.String()+"/"+strconv.Itoa(i), func(t *testing.T) {
			cs := v.CipherSuite
			var ac AuthenticatedContent
			if err := ac.Unmarshal(v.AuthenticatedContent); err != nil {
				t.Fatalf("authenticated_content: %v", err)
			}
			re, err := ac.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			checkBytes(t, "authenticated_content round trip", re, v.AuthenticatedContent)
			confirmed, err := ConfirmedTranscriptHash(cs, v.InterimTranscriptHashBefore, &ac)
			if err != nil {
				t.Fatal(err)
			}
			checkBytes(t, "confirmed_transcript_hash_after", confirmed, v.ConfirmedTranscriptHashAfter)
			if err := VerifyConfirmationTag(cs, v.ConfirmationKey, confirmed, ac.Auth.ConfirmationTag); err != nil {
				t.Errorf("confirmation tag: %v", err)
			}
			interim, err := InterimTranscriptHash(cs, confirmed, ac.Auth.ConfirmationTag)
			if err != nil {
				t.Fatal(err)
			}
			checkBytes(t, "interim_transcript_hash_after", interim, v.InterimTranscriptHashAfter)
		})
		if ok {
			passed++
		}
	}
	reportVectors(t, file, passed, len(vs))
}
