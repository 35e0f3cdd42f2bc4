package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/mls"
	"github.com/conclave-im/conclave/profile"
)

// GroupSettings are a group's name and topic. They live in the group
// context (extension profile.ExtensionTypeGroupSettings), so every member
// sees the same values, and every change is a Commit decided through
// consensus like a membership change.
type GroupSettings struct {
	Name  string
	Topic string
}

// Bounds of the settings, in bytes of UTF-8.
const (
	MaxGroupNameLen  = 64
	MaxGroupTopicLen = 256
)

// ErrInvalidSettings reports a group name or topic the node refuses: too
// long, not UTF-8, or with control characters.
var ErrInvalidSettings = errors.New("node: invalid group settings")

// The group settings extension data:
//
//	struct {
//	    uint8  version = 1;
//	    opaque name<u8>;    // UTF-8, at most 64 bytes, no control characters
//	    opaque topic<u16>;  // UTF-8, at most 256 bytes, no control characters
//	} GroupSettings;
//
// A group without a name and topic carries no extension at all. A later
// version may append fields; this one refuses what it cannot read, so a
// member never votes for settings it would show wrongly.
const settingsVersion = 1

func (s GroupSettings) validate() error {
	if err := checkSettingText("name", s.Name, MaxGroupNameLen); err != nil {
		return err
	}
	return checkSettingText("topic", s.Topic, MaxGroupTopicLen)
}

func checkSettingText(what, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrInvalidSettings, what, len(v), max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not UTF-8", ErrInvalidSettings, what)
	}
	if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
		return fmt.Errorf("%w: %s has a control character at byte %d", ErrInvalidSettings, what, i)
	}
	return nil
}

func (s GroupSettings) marshal() ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 4+len(s.Name)+len(s.Topic))
	b = append(b, settingsVersion, byte(len(s.Name)))
	b = append(b, s.Name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.Topic)))
	return append(b, s.Topic...), nil
}

func parseSettings(b []byte) (GroupSettings, error) {
	if len(b) < 4 {
		return GroupSettings{}, fmt.Errorf("%w: %d bytes", ErrInvalidSettings, len(b))
	}
	if b[0] != settingsVersion {
		return GroupSettings{}, fmt.Errorf("%w: version %d", ErrInvalidSettings, b[0])
	}
	nl := int(b[1])
	if len(b) < 2+nl+2 {
		return GroupSettings{}, fmt.Errorf("%w: truncated name", ErrInvalidSettings)
	}
	s := GroupSettings{Name: string(b[2 : 2+nl])}
	b = b[2+nl:]
	tl := int(binary.BigEndian.Uint16(b))
	if len(b) != 2+tl {
		return GroupSettings{}, fmt.Errorf("%w: topic of %d bytes in %d", ErrInvalidSettings, tl, len(b)-2)
	}
	s.Topic = string(b[2:])
	if err := s.validate(); err != nil {
		return GroupSettings{}, err
	}
	return s, nil
}

// settingsOf returns the settings in a group context. A malformed
// extension never gets there (checkSettingsProposals), so it reads as none.
func settingsOf(exts mls.Extensions) GroupSettings {
	e, ok := exts.Find(profile.ExtensionTypeGroupSettings)
	if !ok {
		return GroupSettings{}
	}
	s, err := parseSettings(e.Data)
	if err != nil {
		return GroupSettings{}
	}
	return s
}

// withSettings returns exts with the settings extension set to s (in
// place, or appended), or removed when s is empty.
func withSettings(exts mls.Extensions, s GroupSettings) (mls.Extensions, error) {
	out := slices.Clone(exts)
	i := slices.IndexFunc(out, func(e mls.Extension) bool { return e.Type == profile.ExtensionTypeGroupSettings })
	if s == (GroupSettings{}) {
		if i >= 0 {
			out = slices.Delete(out, i, i+1)
		}
		return out, nil
	}
	data, err := s.marshal()
	if err != nil {
		return nil, err
	}
	if i >= 0 {
		out[i] = mls.Extension{Type: profile.ExtensionTypeGroupSettings, Data: data}
	} else {
		out = append(out, mls.Extension{Type: profile.ExtensionTypeGroupSettings, Data: data})
	}
	return out, nil
}

