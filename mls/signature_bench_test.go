package mls

import (
	"fmt"
	"testing"

	"github.com/cloudflare/circl/sign/ed25519"
)

// benchContent is the size of a typical FramedContentTBS of a short
// application message.
var benchContent = make([]byte, 300)

func BenchmarkSignWithLabel(b *testing.B) {
	for _, cs := range allSuites {
		b.Run(fmt.Sprintf("suite=%d", cs), func(b *testing.B) {
			priv, _, err := cs.GenerateSignatureKeyPair(newTestRand("bench"))
			if err != nil {
				b.Fatal(err)
			}
			s, err := cs.NewSigner(priv)
			if err != nil {
				b.Fatal(err)
			}
			r := newTestRand("sig")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.SignWithLabel(r, "FramedContentTBS", benchContent); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignWithLabelFromBytes signs with the private key as bytes,
// paying for parsing it (and for EdDSA deriving the public key) each time.
func BenchmarkSignWithLabelFromBytes(b *testing.B) {
	for _, cs := range allSuites[:3] {
		b.Run(fmt.Sprintf("suite=%d", cs), func(b *testing.B) {
			priv, _, err := cs.GenerateSignatureKeyPair(newTestRand("bench"))
			if err != nil {
				b.Fatal(err)
			}
			r := newTestRand("sig")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cs.SignWithLabel(r, priv, "FramedContentTBS", benchContent); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyWithLabel(b *testing.B) {
	for _, cs := range allSuites {
		b.Run(fmt.Sprintf("suite=%d", cs), func(b *testing.B) {
			priv, pub, err := cs.GenerateSignatureKeyPair(newTestRand("bench"))
			if err != nil {
				b.Fatal(err)
			}
			sig, err := cs.SignWithLabel(newTestRand("sig"), priv, "FramedContentTBS", benchContent)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := cs.VerifyWithLabel(pub, "FramedContentTBS", benchContent, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEd25519 measures one raw Ed25519 signature and verification of
// the same content, without MLS labels, as the reference for the cost of
// message protection.
func BenchmarkEd25519(b *testing.B) {
	seed := make([]byte, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(priv, benchContent)
	b.Run("Sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ed25519.Sign(priv, benchContent)
		}
	})
	b.Run("Verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !ed25519.Verify(pub, benchContent, sig) {
				b.Fatal("verify failed")
			}
		}
	})
}

func BenchmarkExpandWithLabel(b *testing.B) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	secret := make([]byte, cs.HashSize())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cs.DeriveTreeSecret(secret, "key", 7, cs.AEADKeySize()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealOpen256(b *testing.B) {
	for _, cs := range allSuites[:3] {
		b.Run(fmt.Sprintf("suite=%d", cs), func(b *testing.B) {
			key := make([]byte, cs.AEADKeySize())
			nonce := make([]byte, cs.AEADNonceSize())
			pt := make([]byte, 256)
			b.ReportAllocs()
			for b.Loop() {
				ct, err := cs.Seal(key, nonce, nil, pt)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := cs.Open(key, nonce, nil, ct); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
