package api

import (
	"errors"
	"strings"
	"testing"
)

// TestGroupSettings: a group created with a name and topic shows them; a
// rename through the settings endpoint keeps the topic; bad settings are
// refused with 400 and change nothing.
func TestGroupSettings(t *testing.T) {
	f := serve(t, startNode(t))
	ctx := ctxT(t)
	id, err := f.client.CreateNamedGroup(ctx, "book club", "Tuesdays")
	if err != nil {
		t.Fatal(err)
	}
	g, err := f.client.Group(ctx, id)
	if err != nil || g.Name != "book club" || g.Topic != "Tuesdays" {
		t.Fatalf("created group %+v, %v", g, err)
	}
	name := "reading group"
	g, err = f.client.UpdateGroupSettings(ctx, id[:8], SettingsRequest{Name: &name})
	if err != nil || g.Name != name || g.Topic != "Tuesdays" || g.Epoch != 1 {
		t.Fatalf("after rename: %+v, %v", g, err)
	}
	empty := ""
	g, err = f.client.UpdateGroupSettings(ctx, id, SettingsRequest{Topic: &empty})
	if err != nil || g.Name != name || g.Topic != "" {
		t.Fatalf("after clearing the topic: %+v, %v", g, err)
	}
	long := strings.Repeat("x", 65)
	bad := []SettingsRequest{{}, {Name: &long}, {Topic: settingText("two\nlines")}}
	for _, req := range bad {
		var ae *Error
		if _, err := f.client.UpdateGroupSettings(ctx, id, req); !errors.As(err, &ae) || ae.Status != 400 {
			t.Errorf("settings %+v: %v", req, err)
		}
	}
	if _, err := f.client.CreateNamedGroup(ctx, long, ""); err == nil {
		t.Error("created a group with a 65-byte name")
	}
	gs, err := f.client.Groups(ctx)
	if err != nil || len(gs) != 1 || gs[0].Name != name {
		t.Fatalf("groups: %+v, %v", gs, err)
	}
	if plain, err := f.client.CreateGroup(ctx); err != nil {
		t.Fatal(err)
	} else if g, _ := f.client.Group(ctx, plain); g.Name != "" || g.Topic != "" {
		t.Fatalf("a group created without settings has %q / %q", g.Name, g.Topic)
	}
}

func settingText(s string) *string { return &s }
