package gossip

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Direct stream protocol IDs. Each stream carries one request envelope and
// one response envelope; a new major version gets a new ID.
const (
	ProtoKeyPackage protocol.ID = "/conclave/keypackage/1.0.0"
	ProtoWelcome    protocol.ID = "/conclave/welcome/1.0.0"
	ProtoSync       protocol.ID = "/conclave/sync/1.0.0"
	ProtoDirect     protocol.ID = "/conclave/direct/1.0.0"
	ProtoPayload    protocol.ID = "/conclave/payload/1.0.0"
)

// Sync page limits: a request's Limit of 0 means defaultSyncLimit, and no
// page holds more than maxSyncLimit records.
const (
	defaultSyncLimit = 256
	maxSyncLimit     = 1024
)

// streamProtocol is one direct protocol's limits.
type streamProtocol struct {
	id          protocol.ID
	name        string // metric label
	maxRequest  int    // largest request body accepted
	maxBody     int    // largest response body accepted
	concurrency int    // inbound streams served at once, at most
}

var (
	protoKeyPackage = streamProtocol{ProtoKeyPackage, "keypackage", 16, 64 << 10, 64}
	protoWelcome    = streamProtocol{ProtoWelcome, "welcome", 8 << 20, 512, 8}
	protoSync       = streamProtocol{ProtoSync, "sync", 2 << 10, 16 << 20, 8}
	protoDirect     = streamProtocol{ProtoDirect, "direct", 1 << 20, 512, 64}
	protoPayload    = streamProtocol{ProtoPayload, "payload", 64, 16 << 20, 8}

	streamProtocols = []streamProtocol{protoKeyPackage, protoWelcome, protoSync, protoDirect, protoPayload}
)

// Handlers are the node's side of the direct protocols. Every method gets a
// context that ends when the stream's deadline passes or the Network
// closes, and the authenticated peer ID of the requester. A nil field means
// the node does not serve that protocol.
type Handlers struct {
	KeyPackages KeyPackageProvider
	Welcomes    WelcomeHandler
	Sync        SyncProvider
	Direct      DirectMessageHandler
	// Payloads serves large payloads that are no longer in the Network's
	// in-memory cache (optional).
	Payloads PayloadProvider
}

// KeyPackageProvider hands out this node's KeyPackages (the Delivery
// Service directory role of RFC 9750, served by each node for itself).
type KeyPackageProvider interface {
	// KeyPackage returns an MLS KeyPackage (MLSMessage encoding) for the
	// cipher suite, or an error wrapping ErrNotFound if there is none.
	KeyPackage(ctx context.Context, from peer.ID, cipherSuite uint16) ([]byte, error)
}

// WelcomeHandler receives Welcomes for groups this node is being added to.
type WelcomeHandler interface {
	HandleWelcome(ctx context.Context, from peer.ID, groupID, welcome []byte) error
}

// SyncProvider serves catch-up to members that were away.
type SyncProvider interface {
	// CommitsSince returns decided Commits with their certificates, from
	// req.SinceEpoch on, at most req.Limit of them.
	CommitsSince(ctx context.Context, from peer.ID, req CommitsRequest) (CommitsResponse, error)
	// MessagesSince returns stored ciphertexts after req.Cursor, at most
	// req.Limit of them.
	MessagesSince(ctx context.Context, from peer.ID, req MessagesRequest) (MessagesResponse, error)
}

// DirectMessageHandler receives messages sent to this node alone, such as
// consensus votes for a proposal it made.
type DirectMessageHandler interface {
	HandleDirect(ctx context.Context, from peer.ID, groupID, payload []byte) error
}

// PayloadProvider serves large payloads by hash.
type PayloadProvider interface {
	Payload(ctx context.Context, from peer.ID, h Hash) ([]byte, error)
}

// Errors handlers return to choose the response code, and that callers of
// the request methods see (through RemoteError) when the peer answered so.
var (
	ErrNotFound    = errors.New("gossip: not found")
	ErrBadRequest  = errors.New("gossip: bad request")
	ErrBusy        = errors.New("gossip: peer busy")
	ErrUnavailable = errors.New("gossip: protocol not served")
)