// GroupOption configures a group at creation.
type GroupOption func(*GroupSettings)

// WithName gives a new group a name.
func WithName(name string) GroupOption { return func(s *GroupSettings) { s.Name = name } }

// WithTopic gives a new group a topic.
func WithTopic(topic string) GroupOption { return func(s *GroupSettings) { s.Topic = topic } }

// creationExtensions returns the settings extension a new group starts
// with (none for a group without a name or topic), or an
// ErrInvalidSettings error.
func creationExtensions(opts []GroupOption) (mls.Extensions, error) {
	var s GroupSettings
	for _, o := range opts {
		o(&s)
	}
	return withSettings(nil, s)
}

// SettingsUpdate changes some of a group's settings; a nil field stays as
// it is, an empty string clears it.
type SettingsUpdate struct {
	Name  *string
	Topic *string
}

func (u SettingsUpdate) apply(s GroupSettings) GroupSettings {
	if u.Name != nil {
		s.Name = *u.Name
	}
	if u.Topic != nil {
		s.Topic = *u.Topic
	}
	return s
}

func (u SettingsUpdate) desc() string {
	var parts []string
	if u.Name != nil {
		parts = append(parts, fmt.Sprintf("rename the group to %q", *u.Name))
	}
	if u.Topic != nil {
		parts = append(parts, fmt.Sprintf("set the topic to %q", *u.Topic))
	}
	return strings.Join(parts, ", ")
}

// SetGroupSettings sets a group's name and topic (empty clears them)
// through a Commit decided by the group; it returns once the change is
// part of the group.
func (n *Node) SetGroupSettings(ctx context.Context, groupID []byte, name, topic string) error {
	return n.UpdateGroupSettings(ctx, groupID, SettingsUpdate{Name: &name, Topic: &topic})
}

// UpdateGroupSettings changes the settings u names through a Commit
// decided by the group. If another Commit wins the epoch first, the change
// is made again on top of it (a concurrent change of the same field by
// another member is then overwritten: the last decided one wins). It
// returns once the change is part of the group, at once if there is
// nothing to change.
func (n *Node) UpdateGroupSettings(ctx context.Context, groupID []byte, u SettingsUpdate) error {
	if u.Name == nil && u.Topic == nil {
		return fmt.Errorf("%w: nothing to change", ErrInvalidSettings)
	}
	if err := u.apply(GroupSettings{}).validate(); err != nil {
		return err
	}
	o := &op{desc: u.desc(), done: make(chan error, 1)}
	_, err := call(ctx, n, func() (struct{}, error) {
		g, err := n.activeGroup(groupID)
		if err != nil {
			return struct{}{}, err
		}
		f := n.facts(g)
		change, err := settingsProposals(g, u)
		if err != nil {
			return struct{}{}, fmt.Errorf("node: %s: %w", o.desc, err)
		}
		if change == nil {
			o.finish(nil)
			return struct{}{}, nil
		}
		o.proposals = change
		if f.settingsOps == nil {
			f.settingsOps = make(map[*op]SettingsUpdate)
		}
		f.settingsOps[o] = u
		g.ops = append(g.ops, o)
		n.tryCommit(g)
		return struct{}{}, nil
	})
	if err != nil {
		return err
	}
	return waitOp(ctx, n, o)
}

// settingsProposals returns the GroupContextExtensions proposal that
// applies u to g's current context, or nil if u changes nothing.
func settingsProposals(g *group, u SettingsUpdate) ([]mls.Proposal, error) {
	cur := g.mls.Extensions()
	next, err := withSettings(cur, u.apply(settingsOf(cur)))
	if err != nil {
		return nil, err
	}
	if extensionsEqual(cur, next) {
		return nil, nil
	}
	return []mls.Proposal{{Type: mls.ProposalTypeGroupContextExtensions, Extensions: next}}, nil
}

// refitSettingsOps rebuilds this node's queued settings changes against
// the new epoch's context after a decision, so that a change carried over
// from a losing Commit does not undo what the winner changed, and drops
// those that are in force already.
func (n *Node) refitSettingsOps(g *group, f *memberFacts) {
	for o, u := range f.settingsOps {
		i := slices.Index(g.ops, o)
		if i < 0 {
			if g.active != o {
				delete(f.settingsOps, o) // finished
			}
			continue
		}
		props, err := settingsProposals(g, u)
		if err != nil || props == nil {
			g.ops = slices.Delete(g.ops, i, i+1)
			delete(f.settingsOps, o)
			o.finish(err)
			continue
		}
		o.proposals = props
	}
}

