package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/conclave-im/conclave/api"
)

func (a *app) sendCommand() *cobra.Command {
	var replyTo string
	cmd := &cobra.Command{
		Use:   "send GROUP MESSAGE...",
		Short: "Send a message to a group (the words are joined by spaces; '-' reads stdin)",
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
				m, err := c.Send(ctx, args[0], text, replyTo)
				if err != nil {
					return err
				}
				return a.output(m, func(w io.Writer) { fmt.Fprintf(w, "sent %s\n", m.ID) })
			})
		},
	}
	cmd.Flags().StringVar(&replyTo, "reply-to", "", "ID of the message this one answers")
	return cmd
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
		fmt.Fprintf(w, "%s  * %s\n", ts, m.Text)
	case api.KindText:
		who := shortPeer(m.Sender)
		if m.Own {
			who = "you"
		}
		fmt.Fprintf(w, "%s  <%s> %s\n", ts, who, m.Text)
	default:
		fmt.Fprintf(w, "%s  <%s> (a message this version cannot show)\n", ts, shortPeer(m.Sender))
	}
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
	default:
		fmt.Fprintf(w, "[%s] %s at %s\n", ev.GroupID, ev.Type, time.Now().Format(time.TimeOnly))
	}
}
