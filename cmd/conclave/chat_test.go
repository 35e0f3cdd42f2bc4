package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/conclave-im/conclave/api"
)

// runner feeds a chat model the results of its commands, as a bubbletea
// Program does, so a test can drive it with keys.
type runner struct {
	t    *testing.T
	m    tea.Model
	msgs chan tea.Msg
}

func (r *runner) exec(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	go func() {
		msg := cmd()
		if msg != nil {
			r.msgs <- msg
		}
	}()
}

func (r *runner) update(msg tea.Msg) {
	if batch, ok := msg.(tea.BatchMsg); ok {
		for _, c := range batch {
			r.exec(c)
		}
		return
	}
	m, cmd := r.m.Update(msg)
	r.m = m
	r.exec(cmd)
}

func (r *runner) typeLine(s string) {
	for _, ch := range s {
		if ch == ' ' {
			r.update(tea.KeyPressMsg{Code: tea.KeySpace, Text: " "})
			continue
		}
		r.update(tea.KeyPressMsg{Code: ch, Text: string(ch)})
	}
	r.update(tea.KeyPressMsg{Code: tea.KeyEnter})
}

// until processes the model's messages until cond holds.
func (r *runner) until(ctx context.Context, what string, cond func() bool) {
	r.t.Helper()
	for !cond() {
		select {
		case msg := <-r.msgs:
			r.update(msg)
		case <-ctx.Done():
			r.t.Fatalf("waiting for %s: %v\nscreen:\n%s", what, ctx.Err(), r.m.View().Content)
		}
	}
}

func (r *runner) screen() string { return r.m.View().Content }

// members is two daemons, Alice and Bob, members of one group.
type members struct {
	env                []string
	alice, bob         string // data directories
	aliceID, bobID     string
	group              string
	aliceProc, bobProc *daemonProc
	sh                 func(script string) string
}

