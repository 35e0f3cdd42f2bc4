package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/conclave-im/conclave/api"
	"github.com/conclave-im/conclave/internal/testnet"
)

// app holds what every command shares: streams and the global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	home       string
	configPath string
	socket     string
	apiAddr    string
	json       bool
	timeout    time.Duration
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	code, msg := classify(err)
	if errors.Is(err, api.ErrDaemonNotRunning) {
		if hint := a.testnetHint(); hint != "" {
			msg = err.Error() + "; " + hint
		}
	}
	fmt.Fprintf(stderr, "conclave: %s\n", msg)
	return code
}

// testnetHint says how to start the node when --home is a node directory
// of a testnet (conclave testnet), whose nodes have no daemon of their own.
func (a *app) testnetHint() string {
	home, err := a.resolveHome()
	if err != nil {
		return ""
	}
	dir, name := filepath.Split(filepath.Clean(home))
	k, ok := strings.CutPrefix(name, "node")
	if !ok {
		return ""
	}
	if _, err := strconv.Atoi(k); err != nil {
		return ""
	}
	if n, err := testnet.ReadMarker(filepath.Clean(dir)); err != nil || n == 0 {
		return ""
	}
	return fmt.Sprintf("it is node %s of a testnet: start it with `conclave testnet start %s --dir %s`, or the testnet with `conclave testnet up --dir %s`", k, k, filepath.Clean(dir), filepath.Clean(dir))
}

// classify picks the exit code and the message for a failed command.
func classify(err error) (int, string) {
	var ee *exitError
	var ae *api.Error
	switch {
	case errors.Is(err, api.ErrDaemonNotRunning):
		return exitNotRunning, err.Error() + "; start it with `conclave daemon`"
	case errors.As(err, &ee):
		return ee.code, err.Error()
	case errors.As(err, &ae):
		switch ae.Status {
		case http.StatusNotFound:
			return exitNotFound, ae.Message
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			return exitUsage, ae.Message
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return exitUnavailable, ae.Message
		}
		return exitFailure, ae.Message
	}
	return exitFailure, err.Error()
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "conclave",
		Short: "Conclave: peer-to-peer, end-to-end encrypted group chat",
		Long: `Conclave is a peer-to-peer, end-to-end encrypted group messenger.

Start a node with 'conclave daemon'; every other command talks to the
running daemon through its local API.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetIn(a.stdin)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return withCode(exitUsage, fmt.Errorf("%w (see '%s --help')", err, c.CommandPath()))
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.home, "home", "", "data directory (default $CONCLAVE_HOME, else the user data directory's conclave/)")
	pf.StringVar(&a.configPath, "config", "", "config file (default <home>/"+configFileName+")")
	pf.StringVar(&a.socket, "socket", "", "API socket to talk to (default $CONCLAVE_API_SOCKET, the config's api-socket, else <home>/conclave.sock)")
	pf.StringVar(&a.apiAddr, "api-addr", os.Getenv("CONCLAVE_API_ADDR"), "talk to the daemon over loopback TCP at this address instead of the socket, with the token in <home>/api.token")
	pf.BoolVar(&a.json, "json", false, "print JSON instead of text")
	pf.DurationVar(&a.timeout, "timeout", 2*time.Minute, "give up on the daemon after this long")

	root.AddCommand(
		a.daemonCommand(),
		a.idCommand(),
		a.statusCommand(),
		a.peersCommand(),
		a.groupCommand(),
		a.invitesCommand(),
		a.contactsCommand(),
		a.sendCommand(),
		a.historyCommand(),
		a.eventsCommand(),
		a.chatCommand(),
		a.testnetCommand(),
	)
	return root
}

// resolveHome returns the data directory: --home, CONCLAVE_HOME or the
// platform default.
func (a *app) resolveHome() (string, error) {
	h := a.home
	if h == "" {
		h = os.Getenv("CONCLAVE_HOME")
	}
	if h == "" {
		d, err := defaultHome()
		if err != nil {
			return "", withCode(exitUsage, err)
		}
		h = d
	}
	abs, err := filepath.Abs(h)
	if err != nil {
		return "", withCode(exitUsage, fmt.Errorf("data directory %q: %w", h, err))
	}
	return abs, nil
}

func (a *app) configFile(home string) (*configFile, error) {
	p := a.configPath
	if p == "" {
		p = filepath.Join(home, configFileName)
	}
	cf, err := readConfigFile(p)
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	return cf, nil
}

// client returns an API client for the daemon of this data directory.
func (a *app) client() (*api.Client, error) {
	home, err := a.resolveHome()
	if err != nil {
		return nil, err
	}
	if a.apiAddr != "" {
		tok, err := os.ReadFile(filepath.Join(home, tokenFileName))
		if err != nil {
			return nil, withCode(exitNotRunning, fmt.Errorf("API token: %w (is the daemon running with api-tcp set?)", err))
		}
		return api.NewTCPClient(a.apiAddr, strings.TrimSpace(string(tok))), nil
	}
	sock := a.socket
	if sock == "" {
		sock = os.Getenv(envName("api-socket"))
	}
	if sock == "" {
		cf, err := a.configFile(home)
		if err != nil {
			return nil, err
		}
		sock = cf.values["api-socket"]
	}
	if sock == "" {
		sock = filepath.Join(home, socketFileName)
	}
	return api.NewUnixClient(sock), nil
}

// withClient runs f with a client and a context bounded by --timeout.
func (a *app) withClient(cmd *cobra.Command, f func(ctx context.Context, c *api.Client) error) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
	defer cancel()
	err = f(ctx, c)
	var ee *exitError
	if err != nil && ctx.Err() == context.DeadlineExceeded && !errors.As(err, &ee) {
		// A change the group must decide keeps going in the daemon.
		return withCode(exitUnavailable, fmt.Errorf("no outcome within --timeout %v; the daemon goes on with it (see `conclave group info`): %w", a.timeout, err))
	}
	return err
}

// printJSON writes v as indented JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// output prints v as JSON with --json, else calls human.
func (a *app) output(v any, human func(w io.Writer)) error {
	if a.json {
		return a.printJSON(v)
	}
	human(a.stdout)
	return nil
}

// exactArgs is cobra.ExactArgs with the usage exit code.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr("%s wants %s (see '%s --help')", cmd.CommandPath(), names, cmd.CommandPath())
		}
		return nil
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) != 0 {
		return usageErr("%s takes no arguments (see '%s --help')", cmd.CommandPath(), cmd.CommandPath())
	}
	return nil
}
