package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/conclave-im/conclave/api"
)

func (a *app) peersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "List the peers of each group, or connect to one",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
				ps, err := c.Peers(ctx)
				if err != nil {
					return err
				}
				return a.output(ps, func(w io.Writer) {
					if len(ps) == 0 {
						fmt.Fprintln(w, "no groups yet")
					}
					for _, g := range ps {
						fmt.Fprintf(w, "group %s: %d peers\n", g.GroupID, len(g.Peers))
						for _, p := range g.Peers {
							fmt.Fprintf(w, "  %s\n", p)
						}
					}
				})
			})
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "connect ADDR...",
		Short: "Connect to a node at the given multiaddrs (each ending in /p2p/<peer ID>)",
		Long: `Connect to another node. Give one or more of its addresses, as printed by
'conclave id --addrs' on that node. Nodes on one LAN find each other by
mDNS without this.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("%s wants at least one address", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
				if err := c.Connect(ctx, args); err != nil {
					return err
				}
				if !a.json {
					fmt.Fprintln(a.stdout, "connected")
					return nil
				}
				return a.printJSON(map[string]bool{"connected": true})
			})
		},
	})
	return cmd
}
