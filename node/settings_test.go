package node

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/conclave-im/conclave/mls"
	"github.com/conclave-im/conclave/profile"
)

func TestSettingsCodec(t *testing.T) {
	good := []GroupSettings{
		{},
		{Name: "book club"},
		{Topic: "only a topic"},
		{Name: "Ünïcødé 🎉", Topic: "résumé"},
		{Name: strings.Repeat("n", MaxGroupNameLen), Topic: strings.Repeat("t", MaxGroupTopicLen)},
	}
	for _, s := range good {
		b, err := s.marshal()
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		got, err := parseSettings(b)
		if err != nil || got != s {
			t.Fatalf("%+v: round trip gave %+v, %v", s, got, err)
		}
		again, _ := got.marshal()
		if !bytes.Equal(again, b) {
			t.Fatalf("%+v: re-encoding differs", s)
		}
	}
	okBytes, _ := GroupSettings{Name: "ab", Topic: "c"}.marshal()
	bad := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", []byte{1, 0, 0}},
		{"unknown version", append([]byte{2}, okBytes[1:]...)},
		{"name longer than its bytes", []byte{1, 9, 'a', 0, 0}},
		{"trailing byte", append(bytes.Clone(okBytes), 0)},
		{"truncated topic", okBytes[:len(okBytes)-1]},
		{"name too long", append(append([]byte{1, 65}, strings.Repeat("n", 65)...), 0, 0)},
		{"topic too long", append([]byte{1, 0, 1, 1}, strings.Repeat("t", 257)...)},
		{"name not UTF-8", []byte{1, 1, 0xff, 0, 0}},
		{"newline in name", []byte{1, 2, 'a', '\n', 0, 0}},
		{"control character in topic", []byte{1, 0, 0, 1, 0x07}},
	}
	for _, tt := range bad {
		if s, err := parseSettings(tt.b); !errors.Is(err, ErrInvalidSettings) {
			t.Errorf("%s: parsed as %+v, %v", tt.name, s, err)
		}
	}
	for _, s := range []GroupSettings{{Name: strings.Repeat("n", 65)}, {Topic: "a\x00b"}, {Name: "\xc3"}} {
		if _, err := s.marshal(); !errors.Is(err, ErrInvalidSettings) {
			t.Errorf("%+v encoded: %v", s, err)
		}
	}
}

// FuzzSettings: whatever parses re-encodes to the same bytes, and is valid.
func FuzzSettings(f *testing.F) {
	for _, s := range []GroupSettings{{}, {Name: "x"}, {Name: "book club", Topic: "Tuesdays"}} {
		b, _ := s.marshal()
		f.Add(b)
	}
	f.Add([]byte{1, 2, 'a', '\n', 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSettings(b)
		if err != nil {
			return
		}
		if err := s.validate(); err != nil {
			t.Fatalf("parsed invalid settings %+v: %v", s, err)
		}
		again, err := s.marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x -> %+v -> %x (%v)", b, s, again, err)
		}
	})
}

