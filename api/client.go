package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// ErrDaemonNotRunning reports that nothing answers at the API address.
var ErrDaemonNotRunning = errors.New("daemon not running")

// Error is an error response from the daemon.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Client talks to a daemon's local API.
type Client struct {
	http  *http.Client
	base  string
	token string
	where string // for error messages
}

// NewUnixClient returns a client for the Unix socket at path.
func NewUnixClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	return &Client{http: &http.Client{Transport: tr}, base: "http://conclave", where: path}
}

// NewTCPClient returns a client for loopback TCP at addr ("127.0.0.1:7419")
// with the bearer token.
func NewTCPClient(addr, token string) *Client {
	return &Client{http: &http.Client{Transport: &http.Transport{}}, base: "http://" + addr, token: token, where: addr}
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("api: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("api: decode response of %s %s: %w", method, path, err)
	}
	return nil
}

// send performs a request and turns error statuses into *Error.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("%w (nothing answers at %s)", ErrDaemonNotRunning, c.where)
		}
		return nil, fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var eb ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes))
		if json.Unmarshal(b, &eb) != nil || eb.Error.Message == "" {
			eb.Error = ErrorDetail{Code: CodeInternal, Message: fmt.Sprintf("%s %s: %s", method, path, resp.Status)}
		}
		return nil, &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	return resp, nil
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, "GET", "/v1/status", nil, &s)
}

// Identity returns the node's identity and addresses.
func (c *Client) Identity(ctx context.Context) (Identity, error) {
	var id Identity
	return id, c.do(ctx, "GET", "/v1/id", nil, &id)
}

// Peers lists the peers the node is connected to.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var out []Peer
	return out, c.do(ctx, "GET", "/v1/peers", nil, &out)
}

// GroupPeers lists the peers on one group's topic; group may be a unique
// prefix.
func (c *Client) GroupPeers(ctx context.Context, group string) (GroupPeers, error) {
	var out GroupPeers
	return out, c.do(ctx, "GET", "/v1/groups/"+url.PathEscape(group)+"/peers", nil, &out)
}

// Connect dials a peer at the given multiaddrs (each ending in /p2p/<id>).
func (c *Client) Connect(ctx context.Context, addrs []string) error {
	return c.do(ctx, "POST", "/v1/peers/connect", ConnectRequest{Addrs: addrs}, nil)
}

// Groups lists the node's groups.
func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	var out []Group
	return out, c.do(ctx, "GET", "/v1/groups", nil, &out)
}

// CreateGroup creates a group and returns its ID.
func (c *Client) CreateGroup(ctx context.Context) (string, error) {
	var out CreatedGroup
	return out.ID, c.do(ctx, "POST", "/v1/groups", nil, &out)
}

// Group returns one group; id may be a unique prefix.
func (c *Client) Group(ctx context.Context, id string) (Group, error) {
	var g Group
	return g, c.do(ctx, "GET", "/v1/groups/"+url.PathEscape(id), nil, &g)
}

// Invite adds a peer to a group and returns the group after the change.
func (c *Client) Invite(ctx context.Context, group, peerID string) (Group, error) {
	var g Group
	return g, c.do(ctx, "POST", "/v1/groups/"+url.PathEscape(group)+"/invite", PeerRequest{Peer: peerID}, &g)
}

// Remove removes a member and returns the group after the change.
func (c *Client) Remove(ctx context.Context, group, peerID string) (Group, error) {
	var g Group
	return g, c.do(ctx, "POST", "/v1/groups/"+url.PathEscape(group)+"/remove", PeerRequest{Peer: peerID}, &g)
}

// Contacts lists the contacts.
func (c *Client) Contacts(ctx context.Context) ([]Contact, error) {
	var out []Contact
	return out, c.do(ctx, "GET", "/v1/contacts", nil, &out)
}

// Contact returns one contact, with the safety code to compare.
func (c *Client) Contact(ctx context.Context, peerID string) (Contact, error) {
	var out Contact
	return out, c.do(ctx, "GET", "/v1/contacts/"+url.PathEscape(peerID), nil, &out)
}

