package testnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/conclave-im/conclave/api"
	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/gossip"
	"github.com/conclave-im/conclave/node"
)

// Files in a testnet directory besides the nodes' data directories.
const (
	// ControlSocket is the control API's Unix socket.
	ControlSocket = "testnet.sock"
	// MarkerFile records that a directory is a testnet's (so Reset never
	// wipes anything else) and how many nodes it had.
	MarkerFile = "testnet.json"
	// NodeSocket is each node's API socket in its data directory, where
	// conclave --home finds it.
	NodeSocket = "conclave.sock"
)

// maxSocketPath is the longest Unix socket path every supported platform
// takes (macOS allows 104 bytes with the terminating NUL, Linux 108).
const maxSocketPath = 103

// MaxNodes bounds a testnet: every node is a full node with its own host
// in this process, and the mesh has n·(n-1)/2 connections.
const MaxNodes = 32

// Timeouts for work the control API does on the nodes' behalf.
const (
	dialTimeout  = 10 * time.Second
	startTimeout = time.Minute
	closeTimeout = 30 * time.Second
)

// Errors.
var (
	// ErrNotRunning: nothing answers at the testnet's control socket.
	ErrNotRunning = errors.New("testnet not running")
	// ErrRunning: a testnet already runs in the directory.
	ErrRunning = errors.New("testnet: already running")
)

// InputError is a request the testnet refuses as given: an unknown node
// number, overlapping sides, a node already stopped, and the like.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return "testnet: " + e.Msg }

func inputErr(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

// Options configure a testnet.
type Options struct {
	// Dir holds the nodes' data directories, the control socket and the
	// marker file. Created 0700 if missing; existing node data is reused.
	Dir string
	// Nodes is the number of nodes, 1 to MaxNodes.
	Nodes int
	// AutoAccept makes every node join groups as soon as an invitation
	// arrives (like the daemon's auto-accept).
	AutoAccept bool
	// Logger receives the testnet's own logs: partitions, heals, nodes
	// stopped and started; nil means slog.Default().
	Logger *slog.Logger
	// NodeLogger receives the nodes' logs and their API servers'; nil
	// means Logger.
	NodeLogger *slog.Logger

	// waitHook, set only by tests, runs when WaitAgree has subscribed.
	waitHook func()
}

// Testnet is a running local network of nodes. Its methods are safe for
// concurrent use; changes to the network (Partition, Heal, StopNode,
// StartNode, Close) run one at a time.
type Testnet struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	nodes  []*member // nodes[i] is node i+1
	sides  [][]int   // the partition in force, nil when healed
	closed bool

	control     *controlServer
	closeOnce   sync.Once
	downOnce    sync.Once
	downRequest chan struct{} // closed when the control API asks the testnet to go down
}

// member is one node of the testnet, running or stopped.
type member struct {
	index  int
	name   string
	home   string
	socket string
	id     peer.ID // known from the first start on; stable across restarts

	node  *node.Node // nil while stopped
	srv   *api.Server
	serve chan error // the API server's result
}

type marker struct {
	Nodes int `json:"nodes"`
}

// ReadMarker returns the number of nodes the testnet in dir last ran with,
// or 0 when dir holds no testnet.
func ReadMarker(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, MarkerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("testnet: %w", err)
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil || m.Nodes < 1 || m.Nodes > MaxNodes {
		return 0, fmt.Errorf("testnet: %s is not a testnet marker file (delete it, or use another --dir)", filepath.Join(dir, MarkerFile))
	}
	return m.Nodes, nil
}