// RemoteError is an error response from a peer.
type RemoteError struct {
	Peer     peer.ID
	Protocol protocol.ID
	Code     ErrorCode
	Message  string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("gossip: %s from %s: code %d: %s", e.Protocol, e.Peer, e.Code, e.Message)
}

// Is maps response codes to this package's sentinels.
func (e *RemoteError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == CodeNotFound
	case ErrBadRequest:
		return e.Code == CodeBadRequest
	case ErrBusy:
		return e.Code == CodeBusy
	case ErrUnavailable:
		return e.Code == CodeUnavailable
	}
	return false
}

func errorCode(err error) ErrorCode {
	switch {
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, ErrBadRequest):
		return CodeBadRequest
	case errors.Is(err, ErrBusy):
		return CodeBusy
	case errors.Is(err, ErrUnavailable):
		return CodeUnavailable
	default:
		return CodeInternal
	}
}

func errorEnvelope(code ErrorCode, msg string) Envelope {
	return Envelope{Kind: KindError, Body: ErrorBody{Code: code, Message: msg}.Marshal()}
}

// registerProtocols installs a stream handler for every direct protocol.
// Protocols whose handler is nil still answer, with CodeUnavailable, so that
// a caller learns the difference from a network failure.
func (n *Network) registerProtocols() {
	n.streamSlots = make(map[protocol.ID]chan struct{}, len(streamProtocols))
	for _, p := range streamProtocols {
		c := p.concurrency
		if n.cfg.MaxConcurrentStreams < c {
			c = n.cfg.MaxConcurrentStreams
		}
		n.streamSlots[p.id] = make(chan struct{}, c)
		n.host.SetStreamHandler(p.id, func(s network.Stream) { n.serve(p, s) })
	}
}

// serve handles one inbound stream: one request, one response, all within
// StreamTimeout, with at most p.concurrency streams of p at once.
func (n *Network) serve(p streamProtocol, s network.Stream) {
	slots := n.streamSlots[p.id]
	select {
	case slots <- struct{}{}:
	default:
		n.metrics.drop(DropStreamBusy)
		_ = s.SetWriteDeadline(time.Now().Add(time.Second))
		_ = s.SetReadDeadline(time.Now())
		if WriteEnvelope(s, errorEnvelope(CodeBusy, "too many concurrent requests")) != nil {
			_ = s.Reset()
			return
		}
		_ = s.Close()
		return
	}
	defer func() { <-slots }()
	inflight := n.metrics.inflight.WithLabelValues(p.name)
	inflight.Inc()
	defer inflight.Dec()
	start := time.Now()
	defer func() { n.metrics.streamTime.WithLabelValues(p.name).Observe(time.Since(start).Seconds()) }()

	deadline := start.Add(n.cfg.StreamTimeout)
	if err := s.SetDeadline(deadline); err != nil {
		_ = s.Reset()
		return
	}
	req, err := ReadEnvelope(s, p.maxRequest)
	if err != nil {
		n.metrics.drop(streamDropReason(err))
		n.log.Debug("bad request", "protocol", p.id, "from", s.Conn().RemotePeer(), "err", err)
		_ = s.Reset()
		return
	}
	n.metrics.in(p.name)
	ctx, cancel := context.WithDeadline(n.ctx, deadline)
	defer cancel()
	resp := n.handle(ctx, p, s.Conn().RemotePeer(), req)
	if err := WriteEnvelope(s, resp); err != nil {
		n.metrics.drop(streamDropReason(err))
		_ = s.Reset()
		return
	}
	n.metrics.out(p.name)
	_ = s.Close()
}

func streamDropReason(err error) string {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return DropStreamTimeout
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return DropStreamTimeout
	}
	if r := dropReason(err); r != DropOther {
		return r
	}
	return DropMalformed
}

