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

// TestChat drives the chat screen of one daemon while a second daemon, a
// separate process, is the other member: a typed line is sent and arrives
// there, and a message from there appears on the screen.
func TestChat(t *testing.T) {
	bin := binary(t)
	root, err := os.MkdirTemp("", "cc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	env := testEnv(bin)
	alice, bob := filepath.Join(root, "alice"), filepath.Join(root, "bob")
	startDaemon(t, env, "conclave --home "+alice+" daemon")
	startDaemon(t, env, "conclave --home "+bob+" daemon")
	sh := func(script string) string {
		cmd := exec.Command("bash", "-c", "set -e -o pipefail\n"+script)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	A, B := "conclave --home "+alice, "conclave --home "+bob
	sh(A + " peers connect $(" + B + " id --addrs)")
	group := sh(A + " group create")
	sh(A + " group invite " + group + " $(" + B + " id --peer)")
	accept := B + " invites accept " + group
	runStep(t, env, accept, accept, "joined", time.Now().Add(30*time.Second))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ac := api.NewUnixClient(filepath.Join(alice, socketFileName))
	defer ac.Close()
	bc := api.NewUnixClient(filepath.Join(bob, socketFileName))
	defer bc.Close()
	bobEvents, err := bc.Events(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	defer bobEvents.Close()

	start := time.Now()
	m, err := newChatModel(ctx, ac, group[:8])
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	r := &runner{t: t, m: m, msgs: make(chan tea.Msg, 64)}
	r.update(tea.WindowSizeMsg{Width: 100, Height: 20})
	first := r.screen()
	t.Logf("first screen after %v", time.Since(start))
	if !strings.Contains(first, "group "+group[:8]) || !strings.Contains(first, "added ") {
		t.Fatalf("first screen lacks the group or its history:\n%s", first)
	}
	r.exec(m.Init())

	// Typing a line sends it: it reaches Bob's daemon and shows as ours.
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
	r.until(ctx, "our message on screen", func() bool { return strings.Contains(r.screen(), "<you> hello from the chat") })

	// A message from Bob appears.
	if _, err := bc.Send(ctx, group, "hi from bob", ""); err != nil {
		t.Fatal(err)
	}
	r.until(ctx, "Bob's message on screen", func() bool { return strings.Contains(r.screen(), "hi from bob") })

	// Slash commands.
	r.typeLine("/verify")
	if s := r.screen(); !strings.Contains(s, "you |") && !strings.Contains(s, "| you") {
		t.Fatalf("/verify did not list the members:\n%s", s)
	}
	r.typeLine("/nonsense")
	if !strings.Contains(r.screen(), "commands: /invite") {
		t.Fatalf("unknown command without help:\n%s", r.screen())
	}

	// Leaving: Bob commits our removal once the proposal has waited, and the
	// chat reports it.
	r.typeLine("/leave")
	r.until(ctx, "the group left", func() bool { return strings.Contains(r.screen(), "left "+short(group)) })
}