// AddContact adds peerID under name (or renames an existing contact).
func (c *Client) AddContact(ctx context.Context, peerID, name string) (Contact, error) {
	var out Contact
	return out, c.do(ctx, "POST", "/v1/contacts", ContactRequest{Peer: peerID, Name: name}, &out)
}

// RenameContact renames a contact.
func (c *Client) RenameContact(ctx context.Context, peerID, name string) (Contact, error) {
	var out Contact
	return out, c.do(ctx, "POST", "/v1/contacts/"+url.PathEscape(peerID)+"/rename", RenameRequest{Name: name}, &out)
}

// VerifyContact records that code, read out by the person behind peerID,
// matched; a code that does not match is refused.
func (c *Client) VerifyContact(ctx context.Context, peerID, code, name string) (Contact, error) {
	var out Contact
	return out, c.do(ctx, "POST", "/v1/contacts/"+url.PathEscape(peerID)+"/verify", VerifyRequest{Code: code, Name: name}, &out)
}

// Leave asks the group to remove this node and returns once the removal is
// decided.
func (c *Client) Leave(ctx context.Context, group string) error {
	return c.do(ctx, "POST", "/v1/groups/"+url.PathEscape(group)+"/leave", nil, nil)
}

// History returns the newest limit entries of a group's history, oldest
// first; limit 0 means the server's default.
func (c *Client) History(ctx context.Context, group string, limit int) ([]Message, error) {
	p := "/v1/groups/" + url.PathEscape(group) + "/messages"
	if limit > 0 {
		p += "?limit=" + strconv.Itoa(limit)
	}
	var out []Message
	return out, c.do(ctx, "GET", p, nil, &out)
}

// Send sends a text message.
func (c *Client) Send(ctx context.Context, group, text, replyTo string) (Message, error) {
	var m Message
	return m, c.do(ctx, "POST", "/v1/groups/"+url.PathEscape(group)+"/messages", SendRequest{Text: text, ReplyTo: replyTo}, &m)
}

// Invitations lists pending invitations.
func (c *Client) Invitations(ctx context.Context) ([]Invitation, error) {
	var out []Invitation
	return out, c.do(ctx, "GET", "/v1/invitations", nil, &out)
}

// Accept joins the group of a pending invitation.
func (c *Client) Accept(ctx context.Context, group string) (Group, error) {
	var g Group
	return g, c.do(ctx, "POST", "/v1/invitations/"+url.PathEscape(group)+"/accept", nil, &g)
}

// Decline drops a pending invitation.
func (c *Client) Decline(ctx context.Context, group string) error {
	return c.do(ctx, "POST", "/v1/invitations/"+url.PathEscape(group)+"/decline", nil, nil)
}

// EventStream is an open event stream.
type EventStream struct {
	body io.ReadCloser
	sc   *bufio.Scanner
}

// Events opens the event stream, optionally for one group. It returns once
// the daemon has subscribed, so every event after the call is seen.
func (c *Client) Events(ctx context.Context, group string) (*EventStream, error) {
	p := "/v1/events"
	if group != "" {
		p += "?group=" + url.QueryEscape(group)
	}
	resp, err := c.send(ctx, "GET", p, nil)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 2*MaxBodyBytes)
	es := &EventStream{body: resp.Body, sc: sc}
	// The server's first line is a comment sent after subscribing.
	if !sc.Scan() {
		resp.Body.Close()
		return nil, fmt.Errorf("api: event stream ended before it started: %v", sc.Err())
	}
	return es, nil
}

// Next returns the next event. It returns io.EOF when the stream ends.
func (es *EventStream) Next() (Event, error) {
	var data []byte
	for es.sc.Scan() {
		line := es.sc.Text()
		switch {
		case line == "":
			if data == nil {
				continue
			}
			var ev Event
			if err := json.Unmarshal(data, &ev); err != nil {
				return Event{}, fmt.Errorf("api: malformed event: %w", err)
			}
			return ev, nil
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
		}
	}
	if err := es.sc.Err(); err != nil {
		return Event{}, err
	}
	return Event{}, io.EOF
}

// Close ends the stream.
func (es *EventStream) Close() error { return es.body.Close() }
