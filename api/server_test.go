package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/gossip"
	"github.com/conclave-im/conclave/node"
	"github.com/conclave-im/conclave/profile"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startNode starts a real node with an in-memory store on 127.0.0.1 only.
func startNode(t *testing.T) *node.Node { return startNodeTB(t) }

func startNodeTB(t testing.TB) *node.Node {
	t.Helper()
	p := profile.Default()
	p.KeyPackages.PoolSize = 2
	p.KeyPackages.RefillBelow = 1
	n, err := node.New(node.Options{
		Datastore: datastore.Options{Backend: datastore.BackendMemory, Logger: quietLogger()},
		Profile:   p,
		Network: gossip.Config{
			ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, DisableMDNS: true, DisablePortMapping: true,
			DisableAutoRelay: true, DisableHolePunching: true, DHT: gossip.DHTOff,
		},
		Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	return n
}

// shortDir is a temporary directory with a short path: Unix socket paths
// are limited to about 100 bytes.
func shortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "capi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

type fixture struct {
	node   *node.Node
	srv    *Server
	sock   string
	tcp    string
	token  string
	client *Client
}

// serve starts a server for n on a Unix socket and on loopback TCP.
func serve(t *testing.T, n *node.Node) *fixture { return serveTB(t, n) }

func serveTB(t testing.TB, n *node.Node) *fixture {
	t.Helper()
	dir := shortDir(t)
	tok, err := LoadOrCreateToken(filepath.Join(dir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(n, ServerOptions{Token: tok, Logger: quietLogger()})
	sock := filepath.Join(dir, "s.sock")
	uln, err := ListenUnix(sock, os.Getuid())
	if err != nil {
		t.Fatal(err)
	}
	tln, err := ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { srv.ServeUnix(uln); done <- struct{}{} }()
	go func() { srv.ServeTCP(tln); done <- struct{}{} }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close server: %v", err)
		}
		<-done
		<-done
	})
	c := NewUnixClient(sock)
	t.Cleanup(c.Close)
	return &fixture{node: n, srv: srv, sock: sock, tcp: tln.Addr().String(), token: tok, client: c}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func decodeError(t *testing.T, resp *http.Response) ErrorBody {
	t.Helper()
	var eb ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
		t.Fatalf("error body is not JSON: %v", err)
	}
	if eb.Error.Code == "" || eb.Error.Message == "" {
		t.Fatalf("error body without code or message: %+v", eb)
	}
	return eb
}

func TestTCPNeedsTokenAndLoopbackHost(t *testing.T) {
	f := serve(t, startNode(t))
	tests := []struct {
		name   string
		auth   string
		host   string
		status int
		code   string
	}{
		{"no token", "", "", http.StatusUnauthorized, CodeUnauthorized},
		{"wrong token", "Bearer " + strings.Repeat("0", 64), "", http.StatusUnauthorized, CodeUnauthorized},
		{"token without scheme", f.token, "", http.StatusUnauthorized, CodeUnauthorized},
		{"basic scheme", "Basic " + f.token, "", http.StatusUnauthorized, CodeUnauthorized},
		{"token prefix", "Bearer " + f.token[:32], "", http.StatusUnauthorized, CodeUnauthorized},
		{"rebound host name", "Bearer " + f.token, "evil.example:80", http.StatusForbidden, CodeForbidden},
		{"right token", "Bearer " + f.token, "", http.StatusOK, ""},
		{"right token, localhost", "Bearer " + f.token, "localhost", http.StatusOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctxT(t), "GET", "http://"+f.tcp+"/v1/status", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.code != "" {
				if eb := decodeError(t, resp); eb.Error.Code != tc.code {
					t.Fatalf("code %q, want %q", eb.Error.Code, tc.code)
				}
				return
			}
			var s Status
			if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || s.PeerID != f.node.ID() {
				t.Fatalf("status %+v, %v", s, err)
			}
		})
	}

	// The client type carries the token.
	c := NewTCPClient(f.tcp, f.token)
	defer c.Close()
	if _, err := c.Identity(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	bad := NewTCPClient(f.tcp, "nope")
	defer bad.Close()
	var ae *Error
	if _, err := bad.Identity(ctxT(t)); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestMalformedRequestsRefused(t *testing.T) {
	f := serve(t, startNode(t))
	ctx := ctxT(t)
	gid, err := f.client.CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs := "/v1/groups/" + gid + "/messages"
	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"truncated JSON", "POST", msgs, `{"text":`, http.StatusBadRequest},
		{"not JSON", "POST", msgs, `hello`, http.StatusBadRequest},
		{"wrong field type", "POST", msgs, `{"text":1}`, http.StatusBadRequest},
		{"unknown field", "POST", msgs, `{"text":"hi","admin":true}`, http.StatusBadRequest},
		{"trailing data", "POST", msgs, `{"text":"hi"}{"text":"again"}`, http.StatusBadRequest},
		{"array", "POST", msgs, `["hi"]`, http.StatusBadRequest},
		{"empty body", "POST", msgs, ``, http.StatusBadRequest},
		{"empty text", "POST", msgs, `{"text":""}`, http.StatusBadRequest},
		{"bad reply_to", "POST", msgs, `{"text":"hi","reply_to":"xyz"}`, http.StatusBadRequest},
		{"too large", "POST", msgs, `{"text":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, http.StatusRequestEntityTooLarge},
		{"unknown field on create", "POST", "/v1/groups", `{"admin":true}`, http.StatusBadRequest},
		{"bad peer ID", "POST", "/v1/groups/" + gid + "/invite", `{"peer":"not-a-peer"}`, http.StatusBadRequest},
		{"connect without p2p", "POST", "/v1/peers/connect", `{"addrs":["/ip4/127.0.0.1/tcp/1"]}`, http.StatusBadRequest},
		{"connect garbage", "POST", "/v1/peers/connect", `{"addrs":["garbage"]}`, http.StatusBadRequest},
		{"non-hex group", "GET", "/v1/groups/zzzzzz", ``, http.StatusBadRequest},
		{"short group prefix", "GET", "/v1/groups/ab", ``, http.StatusBadRequest},
		{"unknown group", "GET", "/v1/groups/" + strings.Repeat("0", 64), ``, http.StatusNotFound},
		{"bad limit", "GET", msgs + "?limit=abc", ``, http.StatusBadRequest},
		{"limit too big", "GET", msgs + "?limit=100000", ``, http.StatusBadRequest},
		{"no invitation", "POST", "/v1/invitations/" + gid + "/accept", ``, http.StatusNotFound},
		{"unknown path", "GET", "/v2/status", ``, http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := f.client.http.Do(mustRequest(t, tc.method, "http://conclave"+tc.path, tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			decodeError(t, resp)
		})
	}
	// Nothing reached the group.
	h, err := f.client.History(ctx, gid, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 0 {
		t.Fatalf("history after refused requests: %+v", h)
	}
	// And the API still works.
	if _, err := f.client.Send(ctx, gid[:8], "fine", ""); err != nil {
		t.Fatal(err)
	}
}

func mustRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctxT(t), method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestUnixSocketOwnerOnly(t *testing.T) {
	f := serve(t, startNode(t))
	fi, err := os.Stat(f.sock)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("socket mode %v, want 0600", perm)
	}

	// A listener that admits only another user drops our connections
	// before any request is read.
	dir := shortDir(t)
	sock := filepath.Join(dir, "o.sock")
	ln, err := ListenUnix(sock, os.Getuid()+1)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(f.node, ServerOptions{Logger: quietLogger()})
	done := make(chan struct{})
	go func() { srv.ServeUnix(ln); close(done) }()
	defer func() { srv.Close(context.Background()); <-done }()
	c := NewUnixClient(sock)
	defer c.Close()
	_, err = c.Status(ctxT(t))
	var ae *Error
	if err == nil || errors.As(err, &ae) {
		t.Fatalf("request from another user: got %v, want the connection dropped", err)
	}
}

func TestListeners(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:7419", "[::]:0", "example.com:80", "nonsense"} {
		if _, err := ListenTCP(addr); err == nil {
			t.Errorf("ListenTCP(%q) accepted a non-loopback address", addr)
		}
	}
	dir := shortDir(t)
	sock := filepath.Join(dir, "x.sock")
	ln, err := ListenUnix(sock, os.Getuid())
	if err != nil {
		t.Fatal(err)
	}
	go func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}(ln)
	if _, err := ListenUnix(sock, os.Getuid()); !errors.Is(err, ErrSocketInUse) {
		t.Fatalf("second listener on a live socket: %v", err)
	}
	ln.Close()
	// A socket file left behind by a dead daemon is replaced.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	ln, err = ListenUnix(sock, os.Getuid())
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	ln.Close()
	// A regular file at the path is never removed.
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("x"), 0o600)
	if _, err := ListenUnix(plain, os.Getuid()); err == nil {
		t.Fatal("ListenUnix replaced a regular file")
	}
}

func TestTokenFile(t *testing.T) {
	dir := shortDir(t)
	p := filepath.Join(dir, "api.token")
	tok, err := LoadOrCreateToken(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, %v", fi.Mode().Perm(), err)
	}
	again, err := LoadOrCreateToken(p)
	if err != nil || again != tok {
		t.Fatalf("reloaded token %q, %v; want %q", again, err, tok)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateToken(p); err == nil {
		t.Fatal("a token file readable by others was used")
	}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	if _, err := LoadOrCreateToken(short); err == nil {
		t.Fatal("a short token was used")
	}
}

func TestEventStream(t *testing.T) {
	f := serve(t, startNode(t))
	ctx := ctxT(t)
	es, err := f.client.Events(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	gid, err := f.client.CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := es.Next()
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != EventGroupJoined || ev.GroupID != gid {
		t.Fatalf("first event %+v, want group_joined %s", ev, gid)
	}
	// A stream for the group sees the message too.
	gs, err := f.client.Events(ctx, gid[:6])
	if err != nil {
		t.Fatal(err)
	}
	defer gs.Close()
	sent, err := f.client.Send(ctx, gid, "hello, stream", "")
	if err != nil {
		t.Fatal(err)
	}
	// Alone in the group, the message waits for a member to be online.
	if sent.State != StatePending || sent.Waiting != "no member of the group is online" {
		t.Fatalf("sent message in state %q (%q), want pending for want of members", sent.State, sent.Waiting)
	}
	for _, s := range []*EventStream{es, gs} {
		ev, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type != EventMessage || ev.Message == nil || ev.Message.ID != sent.ID || ev.Message.Text != "hello, stream" || !ev.Message.Own || ev.Message.State != StatePending {
			t.Fatalf("event %+v, want the message %+v", ev, sent)
		}
		ev, err = s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type != EventMessageState || ev.GroupID != gid || ev.MessageID != sent.ID || ev.State != StatePending || ev.Waiting != sent.Waiting {
			t.Fatalf("event %+v, want the message's state: %s", ev, sent.Waiting)
		}
	}
	h, err := f.client.History(ctx, gid, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h[0].State != StatePending || h[0].Waiting != sent.Waiting {
		t.Fatalf("history %+v, want the pending message", h)
	}
	// Closing the server ends open streams.
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.srv.Close(cctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := es.Next(); err != nil {
			break
		}
		if i == 100 {
			t.Fatal("stream still open after Close")
		}
	}
}

// TestPeers lists a connected peer with its address, and the empty topic
// of a group of one.
func TestPeers(t *testing.T) {
	f := serve(t, startNode(t))
	other := startNode(t)
	ctx := ctxT(t)
	ps, err := f.client.Peers(ctx)
	if err != nil || len(ps) != 0 {
		t.Fatalf("peers before connecting: %v, %v", ps, err)
	}
	ai := other.AddrInfo()
	full, err := peer.AddrInfoToP2pAddrs(&ai)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.client.Connect(ctx, []string{full[0].String()}); err != nil {
		t.Fatal(err)
	}
	ps, err = f.client.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].PeerID != other.ID() || len(ps[0].Addrs) == 0 || len(ps[0].Groups) != 0 {
		t.Fatalf("peers %+v, want %s with its address", ps, other.ID())
	}
	st, err := f.client.Status(ctx)
	if err != nil || st.Peers != 1 {
		t.Fatalf("status %+v, %v: want 1 peer", st, err)
	}
	gid, err := f.client.CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gp, err := f.client.GroupPeers(ctx, gid[:6])
	if err != nil || gp.GroupID != gid || gp.Peers == nil || len(gp.Peers) != 0 {
		t.Fatalf("group peers %+v, %v", gp, err)
	}
	g, err := f.client.Group(ctx, gid)
	if err != nil || g.Pending == nil || len(g.Pending) != 0 {
		t.Fatalf("group %+v, %v: want no pending change", g, err)
	}
	if _, err := f.client.GroupPeers(ctx, "ffffffff"); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("peers of an unknown group: %v", err)
	}
}

func isStatus(err error, status int) bool {
	var ae *Error
	return errors.As(err, &ae) && ae.Status == status
}
