package mls

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// TestDeriveKeyPairAgainstTreeKEM checks DeriveKeyPair in every suite
// against the node keys of treekem.json: the public key of each parent node
// on a member's path must be DeriveKeyPair(DeriveSecret(path_secret,
// "node")). Suites 4, 5 and 6 hand it 64-byte secrets, the case circl's own
// DeriveKeyPair cannot take. It also checks the leaf keys and signatures.
func TestDeriveKeyPairAgainstTreeKEM(t *testing.T) {
	var cases []struct {
		CipherSuite   CipherSuite `json:"cipher_suite"`
		GroupID       hexBytes    `json:"group_id"`
		RatchetTree   hexBytes    `json:"ratchet_tree"`
		LeavesPrivate []struct {
			Index          uint32
			EncryptionPriv hexBytes `json:"encryption_priv"`
			SignaturePriv  hexBytes `json:"signature_priv"`
			PathSecrets    []struct {
				Node       NodeIndex
				PathSecret hexBytes `json:"path_secret"`
			} `json:"path_secrets"`
		} `json:"leaves_private"`
	}
	loadVectors(t, "treekem.json", &cases)
	checked := map[CipherSuite]int{}
	for i, c := range cases {
		cs := c.CipherSuite
		t.Run(fmt.Sprintf("%d/suite=%d", i, cs), func(t *testing.T) {
			var tree TreeNodes
			if err := tree.Unmarshal(c.RatchetTree); err != nil {
				t.Fatalf("ratchet tree: %v", err)
			}
			if again, err := tree.Marshal(); err != nil || !bytes.Equal(again, c.RatchetTree) {
				t.Fatalf("ratchet tree does not round-trip: %v", err)
			}
			nLeaves := uint32(len(tree)+1) / 2
			for _, lp := range c.LeavesPrivate {
				leafNode := LeafIndex(lp.Index).Node()
				if int(leafNode) >= len(tree) || tree[leafNode] == nil || tree[leafNode].Leaf == nil {
					t.Fatalf("leaf %d missing", lp.Index)
				}
				leaf := tree[leafNode].Leaf
				if pub, err := cs.HPKEPublicFromPrivate(lp.EncryptionPriv); err != nil || !bytes.Equal(pub, leaf.EncryptionKey) {
					t.Errorf("leaf %d encryption key mismatch: %v", lp.Index, err)
				}
				if pub, err := cs.SignatureKeyPairFromPrivate(lp.SignaturePriv); err != nil || !bytes.Equal(pub, leaf.SignatureKey) {
					t.Errorf("leaf %d signature key mismatch: %v", lp.Index, err)
				}
				if err := leaf.Verify(cs, c.GroupID, LeafIndex(lp.Index)); err != nil {
					t.Errorf("leaf %d signature: %v", lp.Index, err)
				}
				for _, ps := range lp.PathSecrets {
					if !ps.Node.InTree(nLeaves) || tree[ps.Node] == nil || tree[ps.Node].Parent == nil {
						t.Fatalf("node %d is not a parent", ps.Node)
					}
					nodeSecret, err := cs.DeriveSecret(ps.PathSecret, "node")
					if err != nil {
						t.Fatal(err)
					}
					priv, pub, err := cs.DeriveKeyPair(nodeSecret)
					if err != nil {
						t.Fatalf("DeriveKeyPair: %v", err)
					}
					if !bytes.Equal(pub, tree[ps.Node].Parent.EncryptionKey) {
						t.Errorf("node %d: derived public key %x, tree has %x", ps.Node, pub, tree[ps.Node].Parent.EncryptionKey)
					}
					if again, err := cs.HPKEPublicFromPrivate(priv); err != nil || !bytes.Equal(again, pub) {
						t.Errorf("node %d: private key does not give the public key: %v", ps.Node, err)
					}
					checked[cs]++
				}
			}
		})
	}
	for _, cs := range allSuites {
		if checked[cs] == 0 {
			t.Errorf("suite %d: no DeriveKeyPair case checked", cs)
		}
	}
}