// twoMembers starts two daemons as separate processes and makes them the
// members of a new group, through the CLI.
func twoMembers(t testing.TB) *members {
	t.Helper()
	bin := binary(t)
	root, err := os.MkdirTemp("", "cc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	w := &members{env: testEnv(bin), alice: filepath.Join(root, "alice"), bob: filepath.Join(root, "bob")}
	w.aliceProc = startDaemon(t, w.env, "conclave --home "+w.alice+" daemon")
	w.bobProc = startDaemon(t, w.env, "conclave --home "+w.bob+" daemon")
	w.sh = func(script string) string {
		t.Helper()
		cmd := exec.Command("bash", "-c", "set -e -o pipefail\n"+script)
		cmd.Env = w.env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	A, B := "conclave --home "+w.alice, "conclave --home "+w.bob
	w.aliceID, w.bobID = w.sh(A+" id --peer"), w.sh(B+" id --peer")
	w.sh(A + " peers connect $(" + B + " id --addrs)")
	w.group = w.sh(A + " group create")
	w.sh(A + " group invite " + w.group + " " + w.bobID)
	if out := w.sh(B + " invites accept --wait 30s " + w.group); !strings.Contains(out, "joined") {
		t.Fatalf("accept: %s", out)
	}
	return w
}

// TestChat drives the chat screen of Alice's daemon while Bob's and
// Carol's daemons, separate processes, are the other members: typed lines
// are sent and arrive, Bob's messages appear, every slash command works,
// and the delivery state of Alice's messages and her pending invitation
// update live while Bob's daemon is down and after it is back.
func TestChat(t *testing.T) {
	w := twoMembers(t)
	carol := filepath.Join(filepath.Dir(w.alice), "carol")
	startDaemon(t, w.env, "conclave --home "+carol+" daemon")
	A, B, C := "conclave --home "+w.alice, "conclave --home "+w.bob, "conclave --home "+carol
	carolID := w.sh(C + " id --peer")
	w.sh(A + " peers connect $(" + C + " id --addrs)")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ac := api.NewUnixClient(filepath.Join(w.alice, socketFileName))
	defer ac.Close()
	bc := api.NewUnixClient(filepath.Join(w.bob, socketFileName))
	defer bc.Close()
	bobEvents, err := bc.Events(ctx, w.group)
	if err != nil {
		t.Fatal(err)
	}
	defer bobEvents.Close()

	m, err := newChatModel(ctx, ac, w.group[:8])
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	r := &runner{t: t, m: m, msgs: make(chan tea.Msg, 64)}
	r.update(tea.WindowSizeMsg{Width: 200, Height: 30})
	if s := r.screen(); !strings.Contains(s, "group "+w.group[:8]) || !strings.Contains(s, "added "+w.bobID) {
		t.Fatalf("first screen lacks the group or its history:\n%s", s)
	}
	r.exec(m.Init())

	// Typing a line sends it: it reaches Bob's daemon and shows as ours,
	// marked sent.
	r.typeLine("hello from the chat")
	for {
		ev, err := bobEvents.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == api.EventMessage && ev.Message.Text == "hello from the chat" && !ev.Message.Own {
			break
		}
	}
	r.until(ctx, "our message marked sent", func() bool { return strings.Contains(r.screen(), "<you> hello from the chat ✓") })
	if h := w.sh(A + " history " + w.group); !strings.Contains(h, "<you> hello from the chat ✓") {
		t.Fatalf("history lacks the sent mark:\n%s", h)
	}

	// A message from Bob appears.
	if _, err := bc.Send(ctx, w.group, "hi from bob", ""); err != nil {
		t.Fatal(err)
	}
	r.until(ctx, "Bob's message on screen", func() bool { return strings.Contains(r.screen(), "hi from bob") })

	// /members and /verify list the members and the safety code to
	// compare with Bob, as Alice's daemon computes it.
	r.typeLine("/members")
	if s := r.screen(); !strings.Contains(s, "members of "+w.group[:8]) || !strings.Contains(s, "  you\n") || !strings.Contains(s, "  "+w.bobID+"\n") {
		t.Fatalf("/members did not list the members:\n%s", s)
	}
	g, err := ac.Group(ctx, w.group)
	if err != nil {
		t.Fatal(err)
	}
	code := ""
	for _, mem := range g.Members {
		if mem.PeerID == w.bobID {
			code = mem.SafetyCode
		}
	}
	r.typeLine("/verify")
	if s := r.screen(); code == "" || !strings.Contains(s, "safety code with "+w.bobID+": "+code) {
		t.Fatalf("/verify did not show the safety code %q:\n%s", code, s)
	}
	r.typeLine("/nonsense")
	if !strings.Contains(r.screen(), "commands: /invite") {
		t.Fatalf("unknown command without help:\n%s", r.screen())
	}

	// Carol waits for an invitation that is not sent yet.
	accept := exec.Command("bash", "-c", C+" invites accept --wait 60s "+w.group)
	accept.Env = w.env
	var acceptOut lockedBuffer
	accept.Stdout, accept.Stderr = &acceptOut, &acceptOut
	if err := accept.Start(); err != nil {
		t.Fatal(err)
	}
	acceptDone := make(chan error, 1)
	go func() { acceptDone <- accept.Wait() }()
	t.Cleanup(func() {
		if accept.ProcessState == nil {
			accept.Process.Kill()
		}
	})

	// With Bob's daemon down, Alice's invitation of Carol waits for a
	// majority, and a message waits for a member to be online.
	w.bobProc.stop(t)
	r.typeLine("/invite " + carolID)
	r.until(ctx, "the invitation waiting for a majority", func() bool {
		return strings.Contains(r.screen(), "⧗ invite "+shortPeer(carolID)+": waiting for a majority of members to be online (1 of 2 reachable, 2 needed)")
	})
	waitNoTopicPeers(t, ctx, ac, w.group)
	r.typeLine("while bob is away")
	r.until(ctx, "the message waiting", func() bool {
		return strings.Contains(r.screen(), "<you> while bob is away … (no member of the group is online)")
	})

	// Bob is back: the message goes out, the group adds Carol, and Carol's
	// waiting accept joins.
	w.bobProc = startDaemon(t, w.env, "conclave --home "+w.bob+" daemon")
	w.sh(B + " peers connect $(" + A + " id --addrs)")
	r.until(ctx, "the message sent", func() bool { return strings.Contains(r.screen(), "<you> while bob is away ✓") })
	r.until(ctx, "Carol added", func() bool {
		s := r.screen()
		return strings.Contains(s, "* added "+carolID) && strings.Contains(s, "invited "+shortPeer(carolID)) && !strings.Contains(s, "⧗")
	})
	select {
	case err := <-acceptDone:
		if err != nil || !strings.Contains(acceptOut.String(), "joined "+w.group) {
			t.Fatalf("carol's accept: %v\n%s", err, acceptOut.String())
		}
	case <-ctx.Done():
		t.Fatalf("carol's accept did not return\n%s", acceptOut.String())
	}
	runStep(t, w.env, B+" history "+w.group, B+" history", "while bob is away", time.Now().Add(30*time.Second))

	// Leaving: another member commits our removal once the proposal has
	// waited, and the chat reports it.
	r.typeLine("/leave")
	r.until(ctx, "the group left", func() bool { return strings.Contains(r.screen(), "left "+short(w.group)) })
}

// waitNoTopicPeers waits until no peer is left on the group's topic at
// Alice's node (Bob's daemon stopped), checking a few times a second: the
// API has no event for a peer leaving a topic.
func waitNoTopicPeers(t *testing.T, ctx context.Context, c *api.Client, group string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		gp, err := c.GroupPeers(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		if len(gp.Peers) == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("peers still on the topic: %v", gp.Peers)
		}
	}
}

// TestChatView checks how the chat screen shows delivery states and
// pending membership changes, and that their events update it in place.
func TestChatView(t *testing.T) {
	const g = "a3b0c1d2e3f4"
	peer := "12D3KooWRbjS2kmkeX8HhXQimYDLsbLvgt4FYC5XeZN5KXwJ1KeA"
	m := &chatModel{current: 0, byID: map[string]int{}, width: 120, height: 12,
		groups: []api.Group{{ID: g, Name: "book club", Topic: "Tuesdays", Epoch: 3, Active: true, Members: []api.Member{{Self: true}, {PeerID: peer}}}}}
	m.mergeHistory([]api.Message{
		{ID: "01", Kind: api.KindText, Text: "from bob", Sender: peer},
		{ID: "02", Kind: api.KindText, Text: "mine", Own: true, State: api.StateSent},
		{ID: "03", Kind: api.KindText, Text: "later", Own: true, State: api.StatePending, Waiting: "no member of the group is online"},
	})
	steps := []struct {
		name      string
		ev        api.Event
		want, not []string
	}{
		{"history", api.Event{}, []string{"conclave chat · group a3b0c1d2 \"book club\" — Tuesdays · epoch 3 · 2 members\n[book club]\n", "<12D3Ko…wJ1KeA> from bob\n", "<you> mine ✓\n", "<you> later … (no member of the group is online)\n"}, []string{"⧗"}},
		{"message sent", api.Event{Type: api.EventMessageState, GroupID: g, MessageID: "03", State: api.StateSent},
			[]string{"<you> later ✓\n"}, []string{"no member"}},
		{"another group's state", api.Event{Type: api.EventMessageState, GroupID: "ffff", MessageID: "02", State: api.StatePending, Waiting: "x"},
			[]string{"<you> mine ✓\n"}, nil},
		{"pending invite", api.Event{Type: api.EventPendingChanged, GroupID: g, Pending: []api.PendingChange{{Desc: "invite " + peer, Waiting: "waiting for a majority of members to be online (1 of 2 reachable, 2 needed)"}}},
			[]string{"⧗ invite 12D3Ko…wJ1KeA: waiting for a majority of members to be online (1 of 2 reachable, 2 needed)\n"}, nil},
		{"decided", api.Event{Type: api.EventPendingChanged, GroupID: g}, nil, []string{"⧗"}},
		{"own message arrives", api.Event{Type: api.EventMessage, GroupID: g, Message: &api.Message{ID: "04", Kind: api.KindText, Text: "new", Own: true, State: api.StatePending, Waiting: "sending"}},
			[]string{"<you> new … (sending)\n"}, nil},
		{"repeated message updates in place", api.Event{Type: api.EventMessage, GroupID: g, Message: &api.Message{ID: "04", Kind: api.KindText, Text: "new", Own: true, State: api.StateSent}},
			[]string{"<you> new ✓\n"}, []string{"(sending)"}},
	}
	for _, st := range steps {
		if st.ev.Type != "" {
			m.event(st.ev)
		}
		s := m.View().Content
		for _, w := range st.want {
			if !strings.Contains(s, w) {
				t.Errorf("%s: screen lacks %q:\n%s", st.name, w, s)
			}
		}
		for _, w := range st.not {
			if strings.Contains(s, w) {
				t.Errorf("%s: screen has %q:\n%s", st.name, w, s)
			}
		}
	}
	if n := strings.Count(m.View().Content, "<you> new"); n != 1 {
		t.Errorf("the message shows %d times", n)
	}
}

// TestPrintable checks that text from other members cannot reach the
// terminal as control sequences.
func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text, ünïcode ✓", "plain text, ünïcode ✓"},
		{"two\nlines", "two ↵ lines"},
		{"tab\there", "tab here"},
		{"\x1b]52;c;AAAA\x07clipboard", "\ufffd]52;c;AAAA\ufffdclipboard"},
		{"\x1b[2Jclear", "\ufffd[2Jclear"},
		{"c1 \u009b31m", "c1 \ufffd31m"},
		{"bidi \u202eevil\u202c", "bidi \ufffdevil\ufffd"},
		{"del\x7f", "del\ufffd"},
	}
	for _, tc := range tests {
		if got := printable(tc.in); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var b strings.Builder
	printMessage(&b, api.Message{Kind: api.KindText, Sender: "peer", Text: "\x1b[31mred\nnext"})
	if strings.ContainsAny(b.String(), "\x1b") || strings.Count(b.String(), "\n") != 1 {
		t.Errorf("printMessage wrote %q", b.String())
	}
}
