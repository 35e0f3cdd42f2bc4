package node

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/conclave-im/conclave/datastore"
)

// TestSafetyCodes: both sides compute the same code; a matching code marks
// the contact verified (also in group member lists), a wrong one changes
// nothing.
func TestSafetyCodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := startNode(t, testOptions("")), startNode(t, testOptions(""))
	ab, err := a.SafetyCode(b.ID())
	if err != nil {
		t.Fatal(err)
	}
	ba, err := b.SafetyCode(a.ID())
	if err != nil {
		t.Fatal(err)
	}
	if ab != ba {
		t.Fatalf("codes differ: %q vs %q", ab, ba)
	}
	wrong := []byte(strings.ReplaceAll(ab, " ", ""))
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	if err := a.VerifyContact(ctx, b.ID(), "bob", string(wrong)); !errors.Is(err, ErrSafetyCodeMismatch) {
		t.Fatalf("wrong code: %v", err)
	}
	if v, err := a.ContactVerification(ctx, b.ID()); err != nil || v != datastore.Unverified {
		t.Fatalf("after a wrong code: %v, %v", v, err)
	}
	if err := a.VerifyContact(ctx, b.ID(), "bob", ba); err != nil {
		t.Fatal(err)
	}
	if v, err := a.ContactVerification(ctx, b.ID()); err != nil || v != datastore.Verified {
		t.Fatalf("after the right code: %v, %v", v, err)
	}

	connectAll(t, ctx, a, b)
	gid := formGroup(t, ctx, a, b)
	st, err := a.Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Members {
		want := datastore.Unverified
		if m.PeerID == b.ID() {
			want = datastore.Verified
		}
		if m.Verification != want {
			t.Errorf("member %s: verification %v, want %v", m.PeerID, m.Verification, want)
		}
	}
}
