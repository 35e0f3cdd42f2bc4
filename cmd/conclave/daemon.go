package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/conclave-im/conclave/api"
	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/gossip"
	"github.com/conclave-im/conclave/node"
)

// Files in the data directory besides the datastore's own.
const (
	socketFileName = "conclave.sock"
	tokenFileName  = "api.token"
)

// daemonConfig is every setting of `conclave daemon`; docs/config.md
// documents each with its default.
type daemonConfig struct {
	listen         []string
	apiSocket      string
	apiTCP         string
	metrics        string
	logFormat      string
	logLevel       string
	mdns           bool
	dht            string
	bootstrap      []string
	relays         []string
	autoRelay      bool
	portMapping    bool
	holePunching   bool
	autoAccept     bool
	passphraseFile string
}

func (a *app) daemonCommand() *cobra.Command {
	var dc daemonConfig
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run a Conclave node until interrupted",
		Long: `Run a Conclave node: open the data directory, join the network, and serve
the local API on a Unix socket (and on loopback TCP when api-tcp is set).

Every flag can also be set in the config file (<home>/conclave.conf, one
"key = value" per line) or in the environment (CONCLAVE_<KEY>, dashes as
underscores); flags win over the environment, which wins over the file.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runDaemon(cmd, &dc)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&dc.listen, "listen", gossip.DefaultListenAddrs, "libp2p listen multiaddrs")
	f.StringVar(&dc.apiSocket, "api-socket", "", "API Unix socket (default <home>/conclave.sock)")
	f.StringVar(&dc.apiTCP, "api-tcp", "", "also serve the API on this loopback TCP address, with the bearer token in <home>/api.token (default off)")
	f.StringVar(&dc.metrics, "metrics", "", "serve Prometheus metrics at http://<this loopback address>/metrics (default off)")
	f.StringVar(&dc.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&dc.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.BoolVar(&dc.mdns, "mdns", true, "find other nodes on the LAN by mDNS")
	f.StringVar(&dc.dht, "dht", "auto", "DHT role: auto, client, server or off")
	f.StringSliceVar(&dc.bootstrap, "bootstrap", nil, "bootstrap peers (multiaddrs ending in /p2p/<peer ID>)")
	f.StringSliceVar(&dc.relays, "relay", nil, "static circuit relays (multiaddrs ending in /p2p/<peer ID>)")
	f.BoolVar(&dc.autoRelay, "auto-relay", true, "reserve relay slots when not publicly reachable")
	f.BoolVar(&dc.portMapping, "port-mapping", true, "map a port on the gateway by UPnP/NAT-PMP")
	f.BoolVar(&dc.holePunching, "hole-punching", true, "upgrade relayed connections by hole punching")
	f.BoolVar(&dc.autoAccept, "auto-accept", false, "join groups as soon as an invitation arrives")
	f.StringVar(&dc.passphraseFile, "passphrase-file", "", "file holding the passphrase that encrypts the data directory's key (default: key kept in <home>/datastore.key)")
	markConfigurable(f, "listen", "api-socket", "api-tcp", "metrics", "log-format", "log-level", "mdns", "dht",
		"bootstrap", "relay", "auto-relay", "port-mapping", "hole-punching", "auto-accept", "passphrase-file")
	return cmd
}

func (a *app) runDaemon(cmd *cobra.Command, dc *daemonConfig) error {
	home, err := a.resolveHome()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return withCode(exitDataDir, fmt.Errorf("data directory: %w", err))
	}
	cf, err := a.configFile(home)
	if err != nil {
		return err
	}
	if err := applyConfig(cmd.Flags(), cf, true); err != nil {
		return withCode(exitUsage, err)
	}
	logger, err := newLogger(a.stderr, dc.logFormat, dc.logLevel)
	if err != nil {
		return withCode(exitUsage, err)
	}
	opts, reg, err := dc.nodeOptions(home, logger)
	if err != nil {
		return err
	}

	if err := checkPortsFree(dc.listen); err != nil {
		return err
	}
	// Refuse addresses other hosts could reach before opening anything.
	for key, addr := range map[string]string{"api-tcp": dc.apiTCP, "metrics": dc.metrics} {
		if host, _, err := net.SplitHostPort(addr); addr != "" && (err != nil || !loopback(host)) {
			return usageErr("%s: %q must be a loopback address (127.0.0.1:PORT, [::1]:PORT or localhost:PORT)", key, addr)
		}
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	n, err := node.New(opts)
	if err != nil {
		return withCode(exitUsage, err)
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	err = n.Start(startCtx)
	cancel()
	if err != nil {
		return startError(err)
	}
	closeNode := func() error {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return n.Close(cctx)
	}

	srv, lns, err := dc.listenAPI(home, n, logger)
	if err != nil {
		return errors.Join(err, closeNode())
	}
	var metricsSrv *http.Server
	if dc.metrics != "" {
		ln, err := api.ListenTCP(dc.metrics)
		if err != nil {
			closeListeners(lns)
			return errors.Join(listenError("metrics", err), closeNode())
		}
		metricsSrv = &http.Server{Handler: metricsHandler(reg), ReadHeaderTimeout: 10 * time.Second}
		go metricsSrv.Serve(ln)
	}
	serveErr := make(chan error, len(lns))
	for _, l := range lns {
		go func() { serveErr <- l.serve(l.ln) }()
	}
	a.printBanner(n, home, dc)
	logger.Info("daemon ready", "peer", n.ID(), "home", home, "socket", lns[0].ln.Addr().String())

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-serveErr:
		runErr = err
		logger.Error("API server stopped", "err", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := srv.Close(sctx); err != nil {
		logger.Warn("API shutdown", "err", err)
	}
	if metricsSrv != nil {
		metricsSrv.Shutdown(sctx)
	}
	if err := closeNode(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	if runErr == nil {
		logger.Info("stopped")
	}
	return runErr
}

// apiListener is one listener and the function that serves it.
type apiListener struct {
	ln    net.Listener
	serve func(net.Listener) error
}

func closeListeners(lns []apiListener) {
	for _, l := range lns {
		l.ln.Close()
	}
}

func (dc *daemonConfig) listenAPI(home string, n *node.Node, logger *slog.Logger) (*api.Server, []apiListener, error) {
	sock := dc.apiSocket
	if sock == "" {
		sock = filepath.Join(home, socketFileName)
	}
	var token string
	if dc.apiTCP != "" {
		t, err := api.LoadOrCreateToken(filepath.Join(home, tokenFileName))
		if err != nil {
			return nil, nil, withCode(exitDataDir, err)
		}
		token = t
	}
	srv := api.NewServer(n, api.ServerOptions{Token: token, Logger: logger})
	uln, err := api.ListenUnix(sock, os.Getuid())
	if err != nil {
		return nil, nil, listenError("API socket", err)
	}
	lns := []apiListener{{ln: uln, serve: srv.ServeUnix}}
	if dc.apiTCP != "" {
		tln, err := api.ListenTCP(dc.apiTCP)
		if err != nil {
			uln.Close()
			return nil, nil, listenError("API TCP", err)
		}
		lns = append(lns, apiListener{ln: tln, serve: srv.ServeTCP})
	}
	return srv, lns, nil
}

func listenError(what string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE), errors.Is(err, api.ErrSocketInUse):
		return withCode(exitAddrInUse, fmt.Errorf("%s: address in use: %w", what, err))
	case errors.Is(err, api.ErrNotLoopback):
		return withCode(exitUsage, fmt.Errorf("%s: %w", what, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// startError gives node start-up failures their exit code.
func startError(err error) error {
	switch {
	case errors.Is(err, datastore.ErrLocked):
		return withCode(exitDataDir, fmt.Errorf("%w (is another conclave daemon using this --home?)", err))
	case errors.Is(err, datastore.ErrWrongPassphrase), errors.Is(err, datastore.ErrPassphraseRequired),
		errors.Is(err, datastore.ErrNoPassphraseSet), errors.Is(err, datastore.ErrCorrupt),
		errors.Is(err, datastore.ErrKeyMismatch), errors.Is(err, datastore.ErrSchemaVersion),
		errors.Is(err, os.ErrPermission):
		return withCode(exitDataDir, err)
	case errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use"):
		// libp2p reports some listen failures only as text.
		return withCode(exitAddrInUse, fmt.Errorf("listen: address in use: %w", err))
	case errors.Is(err, gossip.ErrConfig):
		return withCode(exitUsage, err)
	}
	return err
}

func (dc *daemonConfig) nodeOptions(home string, logger *slog.Logger) (node.Options, *prometheus.Registry, error) {
	ds := datastore.Options{Dir: home, Logger: logger}
	if dc.passphraseFile != "" {
		b, err := os.ReadFile(dc.passphraseFile)
		if err != nil {
			return node.Options{}, nil, withCode(exitDataDir, fmt.Errorf("passphrase file: %w", err))
		}
		p := strings.TrimRight(string(b), "\r\n")
		if p == "" {
			return node.Options{}, nil, withCode(exitUsage, fmt.Errorf("passphrase file %s is empty", dc.passphraseFile))
		}
		ds.Passphrase = []byte(p)
	}
	var dht gossip.DHTMode
	switch dc.dht {
	case "auto":
		dht = gossip.DHTAuto
	case "client":
		dht = gossip.DHTClient
	case "server":
		dht = gossip.DHTServer
	case "off":
		dht = gossip.DHTOff
	default:
		return node.Options{}, nil, usageErr("dht: %q is not one of auto, client, server, off", dc.dht)
	}
	for _, a := range dc.listen {
		if _, err := multiaddr.NewMultiaddr(a); err != nil {
			return node.Options{}, nil, usageErr("listen: %q: %v", a, err)
		}
	}
	boot, err := addrInfos("bootstrap", dc.bootstrap)
	if err != nil {
		return node.Options{}, nil, err
	}
	relays, err := addrInfos("relay", dc.relays)
	if err != nil {
		return node.Options{}, nil, err
	}
	var reg *prometheus.Registry
	var registerer prometheus.Registerer
	if dc.metrics != "" {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		registerer = reg
	}
	return node.Options{
		Datastore: ds,
		Network: gossip.Config{
			ListenAddrs:         dc.listen,
			BootstrapPeers:      boot,
			DHT:                 dht,
			DisableMDNS:         !dc.mdns,
			StaticRelays:        relays,
			DisableAutoRelay:    !dc.autoRelay,
			DisablePortMapping:  !dc.portMapping,
			DisableHolePunching: !dc.holePunching,
			Registerer:          registerer,
		},
		AutoAccept: dc.autoAccept,
		Logger:     logger,
	}, reg, nil
}

func addrInfos(key string, addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, a := range addrs {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil {
			return nil, usageErr("%s: %q: %v (want a multiaddr ending in /p2p/<peer ID>)", key, a, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level: %q is not one of debug, info, warn, error", level)
	}
	ho := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("log-format: %q is not text or json", format)
}

// printBanner tells the person who started the daemon what to do next.
// Its first line is what scripts wait for.
func (a *app) printBanner(n *node.Node, home string, dc *daemonConfig) {
	w := a.stdout
	homeFlag := ""
	if a.home != "" {
		homeFlag = " --home " + a.home
	}
	fmt.Fprintf(w, "conclave daemon ready: peer %s\n", n.ID())
	fmt.Fprintf(w, "  data directory: %s\n", home)
	fmt.Fprintf(w, "  fingerprint:    %s\n", n.Identity().Fingerprint())
	if dc.apiTCP != "" {
		fmt.Fprintf(w, "  API on loopback TCP %s (token in %s)\n", dc.apiTCP, filepath.Join(home, tokenFileName))
	}
	fmt.Fprintf(w, "Next, in another terminal:\n")
	fmt.Fprintf(w, "  conclave%s id                      # your peer ID and addresses, to give to others\n", homeFlag)
	fmt.Fprintf(w, "  conclave%s group create            # start a group; prints its ID\n", homeFlag)
	fmt.Fprintf(w, "  conclave%s group invite GROUP PEER # invite someone by peer ID (connect first with 'peers connect ADDR')\n", homeFlag)
	fmt.Fprintf(w, "  conclave%s invites accept GROUP    # join a group you are invited to (waits for the invitation)\n", homeFlag)
	fmt.Fprintf(w, "  conclave%s chat                    # the chat screen: groups, messages, invitations\n", homeFlag)
	fmt.Fprintf(w, "  conclave%s peers                   # who this node is connected to\n", homeFlag)
	fmt.Fprintf(w, "  conclave%s send GROUP 'hello'      # or from scripts; 'conclave history GROUP' to read\n", homeFlag)
	fmt.Fprintf(w, "Stop with Ctrl-C.\n")
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
