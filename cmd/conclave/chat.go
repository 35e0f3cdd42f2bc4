package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/conclave-im/conclave/api"
)

func (a *app) chatCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "chat [GROUP]",
		Short: "Interactive chat: groups, scrollback, live messages, invitations",
		Long: `Interactive chat in the terminal. Type a message and press Enter to send
it to the current group; Tab switches groups; Esc or Ctrl-C quits.

Your messages show ✓ once the daemon handed them to the members online,
and … with the reason while they wait (e.g. no member of the group is
online; the daemon sends them on its own when one is). Membership changes
you asked for and the group has not decided yet show as ⧗ lines, with what
they wait for (e.g. a majority of members to be online).

Slash commands:
  /invite PEER    invite a peer (by peer ID) to the current group
  /accept GROUP   accept a pending invitation
  /members        list the current group's members
  /verify         show the safety code to compare with each member
  /leave          leave the current group (another member commits the removal)`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErr("%s takes at most one GROUP", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			want := ""
			if len(args) == 1 {
				want = args[0]
			}
			m, err := newChatModel(ctx, c, want)
			if err != nil {
				return err
			}
			defer m.close()
			opts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithOutput(a.stdout)}
			if f, ok := a.stdin.(*os.File); ok {
				opts = append(opts, tea.WithInput(f))
			}
			_, err = tea.NewProgram(m, opts...).Run()
			if errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
}

// chatModel is the chat screen's state.
type chatModel struct {
	ctx    context.Context
	client *api.Client
	events *api.EventStream

	groups  []api.Group
	current int // index into groups; -1 without groups
	lines   []chatLine
	byID    map[string]int // message ID -> index into lines
	invites []api.Invitation

	input  string
	status string
	width  int
	height int
}

// chatLine is one line of the scrollback: a message or event from the
// history, or a note the chat itself wrote (a slash command's answer).
type chatLine struct {
	msg  api.Message
	note string
}

// Messages the model receives from its commands.
type (
	eventMsg   struct{ ev api.Event }
	streamEnd  struct{ err error }
	historyMsg struct {
		group string
		msgs  []api.Message
	}
	groupsMsg struct {
		groups  []api.Group
		invites []api.Invitation
	}
	statusMsg struct{ text string }
)

// chatHistory is the scrollback loaded when a group is opened.
const chatHistory = 200

func newChatModel(ctx context.Context, c *api.Client, want string) (*chatModel, error) {
	es, err := c.Events(ctx, "")
	if err != nil {
		return nil, err
	}
	m := &chatModel{ctx: ctx, client: c, events: es, current: -1, byID: map[string]int{}, width: 80, height: 24}
	gs, invs, err := m.load()
	if err != nil {
		es.Close()
		return nil, err
	}
	m.groups, m.invites = gs, invs
	for i, g := range gs {
		if g.Active && (m.current < 0 || (want != "" && strings.HasPrefix(g.ID, want))) {
			m.current = i
		}
	}
	if want != "" && (m.current < 0 || !strings.HasPrefix(gs[m.current].ID, want)) {
		es.Close()
		return nil, withCode(exitNotFound, fmt.Errorf("no group %s", want))
	}
	if m.current >= 0 {
		h, err := c.History(ctx, gs[m.current].ID, chatHistory)
		if err != nil {
			es.Close()
			return nil, err
		}
		m.mergeHistory(h)
	}
	return m, nil
}

func (m *chatModel) close() { m.events.Close() }

func (m *chatModel) load() ([]api.Group, []api.Invitation, error) {
	gs, err := m.client.Groups(m.ctx)
	if err != nil {
		return nil, nil, err
	}
	invs, err := m.client.Invitations(m.ctx)
	if err != nil {
		return nil, nil, err
	}
	return gs, invs, nil
}

// mergeHistory adds the history entries not on screen yet and refreshes the
// delivery state of those that are; notes stay where they are.
func (m *chatModel) mergeHistory(h []api.Message) {
	for _, x := range h {
		m.addMessage(x)
	}
}

// addMessage appends a message, or updates it if it is on screen already.
func (m *chatModel) addMessage(x api.Message) {
	if i, ok := m.byID[x.ID]; ok {
		m.lines[i].msg = x
		return
	}
	m.byID[x.ID] = len(m.lines)
	m.lines = append(m.lines, chatLine{msg: x})
}

// notef appends a note of the chat's own to the scrollback.
func (m *chatModel) notef(format string, args ...any) {
	m.lines = append(m.lines, chatLine{note: fmt.Sprintf(format, args...)})
}

func (m *chatModel) clearScrollback() {
	m.lines, m.byID = nil, map[string]int{}
}

