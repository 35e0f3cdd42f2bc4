package mls

import (
	"bytes"
	"testing"
)

// cpuTimer reports the process CPU time per operation of a benchmark as the
// "cpu-ns/op" metric (see processCPUTime).
type cpuTimer struct{ start int64 }

func startCPUTimer() cpuTimer { return cpuTimer{processCPUTime()} }

func (c cpuTimer) report(b *testing.B) {
	if b.N > 0 {
		b.ReportMetric(float64(processCPUTime()-c.start)/float64(b.N), "cpu-ns/op")
	}
}

// benchSuites are the suites the PrivateMessage benchmarks cover.
var benchSuites = []CipherSuite{
	MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
	MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
	MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
}

// benchAppContent is a 256-byte application message from leaf 1.
func (f *protectFixture) benchAppContent() *FramedContent {
	return &FramedContent{
		GroupID:         f.gc.GroupID,
		Epoch:           f.gc.Epoch,
		Sender:          MemberSender(1),
		ContentType:     ContentTypeApplication,
		ApplicationData: bytes.Repeat([]byte{0x5a}, 256),
	}
}

// BenchmarkPrivateMessageEncrypt measures what a sender pays per 256-byte
// application message: sign, pad, ratchet step, encrypt content and sender
// data.
func BenchmarkPrivateMessageEncrypt(b *testing.B) {
	for _, cs := range benchSuites {
		b.Run(cs.String(), func(b *testing.B) {
			f := newProtectFixture(b, cs, &Config{Rand: seededReader(1)})
			content := f.benchAppContent()
			b.ReportAllocs()
			cpu := startCPUTimer()
			for b.Loop() {
				ac, err := f.sender.Sign(f.signer, WireFormatPrivateMessage, content)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.sender.ProtectPrivate(ac); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
	}
}

// BenchmarkPrivateMessageDecrypt measures what a receiver pays per 256-byte
// application message: sender data, ratchet step, content decryption,
// padding check and signature verification.
func BenchmarkPrivateMessageDecrypt(b *testing.B) {
	for _, cs := range benchSuites {
		b.Run(cs.String(), func(b *testing.B) {
			f := newProtectFixture(b, cs, &Config{Rand: seededReader(1)})
			content := f.benchAppContent()
			msgs := make([]*PrivateMessage, b.N)
			for i := range msgs {
				ac, err := f.sender.Sign(f.signer, WireFormatPrivateMessage, content)
				if err != nil {
					b.Fatal(err)
				}
				if msgs[i], err = f.sender.ProtectPrivate(ac); err != nil {
					b.Fatal(err)
				}
			}
			keys := f.keys()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPUTimer()
			for i := 0; i < b.N; i++ {
				if _, err := f.receiver.UnprotectPrivate(msgs[i], keys); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
	}
}

// BenchmarkPrivateMessageRoundTrip measures encrypt plus decrypt of one
// 256-byte application message next to its reference: the signature work
// alone (SignWithLabel and VerifyWithLabel over the same FramedContentTBS).
// The ratio of the two is the cost of everything but the signatures; the
// goal for suite 1 is at most 1.25.
func BenchmarkPrivateMessageRoundTrip(b *testing.B) {
	for _, cs := range benchSuites {
		f := newProtectFixture(b, cs, &Config{Rand: seededReader(1)})
		content := f.benchAppContent()
		keys := f.keys()
		b.Run(cs.String()+"/encrypt+decrypt", func(b *testing.B) {
			b.ReportAllocs()
			cpu := startCPUTimer()
			for b.Loop() {
				ac, err := f.sender.Sign(f.signer, WireFormatPrivateMessage, content)
				if err != nil {
					b.Fatal(err)
				}
				pm, err := f.sender.ProtectPrivate(ac)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.receiver.UnprotectPrivate(pm, keys); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
		b.Run(cs.String()+"/sign+verify-reference", func(b *testing.B) {
			var e Encoder
			framedContentTBS(&e, WireFormatPrivateMessage, content, f.sender.GroupContext())
			tbs := e.Bytes()
			b.ReportAllocs()
			cpu := startCPUTimer()
			for b.Loop() {
				sig, err := f.signer.SignWithLabel(nil, signatureLabel, tbs)
				if err != nil {
					b.Fatal(err)
				}
				if err := cs.VerifyWithLabel(f.pub, signatureLabel, tbs, sig); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
	}
}
