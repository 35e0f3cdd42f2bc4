package api

import (
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/conclave-im/conclave/identity"
)

func TestContacts(t *testing.T) {
	f := serve(t, startNode(t))
	ctx := ctxT(t)
	other, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	peer := other.PeerID()
	want := identity.NewSafetyCode(f.node.Identity(), other.ID()).String()

	added, err := f.client.AddContact(ctx, peer, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if added.PeerID != peer || added.Name != "bob" || added.Verified || added.SafetyCode != want {
		t.Fatalf("added %+v, want bob unverified with code %q", added, want)
	}
	renamed, err := f.client.RenameContact(ctx, peer, "Bob B.")
	if err != nil || renamed.Name != "Bob B." {
		t.Fatalf("rename: %+v, %v", renamed, err)
	}

	// A wrong code is refused and changes nothing; a malformed one is a bad request.
	wrong := []byte(strings.ReplaceAll(want, " ", ""))
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	cases := []struct {
		code   string
		status int
	}{
		{string(wrong), http.StatusConflict},
		{"12345", http.StatusBadRequest},
	}
	for _, tc := range cases {
		_, err := f.client.VerifyContact(ctx, peer, tc.code, "")
		var apiErr *Error
		if !errors.As(err, &apiErr) || apiErr.Status != tc.status {
			t.Fatalf("verify with %q: %v, want status %d", tc.code, err, tc.status)
		}
	}
	if c, err := f.client.Contact(ctx, peer); err != nil || c.Verified {
		t.Fatalf("after refused codes: %+v, %v; want still unverified", c, err)
	}

	verified, err := f.client.VerifyContact(ctx, peer, want, "")
	if err != nil {
		t.Fatal(err)
	}
	if !verified.Verified || verified.VerifiedAt == nil || verified.Name != "Bob B." {
		t.Fatalf("verified %+v, want verified with the name kept", verified)
	}
	list, err := f.client.Contacts(ctx)
	if err != nil || len(list) != 1 || !list[0].Verified {
		t.Fatalf("list %+v, %v", list, err)
	}

	// Unknown and malformed peers.
	stranger, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var apiErr *Error
	if _, err := f.client.Contact(ctx, stranger.PeerID()); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("unknown contact: %v, want 404", err)
	}
	if _, err := f.client.AddContact(ctx, "not-a-peer", "x"); !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Fatalf("malformed peer: %v, want 400", err)
	}
}
