package interop

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/conclave-im/conclave/internal/interop/mlsclientpb"
	"github.com/conclave-im/conclave/mls"
)

// Scenarios are the working group's scenario files, by name, that the
// project carries in testdata/interop.
var Scenarios = []string{
	"welcome_join", "commit", "application", "external_join",
	"external_proposals", "reinit", "branch", "deep_random",
}

// Outcome is the result of one run of one script.
type Outcome struct {
	Scenario string
	Script   string
	Suite    uint32
	Encrypt  bool
	Shift    int
	Err      error
}

// Mode names the handshake framing of a run.
func (o Outcome) Mode() string {
	if o.Encrypt {
		return "private"
	}
	return "public"
}

// RunOptions select the runs of a scenario.
type RunOptions struct {
	// Shifts are the assignments of actors to clients (see Assign); nil
	// means one assignment per client, so that with two clients every actor
	// is played once by each.
	Shifts []int
	// RunTimeout bounds one run of one script; zero means five minutes.
	RunTimeout time.Duration
}

// RunScenario runs every script of a scenario for one suite, with public
// and private handshake messages and each assignment of actors to clients.
func RunScenario(ctx context.Context, name string, cfg *Config, clients []*Client, suite uint32, opts RunOptions) []Outcome {
	shifts := opts.Shifts
	if shifts == nil {
		for i := range clients {
			shifts = append(shifts, i)
		}
	}
	timeout := opts.RunTimeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	common := CommonSuites(clients)
	var out []Outcome
	for _, script := range cfg.ScriptNames() {
		s := cfg.Scripts[script]
		for _, encrypt := range []bool{false, true} {
			for _, shift := range shifts {
				run := &Run{Suite: suite, Encrypt: encrypt, Actors: Assign(s.Actors(), clients, shift), Suites: common}
				rctx, cancel := context.WithTimeout(ctx, timeout)
				err := run.Execute(rctx, s)
				cancel()
				out = append(out, Outcome{Scenario: name, Script: script, Suite: suite, Encrypt: encrypt, Shift: shift, Err: err})
			}
		}
	}
	return out
}

// Loopback is a set of in-process MLSClient servers on loopback TCP and a
// client connection to each.
type Loopback struct {
	Clients []*Client
	servers []*grpc.Server
	conns   []*grpc.ClientConn
}

// StartLoopback starts n servers, each with its own Service, and connects
// to them.
func StartLoopback(ctx context.Context, n int) (*Loopback, error) {
	lb := &Loopback{}
	for range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			lb.Close()
			return nil, fmt.Errorf("interop: listen: %w", err)
		}
		srv := grpc.NewServer()
		mlsclientpb.RegisterMLSClientServer(srv, NewService(&mls.Config{}))
		lb.servers = append(lb.servers, srv)
		go func() { _ = srv.Serve(lis) }() // Serve returns when Close stops the server
		c, err := Dial(ctx, lis.Addr().String())
		if err != nil {
			lb.Close()
			return nil, err
		}
		lb.conns = append(lb.conns, c.conn)
		lb.Clients = append(lb.Clients, c.Client)
	}
	return lb, nil
}

// Close stops the servers and closes the connections.
func (lb *Loopback) Close() {
	for _, c := range lb.conns {
		_ = c.Close()
	}
	for _, s := range lb.servers {
		s.Stop()
	}
}

// Conn is a Client with the connection it owns.
type Conn struct {
	*Client
	conn *grpc.ClientConn
}

// Close closes the connection.
func (c *Conn) Close() error { return c.conn.Close() }

// Dial connects to an MLSClient server at addr (host:port, no TLS, as the
// working group's runner connects) and asks for its name and suites.
func Dial(ctx context.Context, addr string) (*Conn, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("interop: dial %s: %w", addr, err)
	}
	c, err := NewClient(ctx, conn)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("interop: %s: %w", addr, err)
	}
	return &Conn{Client: c, conn: conn}, nil
}

// Failed returns the outcomes that failed.
func Failed(outcomes []Outcome) []Outcome {
	var out []Outcome
	for _, o := range outcomes {
		if o.Err != nil {
			out = append(out, o)
		}
	}
	return out
}
