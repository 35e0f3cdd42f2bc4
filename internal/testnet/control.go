package testnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/conclave-im/conclave/api"
)

// The control API: JSON over HTTP on <dir>/testnet.sock (mode 0600, other
// users' connections closed), errors in package api's ErrorBody shape.
//
//	GET  /v1/status            -> Status
//	POST /v1/partition         {"sides": [[1,2],[3,4,5]]} -> Status
//	POST /v1/heal              -> Status
//	POST /v1/nodes/{n}/stop    -> Status
//	POST /v1/nodes/{n}/start   -> Status
//	POST /v1/wait              {"group": "ab12", "timeout_ms": 60000} -> Agreement
//	POST /v1/down              -> 204; the testnet stops

// PartitionRequest is the body of POST /v1/partition.
type PartitionRequest struct {
	Sides [][]int `json:"sides"`
}

// WaitRequest is the body of POST /v1/wait.
type WaitRequest struct {
	Group string `json:"group"`
	// TimeoutMS bounds the wait, at most (and by default) two minutes.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// maxControlBody bounds a control request body.
const maxControlBody = 64 << 10

// opTimeout bounds one control operation (starting a node, dialling).
const opTimeout = 2 * time.Minute

func (t *Testnet) controlPath() string { return filepath.Join(t.dir, ControlSocket) }

type controlServer struct {
	t    *Testnet
	srv  *http.Server
	done chan struct{}
	// base is every request's parent context; close cancels it, so a long
	// wait ends at once instead of holding up the shutdown.
	base   context.Context
	cancel context.CancelFunc
}

func newControlServer(t *Testnet, ln net.Listener) *controlServer {
	c := &controlServer{t: t, done: make(chan struct{})}
	c.base, c.cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", c.status)
	mux.HandleFunc("POST /v1/partition", c.partition)
	mux.HandleFunc("POST /v1/heal", c.heal)
	mux.HandleFunc("POST /v1/nodes/{n}/stop", c.stopNode)
	mux.HandleFunc("POST /v1/nodes/{n}/start", c.startNode)
	mux.HandleFunc("POST /v1/wait", c.wait)
	mux.HandleFunc("POST /v1/down", c.down)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, api.CodeNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	c.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(t.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return c.base },
	}
	go func() {
		defer close(c.done)
		if err := c.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.log.Error("testnet: control API stopped", "err", err)
		}
	}()
	return c
}

func (c *controlServer) close(ctx context.Context) error {
	c.cancel()
	err := c.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, c.srv.Close())
	}
	<-c.done
	return err
}

func (c *controlServer) status(w http.ResponseWriter, r *http.Request) {
	c.replyStatus(w, r, nil)
}

func (c *controlServer) partition(w http.ResponseWriter, r *http.Request) {
	var req PartitionRequest
	if !readJSON(w, r, &req) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	c.replyStatus(w, r, c.t.Partition(ctx, req.Sides))
}

func (c *controlServer) heal(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	c.replyStatus(w, r, c.t.Heal(ctx))
}

