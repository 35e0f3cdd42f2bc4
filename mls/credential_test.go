package mls

import (
	"bytes"
	"testing"
)

func TestPrivateUseCredentialRoundTrip(t *testing.T) {
	for _, typ := range []CredentialType{0xF000, 0xF0C1, 0xFFFF} {
		in := Credential{Type: typ, Identity: []byte("application-defined body")}
		b, err := in.Marshal()
		if err != nil {
			t.Fatalf("%#04x: marshal: %v", uint16(typ), err)
		}
		var out Credential
		if err := out.Unmarshal(b); err != nil {
			t.Fatalf("%#04x: unmarshal: %v", uint16(typ), err)
		}
		if out.Type != typ || !bytes.Equal(out.Identity, in.Identity) {
			t.Fatalf("%#04x: round trip gave %+v", uint16(typ), out)
		}
		if !typ.IsPrivateUse() {
			t.Fatalf("%#04x not reported as private use", uint16(typ))
		}
	}
	if CredentialType(0xEFFF).IsPrivateUse() || CredentialTypeBasic.IsPrivateUse() {
		t.Fatal("types outside 0xF000-0xFFFF reported as private use")
	}
}

func TestNewSignerAcceptsShortECDSAScalar(t *testing.T) {
	cs := MLS_256_DHKEMP521_AES256GCM_SHA512_P521
	// A scalar whose leading byte is zero, serialized without it.
	full := make([]byte, 66)
	full[20] = 7
	full[65] = 1
	long, err := cs.NewSigner(full)
	if err != nil {
		t.Fatalf("66-byte key: %v", err)
	}
	short, err := cs.NewSigner(full[1:])
	if err != nil {
		t.Fatalf("65-byte key: %v", err)
	}
	if !bytes.Equal(long.Public(), short.Public()) {
		t.Fatal("short and full-length encodings of one scalar give different public keys")
	}
	if _, err := cs.NewSigner(append(full, 0)); err == nil {
		t.Fatal("67-byte key accepted")
	}
	if _, err := cs.NewSigner(nil); err == nil {
		t.Fatal("empty key accepted")
	}
}
