package main

import (
	"context"
	"fmt"
	"io"
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
		&cobra.Command{
			Use:   "accept GROUP",
			Short: "Join the group of a pending invitation",
			Args:  exactArgs(1, "GROUP"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
					g, err := c.Accept(ctx, args[0])
					if err != nil {
						return err
					}
					return a.output(g, func(w io.Writer) {
						fmt.Fprintf(w, "joined %s at epoch %d with %d members\n", g.ID, g.Epoch, len(g.Members))
					})
				})
			},
		},
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
