package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/conclave-im/conclave/api"
)

func (a *app) invitesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "invites",
		Short: "List, accept or decline invitations to groups",
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "list",
			Short: "List pending invitations",
			Args:  noArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
					invs, err := c.Invitations(ctx)
					if err != nil {
						return err
					}
					return a.output(invs, func(w io.Writer) {
						if len(invs) == 0 {
							fmt.Fprintln(w, "no pending invitations")
						}
						for _, inv := range invs {
							fmt.Fprintf(w, "%s  from %s  at %s\n", inv.GroupID, inv.From, inv.ReceivedAt.Format(time.RFC3339))
						}
					})
				})
			},
		},
		a.acceptCommand(),
		&cobra.Command{
			Use:   "decline GROUP",
			Short: "Decline a pending invitation",
			Args:  exactArgs(1, "GROUP"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
					if err := c.Decline(ctx, args[0]); err != nil {
						return err
					}
					if a.json {
						return a.printJSON(map[string]bool{"declined": true})
					}
					fmt.Fprintln(a.stdout, "declined")
					return nil
				})
			},
		},
	)
	return cmd
}

func (a *app) acceptCommand() *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "accept GROUP",
		Short: "Join the group of a pending invitation, waiting for it if it is on its way",
		Long: `Join the group of a pending invitation. GROUP is the group ID the inviter
shares (or a unique prefix of at least 4 hex digits).

An invitation can still be on its way when the inviter's command returns:
accept waits up to --wait for it to arrive before giving up. If the daemon
accepts invitations on its own (auto-accept), accept returns once the
group is joined.`,
		Args: exactArgs(1, "GROUP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
				g, err := acceptWhenInvited(ctx, c, args[0], wait)
				if err != nil {
					return err
				}
				return a.output(g, func(w io.Writer) {
					fmt.Fprintf(w, "joined %s at epoch %d with %d members\n", g.ID, g.Epoch, len(g.Members))
				})
			})
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for an invitation still on its way (0: fail at once)")
	return cmd
}

// acceptWhenInvited accepts the invitation to group, waiting up to wait on
// the event stream for it to arrive. The stream is opened before the first
// attempt, so an invitation arriving in between is not missed.
func acceptWhenInvited(ctx context.Context, c *api.Client, group string, wait time.Duration) (api.Group, error) {
	if wait <= 0 {
		return c.Accept(ctx, group)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	es, err := c.Events(sctx, "")
	if err != nil {
		return api.Group{}, err
	}
	defer es.Close()
	g, err := c.Accept(ctx, group)
	if !notFound(err) {
		return g, err
	}
	if g, err := c.Group(ctx, group); err == nil && g.Active {
		return g, nil // accepted already, by auto-accept or an earlier command
	}
	timer := time.AfterFunc(wait, cancel)
	defer timer.Stop()
	prefix := strings.ToLower(group)
	for {
		ev, err := es.Next()
		if err != nil {
			if ctx.Err() != nil {
				return api.Group{}, ctx.Err()
			}
			if sctx.Err() != nil {
				return api.Group{}, withCode(exitNotFound, fmt.Errorf("no invitation to group %s arrived within %s: check that the inviter's 'conclave group invite' succeeded and that the two nodes are connected ('conclave peers')", group, wait))
			}
			return api.Group{}, fmt.Errorf("event stream: %w", err)
		}
		if !strings.HasPrefix(ev.GroupID, prefix) {
			continue
		}
		switch ev.Type {
		case api.EventInvitation:
			return c.Accept(ctx, ev.GroupID)
		case api.EventGroupJoined:
			return c.Group(ctx, ev.GroupID)
		}
	}
}

// notFound reports whether err is the daemon's 404.
func notFound(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}
