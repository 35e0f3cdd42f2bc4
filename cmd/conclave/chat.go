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
	msgs    []api.Message
	seen    map[string]bool // message IDs shown, against duplicates
	invites []api.Invitation

	input  string
	status string
	width  int
	height int
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
	m := &chatModel{ctx: ctx, client: c, events: es, current: -1, seen: map[string]bool{}, width: 80, height: 24}
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
		m.setHistory(h)
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

func (m *chatModel) setHistory(h []api.Message) {
	m.msgs = h
	m.seen = map[string]bool{}
	for _, x := range h {
		m.seen[x.ID] = true
	}
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
			m.setHistory(msg.msgs)
		}
	case statusMsg:
		m.status = msg.text
	}
	return m, nil
}

func (m *chatModel) event(ev api.Event) tea.Cmd {
	switch ev.Type {
	case api.EventMessage:
		if ev.GroupID == m.currentID() && ev.Message != nil && !m.seen[ev.Message.ID] {
			m.seen[ev.Message.ID] = true
			m.msgs = append(m.msgs, *ev.Message)
		} else if ev.GroupID != m.currentID() {
			m.status = "new message in " + short(ev.GroupID)
		}
	case api.EventInvitation:
		m.status = fmt.Sprintf("invitation to %s from %s: /accept %s", short(ev.GroupID), shortPeer(ev.Invitation.From), short(ev.GroupID))
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
			m.msgs, m.seen = nil, map[string]bool{}
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
	m.status = "sending…"
	return func() tea.Msg {
		if _, err := m.client.Send(m.ctx, g, text, ""); err != nil {
			return statusMsg{"not sent: " + err.Error()}
		}
		return statusMsg{"sent"}
	}
}

func (m *chatModel) slash(line string) tea.Cmd {
	f := strings.Fields(line)
	g := m.currentID()
	switch {
	case f[0] == "/invite" && len(f) == 2 && g != "":
		m.status = "inviting " + shortPeer(f[1]) + "…"
		return func() tea.Msg {
			if _, err := m.client.Invite(m.ctx, g, f[1]); err != nil {
				return statusMsg{"invite: " + err.Error()}
			}
			return statusMsg{"invited " + shortPeer(f[1])}
		}
	case f[0] == "/accept" && len(f) == 2:
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
	case (f[0] == "/members" || f[0] == "/verify") && g != "":
		var parts []string
		for _, mem := range m.groups[m.current].Members {
			switch {
			case mem.Self:
				parts = append(parts, "you")
			case f[0] == "/verify" && mem.SafetyCode != "":
				parts = append(parts, shortPeer(mem.PeerID)+": "+mem.SafetyCode)
			default:
				parts = append(parts, mem.PeerID)
			}
		}
		m.status = strings.Join(parts, " | ")
		return nil
	}
	m.status = "commands: /invite PEER, /accept GROUP, /members, /verify, /leave (in a group)"
	return nil
}

// View draws the header, the group list, the scrollback, the status line
// and the input line.
func (m *chatModel) View() tea.View {
	var b strings.Builder
	if g := m.currentID(); g != "" {
		cur := m.groups[m.current]
		fmt.Fprintf(&b, "conclave chat · group %s · epoch %d · %d members\n", short(g), cur.Epoch, len(cur.Members))
	} else {
		b.WriteString("conclave chat · no group\n")
	}
	var tabs []string
	for i, g := range m.groups {
		name := short(g.ID)
		if i == m.current {
			name = "[" + name + "]"
		}
		tabs = append(tabs, name)
	}
	for _, inv := range m.invites {
		tabs = append(tabs, "invited:"+short(inv.GroupID))
	}
	b.WriteString(strings.Join(tabs, " ") + "\n")
	rows := max(m.height-4, 1)
	start := max(len(m.msgs)-rows, 0)
	for _, msg := range m.msgs[start:] {
		printMessage(&b, msg)
	}
	for range rows - (len(m.msgs) - start) {
		b.WriteString("\n")
	}
	b.WriteString(m.status + "\n")
	b.WriteString("> " + m.input)
	return tea.NewView(b.String())
}

// short abbreviates a group ID for display.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
