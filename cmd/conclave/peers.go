package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/conclave-im/conclave/api"
)

func (a *app) peersCommand() *cobra.Command {
	var group string
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "List the connected peers (or one group's peers), or connect to one",
		Long: `List the peers this node is connected to: peer ID, contact name, the groups
you share with each, and the addresses of the open connections. With
--group, list the peers on that group's topic instead: the members this
node exchanges the group's traffic with right now.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
				if group != "" {
					gp, err := c.GroupPeers(ctx, group)
					if err != nil {
						return err
					}
					return a.output(gp, func(w io.Writer) {
						fmt.Fprintf(w, "group %s: %d peers\n", gp.GroupID, len(gp.Peers))
						for _, p := range gp.Peers {
							fmt.Fprintf(w, "  %s\n", p)
						}
					})
				}
				ps, err := c.Peers(ctx)
				if err != nil {
					return err
				}
				return a.output(ps, func(w io.Writer) { printPeers(w, ps) })
			})
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "list the peers on this group's topic instead")
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

func printPeers(w io.Writer, ps []api.Peer) {
	if len(ps) == 0 {
		fmt.Fprintln(w, "no connected peers (connect with 'conclave peers connect ADDR', or wait for mDNS or the DHT)")
		return
	}
	for _, p := range ps {
		line := p.PeerID
		if p.Name != "" {
			line += "  (" + p.Name + ")"
		}
		if len(p.Groups) > 0 {
			gs := make([]string, len(p.Groups))
			for i, g := range p.Groups {
				gs[i] = short(g)
			}
			line += "  groups " + strings.Join(gs, ",")
		}
		fmt.Fprintln(w, line)
		for _, addr := range p.Addrs {
			fmt.Fprintf(w, "  %s\n", addr)
		}
	}
}