// TestDeriveKeyPairRFC9180 checks DeriveKeyPair against the ikmE/skEm/pkEm
// values of RFC 9180 Appendix A for the DHKEMs MLS uses.
func TestDeriveKeyPairRFC9180(t *testing.T) {
	tests := []struct {
		cs          CipherSuite
		ikm, sk, pk string
	}{
		{ // A.1.1 DHKEM(X25519, HKDF-SHA256)
			1,
			"7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234",
			"52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736",
			"37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
		},
		{ // A.3.1 DHKEM(P-256, HKDF-SHA256)
			2,
			"4270e54ffd08d79d5928020af4686d8f6b7d35dbe470265f1f5aa22816ce860e",
			"4995788ef4b9d6132b249ce59a77281493eb39af373d236a1fe415cb0c2d7beb",
			"04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325ac98536d7b61a1af4b78e5b7f951c0900be863c403ce65c9bfcb9382657222d18c4",
		},
	}
	for _, tc := range tests {
		sk, pk, err := tc.cs.DeriveKeyPair(mustHex(t, tc.ikm))
		if err != nil {
			t.Fatalf("suite %d: %v", tc.cs, err)
		}
		if !bytes.Equal(sk, mustHex(t, tc.sk)) || !bytes.Equal(pk, mustHex(t, tc.pk)) {
			t.Errorf("suite %d: DeriveKeyPair = %x, %x", tc.cs, sk, pk)
		}
	}
}

func TestDeriveKeyPairAnyLength(t *testing.T) {
	for _, cs := range allSuites {
		for _, n := range []int{0, 1, 32, 48, 64, 66, 200} {
			ikm := bytes.Repeat([]byte{byte(n)}, n)
			priv, pub, err := cs.DeriveKeyPair(ikm)
			if err != nil {
				t.Fatalf("suite %d, %d-byte ikm: %v", cs, n, err)
			}
			if len(priv) != cs.HPKEPrivateKeySize() || len(pub) != cs.HPKEPublicKeySize() {
				t.Errorf("suite %d: key sizes %d/%d", cs, len(priv), len(pub))
			}
		}
	}
}

func TestHPKERoundTripAndTamper(t *testing.T) {
	for _, cs := range allSuites {
		t.Run(cs.String(), func(t *testing.T) {
			r := newTestRand(cs.String())
			priv, pub, err := cs.GenerateHPKEKeyPair(r)
			if err != nil {
				t.Fatal(err)
			}
			kem, ct, err := cs.EncryptWithLabel(r, pub, "Test", []byte("ctx"), []byte("hello"))
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := cs.DecryptWithLabel(priv, "Test", []byte("ctx"), kem, ct); err != nil || string(pt) != "hello" {
				t.Fatalf("round trip: %q, %v", pt, err)
			}
			bad := []struct {
				name          string
				label         string
				kem, ct, priv []byte
				want          error
			}{
				{"flipped ciphertext", "Test", kem, flip(ct, 0), priv, ErrDecryption},
				{"flipped kem output", "Test", flip(kem, len(kem)-1), ct, priv, ErrDecryption},
				{"short kem output", "Test", kem[:len(kem)-1], ct, priv, ErrDecryption},
				{"empty kem output", "Test", nil, ct, priv, ErrDecryption},
				{"short ciphertext", "Test", kem, ct[:3], priv, ErrDecryption},
				{"wrong label", "Other", kem, ct, priv, ErrDecryption},
				{"short private key", "Test", kem, ct, priv[1:], ErrInvalidKey},
			}
			for _, b := range bad {
				if _, err := cs.DecryptWithLabel(b.priv, b.label, []byte("ctx"), b.kem, b.ct); !errors.Is(err, b.want) {
					t.Errorf("%s: got %v, want %v", b.name, err, b.want)
				}
			}
			for _, badPub := range [][]byte{nil, pub[1:], append(pub, 0)} {
				if _, _, err := cs.EncryptWithLabel(r, badPub, "Test", nil, nil); !errors.Is(err, ErrInvalidKey) {
					t.Errorf("encrypt to bad key %x: got %v, want ErrInvalidKey", badPub, err)
				}
			}
			// An all-zero key is the identity for X25519/X448 (all-zero shared
			// secret) and not a curve point for the NIST curves.
			if _, _, err := cs.EncryptWithLabel(r, make([]byte, len(pub)), "Test", nil, nil); err == nil {
				t.Errorf("encrypt to the all-zero key succeeded")
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x01
	return c
}
