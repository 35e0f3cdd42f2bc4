package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/conclave-im/conclave/internal/testnet"
)

// testnetDirEnv overrides the default testnet directory.
const testnetDirEnv = "CONCLAVE_TESTNET_DIR"

// defaultTestnetNodes is the size of a new testnet without -n.
const defaultTestnetNodes = 3

// testnetFlags are the flags every testnet subcommand shares.
type testnetFlags struct {
	dir string
}

func (a *app) testnetCommand() *cobra.Command {
	tf := &testnetFlags{}
	cmd := &cobra.Command{
		Use:   "testnet",
		Short: "Run a local network of several nodes and rehearse partitions",
		Long: `Run several Conclave nodes on this machine, each with its own data directory
(<dir>/node1, <dir>/node2, ...) and API socket, so that every conclave
command works against one of them with --home <dir>/nodeN. Then cut the
network in two, heal it, stop and start single nodes, and watch what the
group does: the side with a majority of a group's members keeps changing
the group, the other side keeps chatting but its changes wait.

'conclave testnet up' runs the testnet in the foreground; the other
subcommands talk to it through <dir>/testnet.sock. docs/testnet.md walks
through a rehearsal.`,
	}
	cmd.PersistentFlags().StringVar(&tf.dir, "dir", "", "testnet directory (default $"+testnetDirEnv+", else conclave-testnet/ beside the default data directory)")
	cmd.AddCommand(
		a.testnetUpCommand(tf),
		a.testnetStatusCommand(tf),
		a.testnetPartitionCommand(tf),
		a.testnetHealCommand(tf),
		a.testnetStopCommand(tf),
		a.testnetStartCommand(tf),
		a.testnetWaitCommand(tf),
		a.testnetScriptCommand(tf),
		a.testnetDownCommand(tf),
	)
	return cmd
}

// resolve returns the testnet directory (absolute) and the --dir argument
// to repeat in hints ("" when the default applies).
func (tf *testnetFlags) resolve() (dir, flag string, err error) {
	d := tf.dir
	if d == "" {
		d = os.Getenv(testnetDirEnv)
	}
	if d == "" {
		h, err := defaultHome()
		if err != nil {
			return "", "", withCode(exitUsage, fmt.Errorf("%w (or give --dir)", err))
		}
		d = filepath.Join(filepath.Dir(h), "conclave-testnet")
	}
	abs, err := filepath.Abs(d)
	if err != nil {
		return "", "", withCode(exitUsage, fmt.Errorf("testnet directory %q: %w", d, err))
	}
	if tf.dir != "" {
		flag = " --dir " + tnShellQuote(abs)
	}
	return abs, flag, nil
}

// testnetError gives testnet failures their exit code and message.
func testnetError(err error, dirFlag string) error {
	var ie *testnet.InputError
	switch {
	case errors.Is(err, testnet.ErrNotRunning):
		return withCode(exitNotRunning, fmt.Errorf("%w: start it with `conclave testnet up%s`", err, dirFlag))
	case errors.Is(err, testnet.ErrRunning):
		return withCode(exitAddrInUse, fmt.Errorf("%w (stop it with `conclave testnet down%s`)", err, dirFlag))
	case errors.As(err, &ie):
		return withCode(exitUsage, err)
	case errors.Is(err, testnet.ErrNotAgreed):
		return withCode(exitUnavailable, err)
	}
	return startError(err)
}

// withTestnet runs f with a control client and a context bounded by
// --timeout.
func (a *app) withTestnet(cmd *cobra.Command, tf *testnetFlags, f func(ctx context.Context, c *testnet.Client, dirFlag string) error) error {
	dir, flag, err := tf.resolve()
	if err != nil {
		return err
	}
	c := testnet.NewClient(dir)
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
	defer cancel()
	if err := f(ctx, c, flag); err != nil {
		return testnetError(err, flag)
	}
	return nil
}