// checkSettingsProposals is checkCommit's rule for GroupContextExtensions
// proposals: they may change only the group settings extension, and only
// to well-formed settings.
func (n *Node) checkSettingsProposals(g *group, props []mls.Proposal) error {
	// The facts must know the settings before this Commit, to tell what
	// it changed once it is merged.
	n.facts(g)
	for _, p := range props {
		if p.Type != mls.ProposalTypeGroupContextExtensions {
			continue
		}
		if err := checkSettingsChange(g.mls.Extensions(), p.Extensions); err != nil {
			return err
		}
	}
	return nil
}

func checkSettingsChange(cur, next mls.Extensions) error {
	others := func(x mls.Extensions) mls.Extensions {
		return slices.DeleteFunc(slices.Clone(x), func(e mls.Extension) bool { return e.Type == profile.ExtensionTypeGroupSettings })
	}
	if !extensionsEqual(others(cur), others(next)) {
		return errors.New("node: a GroupContextExtensions proposal may change only the group settings")
	}
	if e, ok := next.Find(profile.ExtensionTypeGroupSettings); ok {
		if _, err := parseSettings(e.Data); err != nil {
			return err
		}
	}
	return nil
}

func extensionsEqual(a, b mls.Extensions) bool {
	return slices.EqualFunc(a, b, func(x, y mls.Extension) bool { return x.Type == y.Type && bytes.Equal(x.Data, y.Data) })
}

// noteSettingsChange writes a change of the group settings made by a
// merged Commit into the history, as an event naming the committer.
func (n *Node) noteSettingsChange(g *group, f *memberFacts, staged *mls.StagedCommit) {
	now := settingsOf(g.mls.Extensions())
	was := f.settings
	f.settings = now
	if now == was {
		return
	}
	who := "a member"
	if c := staged.Committer(); c.Type == mls.SenderTypeMember {
		if m, ok := g.mls.Member(c.LeafIndex); ok {
			who = n.memberName(g.mls.CipherSuite(), m)
		}
	}
	var parts []string
	switch {
	case now.Name == was.Name:
	case now.Name == "":
		parts = append(parts, "removed the group's name")
	default:
		parts = append(parts, fmt.Sprintf("renamed the group to %q", now.Name))
	}
	switch {
	case now.Topic == was.Topic:
	case now.Topic == "":
		parts = append(parts, "cleared the topic")
	default:
		parts = append(parts, fmt.Sprintf("set the topic to %q", now.Topic))
	}
	n.recordEvent(g, who, who+" "+strings.Join(parts, " and "))
}

// recordEvent writes an event the node observed into a group's history and
// shows it to subscribers.
func (n *Node) recordEvent(g *group, sender, text string) {
	c := Content{Type: ContentEvent, SentAt: n.clock.Now(), Body: []byte(text)}
	if _, err := io.ReadFull(n.rand, c.ID[:]); err != nil {
		n.log.Error("history event", "err", err)
		return
	}
	cb, err := c.Marshal()
	if err != nil {
		n.log.Error("history event", "err", err)
		return
	}
	epoch := g.mls.Epoch()
	h := []datastore.HistoryEntry{{MessageID: c.ID[:], Epoch: epoch, Sender: []byte(sender), SentAt: c.SentAt, ReceivedAt: c.SentAt, Body: cb}}
	if err := n.store.History().Append(n.ctx, g.id, h); err != nil {
		n.log.Error("history", "err", err)
		return
	}
	n.emit(MessageReceived{Message: Message{
		GroupID: bytes.Clone(g.id), Seq: h[0].Seq, ID: c.ID, Sender: sender, Epoch: epoch,
		SentAt: c.SentAt, ReceivedAt: c.SentAt, Type: ContentEvent, Text: text, Own: sender == n.ID(),
	}})
}

// groupSettings returns g's name and topic.
func (n *Node) groupSettings(g *group) (name, topic string) {
	s := settingsOf(g.mls.Extensions())
	return s.Name, s.Topic
}
