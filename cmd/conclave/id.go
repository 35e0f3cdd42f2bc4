package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/conclave-im/conclave/api"
)

func (a *app) idCommand() *cobra.Command {
	var addrsOnly, peerOnly bool
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Show this node's peer ID, addresses and fingerprint",
		Long: `Show this node's peer ID, the addresses other nodes can dial, and its
fingerprint (this node's half of every safety code).

--peer prints only the peer ID and --addrs only the addresses, one per
line, for use in scripts:
  conclave peers connect $(conclave --home bob id --addrs)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
				id, err := c.Identity(ctx)
				if err != nil {
					return err
				}
				switch {
				case peerOnly:
					fmt.Fprintln(a.stdout, id.PeerID)
					return nil
				case addrsOnly:
					for _, ad := range id.Addrs {
						fmt.Fprintln(a.stdout, ad)
					}
					return nil
				}
				return a.output(id, func(w io.Writer) {
					fmt.Fprintf(w, "peer ID:     %s\n", id.PeerID)
					fmt.Fprintf(w, "fingerprint: %s\n", id.Fingerprint)
					fmt.Fprintf(w, "addresses:\n")
					for _, ad := range id.Addrs {
						fmt.Fprintf(w, "  %s\n", ad)
					}
				})
			})
		},
	}
	cmd.Flags().BoolVar(&addrsOnly, "addrs", false, "print only the dialable addresses, one per line")
	cmd.Flags().BoolVar(&peerOnly, "peer", false, "print only the peer ID")
	return cmd
}
