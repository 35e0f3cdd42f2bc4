package mls

import (
	"strconv"
	"testing"
)

type secretTreeVector struct {
	CipherSuite CipherSuite `json:"cipher_suite"`
	SenderData  struct {
		SenderDataSecret vecHex `json:"sender_data_secret"`
		Ciphertext       vecHex `json:"ciphertext"`
		Key              vecHex `json:"key"`
		Nonce            vecHex `json:"nonce"`
	} `json:"sender_data"`
	EncryptionSecret vecHex `json:"encryption_secret"`
	Leaves           [][]struct {
		Generation       uint32 `json:"generation"`
		HandshakeKey     vecHex `json:"handshake_key"`
		HandshakeNonce   vecHex `json:"handshake_nonce"`
		ApplicationKey   vecHex `json:"application_key"`
		ApplicationNonce vecHex `json:"application_nonce"`
	} `json:"leaves"`
}

func TestVectorSecretTree(t *testing.T) {
	const file = "secret-tree.json"
	var vs []secretTreeVector
	loadVectorFile(t, file, &vs)
	passed := 0
	for i, v := range vs {
		ok := vectorCase(t, v.CipherSuite.String()+"/"+strconv.Itoa(i), func(t *testing.T) {
			cs := v.CipherSuite
			key, nonce, err := senderDataKeyNonce(newLabelExpander(cs, v.SenderData.SenderDataSecret), v.SenderData.Ciphertext)
			if err != nil {
				t.Fatal(err)
			}
			checkBytes(t, "sender_data key", key, v.SenderData.Key)
			checkBytes(t, "sender_data nonce", nonce, v.SenderData.Nonce)

			tree, err := NewSecretTree(nil, cs, v.EncryptionSecret, uint32(len(v.Leaves)))
			if err != nil {
				t.Fatal(err)
			}
			for leaf, gens := range v.Leaves {
				for _, g := range gens {
					hs, err := tree.ReceiveKey(LeafIndex(leaf), RatchetHandshake, g.Generation)
					if err != nil {
						t.Fatalf("leaf %d handshake generation %d: %v", leaf, g.Generation, err)
					}
					checkBytes(t, "handshake_key", hs.Key, g.HandshakeKey)
					checkBytes(t, "handshake_nonce", hs.Nonce, g.HandshakeNonce)
					app, err := tree.ReceiveKey(LeafIndex(leaf), RatchetApplication, g.Generation)
					if err != nil {
						t.Fatalf("leaf %d application generation %d: %v", leaf, g.Generation, err)
					}
					checkBytes(t, "application_key", app.Key, g.ApplicationKey)
					checkBytes(t, "application_nonce", app.Nonce, g.ApplicationNonce)
				}
			}
		})
		if ok {
			passed++
		}
	}
	reportVectors(t, file, passed, len(vs))
}