func (a *app) testnetUpCommand(tf *testnetFlags) *cobra.Command {
	var (
		nodes      int
		reset      bool
		autoAccept bool
		logFormat  string
		logLevel   string
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a testnet of N nodes on loopback and run it until interrupted",
		Long: `Start N nodes in this process, each a full node on loopback with its own data
directory <dir>/nodeK and API socket <dir>/nodeK/conclave.sock, connect them
all to each other (no mDNS, DHT or relays: they meet only each other), and
serve the control socket <dir>/testnet.sock. Runs until Ctrl-C, SIGTERM or
'conclave testnet down'.

An existing testnet directory is reused: the nodes keep their identities,
groups and history (and without -n, their number). --reset deletes it
first; it refuses to delete a directory that is not a testnet's.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, flag, err := tf.resolve()
			if err != nil {
				return err
			}
			if reset {
				if err := testnet.Reset(dir); err != nil {
					return testnetError(err, flag)
				}
			}
			if !cmd.Flags().Changed("nodes") {
				prev, err := testnet.ReadMarker(dir)
				if err != nil {
					return withCode(exitDataDir, err)
				}
				if prev > 0 {
					nodes = prev
				}
			}
			nodeLogger, err := newLogger(a.stderr, logFormat, logLevel)
			if err != nil {
				return withCode(exitUsage, err)
			}
			// What the operator does to the testnet shows whatever the
			// nodes' level.
			logger, _ := newLogger(a.stderr, logFormat, "info")
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			tn, err := testnet.Start(ctx, testnet.Options{Dir: dir, Nodes: nodes, AutoAccept: autoAccept, Logger: logger, NodeLogger: nodeLogger})
			if err != nil {
				return testnetError(err, flag)
			}
			st, err := tn.Status(ctx)
			if err == nil {
				a.printTestnetBanner(st, flag)
			}
			select {
			case <-ctx.Done():
			case <-tn.Done():
			}
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = errors.Join(err, tn.Close(cctx))
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "testnet stopped; its data stays in "+dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVarP(&nodes, "nodes", "n", defaultTestnetNodes, fmt.Sprintf("number of nodes, 1 to %d (default: as many as last time in this directory, else %d)", testnet.MaxNodes, defaultTestnetNodes))
	f.BoolVar(&reset, "reset", false, "delete the testnet directory (every node's data) first")
	f.BoolVar(&autoAccept, "auto-accept", false, "nodes join groups as soon as an invitation arrives")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "warn", "log level of all nodes: debug, info, warn or error")
	return cmd
}

// printTestnetBanner shows the nodes and what to try next. Its first line
// is what scripts wait for.
func (a *app) printTestnetBanner(st testnet.Status, dirFlag string) {
	w := a.stdout
	fmt.Fprintf(w, "conclave testnet ready: %d nodes in %s\n", len(st.Nodes), st.Dir)
	fmt.Fprintf(w, "  control socket: %s\n\n", st.Control)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPEER ID\tHOME\tSOCKET")
	for _, n := range st.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.Name, n.PeerID, n.Home, n.Socket)
	}
	tw.Flush()
	h := func(i int) string { return "--home " + tnShellQuote(st.Nodes[i].Home) }
	fmt.Fprintf(w, "\nNext, in another terminal (every conclave command works with --home <node's HOME>):\n")
	fmt.Fprintf(w, "  GROUP=$(conclave %s group create)\n", h(0))
	if len(st.Nodes) > 1 {
		fmt.Fprintf(w, "  conclave %s group invite $GROUP $(conclave %s id --peer)\n", h(0), h(1))
		fmt.Fprintf(w, "  conclave %s invites accept $GROUP\n", h(1))
		fmt.Fprintf(w, "  conclave testnet partition%s 1 %s    # cut node1 off from the rest\n", dirFlag, tnJoinRange(2, len(st.Nodes)))
	}
	fmt.Fprintf(w, "  conclave testnet status%s                # who is connected to whom\n", dirFlag)
	fmt.Fprintf(w, "  conclave testnet heal%s\n", dirFlag)
	fmt.Fprintf(w, "  conclave testnet wait%s $GROUP           # until the nodes agree on the group again\n", dirFlag)
	fmt.Fprintf(w, "  conclave testnet stop%s 1 ; conclave testnet start%s 1\n", dirFlag, dirFlag)
	fmt.Fprintf(w, "Stop with Ctrl-C or 'conclave testnet down%s'. docs/testnet.md walks through a rehearsal.\n", dirFlag)
}

func tnJoinRange(from, to int) string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, strconv.Itoa(i))
	}
	return strings.Join(s, ",")
}

func (a *app) testnetStatusCommand(tf *testnetFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the nodes, who is connected to whom, and the partition in force",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withTestnet(cmd, tf, func(ctx context.Context, c *testnet.Client, _ string) error {
				st, err := c.Status(ctx)
				if err != nil {
					return err
				}
				return a.output(st, func(w io.Writer) { printTestnetStatus(w, st) })
			})
		},
	}
}

func printTestnetStatus(w io.Writer, st testnet.Status) {
	fmt.Fprintf(w, "testnet in %s\n", st.Dir)
	if len(st.Partition) == 0 {
		fmt.Fprintln(w, "network: whole (every node may reach every other)")
	} else {
		var sides []string
		for _, s := range st.Partition {
			sides = append(sides, tnJoinInts(s))
		}
		fmt.Fprintf(w, "network: partitioned into %s\n", strings.Join(sides, " | "))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tSIDE\tCONNECTED TO\tPEER ID\tHOME")
	for _, n := range st.Nodes {
		state, side, conns := "running", "-", tnJoinInts(n.ConnectedTo)
		if !n.Running {
			state, conns = "stopped", "-"
		} else if conns == "" {
			conns = "nobody"
		}
		if n.Side > 0 {
			side = strconv.Itoa(n.Side)
		}
		if n.Error != "" {
			conns = "? (" + n.Error + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, state, side, conns, n.PeerID, n.Home)
	}
	tw.Flush()
	printTestnetGroups(w, st)
}

// printTestnetGroups shows each group as every running node sees it: one
// line when they all agree, else one line per node with the changes it
// waits on.
func printTestnetGroups(w io.Writer, st testnet.Status) {
	type view struct {
		node string
		g    testnet.GroupView
	}
	var order []string
	byGroup := map[string][]view{}
	for _, n := range st.Nodes {
		for _, g := range n.Groups {
			if _, ok := byGroup[g.ID]; !ok {
				order = append(order, g.ID)
			}
			byGroup[g.ID] = append(byGroup[g.ID], view{n.Name, g})
		}
	}
	for _, id := range order {
		views := byGroup[id]
		agree := true
		var names []string
		for _, v := range views {
			names = append(names, strings.TrimPrefix(v.node, "node"))
			first := views[0].g
			if v.g.Epoch != first.Epoch || v.g.EpochAuthenticator != first.EpochAuthenticator || len(v.g.Pending) > 0 {
				agree = false
			}
		}
		fmt.Fprintf(w, "\ngroup %s\n", id)
		if agree {
			g := views[0].g
			fmt.Fprintf(w, "  node %s agree: epoch %d, %d members, authenticator %s\n", strings.Join(names, ","), g.Epoch, g.Members, tnShortHex(g.EpochAuthenticator))
			continue
		}
		for _, v := range views {
			fmt.Fprintf(w, "  %-6s epoch %d, %d members, authenticator %s\n", v.node, v.g.Epoch, v.g.Members, tnShortHex(v.g.EpochAuthenticator))
			for _, p := range v.g.Pending {
				fmt.Fprintf(w, "         %s: %s (since %s)\n", p.Desc, p.Waiting, p.Since.Local().Format("15:04:05"))
			}
		}
	}
}

func tnShortHex(hex string) string {
	if len(hex) > 16 {
		return hex[:16]
	}
	return hex
}

func tnJoinInts(is []int) string {
	s := make([]string, len(is))
	for k, i := range is {
		s[k] = strconv.Itoa(i)
	}
	return strings.Join(s, ",")
}

func (a *app) testnetPartitionCommand(tf *testnetFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "partition SIDE SIDE...",
		Short: "Cut the network into sides, e.g. 'partition 1,2 3,4,5'",
		Long: `Cut the network into sides: each argument is one side, its node numbers
separated by commas. Every connection between nodes on different sides is
closed, and each node's connection gater refuses new ones, while nodes on
the same side stay connected. Nodes that no side names form one more side
together ('partition 1' cuts node1 off from all others). A new partition
replaces the one in force; 'heal' ends it.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("%s wants the sides, e.g. 1,2 3,4,5 (see '%s --help')", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sides, err := testnet.ParseSides(args)
			if err != nil {
				return withCode(exitUsage, err)
			}
			return a.withTestnet(cmd, tf, func(ctx context.Context, c *testnet.Client, _ string) error {
				st, err := c.Partition(ctx, sides)
				if err != nil {
					return err
				}
				return a.output(st, func(w io.Writer) { printTestnetStatus(w, st) })
			})
		},
	}
}