func (m *chatModel) currentID() string {
	if m.current < 0 || m.current >= len(m.groups) {
		return ""
	}
	return m.groups[m.current].ID
}

// Init starts reading the event stream.
func (m *chatModel) Init() tea.Cmd { return m.nextEvent() }

func (m *chatModel) nextEvent() tea.Cmd {
	return func() tea.Msg {
		ev, err := m.events.Next()
		if err != nil {
			return streamEnd{err}
		}
		return eventMsg{ev}
	}
}

func (m *chatModel) reload() tea.Cmd {
	return func() tea.Msg {
		gs, invs, err := m.load()
		if err != nil {
			return statusMsg{"reload: " + err.Error()}
		}
		return groupsMsg{gs, invs}
	}
}

func (m *chatModel) loadHistory(group string) tea.Cmd {
	return func() tea.Msg {
		h, err := m.client.History(m.ctx, group, chatHistory)
		if err != nil {
			return statusMsg{"history: " + err.Error()}
		}
		return historyMsg{group, h}
	}
}

// Update handles keys, events from the daemon and command results.
func (m *chatModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tea.KeyPressMsg:
		return m, m.key(msg)
	case eventMsg:
		return m, tea.Batch(m.event(msg.ev), m.nextEvent())
	case streamEnd:
		m.status = "the daemon closed the event stream; quit and start conclave chat again"
		if msg.err != nil && !errors.Is(msg.err, io.EOF) {
			m.status += " (" + msg.err.Error() + ")"
		}
	case groupsMsg:
		cur := m.currentID()
		m.groups, m.invites = msg.groups, msg.invites
		m.current = -1
		for i, g := range m.groups {
			if g.ID == cur || (cur == "" && g.Active && m.current < 0) {
				m.current = i
			}
		}
		if cur == "" && m.current >= 0 {
			return m, m.loadHistory(m.currentID())
		}
	case historyMsg:
		if msg.group == m.currentID() {
			m.mergeHistory(msg.msgs)
		}
	case statusMsg:
		m.status = msg.text
	}
	return m, nil
}

func (m *chatModel) event(ev api.Event) tea.Cmd {
	switch ev.Type {
	case api.EventMessage:
		if ev.Message == nil {
			return nil
		}
		if ev.GroupID == m.currentID() {
			m.addMessage(*ev.Message)
		} else {
			m.status = "new message in " + short(ev.GroupID) + " (Tab switches groups)"
		}
	case api.EventMessageState:
		if i, ok := m.byID[ev.MessageID]; ok && ev.GroupID == m.currentID() {
			m.lines[i].msg.State, m.lines[i].msg.Waiting = ev.State, ev.Waiting
		}
	case api.EventPendingChanged:
		for i := range m.groups {
			if m.groups[i].ID == ev.GroupID {
				m.groups[i].Pending = ev.Pending
			}
		}
	case api.EventInvitation:
		if ev.Invitation != nil {
			m.status = fmt.Sprintf("invitation to %s from %s: /accept %s", short(ev.GroupID), shortPeer(ev.Invitation.From), short(ev.GroupID))
		}
		return m.reload()
	case api.EventEpochChanged:
		if ev.GroupID == m.currentID() {
			return tea.Batch(m.reload(), m.loadHistory(ev.GroupID))
		}
		return m.reload()
	case api.EventGroupJoined, api.EventGroupLeft:
		return m.reload()
	}
	return nil
}

func (m *chatModel) key(k tea.KeyPressMsg) tea.Cmd {
	switch k.Keystroke() {
	case "ctrl+c", "esc":
		return tea.Quit
	case "enter":
		line := strings.TrimSpace(m.input)
		m.input = ""
		if line == "" {
			return nil
		}
		if strings.HasPrefix(line, "/") {
			return m.slash(line)
		}
		return m.send(line)
	case "backspace":
		if r := []rune(m.input); len(r) > 0 {
			m.input = string(r[:len(r)-1])
		}
	case "tab":
		if len(m.groups) > 0 {
			m.current = (m.current + 1) % len(m.groups)
			m.clearScrollback()
			return m.loadHistory(m.currentID())
		}
	case "space":
		m.input += " "
	default:
		m.input += k.Text
	}
	return nil
}

func (m *chatModel) send(text string) tea.Cmd {
	g := m.currentID()
	if g == "" {
		m.status = "no group: accept an invitation (/accept GROUP) or create one with 'conclave group create'"
		return nil
	}
	m.status = ""
	return func() tea.Msg {
		// The message and its delivery state reach the screen as events.
		if _, err := m.client.Send(m.ctx, g, text, ""); err != nil {
			return statusMsg{"not sent: " + err.Error()}
		}
		return nil
	}
}

const slashHelp = "commands: /invite PEER, /accept GROUP, /members, /verify, /leave (in a group)"

