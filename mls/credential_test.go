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
