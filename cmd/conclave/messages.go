package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/conclave-im/conclave/api"
)

func (a *app) sendCommand() *cobra.Command {
	var replyTo string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "send GROUP MESSAGE...",
		Short: "Send a message to a group (the words are joined by spaces; '-' reads stdin)",
		Long: `Send a message to a group. The words are joined by spaces; '-' reads the
message from stdin.

The daemon stores and encrypts the message before this returns, and keeps
it in its outbox until a member of the group has it. The output says which:
"sent ID" once it went out to the members online, "queued ID (reason)"
while it waits, e.g. because no member of the group is online; the daemon
sends it on its own as soon as it can ('conclave history' shows ✓ then).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageErr("%s wants GROUP and a MESSAGE", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			text := strings.Join(args[1:], " ")
			if text == "-" {
				b, err := io.ReadAll(io.LimitReader(a.stdin, api.MaxBodyBytes))
				if err != nil {
					return fmt.Errorf("read message: %w", err)
				}
				text = strings.TrimRight(string(b), "\n")
			}
			return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
				m, err := sendAndWait(ctx, c, args[0], text, replyTo, wait)
				if err != nil {
					return err
				}
				return a.output(m, func(w io.Writer) {
					if m.State == api.StatePending {
						fmt.Fprintf(w, "queued %s (%s); the daemon sends it as soon as it can\n", m.ID, m.Waiting)
						return
					}
					fmt.Fprintf(w, "sent %s\n", m.ID)
				})
			})
		},
	}
	cmd.Flags().StringVar(&replyTo, "reply-to", "", "ID of the message this one answers")
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Second, "how long to wait for the daemon to hand the message to the members online before reporting it queued")
	return cmd
}

// sendAndWait sends a message and, while the daemon is still handing it to
// the network, waits up to wait for the outcome on the event stream
// (opened first, so the change cannot slip by).
func sendAndWait(ctx context.Context, c *api.Client, group, text, replyTo string, wait time.Duration) (api.Message, error) {
	if wait <= 0 {
		return c.Send(ctx, group, text, replyTo)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	es, err := c.Events(sctx, group)
	if err != nil {
		return api.Message{}, err
	}
	defer es.Close()
	m, err := c.Send(ctx, group, text, replyTo)
	if err != nil || m.State != api.StatePending || m.Waiting != api.WaitingSending {
		return m, err
	}
	timer := time.AfterFunc(wait, cancel) // ends the stream, and so Next
	defer timer.Stop()
	for {
		ev, err := es.Next()
		if err != nil {
			return m, nil // the wait is over; the message stays queued
		}
		if ev.Type == api.EventMessageState && ev.MessageID == m.ID {
			m.State, m.Waiting = ev.State, ev.Waiting
			if m.State != api.StatePending || m.Waiting != api.WaitingSending {
				return m, nil
			}
		}
	}
}

func (a *app) historyCommand() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "history GROUP",
		Short: "Show a group's newest messages and membership events, oldest first",
		Args:  exactArgs(1, "GROUP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
				ms, err := c.History(ctx, args[0], limit)
				if err != nil {
					return err
				}
				return a.output(ms, func(w io.Writer) {
					for _, m := range ms {
						printMessage(w, m)
					}
				})
			})
		},
	}
	cmd.Flags().IntVarP(&limit, "limit", "n", api.DefaultHistoryLimit, "how many entries")
	return cmd
}

func printMessage(w io.Writer, m api.Message) {
	ts := m.SentAt.Local().Format("2006-01-02 15:04:05")
	switch m.Kind {
	case api.KindEvent:
		fmt.Fprintf(w, "%s  * %s\n", ts, printable(m.Text))
	case api.KindText:
		who := shortPeer(printable(m.Sender))
		if m.Own {
			who = "you"
		}
		fmt.Fprintf(w, "%s  <%s> %s%s\n", ts, who, printable(m.Text), deliveryMark(m))
	default:
		fmt.Fprintf(w, "%s  <%s> (a message this version cannot show)\n", ts, shortPeer(printable(m.Sender)))
	}
}

// deliveryMark shows where one of our own messages stands: a check mark
// once sent, an ellipsis and the reason while it waits.
func deliveryMark(m api.Message) string {
	switch m.State {
	case api.StateSent:
		return " ✓"
	case api.StatePending:
		if m.Waiting == "" {
			return " …"
		}
		return " … (" + m.Waiting + ")"
	}
	return ""
}

// printable makes text from other members safe to print on a terminal,
// on one line: a line break shows as ↵, and control characters (escape
// sequences could rewrite the screen, set the clipboard or the title) and
// bidirectional overrides (they make text read differently from what it
// is) as U+FFFD.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) || isBidiControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(" ↵ ")
		case r == '\t':
			b.WriteByte(' ')
		case r < 0x20 || (r >= 0x7f && r < 0xa0) || isBidiControl(r):
			b.WriteRune(unicode.ReplacementChar)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isBidiControl(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x061c || r == 0x200e || r == 0x200f
}

// shortPeer abbreviates a peer ID for display.
func shortPeer(p string) string {
	if len(p) > 16 {
		return p[:6] + "…" + p[len(p)-6:]
	}
	return p
}

func (a *app) eventsCommand() *cobra.Command {
	var group string
	var count int
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print the daemon's events as they happen (messages, invitations, membership)",
		Long: `Print the daemon's events as they happen: messages, invitations, joins,
epoch changes. With --json, one JSON object per line. --count stops after
that many events, for scripts; with --timeout it bounds the wait.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
			defer cancel()
			es, err := c.Events(ctx, group)
			if err != nil {
				return err
			}
			defer es.Close()
			if !a.json {
				fmt.Fprintln(a.stderr, "listening for events")
			}
			for seen := 0; count == 0 || seen < count; seen++ {
				ev, err := es.Next()
				if err != nil {
					if errors.Is(err, io.EOF) || ctx.Err() != nil {
						if ctx.Err() != nil && count > 0 {
							return withCode(exitUnavailable, fmt.Errorf("events: %d of %d events before the timeout", seen, count))
						}
						return nil
					}
					return err
				}
				if a.json {
					b, err := json.Marshal(ev)
					if err != nil {
						return err
					}
					fmt.Fprintf(a.stdout, "%s\n", b)
					continue
				}
				printEvent(a.stdout, ev)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "only events of this group")
	cmd.Flags().IntVar(&count, "count", 0, "exit after this many events (0: run until interrupted or --timeout)")
	return cmd
}

