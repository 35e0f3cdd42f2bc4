package api

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/identity"
	"github.com/conclave-im/conclave/node"
)

// Limits on requests.
const (
	// MaxBodyBytes bounds every request body.
	MaxBodyBytes = 1 << 20
	// DefaultHistoryLimit and MaxHistoryLimit bound GET .../messages.
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 10000
	// opTimeout bounds operations that wait on the network (invite,
	// remove, connect) when the client sets no shorter deadline.
	opTimeout = 2 * time.Minute
	// heartbeat keeps idle event streams alive through proxies and lets a
	// server notice a client that went away.
	heartbeat = 15 * time.Second
)

// ServerOptions configure a Server.
type ServerOptions struct {
	// Token, when non-empty, is the bearer token that requests served by
	// ServeTCP must carry. ServeTCP refuses to start without one.
	Token  string
	Logger *slog.Logger
}

// Server serves the local API of one node.
type Server struct {
	node    *node.Node
	log     *slog.Logger
	token   string
	started time.Time

	ctx    context.Context // ends at Close: ends event streams
	cancel context.CancelFunc
	mu     sync.Mutex
	srvs   []*http.Server
}

// NewServer returns a server for a started node.
func NewServer(n *node.Node, opts ServerOptions) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{node: n, log: opts.Logger, token: opts.Token, started: time.Now()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Handler returns the API without authentication, as served on the Unix
// socket (whose permissions and peer-credential check are the
// authentication).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("GET /v1/id", s.identity)
	mux.HandleFunc("GET /v1/peers", s.peers)
	mux.HandleFunc("POST /v1/peers/connect", s.connect)
	mux.HandleFunc("GET /v1/groups", s.groups)
	mux.HandleFunc("POST /v1/groups", s.createGroup)
	mux.HandleFunc("GET /v1/groups/{id}", s.group)
	mux.HandleFunc("GET /v1/groups/{id}/peers", s.groupPeers)
	mux.HandleFunc("POST /v1/groups/{id}/invite", s.invite)
	mux.HandleFunc("POST /v1/groups/{id}/remove", s.remove)
	mux.HandleFunc("POST /v1/groups/{id}/leave", s.leave)
	mux.HandleFunc("POST /v1/groups/{id}/settings", s.groupSettings)
	mux.HandleFunc("GET /v1/groups/{id}/messages", s.history)
	mux.HandleFunc("POST /v1/groups/{id}/messages", s.send)
	mux.HandleFunc("GET /v1/contacts", s.contacts)
	mux.HandleFunc("POST /v1/contacts", s.addContact)
	mux.HandleFunc("GET /v1/contacts/{peer}", s.contact)
	mux.HandleFunc("POST /v1/contacts/{peer}/rename", s.renameContact)
	mux.HandleFunc("POST /v1/contacts/{peer}/verify", s.verifyContact)
	mux.HandleFunc("GET /v1/invitations", s.invitations)
	mux.HandleFunc("POST /v1/invitations/{id}/accept", s.accept)
	mux.HandleFunc("POST /v1/invitations/{id}/decline", s.decline)
	mux.HandleFunc("GET /v1/events", s.events)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// TokenHandler wraps h so that only requests with the bearer token and a
// loopback Host header get through; the Host check stops a web page from
// reaching the API by DNS rebinding.
func (s *Server) TokenHandler(h http.Handler) http.Handler {
	want := []byte("Bearer " + s.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, CodeForbidden, "the API answers only to a loopback Host")
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if s.token == "" || subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="conclave"`)
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "missing or wrong bearer token (it is in the data directory's api.token)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// ServeUnix serves the API on a listener from ListenUnix until Close.
func (s *Server) ServeUnix(ln net.Listener) error {
	return s.serve(ln, s.Handler())
}

// ServeTCP serves the token-protected API on a listener from ListenTCP
// until Close.
func (s *Server) ServeTCP(ln net.Listener) error {
	if s.token == "" {
		return errors.New("api: TCP needs a token")
	}
	return s.serve(ln, s.TokenHandler(s.Handler()))
}

func (s *Server) serve(ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	s.srvs = append(s.srvs, srv)
	s.mu.Unlock()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("api: serve: %w", err)
}

// Close ends event streams, then stops every listener and waits, bounded
// by ctx, for requests in flight.
func (s *Server) Close(ctx context.Context) error {
	s.cancel()
	s.mu.Lock()
	srvs := s.srvs
	s.srvs = nil
	s.mu.Unlock()
	var errs []error
	for _, srv := range srvs {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err, srv.Close())
		}
	}
	return errors.Join(errs...)
}

// ---- handlers ----

func (s *Server) identityInfo() Identity {
	ai := s.node.AddrInfo()
	var addrs []string
	if full, err := peer.AddrInfoToP2pAddrs(&ai); err == nil {
		for _, a := range full {
			addrs = append(addrs, a.String())
		}
	}
	return Identity{PeerID: s.node.ID(), Addrs: addrs, Fingerprint: s.node.Identity().Fingerprint()}
}

func (s *Server) identity(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.identityInfo())
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	gs, err := s.node.Groups(r.Context())
	if err != nil {
		writeNodeError(w, err)
		return
	}
	invs, err := s.node.Invitations(r.Context())
	if err != nil {
		writeNodeError(w, err)
		return
	}
	peers, err := s.node.Peers(r.Context())
	if err != nil {
		writeNodeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Status{Identity: s.identityInfo(), StartedAt: s.started, Groups: len(gs), Invitations: len(invs), Peers: len(peers)})
}

// peers lists the peers this node is connected to.
func (s *Server) peers(w http.ResponseWriter, r *http.Request) {
	ps, err := s.node.Peers(r.Context())
	if err != nil {
		writeNodeError(w, err)
		return
	}
	out := make([]Peer, 0, len(ps))
	for _, p := range ps {
		pe := Peer{PeerID: p.ID, Addrs: p.Addrs, Name: p.Name, Groups: make([]string, 0, len(p.Groups))}
		if pe.Addrs == nil {
			pe.Addrs = []string{}
		}
		for _, g := range p.Groups {
			pe.Groups = append(pe.Groups, hex.EncodeToString(g))
		}
		out = append(out, pe)
	}
	writeJSON(w, http.StatusOK, out)
}

// groupPeers lists the peers on one active group's topic: the members
// this node exchanges the group's traffic with right now.
func (s *Server) groupPeers(w http.ResponseWriter, r *http.Request) {
	gid, ok := s.groupID(w, r, false)
	if !ok {
		return
	}
	ps, err := s.node.TopicPeers(r.Context(), gid)
	if err != nil {
		writeNodeError(w, err)
		return
	}
	if ps == nil {
		ps = []string{}
	}
	writeJSON(w, http.StatusOK, GroupPeers{GroupID: hex.EncodeToString(gid), Peers: ps})
}

func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	var req ConnectRequest
	if !readJSON(w, r, &req) {
		return
	}
	infos, err := parseAddrs(req.Addrs)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	for _, ai := range infos {
		if err := s.node.Connect(ctx, ai); err != nil {
			writeError(w, http.StatusBadGateway, CodeUnavailable, err.Error())
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func parseAddrs(addrs []string) ([]peer.AddrInfo, error) {
	if len(addrs) == 0 {
		return nil, errors.New("no addresses")
	}
	var mas []multiaddr.Multiaddr
	for _, a := range addrs {
		ma, err := multiaddr.NewMultiaddr(a)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", a, err)
		}
		mas = append(mas, ma)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("addresses must end in /p2p/<peer ID>: %w", err)
	}
	return infos, nil
}

func (s *Server) groups(w http.ResponseWriter, r *http.Request) {
	gs, err := s.node.Groups(r.Context())
	if err != nil {
		writeNodeError(w, err)
		return
	}
	out := []Group{}
	for _, g := range gs {
		out = append(out, s.groupFrom(g))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) groupFrom(g node.GroupStatus) Group {
	out := Group{ID: hex.EncodeToString(g.GroupID), Epoch: g.Epoch, EpochAuthenticator: hex.EncodeToString(g.EpochAuthenticator), Active: g.Active, Members: []Member{}, Pending: pendingFrom(g.Pending)}
	out.Name, out.Topic = g.Name, g.Topic
	for _, m := range g.Members {
		mem := Member{Leaf: m.Leaf, PeerID: m.PeerID, Assurance: m.Assurance.String(), Self: m.Self}
		if !m.Self && m.PeerID != "" {
			if code, err := s.node.SafetyCode(m.PeerID); err == nil {
				mem.SafetyCode = code
			}
		}
		out.Members = append(out.Members, mem)
	}
	return out
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) {
	opts, ok := readCreateGroup(w, r) // settings.go
	if !ok {
		return
	}
	gid, err := s.node.CreateGroup(r.Context(), opts...)
	if err != nil {
		writeNodeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, CreatedGroup{ID: hex.EncodeToString(gid)})
}

func (s *Server) group(w http.ResponseWriter, r *http.Request) {
	gid, ok := s.groupID(w, r, false)
	if !ok {
		return
	}
	s.writeGroup(w, r, gid)
}

func (s *Server) invite(w http.ResponseWriter, r *http.Request) {
	s.membership(w, r, s.node.Invite)
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	s.membership(w, r, s.node.Remove)
}

func (s *Server) contacts(w http.ResponseWriter, r *http.Request) {
	cs, err := s.node.Contacts(r.Context())
	if err != nil {
		writeNodeError(w, err)
		return
	}
	out := make([]Contact, 0, len(cs))
	for _, c := range cs {
		out = append(out, s.contactFrom(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) addContact(w http.ResponseWriter, r *http.Request) {
	var req ContactRequest
	if !readJSON(w, r, &req) || !validPeer(w, req.Peer) {
		return
	}
	c, err := s.node.AddContact(r.Context(), req.Peer, req.Name)
	if err != nil {
		writeNodeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.contactFrom(c))
}

func (s *Server) contact(w http.ResponseWriter, r *http.Request) {
	peer := r.PathValue("peer")
	if !validPeer(w, peer) {
		return
	}
	c, err := s.node.Contact(r.Context(), peer)
	if err != nil {
		writeNodeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.contactFrom(c))
}

func (s *Server) renameContact(w http.ResponseWriter, r *http.Request) {
	peer := r.PathValue("peer")
	var req RenameRequest
	if !validPeer(w, peer) || !readJSON(w, r, &req) {
		return
	}
	c, err := s.node.RenameContact(r.Context(), peer, req.Name)
	if err != nil {
		writeNodeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.contactFrom(c))
}

// verifyContact records a safety code compared out of band; a code that is
// not this node's and the peer's is refused and changes nothing.
func (s *Server) verifyContact(w http.ResponseWriter, r *http.Request) {
	peer := r.PathValue("peer")
	var req VerifyRequest
	if !validPeer(w, peer) || !readJSON(w, r, &req) {
		return
	}
	if err := s.node.VerifyContact(r.Context(), peer, req.Name, req.Code); err != nil {
		writeNodeError(w, err)
		return
	}
	c, err := s.node.Contact(r.Context(), peer)
	if err != nil {
		writeNodeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.contactFrom(c))
}

func validPeer(w http.ResponseWriter, peer string) bool {
	if _, err := identity.ParsePeerID(peer); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("peer %q: %v", peer, err))
		return false
	}
	return true
}

func (s *Server) contactFrom(c datastore.Contact) Contact {
	out := Contact{
		PeerID:   string(c.PeerID),
		Name:     c.Name,
		Verified: c.Verification == datastore.Verified,
		AddedAt:  c.AddedAt,
	}
	// A verified contact keeps the code that was compared; computing one
	// costs thousands of hash iterations, so only unverified ones pay it.
	if code, err := identity.ParseSafetyCode(c.SafetyCode); err == nil {
		out.SafetyCode = code.String()
	} else if code, err := s.node.SafetyCode(out.PeerID); err == nil {
		out.SafetyCode = code
	}
	if out.Verified && !c.VerifiedAt.IsZero() {
		t := c.VerifiedAt
		out.VerifiedAt = &t
	}
	return out
}

// leave asks the group to remove this node; it answers once another member
// has committed the removal and the group has decided it.
func (s *Server) leave(w http.ResponseWriter, r *http.Request) {
	gid, ok := s.groupID(w, r, false)
	if !ok || !readEmpty(w, r) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	if err := s.node.Leave(ctx, gid); err != nil {
		writeNodeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) membership(w http.ResponseWriter, r *http.Request, op func(context.Context, []byte, string) error) {
	gid, ok := s.groupID(w, r, false)
	if !ok {
		return
	}
	var req PeerRequest
	if !readJSON(w, r, &req) {
		return
	}
	if !validPeer(w, req.Peer) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	if err := op(ctx, gid, req.Peer); err != nil {
		writeNodeError(w, err)
		return
	}
	s.writeGroup(w, r, gid)
}

// writeGroup answers with the group's current state, after an operation on it.
func (s *Server) writeGroup(w http.ResponseWriter, r *http.Request, gid []byte) {
	g, err := s.node.Group(r.Context(), gid)
	if err != nil {
		writeNodeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.groupFrom(g))
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	gid, ok := s.groupID(w, r, false)
	if !ok {
		return
	}
	limit := DefaultHistoryLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxHistoryLimit {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("limit must be 1..%d", MaxHistoryLimit))
			return
		}
		limit = n
	}
	if _, err := s.node.Group(r.Context(), gid); err != nil {
		writeNodeError(w, err)
		return
	}
	msgs, err := s.node.History(r.Context(), gid, limit)
	if err != nil {
		writeNodeError(w, err)
		return
	}
	out := make([]Message, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, messageFrom(m))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	gid, ok := s.groupID(w, r, false)
	if !ok {
		return
	}
	var req SendRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Text == "" {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "empty message")
		return
	}
	var reply []byte
	if req.ReplyTo != "" {
		b, err := hex.DecodeString(req.ReplyTo)
		if err != nil || len(b) != node.MessageIDLen {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "reply_to must be a hex message ID")
			return
		}
		reply = b
	}
	m, err := s.node.Send(r.Context(), gid, req.Text, reply)
	if err != nil {
		writeNodeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, messageFrom(m))
}

func (s *Server) invitations(w http.ResponseWriter, r *http.Request) {
	invs, err := s.node.Invitations(r.Context())
	if err != nil {
		writeNodeError(w, err)
		return
	}
	out := []Invitation{}
	for _, inv := range invs {
		out = append(out, invitationFrom(inv))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) accept(w http.ResponseWriter, r *http.Request) {
	gid, ok := s.groupID(w, r, true)
	if !ok || !readEmpty(w, r) {
		return
	}
	if err := s.node.AcceptInvitation(r.Context(), gid); err != nil {
		writeNodeError(w, err)
		return
	}
	s.writeGroup(w, r, gid)
}

func (s *Server) decline(w http.ResponseWriter, r *http.Request) {
	gid, ok := s.groupID(w, r, true)
	if !ok || !readEmpty(w, r) {
		return
	}
	if err := s.node.DeclineInvitation(r.Context(), gid); err != nil {
		writeNodeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// events streams node events as Server-Sent Events. The stream opens with
// a comment line, sent once the subscription is in place, so a client that
// has read it knows it will see everything that happens afterwards.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	var filter string
	if v := r.URL.Query().Get("group"); v != "" {
		gid, err := s.resolveGroup(r.Context(), v, false)
		if errors.Is(err, node.ErrUnknownGroup) {
			gid, err = s.resolveGroup(r.Context(), v, true)
		}
		if err != nil {
			writeNodeError(w, err)
			return
		}
		filter = hex.EncodeToString(gid)
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, CodeInternal, "streaming unsupported")
		return
	}
	ch, stop, err := s.node.Subscribe(r.Context())
	if err != nil {
		writeNodeError(w, err)
		return
	}
	defer stop()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, ": subscribed\n\n")
	fl.Flush()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case e := <-ch:
			ev, ok := eventFrom(e)
			if !ok || (filter != "" && ev.GroupID != filter) {
				continue
			}
			b, err := json.Marshal(ev)
			if err != nil {
				s.log.Error("api: encode event", "err", err)
				continue
			}
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, b); err != nil {
				return
			}
			fl.Flush()
		case <-tick.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
			fl.Flush()
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// ---- helpers ----

// minGroupPrefix is the shortest group ID prefix the API resolves.
const minGroupPrefix = 4

func (s *Server) groupID(w http.ResponseWriter, r *http.Request, invitations bool) ([]byte, bool) {
	gid, err := s.resolveGroup(r.Context(), r.PathValue("id"), invitations)
	if err != nil {
		writeNodeError(w, err)
		return nil, false
	}
	return gid, true
}

// resolveGroup turns a hex group ID, or a unique prefix of at least four
// hex digits, into the ID of a known group (or, with invitations, of a
// pending invitation).
func (s *Server) resolveGroup(ctx context.Context, v string, invitations bool) ([]byte, error) {
	v = strings.ToLower(v)
	if len(v) < minGroupPrefix {
		return nil, &requestError{fmt.Sprintf("group %q: give at least %d hex digits", v, minGroupPrefix)}
	}
	if _, err := hex.DecodeString(v[:len(v)&^1]); err != nil {
		return nil, &requestError{fmt.Sprintf("group %q is not hex", v)}
	}
	var ids [][]byte
	if invitations {
		invs, err := s.node.Invitations(ctx)
		if err != nil {
			return nil, err
		}
		for _, inv := range invs {
			ids = append(ids, inv.GroupID)
		}
	} else {
		gs, err := s.node.Groups(ctx)
		if err != nil {
			return nil, err
		}
		for _, g := range gs {
			ids = append(ids, g.GroupID)
		}
	}
	var found []byte
	for _, id := range ids {
		h := hex.EncodeToString(id)
		if h == v {
			return id, nil
		}
		if strings.HasPrefix(h, v) {
			if found != nil {
				return nil, &requestError{fmt.Sprintf("group prefix %q is ambiguous", v)}
			}
			found = id
		}
	}
	if found == nil {
		if invitations {
			return nil, fmt.Errorf("invitation %s: %w", v, node.ErrNoInvitation)
		}
		return nil, fmt.Errorf("group %s: %w", v, node.ErrUnknownGroup)
	}
	return found, nil
}

// requestError is a problem with the request itself (400).
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }

// readJSON decodes exactly one JSON object with known fields into v, or
// answers 400.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("body larger than %d bytes", MaxBodyBytes))
			return false
		}
		writeError(w, http.StatusBadRequest, CodeBadRequest, "malformed JSON body: "+err.Error())
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "malformed JSON body: data after the object")
		return false
	}
	return true
}

// readEmpty accepts an empty body or an empty JSON object.
func readEmpty(w http.ResponseWriter, r *http.Request) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "body: "+err.Error())
		return false
	}
	if s := strings.TrimSpace(string(b)); s != "" && s != "{}" {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "this endpoint takes no body")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, CodeInternal, "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(ErrorBody{Error: ErrorDetail{Code: code, Message: msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeNodeError maps the node's sentinel errors to HTTP statuses.
func writeNodeError(w http.ResponseWriter, err error) {
	var re *requestError
	switch {
	case errors.As(err, &re), errors.Is(err, node.ErrInvalidSettings):
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
	case errors.Is(err, node.ErrUnknownGroup), errors.Is(err, node.ErrNoInvitation), errors.Is(err, node.ErrNotMember),
		errors.Is(err, node.ErrUnknownContact):
		writeError(w, http.StatusNotFound, CodeNotFound, err.Error())
	case errors.Is(err, node.ErrAlreadyMember), errors.Is(err, node.ErrGroupInactive):
		writeError(w, http.StatusConflict, CodeConflict, err.Error())
	case errors.Is(err, node.ErrSafetyCodeMismatch):
		writeError(w, http.StatusConflict, CodeConflict, err.Error())
	case errors.Is(err, identity.ErrInvalidSafetyCode):
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
	case errors.Is(err, node.ErrMessageTooLong):
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, err.Error())
	case errors.Is(err, node.ErrBadKeyPackage):
		writeError(w, http.StatusBadGateway, CodeUnavailable, err.Error())
	case errors.Is(err, node.ErrClosed), errors.Is(err, node.ErrNotStarted):
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, CodeTimeout, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, CodeInternal, err.Error())
	}
}