func (a *app) testnetHealCommand(tf *testnetFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "heal",
		Short: "End the partition: every node may reach every other again",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withTestnet(cmd, tf, func(ctx context.Context, c *testnet.Client, _ string) error {
				st, err := c.Heal(ctx)
				if err != nil {
					return err
				}
				return a.output(st, func(w io.Writer) { printTestnetStatus(w, st) })
			})
		},
	}
}

// tnNodeArg parses the node number argument of stop and start.
func tnNodeArg(cmd *cobra.Command, args []string) (int, error) {
	i, err := strconv.Atoi(strings.TrimPrefix(args[0], "node"))
	if err != nil {
		return 0, usageErr("%s: %q is not a node number (see '%s --help')", cmd.CommandPath(), args[0], cmd.CommandPath())
	}
	return i, nil
}

func (a *app) testnetStopCommand(tf *testnetFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "stop N",
		Short: "Stop node N (its data stays) to rehearse a member going offline",
		Args:  exactArgs(1, "a node number"),
		RunE: func(cmd *cobra.Command, args []string) error {
			i, err := tnNodeArg(cmd, args)
			if err != nil {
				return err
			}
			return a.withTestnet(cmd, tf, func(ctx context.Context, c *testnet.Client, flag string) error {
				st, err := c.StopNode(ctx, i)
				if err != nil {
					return err
				}
				return a.output(st, func(w io.Writer) {
					fmt.Fprintf(w, "stopped node%d; 'conclave testnet start%s %d' brings it back with its data\n", i, flag, i)
				})
			})
		},
	}
}