// handle dispatches a request to the node's handler and builds the response.
func (n *Network) handle(ctx context.Context, p streamProtocol, from peer.ID, req Envelope) Envelope {
	resp, err := n.dispatch(ctx, p, from, req)
	if err != nil {
		code := errorCode(err)
		if code == CodeBadRequest {
			n.metrics.drop(DropHandlerRejected)
		}
		msg := err.Error()
		if code == CodeInternal {
			// Internal details stay in the local log.
			n.log.Warn("handler failed", "protocol", p.id, "from", from, "err", err)
			msg = "internal error"
		}
		return errorEnvelope(code, msg)
	}
	if len(resp.Body) > p.maxBody {
		n.log.Warn("handler response too large", "protocol", p.id, "bytes", len(resp.Body))
		return errorEnvelope(CodeInternal, "response too large")
	}
	return resp
}

func badRequest(err error) error { return fmt.Errorf("%w: %w", ErrBadRequest, err) }

func (n *Network) dispatch(ctx context.Context, p streamProtocol, from peer.ID, req Envelope) (Envelope, error) {
	h := n.cfg.Handlers
	ack := Envelope{Kind: KindAck}
	switch {
	case p.id == ProtoKeyPackage && req.Kind == KindKeyPackageRequest:
		var r KeyPackageRequest
		if err := r.Unmarshal(req.Body); err != nil {
			return Envelope{}, badRequest(err)
		}
		if h.KeyPackages == nil {
			return Envelope{}, ErrUnavailable
		}
		kp, err := h.KeyPackages.KeyPackage(ctx, from, r.CipherSuite)
		if err != nil {
			return Envelope{}, err
		}
		return Envelope{Kind: KindKeyPackage, Body: kp}, nil

	case p.id == ProtoWelcome && req.Kind == KindWelcome:
		var w WelcomeMessage
		if err := w.Unmarshal(req.Body); err != nil {
			return Envelope{}, badRequest(err)
		}
		if h.Welcomes == nil {
			return Envelope{}, ErrUnavailable
		}
		return ack, h.Welcomes.HandleWelcome(ctx, from, w.GroupID, w.Welcome)

	case p.id == ProtoSync && req.Kind == KindCommitsRequest:
		var r CommitsRequest
		if err := r.Unmarshal(req.Body); err != nil {
			return Envelope{}, badRequest(err)
		}
		if h.Sync == nil {
			return Envelope{}, ErrUnavailable
		}
		r.Limit = clampLimit(r.Limit)
		resp, err := h.Sync.CommitsSince(ctx, from, r)
		if err != nil {
			return Envelope{}, err
		}
		return Envelope{Kind: KindCommits, Body: fitCommits(resp, int(r.Limit), p.maxBody)}, nil

	case p.id == ProtoSync && req.Kind == KindMessagesRequest:
		var r MessagesRequest
		if err := r.Unmarshal(req.Body); err != nil {
			return Envelope{}, badRequest(err)
		}
		if h.Sync == nil {
			return Envelope{}, ErrUnavailable
		}
		r.Limit = clampLimit(r.Limit)
		resp, err := h.Sync.MessagesSince(ctx, from, r)
		if err != nil {
			return Envelope{}, err
		}
		body, err := fitMessages(resp, int(r.Limit), p.maxBody)
		if err != nil {
			return Envelope{}, err
		}
		return Envelope{Kind: KindMessages, Body: body}, nil

	case p.id == ProtoDirect && req.Kind == KindDirect:
		var m DirectMessage
		if err := m.Unmarshal(req.Body); err != nil {
			return Envelope{}, badRequest(err)
		}
		if h.Direct == nil {
			return Envelope{}, ErrUnavailable
		}
		return ack, h.Direct.HandleDirect(ctx, from, m.GroupID, m.Payload)

	case p.id == ProtoPayload && req.Kind == KindPayloadRequest:
		var r PayloadRequest
		if err := r.Unmarshal(req.Body); err != nil {
			return Envelope{}, badRequest(err)
		}
		if data, ok := n.payloads.get(r.Hash); ok {
			return Envelope{Kind: KindPayload, Body: data}, nil
		}
		if h.Payloads == nil {
			return Envelope{}, ErrNotFound
		}
		data, err := h.Payloads.Payload(ctx, from, r.Hash)
		if err != nil {
			return Envelope{}, err
		}
		return Envelope{Kind: KindPayload, Body: data}, nil
	}
	n.metrics.drop(DropUnknownKind)
	return Envelope{}, badRequest(fmt.Errorf("%v is not a request of %s", req.Kind, p.id))
}