// Reset deletes the testnet in dir with every node's data. It refuses a
// directory that is neither empty nor a testnet's (no marker file), so a
// mistyped --dir never wipes anything else, and a testnet that is running.
func Reset(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("testnet: reset: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, MarkerFile)); err != nil {
		return inputErr("refusing to reset %s: it holds no %s, so it is not a testnet directory", dir, MarkerFile)
	}
	if socketAnswers(filepath.Join(dir, ControlSocket)) {
		return fmt.Errorf("%w in %s: stop it with `conclave testnet down` before resetting", ErrRunning, dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("testnet: reset: %w", err)
	}
	return nil
}

func socketAnswers(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Start starts a testnet: every node with its API socket, connected in a
// full mesh, and the control API. ctx bounds start-up only. The testnet
// runs until Close.
func Start(ctx context.Context, opts Options) (*Testnet, error) {
	if opts.Dir == "" {
		return nil, inputErr("no directory")
	}
	if opts.Nodes < 1 || opts.Nodes > MaxNodes {
		return nil, inputErr("%d nodes: a testnet has 1 to %d", opts.Nodes, MaxNodes)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.NodeLogger == nil {
		opts.NodeLogger = opts.Logger
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("testnet: directory %q: %w", opts.Dir, err)
	}
	longest := filepath.Join(dir, "node"+strconv.Itoa(opts.Nodes), NodeSocket)
	if len(longest) > maxSocketPath {
		return nil, inputErr("directory %s is too long for a Unix socket path (%s is %d bytes, at most %d work everywhere): use a shorter one", dir, longest, len(longest), maxSocketPath)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("testnet: %w", err)
	}
	prev, err := ReadMarker(dir)
	if err != nil {
		return nil, err
	}
	if prev == 0 {
		// Only a testnet's own directory, or an empty one: a later --reset
		// deletes the whole directory, so it must never be someone's data.
		if entries, err := os.ReadDir(dir); err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		} else if len(entries) > 0 {
			return nil, inputErr("refusing to use %s: it is not empty and holds no %s, so it is not a testnet directory (give a new or empty --dir)", dir, MarkerFile)
		}
	}
	t := &Testnet{dir: dir, opts: opts, log: opts.Logger, downRequest: make(chan struct{})}

	// The control socket first: it is what tells a second `testnet up` on
	// the same directory that this one runs.
	ln, err := api.ListenUnix(filepath.Join(dir, ControlSocket), os.Getuid())
	if errors.Is(err, api.ErrSocketInUse) {
		return nil, fmt.Errorf("%w in %s", ErrRunning, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("testnet: control socket: %w", err)
	}
	b, _ := json.Marshal(marker{Nodes: opts.Nodes})
	if err := os.WriteFile(filepath.Join(dir, MarkerFile), append(b, '\n'), 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("testnet: %w", err)
	}

	for i := 1; i <= opts.Nodes; i++ {
		home := filepath.Join(dir, "node"+strconv.Itoa(i))
		t.nodes = append(t.nodes, &member{index: i, name: "node" + strconv.Itoa(i), home: home, socket: filepath.Join(home, NodeSocket)})
	}
	errs := make([]error, len(t.nodes))
	var wg sync.WaitGroup
	for i, m := range t.nodes {
		wg.Go(func() { errs[i] = t.startMember(ctx, m) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		ln.Close()
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		t.stopAll(cctx)
		return nil, err
	}
	if err := t.connect(ctx, nil); err != nil {
		t.log.Warn("testnet: connecting the mesh", "err", err)
	}
	t.control = newControlServer(t, ln)
	return t, nil
}

// nodeOptions are the options of every testnet node: loopback only, no
// discovery or NAT traversal, so nodes meet only whom the testnet
// connects them to.
func (t *Testnet) nodeOptions(m *member) node.Options {
	log := t.opts.NodeLogger.With("testnet", m.name)
	return node.Options{
		Datastore: datastore.Options{Dir: m.home, Logger: log},
		Network: gossip.Config{
			ListenAddrs:         []string{"/ip4/127.0.0.1/tcp/0"},
			DHT:                 gossip.DHTOff,
			DisableMDNS:         true,
			DisableAutoRelay:    true,
			DisablePortMapping:  true,
			DisableHolePunching: true,
		},
		AutoAccept: t.opts.AutoAccept,
		Logger:     log,
	}
}

// startMember starts one node and serves its API. The caller holds t.mu,
// or is Start, before the testnet is shared (one goroutine per member).
func (t *Testnet) startMember(ctx context.Context, m *member) error {
	if err := os.MkdirAll(m.home, 0o700); err != nil {
		return fmt.Errorf("testnet: %s: %w", m.name, err)
	}
	n, err := node.New(t.nodeOptions(m))
	if err != nil {
		return fmt.Errorf("testnet: %s: %w", m.name, err)
	}
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	err = n.Start(sctx)
	cancel()
	if err != nil {
		return fmt.Errorf("testnet: start %s: %w", m.name, err)
	}
	fail := func(err error) error {
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		return errors.Join(err, n.Close(cctx))
	}
	ln, err := api.ListenUnix(m.socket, os.Getuid())
	if err != nil {
		return fail(fmt.Errorf("testnet: %s: API socket: %w", m.name, err))
	}
	m.node, m.id = n, n.AddrInfo().ID
	m.srv = api.NewServer(n, api.ServerOptions{Logger: t.opts.NodeLogger.With("testnet", m.name)})
	m.serve = make(chan error, 1)
	go func(srv *api.Server, done chan<- error) { done <- srv.ServeUnix(ln) }(m.srv, m.serve)
	return nil
}

// stopMember stops the API server, then the node.
func (t *Testnet) stopMember(ctx context.Context, m *member) error {
	if m.node == nil {
		return nil
	}
	err := m.srv.Close(ctx)
	if serr := <-m.serve; serr != nil {
		err = errors.Join(err, serr)
	}
	err = errors.Join(err, m.node.Close(ctx))
	m.node, m.srv, m.serve = nil, nil, nil
	if err != nil {
		return fmt.Errorf("testnet: stop %s: %w", m.name, err)
	}
	return nil
}

func (t *Testnet) stopAll(ctx context.Context) error {
	errs := make([]error, len(t.nodes))
	var wg sync.WaitGroup
	for i, m := range t.nodes {
		wg.Go(func() { errs[i] = t.stopMember(ctx, m) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Dir returns the testnet's directory (absolute).
func (t *Testnet) Dir() string { return t.dir }

// Len returns the number of nodes.
func (t *Testnet) Len() int { return len(t.nodes) }

// Node returns node i (1-based) while it runs, else nil. Tests drive it
// directly; everyone else goes through its API socket.
func (t *Testnet) Node(i int) *node.Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i < 1 || i > len(t.nodes) {
		return nil
	}
	return t.nodes[i-1].node
}

// Home returns the data directory of node i (1-based), "" for none.
func (t *Testnet) Home(i int) string {
	if i < 1 || i > len(t.nodes) {
		return ""
	}
	return t.nodes[i-1].home
}

// Socket returns the API socket of node i (1-based), "" for none.
func (t *Testnet) Socket(i int) string {
	if i < 1 || i > len(t.nodes) {
		return ""
	}
	return t.nodes[i-1].socket
}

// Client returns an API client for node i (1-based), as `conclave --home`
// would use.
func (t *Testnet) Client(i int) *api.Client { return api.NewUnixClient(t.Socket(i)) }

// Done is closed when the control API asked the testnet to go down; the
// program running it should then Close it.
func (t *Testnet) Done() <-chan struct{} { return t.downRequest }

func (t *Testnet) requestDown() { t.downOnce.Do(func() { close(t.downRequest) }) }

// member returns node i, or an InputError naming the valid range.
func (t *Testnet) member(i int) (*member, error) {
	if i < 1 || i > len(t.nodes) {
		return nil, inputErr("there is no node %d: the testnet has nodes 1 to %d", i, len(t.nodes))
	}
	return t.nodes[i-1], nil
}

// StopNode stops node i (1-based) as if its owner shut it down: its API
// socket goes away and the others lose their connections to it. Its data
// stays, for StartNode.
func (t *Testnet) StopNode(ctx context.Context, i int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrNotRunning
	}
	m, err := t.member(i)
	if err != nil {
		return err
	}
	if m.node == nil {
		return inputErr("%s is already stopped", m.name)
	}
	if err := t.stopMember(ctx, m); err != nil {
		return err
	}
	t.log.Info("testnet: stopped "+m.name, "peer", m.id)
	// The others would notice the closed connections only when they next
	// read from them; close their ends now, so that status right after a
	// stop shows nobody connected to the stopped node. Blocking closes the
	// connections; applyBlocks lifts the block again where the partition
	// allows.
	for _, a := range t.nodes {
		if a.node != nil {
			a.node.Block(m.id)
		}
	}
	t.applyBlocks()
	return nil
}

// StartNode starts node i (1-based) again from its data directory and
// connects it to every running node the partition in force allows.
func (t *Testnet) StartNode(ctx context.Context, i int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrNotRunning
	}
	m, err := t.member(i)
	if err != nil {
		return err
	}
	if m.node != nil {
		return inputErr("%s is already running", m.name)
	}
	if err := t.startMember(ctx, m); err != nil {
		return err
	}
	t.log.Info("testnet: started "+m.name, "peer", m.id)
	t.applyBlocks()
	return t.connect(ctx, m)
}

// Close stops the control API and every node.
func (t *Testnet) Close(ctx context.Context) error {
	var err error
	t.closeOnce.Do(func() {
		t.requestDown()
		if t.control != nil {
			err = t.control.close(ctx)
		}
		err = errors.Join(err, t.shutdown(ctx))
	})
	return err
}

// shutdown stops every node and refuses further changes; the control API
// keeps answering (with ErrNotRunning) until Close.
func (t *Testnet) shutdown(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	return t.stopAll(ctx)
}

// side returns the side (0-based) node i is on, or 0 when healed.
func (t *Testnet) side(i int) int {
	for s, members := range t.sides {
		if slices.Contains(members, i) {
			return s
		}
	}
	return 0
}

// applyBlocks makes every running node's gater refuse exactly the nodes on
// other sides (closing open connections to them) and allow the rest.
func (t *Testnet) applyBlocks() {
	for _, a := range t.nodes {
		if a.node == nil {
			continue
		}
		for _, b := range t.nodes {
			if a == b || b.id == "" {
				continue
			}
			if t.side(a.index) != t.side(b.index) {
				a.node.Block(b.id)
			} else {
				a.node.Unblock(b.id)
			}
		}
	}
}

// connect dials every pair of running nodes on the same side that is not
// connected yet. first, if set, does the dialling for its pairs: a dialler
// knows its connection at once, the other end a moment later, so the node
// just started shows its connections in the status that follows.
func (t *Testnet) connect(ctx context.Context, first *member) error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for i, a := range t.nodes {
		for _, b := range t.nodes[i+1:] {
			if a.node == nil || b.node == nil || t.side(a.index) != t.side(b.index) {
				continue
			}
			from, to := a, b
			if to == first {
				from, to = b, a
			}
			na, ai := from.node, to.node.AddrInfo()
			wg.Go(func() {
				dctx, cancel := context.WithTimeout(ctx, dialTimeout)
				defer cancel()
				if err := na.Connect(dctx, ai); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("testnet: connect %s to %s: %w", from.name, to.name, err))
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}
