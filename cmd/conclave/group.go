package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/conclave-im/conclave/api"
)

func (a *app) groupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Create groups, invite and remove members, name groups, show groups",
		Long: `Create groups, invite and remove members, name groups, show groups.

GROUP is a group ID, or any unique prefix of it (at least 4 hex digits).`,
	}
	cmd.AddCommand(
		a.groupCreateCommand(),
		&cobra.Command{
			Use:   "list",
			Short: "List your groups",
			Args:  noArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
					gs, err := c.Groups(ctx)
					if err != nil {
						return err
					}
					return a.output(gs, func(w io.Writer) {
						if len(gs) == 0 {
							fmt.Fprintln(w, "no groups: create one with 'conclave group create'")
						}
						for _, g := range gs {
							state := ""
							if !g.Active {
								state = " (left)"
							}
							name := ""
							if g.Name != "" {
								name = fmt.Sprintf("  %q", g.Name)
							}
							fmt.Fprintf(w, "%s%s  epoch %d  %d members%s\n", g.ID, name, g.Epoch, len(g.Members), state)
						}
					})
				})
			},
		},
		&cobra.Command{
			Use:   "info GROUP",
			Short: "Show a group: epoch, epoch authenticator, members and their safety codes",
			Args:  exactArgs(1, "GROUP"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
					g, err := c.Group(ctx, args[0])
					if err != nil {
						return err
					}
					return a.output(g, func(w io.Writer) { printGroup(w, g, true) })
				})
			},
		},
		&cobra.Command{
			Use:   "members GROUP",
			Short: "List a group's members",
			Args:  exactArgs(1, "GROUP"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
					g, err := c.Group(ctx, args[0])
					if err != nil {
						return err
					}
					return a.output(g.Members, func(w io.Writer) { printMembers(w, g.Members, false) })
				})
			},
		},
		a.memberChangeCommand("invite", "Add a peer to a group; returns once the group has agreed on it",
			`Add a peer (by peer ID) to a group. The daemon fetches one of the peer's
KeyPackages, so the peer must be reachable: on one LAN mDNS finds it,
otherwise connect first with 'conclave peers connect ADDR'. The peer then
sees the invitation in 'conclave invites list'.`,
			(*api.Client).Invite, "invited %s to %s (epoch %d)\n"),
		a.memberChangeCommand("remove", "Remove a member from a group; returns once the group has agreed on it", "",
			(*api.Client).Remove, "removed %s from %s (epoch %d)\n"),
		&cobra.Command{
			Use:   "leave GROUP",
			Short: "Leave a group; another member commits your removal, and this returns once it is decided",
			Args:  exactArgs(1, "GROUP"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
					if err := c.Leave(ctx, args[0]); err != nil {
						return err
					}
					if a.json {
						return a.printJSON(map[string]bool{"left": true})
					}
					fmt.Fprintf(a.stdout, "left %s\n", args[0])
					return nil
				})
			},
		},
		a.groupSettingsCommand("rename GROUP NAME", "Rename a group (an empty NAME removes the name); returns once the group has agreed on it",
			func(v string) api.SettingsRequest { return api.SettingsRequest{Name: &v} }),
		a.groupSettingsCommand("topic GROUP TOPIC", "Set a group's topic (an empty TOPIC clears it); returns once the group has agreed on it",
			func(v string) api.SettingsRequest { return api.SettingsRequest{Topic: &v} }),
	)
	return cmd
}

func (a *app) groupCreateCommand() *cobra.Command {
	var name, topic string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a group with you as its only member; prints its ID",
		Long: `Create a group with you as its only member; prints its ID.

--name and --topic are shown to every member (at most 64 and 256 bytes of
UTF-8, one line each); any member can change them later with
'conclave group rename' and 'conclave group topic'.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
				id, err := c.CreateNamedGroup(ctx, name, topic)
				if err != nil {
					return err
				}
				return a.output(api.CreatedGroup{ID: id}, func(w io.Writer) { fmt.Fprintln(w, id) })
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the group's name")
	cmd.Flags().StringVar(&topic, "topic", "", "the group's topic")
	return cmd
}

// groupSettingsCommand changes one group setting; req builds the request
// from the command's second argument.
func (a *app) groupSettingsCommand(use, short string, req func(string) api.SettingsRequest) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(2, strings.Join(strings.Fields(use)[1:], " and ")),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
				g, err := c.UpdateGroupSettings(ctx, args[0], req(args[1]))
				if err != nil {
					return err
				}
				return a.output(g, func(w io.Writer) {
					fmt.Fprintf(w, "%s: name %q, topic %q (epoch %d)\n", g.ID, g.Name, g.Topic, g.Epoch)
				})
			})
		},
	}
}

// memberChangeCommand is `group invite` or `group remove`: a membership
// change of one peer that returns once the group decided it. done formats
// the peer, the group and the new epoch.
func (a *app) memberChangeCommand(verb, short, long string, change func(*api.Client, context.Context, string, string) (api.Group, error), done string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " GROUP PEER",
		Short: short,
		Long:  long,
		Args:  exactArgs(2, "GROUP and PEER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *api.Client) error {
				g, err := change(c, ctx, args[0], args[1])
				if err != nil {
					return err
				}
				return a.output(g, func(w io.Writer) {
					fmt.Fprintf(w, done, args[1], g.ID, g.Epoch)
				})
			})
		},
	}
}

func printGroup(w io.Writer, g api.Group, codes bool) {
	state := "member"
	if !g.Active {
		state = "no longer a member"
	}
	fmt.Fprintf(w, "group:               %s\n", g.ID)
	if g.Name != "" {
		fmt.Fprintf(w, "name:                %s\n", printable(g.Name))
	}
	if g.Topic != "" {
		fmt.Fprintf(w, "topic:               %s\n", printable(g.Topic))
	}
	fmt.Fprintf(w, "state:               %s\n", state)
	fmt.Fprintf(w, "epoch:               %d\n", g.Epoch)
	fmt.Fprintf(w, "epoch authenticator: %s\n", g.EpochAuthenticator)
	fmt.Fprintf(w, "members (%d):\n", len(g.Members))
	printMembers(w, g.Members, codes)
	for _, p := range g.Pending {
		fmt.Fprintf(w, "pending:             %s: %s (since %s)\n", p.Desc, p.Waiting, p.Since.Local().Format(time.TimeOnly))
	}
}

func printMembers(w io.Writer, ms []api.Member, codes bool) {
	for _, m := range ms {
		name := m.PeerID
		if name == "" {
			name = "(" + m.Assurance + " credential)"
		}
		if m.Self {
			name += " (you)"
		}
		fmt.Fprintf(w, "  %s\n", name)
		if codes && m.SafetyCode != "" {
			fmt.Fprintf(w, "    safety code: %s\n", m.SafetyCode)
		}
	}
}