func TestSettingsChangeRules(t *testing.T) {
	rc := mls.Extension{Type: mls.ExtensionTypeRequiredCapabilities, Data: []byte{0, 0, 0}}
	named, _ := withSettings(mls.Extensions{rc}, GroupSettings{Name: "a"})
	renamed, _ := withSettings(named, GroupSettings{Name: "b", Topic: "t"})
	cleared, _ := withSettings(renamed, GroupSettings{})
	if len(cleared) != 1 || cleared[0].Type != rc.Type {
		t.Fatalf("clearing the settings left %v", cleared)
	}
	malformed := mls.Extensions{rc, {Type: profile.ExtensionTypeGroupSettings, Data: []byte{1, 1, '\n', 0, 0}}}
	tests := []struct {
		name      string
		cur, next mls.Extensions
		ok        bool
	}{
		{"name set", mls.Extensions{rc}, named, true},
		{"renamed", named, renamed, true},
		{"cleared", renamed, cleared, true},
		{"nothing changes", named, named, true},
		{"malformed settings", named, malformed, false},
		{"required capabilities dropped", named, named[1:], false},
		{"another extension added", named, append(mls.Extensions{{Type: 0xF0F0, Data: nil}}, named...), false},
	}
	for _, tt := range tests {
		err := checkSettingsChange(tt.cur, tt.next)
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if got := settingsOf(renamed); got != (GroupSettings{Name: "b", Topic: "t"}) {
		t.Errorf("settingsOf = %+v", got)
	}
}

// TestSettings: a group created with a name shows it to a member who
// joins later; a rename and a new topic by another member are decided
// through consensus, seen by everyone and recorded in the history; a
// Commit carrying a malformed settings extension is refused by a member
// asked to vote for it.
func TestSettings(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	a, b, c := startNode(t, testOptions("")), startNode(t, testOptions("")), startNode(t, testOptions(""))
	connectAll(t, ctx, a, b, c)

	if _, err := a.CreateGroup(ctx, WithName("bad\nname")); !errors.Is(err, ErrInvalidSettings) {
		t.Fatalf("created a group with a newline in its name: %v", err)
	}
	gid, err := a.CreateGroup(ctx, WithName("book club"), WithTopic("Tuesdays"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []*testNode{b, c} {
		if err := a.Invite(ctx, gid, o.ID()); err != nil {
			t.Fatal(err)
		}
		waitJoined(t, ctx, o, gid)
	}
	waitEpoch(t, ctx, b, gid, 2)
	for _, n := range []*testNode{a, b, c} {
		requireSettings(t, ctx, n, gid, GroupSettings{Name: "book club", Topic: "Tuesdays"})
	}
	waitTopicPeers(t, ctx, gid, a, b, c)

	// b renames, keeping the topic; then c changes only the topic.
	name := "reading group"
	if err := b.UpdateGroupSettings(ctx, gid, SettingsUpdate{Name: &name}); err != nil {
		t.Fatalf("rename: %v", err)
	}
	for _, n := range []*testNode{a, c} {
		waitEpoch(t, ctx, n, gid, 3)
	}
	requireConverged(t, ctx, gid, 3, a, b, c)
	for _, n := range []*testNode{a, b, c} {
		requireSettings(t, ctx, n, gid, GroupSettings{Name: "reading group", Topic: "Tuesdays"})
		waitInHistory(t, ctx, n, gid, b.ID()+` renamed the group to "reading group"`)
	}
	if err := c.SetGroupSettings(ctx, gid, "reading group", "Thursdays now"); err != nil {
		t.Fatalf("topic: %v", err)
	}
	for _, n := range []*testNode{a, b} {
		waitEpoch(t, ctx, n, gid, 4)
	}
	for _, n := range []*testNode{a, b, c} {
		requireSettings(t, ctx, n, gid, GroupSettings{Name: "reading group", Topic: "Thursdays now"})
		waitInHistory(t, ctx, n, gid, c.ID()+` set the topic to "Thursdays now"`)
	}
	// Setting what is already set commits nothing.
	if err := a.SetGroupSettings(ctx, gid, "reading group", "Thursdays now"); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.Group(ctx, gid); st.Epoch != 4 {
		t.Fatalf("a no-op settings change moved the group to epoch %d", st.Epoch)
	}
	long := strings.Repeat("x", MaxGroupNameLen+1)
	if err := a.UpdateGroupSettings(ctx, gid, SettingsUpdate{Name: &long}); !errors.Is(err, ErrInvalidSettings) {
		t.Fatalf("a name of %d bytes: %v", len(long), err)
	}

	// a prepares a Commit whose settings extension does not parse (its own
	// mls accepts any extension data) and hands the consensus value to b's
	// validator, as a Prepare would.
	value, err := call(ctx, a.Node, func() ([]byte, error) {
		g := a.st.groups[string(gid)]
		exts := g.mls.Extensions()
		for i := range exts {
			if exts[i].Type == profile.ExtensionTypeGroupSettings {
				exts[i].Data = []byte{1, 3, 'b', '\n', 'd', 0, 0}
			}
		}
		_, v, err := a.prepareCommit(g, []mls.Proposal{{Type: mls.ProposalTypeGroupContextExtensions, Extensions: exts}})
		g.mls.DiscardPending()
		return v, err
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = call(ctx, b.Node, func() (struct{}, error) {
		g := b.st.groups[string(gid)]
		return struct{}{}, b.validateValue(g, g.cur, value)
	})
	if !errors.Is(err, ErrInvalidSettings) {
		t.Fatalf("b would vote for a malformed settings extension: %v", err)
	}
	requireSettings(t, ctx, b, gid, GroupSettings{Name: "reading group", Topic: "Thursdays now"})
}

func requireSettings(t *testing.T, ctx context.Context, n *testNode, gid []byte, want GroupSettings) {
	t.Helper()
	st, err := n.Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	if got := (GroupSettings{Name: st.Name, Topic: st.Topic}); got != want {
		t.Fatalf("%s sees settings %+v, want %+v", n.ID(), got, want)
	}
}

// TestSettingsConcurrent: two members change different settings at the
// same moment. Consensus decides one Commit; the other member's change is
// rebuilt on the winner's context and committed next, so both changes
// hold and neither undoes the other.
func TestSettingsConcurrent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	a, b := startNode(t, testOptions("")), startNode(t, testOptions(""))
	connectAll(t, ctx, a, b)
	gid := formGroup(t, ctx, a, b)
	waitTopicPeers(t, ctx, gid, a, b)

	name, topic := "new name", "new topic"
	errs := make(chan error, 2)
	go func() { errs <- a.UpdateGroupSettings(ctx, gid, SettingsUpdate{Name: &name}) }()
	go func() { errs <- b.UpdateGroupSettings(ctx, gid, SettingsUpdate{Topic: &topic}) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitEpoch(t, ctx, a, gid, 3)
	waitEpoch(t, ctx, b, gid, 3)
	requireConverged(t, ctx, gid, 3, a, b)
	for _, n := range []*testNode{a, b} {
		requireSettings(t, ctx, n, gid, GroupSettings{Name: name, Topic: topic})
	}
}
