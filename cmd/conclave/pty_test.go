//go:build unix

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/conclave-im/conclave/api"
)

// ptyChat is `conclave chat` running in a pseudo-terminal, its output
// drawn on a vtScreen.
type ptyChat struct {
	t       testing.TB
	cmd     *exec.Cmd
	tty     *os.File // the terminal's side of the pty
	screen  *vtScreen
	started time.Time
	exited  chan error
}

const ptyRows, ptyCols = 24, 110

// startPtyChat runs `conclave --home HOME chat args...` in a pty of
// ptyRows x ptyCols.
func startPtyChat(t testing.TB, env []string, home string, args ...string) *ptyChat {
	t.Helper()
	bin, err := exec.LookPath("conclave")
	for _, kv := range env {
		if p, ok := strings.CutPrefix(kv, "PATH="); ok {
			bin = filepath.Join(strings.Split(p, string(os.PathListSeparator))[0], "conclave")
			err = nil
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--home", home, "chat"}, args...)...)
	cmd.Env = append(env, "TERM=xterm-256color")
	c := &ptyChat{t: t, cmd: cmd, exited: make(chan error, 1)}
	c.started = time.Now()
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: ptyRows, Cols: ptyCols})
	if err != nil {
		t.Fatal(err)
	}
	c.tty = tty
	c.screen = newVTScreen(ptyRows, ptyCols, func(b []byte) { tty.Write(b) })
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := tty.Read(buf)
			if n > 0 {
				c.screen.Write(buf[:n])
			}
			if err != nil {
				break // EIO once the chat exited and closed the terminal
			}
		}
		c.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-c.exited
		}
		tty.Close()
	})
	return c
}

// waitScreen waits until the screen satisfies cond, and returns it.
func (c *ptyChat) waitScreen(ctx context.Context, what string, cond func(string) bool) string {
	c.t.Helper()
	for {
		s := c.screen.Text()
		if cond(s) {
			return s
		}
		select {
		case <-c.screen.changed:
		case err := <-c.exited:
			c.exited <- err
			c.t.Fatalf("chat exited (%v) while waiting for %s; screen:\n%s", err, what, c.screen.Text())
		case <-ctx.Done():
			c.t.Fatalf("waiting for %s: %v; screen:\n%s", what, ctx.Err(), c.screen.Text())
		}
	}
}

func (c *ptyChat) waitText(ctx context.Context, text string) string {
	c.t.Helper()
	return c.waitScreen(ctx, "“"+text+"” on screen", func(s string) bool { return strings.Contains(s, text) })
}

// typeKeys writes to the terminal as a user typing.
func (c *ptyChat) typeKeys(s string) {
	c.t.Helper()
	if _, err := c.tty.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// quit presses Ctrl-C and waits for a clean exit.
func (c *ptyChat) quit(ctx context.Context) {
	c.t.Helper()
	c.typeKeys("\x03")
	select {
	case err := <-c.exited:
		if err != nil {
			c.t.Fatalf("chat exited with %v after Ctrl-C; screen:\n%s", err, c.screen.Text())
		}
	case <-ctx.Done():
		c.t.Fatalf("chat still running after Ctrl-C; screen:\n%s", c.screen.Text())
	}
}

// TestChatPty runs the real `conclave chat` binary in a pseudo-terminal
// against two daemons: a line typed on the keyboard reaches the other
// daemon, and a message from there appears on the terminal.
func TestChatPty(t *testing.T) {
	w := twoMembers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bc := api.NewUnixClient(filepath.Join(w.bob, socketFileName))
	defer bc.Close()
	bobEvents, err := bc.Events(ctx, w.group)
	if err != nil {
		t.Fatal(err)
	}
	defer bobEvents.Close()

	c := startPtyChat(t, w.env, w.alice, w.group[:8])
	c.waitText(ctx, "conclave chat · group "+w.group[:8])
	t.Logf("first screen after %v", time.Since(c.started))
	c.waitText(ctx, "* added "+w.bobID)

	c.typeKeys("hello through the terminal\r")
	for {
		ev, err := bobEvents.Next()
		if err != nil {
			t.Fatalf("bob's events: %v", err)
		}
		if ev.Type == api.EventMessage && ev.Message.Text == "hello through the terminal" {
			if ev.Message.Own || ev.Message.Sender != w.aliceID {
				t.Fatalf("bob got %+v, want it from alice", ev.Message)
			}
			break
		}
	}
	c.waitText(ctx, "<you> hello through the terminal ✓")

	if _, err := bc.Send(ctx, w.group, "hi from bob's daemon", ""); err != nil {
		t.Fatal(err)
	}
	screen := c.waitText(ctx, "> hi from bob's daemon")
	if !strings.Contains(screen, "<"+shortPeer(w.bobID)+"> hi from bob's daemon") {
		t.Fatalf("bob's message without his name:\n%s", screen)
	}
	c.quit(ctx)
}
