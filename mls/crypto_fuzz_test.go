package mls

import (
	"bytes"
	"errors"
	"testing"
)

// Fuzz targets for the cryptographic inputs a peer controls: KEM outputs,
// HPKE ciphertexts, signature keys and signatures. None may panic, and
// every rejection must carry the documented sentinel.

func FuzzDecryptWithLabel(f *testing.F) {
	type key struct{ priv, pub, kem, ct []byte }
	keys := make([]key, len(allSuites))
	for i, cs := range allSuites {
		r := newTestRand("fuzz hpke")
		priv, pub, err := cs.GenerateHPKEKeyPair(r)
		if err != nil {
			f.Fatal(err)
		}
		kem, ct, err := cs.EncryptWithLabel(r, pub, "Fuzz", nil, []byte("plaintext"))
		if err != nil {
			f.Fatal(err)
		}
		keys[i] = key{priv, pub, kem, ct}
		f.Add(uint8(i), kem, ct)
		f.Add(uint8(i), make([]byte, len(kem)), ct)
	}
	f.Fuzz(func(t *testing.T, suite uint8, kem, ct []byte) {
		i := int(suite) % len(allSuites)
		cs, k := allSuites[i], keys[i]
		pt, err := cs.DecryptWithLabel(k.priv, "Fuzz", nil, kem, ct)
		if err != nil {
			if !errors.Is(err, ErrDecryption) {
				t.Fatalf("suite %d: error %v is not ErrDecryption", cs, err)
			}
			return
		}
		if !bytes.Equal(pt, []byte("plaintext")) || !bytes.Equal(ct, k.ct) {
			t.Fatalf("suite %d: forged ciphertext accepted", cs)
		}
	})
}

func FuzzVerifyWithLabel(f *testing.F) {
	type key struct{ pub, sig []byte }
	keys := make([]key, len(allSuites))
	for i, cs := range allSuites {
		r := newTestRand("fuzz sig")
		priv, pub, err := cs.GenerateSignatureKeyPair(r)
		if err != nil {
			f.Fatal(err)
		}
		sig, err := cs.SignWithLabel(r, priv, "Fuzz", []byte("content"))
		if err != nil {
			f.Fatal(err)
		}
		keys[i] = key{pub, sig}
		f.Add(uint8(i), pub, sig)
	}
	f.Fuzz(func(t *testing.T, suite uint8, pub, sig []byte) {
		i := int(suite) % len(allSuites)
		cs := allSuites[i]
		err := cs.VerifyWithLabel(pub, "Fuzz", []byte("content"), sig)
		if err != nil {
			if !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("suite %d: error %v is not ErrInvalidSignature", cs, err)
			}
			return
		}
		if !bytes.Equal(pub, keys[i].pub) {
			t.Fatalf("suite %d: signature accepted under a key that never signed", cs)
		}
	})
}