func clampLimit(l uint32) uint32 {
	switch {
	case l == 0:
		return defaultSyncLimit
	case l > maxSyncLimit:
		return maxSyncLimit
	}
	return l
}

// fitCommits trims a page to the requested count and to the response size
// limit, setting More when it trims, so a handler that returns too much
// costs the requester one more round trip rather than a failed sync.
func fitCommits(r CommitsResponse, limit, maxBody int) []byte {
	if len(r.Commits) > limit {
		r.Commits, r.More = r.Commits[:limit], true
	}
	for {
		b := r.Marshal()
		if len(b) <= maxBody || len(r.Commits) == 0 {
			return b
		}
		r.Commits, r.More = r.Commits[:len(r.Commits)/2], true
	}
}

// fitMessages is fitCommits for ciphertext pages. A trimmed page's cursor
// would be wrong (the handler's Next points past the last message it
// returned), so a page that does not fit is an error unless it can be cut
// to the requested count by the handler itself.
func fitMessages(r MessagesResponse, limit, maxBody int) ([]byte, error) {
	if len(r.Messages) > limit {
		return nil, fmt.Errorf("gossip: sync handler returned %d messages, limit %d", len(r.Messages), limit)
	}
	b := r.Marshal()
	if len(b) > maxBody {
		return nil, fmt.Errorf("gossip: sync page of %d bytes exceeds %d", len(b), maxBody)
	}
	return b, nil
}