func (a *app) testnetStartCommand(tf *testnetFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "start N",
		Short: "Start node N again; it catches up on what it missed",
		Args:  exactArgs(1, "a node number"),
		RunE: func(cmd *cobra.Command, args []string) error {
			i, err := tnNodeArg(cmd, args)
			if err != nil {
				return err
			}
			return a.withTestnet(cmd, tf, func(ctx context.Context, c *testnet.Client, _ string) error {
				st, err := c.StartNode(ctx, i)
				if err != nil {
					return err
				}
				return a.output(st, func(w io.Writer) {
					fmt.Fprintf(w, "started node%d (connected to %s)\n", i, tnOrNobody(tnJoinInts(st.Nodes[i-1].ConnectedTo)))
				})
			})
		},
	}
}

func tnOrNobody(s string) string {
	if s == "" {
		return "nobody"
	}
	return "node " + s
}

func (a *app) testnetWaitCommand(tf *testnetFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "wait GROUP",
		Short: "Wait until the running nodes holding GROUP agree on it (same epoch, nothing pending)",
		Long: `Wait until every running node that holds GROUP (its ID or a unique prefix) is
in the same epoch with the same epoch authenticator and waits on no
membership change: where a group settles after a partition heals or a
stopped member catches up. Gives up after --timeout (exit code 7), saying
where each node stands.`,
		Args: exactArgs(1, "a group ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withTestnet(cmd, tf, func(ctx context.Context, c *testnet.Client, _ string) error {
				// The testnet gives up a moment before this command does, so
				// its answer, which says where each node stands, arrives.
				wait := a.timeout - time.Second
				if wait <= 0 {
					wait = a.timeout
				}
				ag, err := c.WaitAgree(ctx, args[0], wait)
				if err != nil {
					return err
				}
				return a.output(ag, func(w io.Writer) {
					g := ag.Group
					fmt.Fprintf(w, "node %s agree on group %s: epoch %d, %d members, authenticator %s\n",
						tnJoinInts(ag.Nodes), g.ID, g.Epoch, g.Members, g.EpochAuthenticator)
				})
			})
		},
	}
}

func (a *app) testnetScriptCommand(tf *testnetFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "script FILE",
		Short: "Run a rehearsal script against the running testnet",
		Long: `Run a rehearsal script: one step per line (partition, heal, stop, start,
wait, and node steps such as 'node1 send g "hello"' or 'node2 expect g
"hello"'), each checked before the next starts, with a transcript on
standard output. The whole script is checked before anything runs. Steps
that wait give up after --timeout. docs/testnet.md describes the steps;
internal/testnet/testdata/partition.tn is the rehearsal of the docs as a
script.`,
		Args: exactArgs(1, "a script file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return withCode(exitUsage, err)
			}
			defer f.Close()
			script, err := testnet.ParseScript(args[0], f)
			if err != nil {
				return withCode(exitUsage, err)
			}
			dir, flag, err := tf.resolve()
			if err != nil {
				return err
			}
			err = script.Run(cmd.Context(), testnet.ScriptOptions{Dir: dir, Out: a.stdout, StepTimeout: a.timeout})
			var se *testnet.ScriptError
			switch {
			case err == nil:
				fmt.Fprintln(a.stdout, "script done")
				return nil
			case errors.As(err, &se) && se.Step == "" && !errors.Is(err, testnet.ErrNotRunning):
				return withCode(exitUsage, err) // a node the testnet does not have
			case errors.Is(err, context.DeadlineExceeded):
				return withCode(exitUnavailable, err)
			}
			return testnetError(err, flag)
		},
	}
}

func (a *app) testnetDownCommand(tf *testnetFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop the testnet (the data stays for the next 'up')",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withTestnet(cmd, tf, func(ctx context.Context, c *testnet.Client, _ string) error {
				if err := c.Down(ctx); err != nil {
					return err
				}
				if a.json {
					return a.printJSON(map[string]bool{"down": true})
				}
				fmt.Fprintln(a.stdout, "testnet stopped")
				return nil
			})
		},
	}
}

// tnShellQuote quotes s for a POSIX shell when it needs it, so printed
// commands can be pasted.
func tnShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@%,=", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
