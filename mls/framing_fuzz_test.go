package mls

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

// Fuzz targets for the framing decoders. Each asserts the round trip:
// whatever decodes re-encodes to the same bytes (fuzzRoundTrip, in
// codec_fuzz_test.go), and whatever does not decode fails with a
// *DecodeError.

// publicMessageSeeds are the PublicMessages of messages.json, without the
// MLSMessage header.
func publicMessageSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, field := range []string{"public_message_application", "public_message_proposal", "public_message_commit"} {
		seeds = append(seeds, messageSeeds(f, field, uint16(WireFormatPublicMessage))[:5]...)
	}
	return seeds
}

func FuzzPublicMessage(f *testing.F) {
	fuzzRoundTrip[PublicMessage](f, publicMessageSeeds(f))
}

func FuzzPrivateMessage(f *testing.F) {
	fuzzRoundTrip[PrivateMessage](f, messageSeeds(f, "private_message", uint16(WireFormatPrivateMessage))[:10])
}

func FuzzMLSMessage(f *testing.F) {
	var seeds [][]byte
	for _, field := range []string{
		"mls_welcome", "mls_group_info", "mls_key_package",
		"public_message_application", "public_message_proposal", "public_message_commit", "private_message",
	} {
		seeds = append(seeds, messageSeeds(f, field, 0)[:3]...)
	}
	fuzzRoundTrip[MLSMessage](f, seeds)
}

func FuzzFramedContent(f *testing.F) {
	var seeds [][]byte
	for _, b := range publicMessageSeeds(f) {
		var m PublicMessage
		if err := m.Unmarshal(b); err != nil {
			f.Fatal(err)
		}
		c, err := m.Content.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, c)
	}
	fuzzRoundTrip[FramedContent](f, seeds)
}

func FuzzAuthenticatedContent(f *testing.F) {
	var vs []transcriptVector
	loadVectors(f, "transcript-hashes.json", &vs)
	var seeds [][]byte
	for _, v := range vs {
		seeds = append(seeds, v.AuthenticatedContent)
	}
	fuzzRoundTrip[AuthenticatedContent](f, seeds)
}

func FuzzSenderData(f *testing.F) {
	fuzzRoundTrip[SenderData](f, [][]byte{
		make([]byte, 12),
		{0, 0, 0, 1, 0, 0, 0, 7, 1, 2, 3, 4},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	})
}

// FuzzPrivateMessageContent fuzzes the decoder of decrypted plaintexts: a
// plaintext that decodes must re-encode (body, auth, zero padding) to the
// same bytes; one that does not must fail with a decode error or
// ErrMalformedPadding.
func FuzzPrivateMessageContent(f *testing.F) {
	fx := newProtectFixture(f, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, &Config{Rand: seededReader(3)})
	for _, ct := range []ContentType{ContentTypeApplication, ContentTypeProposal, ContentTypeCommit} {
		f.Add(uint8(ct), fx.plaintext(f, ct, nil))
		f.Add(uint8(ct), fx.plaintext(f, ct, make([]byte, 7)))
	}
	f.Fuzz(func(t *testing.T, ct uint8, plaintext []byte) {
		if !ContentType(ct).valid() {
			return
		}
		ac := &AuthenticatedContent{WireFormat: WireFormatPrivateMessage, Content: FramedContent{ContentType: ContentType(ct)}}
		if err := decodePrivateMessageContent(plaintext, ac); err != nil {
			var de *DecodeError
			if !errors.As(err, &de) && !errors.Is(err, ErrMalformedPadding) {
				t.Fatalf("error %v is neither a *DecodeError nor ErrMalformedPadding", err)
			}
			return
		}
		var e Encoder
		ac.Content.marshalBody(&e)
		ac.Auth.marshal(&e, ac.Content.ContentType)
		out, err := e.Result()
		if err != nil {
			t.Fatalf("decoded content does not encode: %v", err)
		}
		out = append(out, make([]byte, len(plaintext)-len(out))...)
		if !bytes.Equal(out, plaintext) {
			t.Fatalf("round trip differs\n in %x\nout %x", plaintext, out)
		}
	})
}

// FuzzUnprotect feeds arbitrary MLSMessages to a group member's Protector:
// nothing may panic, and anything accepted must be a message the sender
// really sent (forging one would need the group's keys).
func FuzzUnprotect(f *testing.F) {
	fx := newProtectFixture(f, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, &Config{Rand: seededReader(4)})
	genuine := map[string]bool{}
	for _, ct := range []ContentType{ContentTypeApplication, ContentTypeProposal, ContentTypeCommit, ContentTypeApplication} {
		c, _ := fx.content(ct).Marshal()
		genuine[string(c)] = true
		b, err := NewPrivateMessage(fx.private(f, ct)).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	pub, err := fx.sender.ProtectPublic(fx.signed(f, WireFormatPublicMessage, ContentTypeProposal))
	if err != nil {
		f.Fatal(err)
	}
	b, err := NewPublicMessage(pub).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	var mu sync.Mutex
	f.Fuzz(func(t *testing.T, in []byte) {
		var m MLSMessage
		if err := m.Unmarshal(in); err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		var ac *AuthenticatedContent
		switch {
		case m.PrivateMessage != nil:
			ac, err = fx.receiver.UnprotectPrivate(m.PrivateMessage, fx.keys())
		case m.PublicMessage != nil:
			ac, err = fx.receiver.UnprotectPublic(m.PublicMessage, fx.keys())
		default:
			return
		}
		if err != nil {
			return
		}
		c, err := ac.Content.Marshal()
		if err != nil {
			t.Fatalf("accepted content does not encode: %v", err)
		}
		if !genuine[string(c)] {
			t.Fatalf("accepted content the sender never sent: %x", c)
		}
	})
}