// request opens a stream to p, sends req and reads one response, all within
// ctx and StreamTimeout. It looks p up in the DHT if no address is known.
func (n *Network) request(ctx context.Context, to peer.ID, p streamProtocol, req Envelope) (Envelope, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.StreamTimeout)
	defer cancel()
	if !n.cfg.DenyLimitedConns {
		ctx = network.WithAllowLimitedConn(ctx, "conclave direct protocol")
	}
	if len(n.host.Network().ConnsToPeer(to)) == 0 && len(n.host.Peerstore().Addrs(to)) == 0 && n.dht != nil {
		if ai, err := n.FindPeer(ctx, to); err == nil {
			n.host.Peerstore().AddAddrs(to, ai.Addrs, time.Hour)
		}
	}
	s, err := n.host.NewStream(ctx, to, p.id)
	if err != nil {
		return Envelope{}, fmt.Errorf("gossip: opening %s stream to %s: %w", p.id, to, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := WriteEnvelope(s, req); err != nil {
		_ = s.Reset()
		return Envelope{}, fmt.Errorf("gossip: %s request to %s: %w", p.id, to, err)
	}
	_ = s.CloseWrite()
	n.metrics.out(p.name)
	resp, err := ReadEnvelope(s, p.maxBody)
	if err != nil {
		_ = s.Reset()
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		n.metrics.drop(streamDropReason(err))
		return Envelope{}, fmt.Errorf("gossip: %s response from %s: %w", p.id, to, err)
	}
	_ = s.Close()
	n.metrics.in(p.name)
	if resp.Kind == KindError {
		var eb ErrorBody
		if err := eb.Unmarshal(resp.Body); err != nil {
			return Envelope{}, fmt.Errorf("gossip: %s error response from %s: %w", p.id, to, err)
		}
		return Envelope{}, &RemoteError{Peer: to, Protocol: p.id, Code: eb.Code, Message: eb.Message}
	}
	return resp, nil
}

func expectKind(resp Envelope, k Kind, p protocol.ID) error {
	if resp.Kind != k {
		return fmt.Errorf("%w: %s answered with %v, want %v", ErrMalformed, p, resp.Kind, k)
	}
	return nil
}

// FetchKeyPackage asks peer p for a KeyPackage for the cipher suite.
func (n *Network) FetchKeyPackage(ctx context.Context, p peer.ID, cipherSuite uint16) ([]byte, error) {
	resp, err := n.request(ctx, p, protoKeyPackage, Envelope{Kind: KindKeyPackageRequest, Body: KeyPackageRequest{CipherSuite: cipherSuite}.Marshal()})
	if err != nil {
		return nil, err
	}
	if err := expectKind(resp, KindKeyPackage, ProtoKeyPackage); err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// SendWelcome delivers a Welcome to peer p and waits for its acknowledgement.
func (n *Network) SendWelcome(ctx context.Context, p peer.ID, groupID, welcome []byte) error {
	if err := checkGroupID(groupID); err != nil {
		return err
	}
	if len(welcome)+16+len(groupID) > protoWelcome.maxRequest {
		return fmt.Errorf("%w: welcome of %d bytes exceeds %d", ErrTooLarge, len(welcome), protoWelcome.maxRequest)
	}
	resp, err := n.request(ctx, p, protoWelcome, Envelope{Kind: KindWelcome, Body: WelcomeMessage{GroupID: groupID, Welcome: welcome}.Marshal()})
	if err != nil {
		return err
	}
	return expectKind(resp, KindAck, ProtoWelcome)
}

// FetchCommits asks peer p for decided Commits of a group from an epoch on.
func (n *Network) FetchCommits(ctx context.Context, p peer.ID, req CommitsRequest) (CommitsResponse, error) {
	if err := checkGroupID(req.GroupID); err != nil {
		return CommitsResponse{}, err
	}
	resp, err := n.request(ctx, p, protoSync, Envelope{Kind: KindCommitsRequest, Body: req.Marshal()})
	if err != nil {
		return CommitsResponse{}, err
	}
	if err := expectKind(resp, KindCommits, ProtoSync); err != nil {
		return CommitsResponse{}, err
	}
	var out CommitsResponse
	if err := out.Unmarshal(resp.Body); err != nil {
		return CommitsResponse{}, err
	}
	return out, nil
}

// FetchMessages asks peer p for stored ciphertexts of a group after a cursor.
func (n *Network) FetchMessages(ctx context.Context, p peer.ID, req MessagesRequest) (MessagesResponse, error) {
	if err := checkGroupID(req.GroupID); err != nil {
		return MessagesResponse{}, err
	}
	if len(req.Cursor) > maxCursorLen {
		return MessagesResponse{}, fmt.Errorf("%w: cursor of %d bytes", ErrTooLarge, len(req.Cursor))
	}
	resp, err := n.request(ctx, p, protoSync, Envelope{Kind: KindMessagesRequest, Body: req.Marshal()})
	if err != nil {
		return MessagesResponse{}, err
	}
	if err := expectKind(resp, KindMessages, ProtoSync); err != nil {
		return MessagesResponse{}, err
	}
	var out MessagesResponse
	if err := out.Unmarshal(resp.Body); err != nil {
		return MessagesResponse{}, err
	}
	return out, nil
}

// SendDirect sends a message to peer p alone (for example a consensus vote
// to the proposer) and waits for its acknowledgement.
func (n *Network) SendDirect(ctx context.Context, p peer.ID, groupID, payload []byte) error {
	if err := checkGroupID(groupID); err != nil {
		return err
	}
	if len(payload)+16+len(groupID) > protoDirect.maxRequest {
		return fmt.Errorf("%w: direct message of %d bytes exceeds %d", ErrTooLarge, len(payload), protoDirect.maxRequest)
	}
	resp, err := n.request(ctx, p, protoDirect, Envelope{Kind: KindDirect, Body: DirectMessage{GroupID: groupID, Payload: payload}.Marshal()})
	if err != nil {
		return err
	}
	return expectKind(resp, KindAck, ProtoDirect)
}

// FetchPayload fetches a large payload by hash from peer p and checks it
// against the hash.
func (n *Network) FetchPayload(ctx context.Context, p peer.ID, h Hash) ([]byte, error) {
	resp, err := n.request(ctx, p, protoPayload, Envelope{Kind: KindPayloadRequest, Body: PayloadRequest{Hash: h}.Marshal()})
	if err != nil {
		return nil, err
	}
	if err := expectKind(resp, KindPayload, ProtoPayload); err != nil {
		return nil, err
	}
	if Hash(sha256.Sum256(resp.Body)) != h {
		return nil, fmt.Errorf("%w: payload from %s does not match its hash", ErrMalformed, p)
	}
	return resp.Body, nil
}