func (c *controlServer) stopNode(w http.ResponseWriter, r *http.Request) {
	i, ok := nodeNumber(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	c.replyStatus(w, r, c.t.StopNode(ctx, i))
}

func (c *controlServer) startNode(w http.ResponseWriter, r *http.Request) {
	i, ok := nodeNumber(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	c.replyStatus(w, r, c.t.StartNode(ctx, i))
}

func (c *controlServer) wait(w http.ResponseWriter, r *http.Request) {
	var req WaitRequest
	if !readJSON(w, r, &req) {
		return
	}
	d := opTimeout
	if req.TimeoutMS > 0 && req.TimeoutMS < d.Milliseconds() {
		d = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	defer cancel()
	a, err := c.t.WaitAgree(ctx, req.Group)
	if err != nil {
		writeOpError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// down stops every node before it answers, so that their data directories
// are free once the caller hears back, then asks the program running the
// testnet to close it.
func (c *controlServer) down(w http.ResponseWriter, r *http.Request) {
	defer c.t.requestDown()
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	if err := c.t.shutdown(ctx); err != nil {
		writeOpError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// replyStatus answers with the testnet's status, or with err if the
// operation failed.
func (c *controlServer) replyStatus(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		writeOpError(w, err)
		return
	}
	st, err := c.t.Status(r.Context())
	if err != nil {
		writeOpError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func nodeNumber(w http.ResponseWriter, r *http.Request) (int, bool) {
	s := r.PathValue("n")
	i, err := strconv.Atoi(s)
	if err != nil {
		writeError(w, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf("testnet: %q is not a node number", s))
		return 0, false
	}
	return i, true
}

func writeOpError(w http.ResponseWriter, err error) {
	var ie *InputError
	switch {
	case errors.As(err, &ie):
		writeError(w, http.StatusBadRequest, api.CodeBadRequest, err.Error())
	case errors.Is(err, ErrNotAgreed):
		writeError(w, http.StatusGatewayTimeout, api.CodeTimeout, err.Error())
	case errors.Is(err, ErrNotRunning):
		writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "testnet: shutting down")
	default:
		writeError(w, http.StatusInternalServerError, api.CodeInternal, err.Error())
	}
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, api.CodeBadRequest, "testnet: malformed JSON body: "+err.Error())
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, api.CodeBadRequest, "testnet: malformed JSON body: data after the object")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, api.CodeInternal, "testnet: encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Client talks to a running testnet's control API.
type Client struct {
	dir  string
	sock string
	http *http.Client
}

// NewClient returns a client for the testnet in dir.
func NewClient(dir string) *Client {
	sock := filepath.Join(dir, ControlSocket)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	return &Client{dir: dir, sock: sock, http: &http.Client{Transport: tr}}
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Status returns the testnet's nodes, connections and partition.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	return st, c.do(ctx, "GET", "/v1/status", nil, &st)
}

// Partition cuts the network into sides (see Testnet.Partition).
func (c *Client) Partition(ctx context.Context, sides [][]int) (Status, error) {
	var st Status
	return st, c.do(ctx, "POST", "/v1/partition", PartitionRequest{Sides: sides}, &st)
}

// Heal ends the partition.
func (c *Client) Heal(ctx context.Context) (Status, error) {
	var st Status
	return st, c.do(ctx, "POST", "/v1/heal", nil, &st)
}

// StopNode stops node i (1-based).
func (c *Client) StopNode(ctx context.Context, i int) (Status, error) {
	var st Status
	return st, c.do(ctx, "POST", "/v1/nodes/"+strconv.Itoa(i)+"/stop", nil, &st)
}

// StartNode starts node i (1-based) again.
func (c *Client) StartNode(ctx context.Context, i int) (Status, error) {
	var st Status
	return st, c.do(ctx, "POST", "/v1/nodes/"+strconv.Itoa(i)+"/start", nil, &st)
}

// WaitAgree waits, at most timeout (0: two minutes), until the running
// nodes holding the group agree on it (see Testnet.WaitAgree).
func (c *Client) WaitAgree(ctx context.Context, group string, timeout time.Duration) (Agreement, error) {
	var a Agreement
	return a, c.do(ctx, "POST", "/v1/wait", WaitRequest{Group: group, TimeoutMS: timeout.Milliseconds()}, &a)
}

// Down stops the testnet. It returns once every node has stopped and the
// control socket no longer answers, so a new testnet can start in the
// directory right away.
func (c *Client) Down(ctx context.Context) error {
	if err := c.do(ctx, "POST", "/v1/down", nil, nil); err != nil {
		return err
	}
	c.Close()
	// The program running the testnet closes the socket after the reply;
	// nothing announces that moment, so look until it is gone.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for socketAnswers(c.sock) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("testnet: down: the control socket %s still answers: %w", c.sock, ctx.Err())
		}
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("testnet: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://testnet"+path, body)
	if err != nil {
		return fmt.Errorf("testnet: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("%w in %s (nothing answers at %s)", ErrNotRunning, c.dir, c.sock)
		}
		return fmt.Errorf("testnet: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var eb api.ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxControlBody))
		if json.Unmarshal(b, &eb) != nil || eb.Error.Message == "" {
			return fmt.Errorf("testnet: %s %s: %s", method, path, resp.Status)
		}
		switch resp.StatusCode {
		case http.StatusBadRequest:
			return &InputError{Msg: trimPrefix(eb.Error.Message)}
		case http.StatusGatewayTimeout:
			return fmt.Errorf("%w%s", ErrNotAgreed, strings.TrimPrefix(eb.Error.Message, ErrNotAgreed.Error()))
		}
		return errors.New(eb.Error.Message)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("testnet: decode response of %s %s: %w", method, path, err)
	}
	return nil
}

// trimPrefix drops the "testnet: " an InputError adds, so that the error
// rebuilt on the client side does not say it twice.
func trimPrefix(msg string) string {
	const p = "testnet: "
	if len(msg) >= len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}