func (m *chatModel) slash(line string) tea.Cmd {
	f := strings.Fields(line)
	g := m.currentID()
	switch {
	case f[0] == "/invite" && len(f) == 2 && g != "":
		m.status = "inviting " + shortPeer(f[1]) + ": the members agree on the change…"
		return func() tea.Msg {
			if _, err := m.client.Invite(m.ctx, g, f[1]); err != nil {
				return statusMsg{"invite: " + err.Error()}
			}
			return statusMsg{"invited " + shortPeer(f[1]) + "; they join with /accept " + short(g) + " or 'conclave invites accept " + g + "'"}
		}
	case f[0] == "/accept" && len(f) == 2:
		m.status = "accepting " + short(f[1]) + "…"
		return func() tea.Msg {
			if _, err := m.client.Accept(m.ctx, f[1]); err != nil {
				return statusMsg{"accept: " + err.Error()}
			}
			return statusMsg{"joined " + short(f[1])}
		}
	case f[0] == "/leave" && len(f) == 1 && g != "":
		m.status = "leaving " + short(g) + ": waiting for another member to commit the removal…"
		return func() tea.Msg {
			if err := m.client.Leave(m.ctx, g); err != nil {
				return statusMsg{"leave: " + err.Error()}
			}
			return statusMsg{"left " + short(g)}
		}
	case f[0] == "/members" && len(f) == 1 && g != "":
		cur := m.groups[m.current]
		m.notef("members of %s at epoch %d:", short(g), cur.Epoch)
		for _, mem := range cur.Members {
			switch {
			case mem.Self:
				m.notef("  you")
			case mem.PeerID == "":
				m.notef("  leaf %d (%s credential)", mem.Leaf, mem.Assurance)
			default:
				m.notef("  %s", mem.PeerID)
			}
		}
		m.status = ""
		return nil
	case f[0] == "/verify" && len(f) == 1 && g != "":
		n := 0
		for _, mem := range m.groups[m.current].Members {
			if mem.Self || mem.SafetyCode == "" {
				continue
			}
			m.notef("safety code with %s: %s", mem.PeerID, mem.SafetyCode)
			n++
		}
		if n == 0 {
			m.notef("no other member to verify")
		} else {
			m.notef("compare each code with that person (in person or on a call); if it matches: conclave contacts verify PEER")
		}
		m.status = ""
		return nil
	}
	m.status = slashHelp
	return nil
}

// View draws the header, the group list, the scrollback, the pending
// membership changes, the status line and the input line.
func (m *chatModel) View() tea.View {
	var b strings.Builder
	var pending []api.PendingChange
	if g := m.currentID(); g != "" {
		cur := m.groups[m.current]
		pending = cur.Pending
		fmt.Fprintf(&b, "conclave chat · group %s", short(g))
		if cur.Name != "" {
			fmt.Fprintf(&b, " \"%s\"", printable(cur.Name))
		}
		if cur.Topic != "" {
			b.WriteString(" — " + printable(cur.Topic))
		}
		fmt.Fprintf(&b, " · epoch %d · %d members\n", cur.Epoch, len(cur.Members))
	} else {
		b.WriteString("conclave chat · no group\n")
	}
	var tabs []string
	for i, g := range m.groups {
		name := short(g.ID)
		if g.Name != "" {
			name = printable(g.Name)
		}
		if i == m.current {
			name = "[" + name + "]"
		}
		tabs = append(tabs, name)
	}
	for _, inv := range m.invites {
		tabs = append(tabs, "invited:"+short(inv.GroupID))
	}
	b.WriteString(strings.Join(tabs, " ") + "\n")
	rows := max(m.height-4-len(pending), 1)
	start := max(len(m.lines)-rows, 0)
	for _, l := range m.lines[start:] {
		if l.note != "" {
			b.WriteString("  " + l.note + "\n")
			continue
		}
		printMessage(&b, l.msg)
	}
	for range rows - (len(m.lines) - start) {
		b.WriteString("\n")
	}
	for _, p := range pending {
		fmt.Fprintf(&b, "⧗ %s: %s\n", printable(shortPeers(p.Desc)), printable(shortPeers(p.Waiting)))
	}
	b.WriteString(m.status + "\n")
	b.WriteString("> " + m.input)
	v := tea.NewView(b.String())
	v.AltScreen = true // the whole terminal, given back as it was on exit
	v.WindowTitle = "conclave chat"
	return v
}

// short abbreviates a group ID for display.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// shortPeers abbreviates the peer IDs in a line of text.
func shortPeers(s string) string {
	f := strings.Fields(s)
	for i, w := range f {
		if len(w) > 40 {
			f[i] = shortPeer(w)
		}
	}
	return strings.Join(f, " ")
}