func printEvent(w io.Writer, ev api.Event) {
	switch ev.Type {
	case api.EventMessage:
		fmt.Fprintf(w, "[%s] ", ev.GroupID)
		printMessage(w, *ev.Message)
	case api.EventInvitation:
		fmt.Fprintf(w, "[%s] invitation from %s: accept with 'conclave invites accept %s'\n", ev.GroupID, ev.Invitation.From, ev.GroupID)
	case api.EventGroupJoined:
		fmt.Fprintf(w, "[%s] joined at epoch %d\n", ev.GroupID, ev.Epoch)
	case api.EventGroupLeft:
		fmt.Fprintf(w, "[%s] removed from the group at epoch %d\n", ev.GroupID, ev.Epoch)
	case api.EventEpochChanged:
		fmt.Fprintf(w, "[%s] epoch %d", ev.GroupID, ev.Epoch)
		for _, p := range ev.Added {
			fmt.Fprintf(w, ", added %s", p)
		}
		for _, p := range ev.Removed {
			fmt.Fprintf(w, ", removed %s", p)
		}
		fmt.Fprintln(w)
	case api.EventMessageState:
		if ev.State == api.StatePending {
			fmt.Fprintf(w, "[%s] message %s waits: %s\n", ev.GroupID, ev.MessageID, ev.Waiting)
		} else {
			fmt.Fprintf(w, "[%s] message %s %s\n", ev.GroupID, ev.MessageID, ev.State)
		}
	case api.EventPendingChanged:
		if len(ev.Pending) == 0 {
			fmt.Fprintf(w, "[%s] no membership change pending\n", ev.GroupID)
		}
		for _, p := range ev.Pending {
			fmt.Fprintf(w, "[%s] pending %s: %s\n", ev.GroupID, p.Desc, p.Waiting)
		}
	default:
		fmt.Fprintf(w, "[%s] %s at %s\n", ev.GroupID, ev.Type, time.Now().Format(time.TimeOnly))
	}
}
