package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/conclave-im/conclave/api"
)

func (a *app) contactsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "contacts",
		Short: "Add, list, rename and verify contacts (safety codes)",
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "add PEER [NAME]",
			Short: "Add a contact by peer ID, with an optional name",
			Args: func(cmd *cobra.Command, args []string) error {
				if len(args) < 1 || len(args) > 2 {
					return usageErr("%s takes PEER and an optional NAME", cmd.CommandPath())
				}
				return nil
			},
			RunE: func(cmd *cobra.Command, args []string) error {
				name := ""
				if len(args) == 2 {
					name = args[1]
				}
				return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
					ct, err := c.AddContact(ctx, args[0], name)
					if err != nil {
						return err
					}
					return a.output(ct, func(w io.Writer) { printContact(w, ct) })
				})
			},
		},
		&cobra.Command{
			Use:   "list",
			Short: "List contacts and whether their safety code was compared",
			Args:  noArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
					cs, err := c.Contacts(ctx)
					if err != nil {
						return err
					}
					return a.output(cs, func(w io.Writer) {
						if len(cs) == 0 {
							fmt.Fprintln(w, "no contacts: add one with 'conclave contacts add PEER NAME'")
						}
						for _, ct := range cs {
							printContact(w, ct)
						}
					})
				})
			},
		},
		&cobra.Command{
			Use:   "rename PEER NAME",
			Short: "Rename a contact",
			Args:  exactArgs(2, "PEER and NAME"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
					ct, err := c.RenameContact(ctx, args[0], args[1])
					if err != nil {
						return err
					}
					return a.output(ct, func(w io.Writer) { printContact(w, ct) })
				})
			},
		},
		&cobra.Command{
			Use:   "verify PEER [CODE...]",
			Short: "Show the safety code to compare with PEER, or record that CODE matched",
			Long: `Without CODE, print the safety code that you and PEER compare out of band
(read it to each other in person or on a call). With CODE (the 60 digits the
other person read, spaces allowed), record PEER as verified if it matches;
a code that does not match is refused and changes nothing.`,
			Args: func(cmd *cobra.Command, args []string) error {
				if len(args) < 1 {
					return usageErr("%s takes PEER and optionally the CODE", cmd.CommandPath())
				}
				return nil
			},
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
					if len(args) == 1 {
						ct, err := c.Contact(ctx, args[0])
						if err != nil {
							// Not a contact yet: add it unnamed so the code can be shown.
							if ct, err = c.AddContact(ctx, args[0], ""); err != nil {
								return err
							}
						}
						return a.output(ct, func(w io.Writer) {
							fmt.Fprintf(w, "safety code with %s:\n  %s\ncompare it with them, then run: conclave contacts verify %s CODE\n", ct.PeerID, ct.SafetyCode, ct.PeerID)
						})
					}
					ct, err := c.VerifyContact(ctx, args[0], strings.Join(args[1:], " "), "")
					if err != nil {
						return err
					}
					return a.output(ct, func(w io.Writer) { printContact(w, ct) })
				})
			},
		},
	)
	return cmd
}

func printContact(w io.Writer, c api.Contact) {
	state := "unverified"
	if c.Verified {
		state = "verified"
	}
	name := c.Name
	if name == "" {
		name = "(no name)"
	}
	fmt.Fprintf(w, "%s  %s  %s\n", c.PeerID, name, state)
}
