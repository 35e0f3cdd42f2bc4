package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/conclave-im/conclave/api"
)

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show whether the daemon runs, and a summary of its state",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
				s, err := c.Status(ctx)
				if err != nil {
					return err
				}
				return a.output(s, func(w io.Writer) {
					fmt.Fprintf(w, "running since %s (%s)\n", s.StartedAt.Format(time.RFC3339), time.Since(s.StartedAt).Round(time.Second))
					fmt.Fprintf(w, "peer ID:     %s\n", s.PeerID)
					fmt.Fprintf(w, "groups:      %d\n", s.Groups)
					fmt.Fprintf(w, "invitations: %d pending\n", s.Invitations)
					fmt.Fprintf(w, "peers:       %d connected\n", s.Peers)
				})
			})
		},
	}
}
