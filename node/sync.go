package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/conclave-im/conclave/consensus"
	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/gossip"
	"github.com/conclave-im/conclave/identity"
)

// Catch-up: a member that was away fetches, from any member it connects
// to, the decided Commits it missed (each checked against its certificate
// before it is applied) and then the ciphertexts that member kept, which it
// decrypts with the current or a retained past epoch. Duplicates are
// dropped by message ID, so each message lands in the history once. A
// member serves only what belongs to epochs the requester was a member of.
//
// Ciphertexts are fetched after a cursor the serving member handed out
// last time (kept per group and serving peer in datastore.SyncCursors), so
// a reconnection fetches only what is new; besides every new connection,
// the node asks one connected member in turn every
// Delivery.CommitSyncInterval, which repairs gossip losses while connected.

// messageCursor is a serving node's position marker in its message log of
// a group, handed to the requester in MessagesResponse.Next and sent back
// by it (opaque to gossip/):
//
//	struct {
//	    uint8  version = 1;
//	    uint64 seq;       // the last log entry handed out (0: none)
//	    opaque check[8];  // SHA-256 of that entry's ciphertext, first 8 bytes (zero if seq is 0)
//	    uint64 epoch;     // the server's epoch when it answered
//	}
//
// check lets the server tell a cursor of its current log from one of a log
// it has since deleted and restarted (it left and rejoined the group, or
// retention emptied it before a restart renumbered it): a cursor whose
// entry is gone or differs is answered from the start of the log, and the
// requester drops what it already has by message ID. epoch tells the
// requester whether it missed a decision; it is a hint, only ever a reason
// to ask for Commits.
type messageCursor struct {
	seq   uint64
	check [8]byte
	epoch uint64
}

const (
	messageCursorVersion = 1
	messageCursorLen     = 1 + 8 + 8 + 8
)

func (c messageCursor) marshal() []byte {
	b := make([]byte, 0, messageCursorLen)
	b = append(b, messageCursorVersion)
	b = binary.BigEndian.AppendUint64(b, c.seq)
	b = append(b, c.check[:]...)
	return binary.BigEndian.AppendUint64(b, c.epoch)
}

var errBadCursor = errors.New("node: malformed sync cursor")

func parseMessageCursor(b []byte) (messageCursor, error) {
	if len(b) != messageCursorLen || b[0] != messageCursorVersion {
		return messageCursor{}, fmt.Errorf("%w (%d bytes)", errBadCursor, len(b))
	}
	c := messageCursor{seq: binary.BigEndian.Uint64(b[1:]), epoch: binary.BigEndian.Uint64(b[17:])}
	copy(c.check[:], b[9:17])
	if c.seq == 0 && c.check != ([8]byte{}) {
		return messageCursor{}, fmt.Errorf("%w: check without an entry", errBadCursor)
	}
	return c, nil
}

func entryCheck(ciphertext []byte) (c [8]byte) {
	h := sha256.Sum256(ciphertext)
	copy(c[:], h[:8])
	return c
}

// Serving bounds: a page carries at most maxPageBytes of ciphertexts (the
// sync protocol's responses are limited to 16 MiB and a messages page
// cannot be trimmed by the network layer), and one request reads at most
// scanPages pages' worth of log entries, so that skipping what the
// requester may not read (epochs before it joined) stays bounded.
const (
	maxPageBytes = 8 << 20
	scanPages    = 8
)

func (h handlers) CommitsSince(ctx context.Context, from peer.ID, req gossip.CommitsRequest) (gossip.CommitsResponse, error) {
	sc, err := call(ctx, h.n, func() (servingScope, error) { return h.n.servingScope(from, req.GroupID) })
	if err != nil {
		return gossip.CommitsResponse{}, err
	}
	return h.n.serveCommits(ctx, sc, req)
}

func (h handlers) MessagesSince(ctx context.Context, from peer.ID, req gossip.MessagesRequest) (gossip.MessagesResponse, error) {
	sc, err := call(ctx, h.n, func() (servingScope, error) { return h.n.servingScope(from, req.GroupID) })
	if err != nil {
		return gossip.MessagesResponse{}, err
	}
	return h.n.serveMessages(ctx, sc, req)
}

// servingScope is what a catch-up request may read: the group, from the
// epoch the requester joined it, and the epoch this node is in.
type servingScope struct {
	gid    []byte
	joined uint64
	epoch  uint64
}

// servingScope checks that the requester is a member of the group a
// catch-up request names (to anyone else the group does not exist) and
// returns what it may read. Runs on the loop; the reads themselves run in
// the handler's goroutine, so serving never holds the loop.
func (n *Node) servingScope(from peer.ID, gid []byte) (servingScope, error) {
	notFound := fmt.Errorf("node: no such group: %w", gossip.ErrNotFound)
	g, ok := n.st.groups[string(gid)]
	if !ok || g.inactive {
		return servingScope{}, notFound
	}
	id, err := identity.ParsePeerID(from.String())
	if err != nil {
		return servingScope{}, notFound
	}
	if _, ok := n.memberLeaf(g, id); !ok {
		return servingScope{}, notFound
	}
	// A lower bound when the member was already there when this node
	// joined: this node holds nothing older anyway.
	joined, _ := n.memberJoinedEpoch(g, id)
	return servingScope{gid: bytes.Clone(g.id), joined: joined, epoch: g.mls.Epoch()}, nil
}

func (n *Node) batch(limit uint32) int {
	b := n.prof.Delivery.CatchUpBatch
	if limit > 0 && int(limit) < b {
		b = int(limit)
	}
	return b
}

// serveCommits returns decided Commits from the requested epoch on, never
// of an epoch before the requester joined.
func (n *Node) serveCommits(ctx context.Context, sc servingScope, req gossip.CommitsRequest) (gossip.CommitsResponse, error) {
	limit := n.batch(req.Limit)
	ds, err := n.store.Groups().Decisions(ctx, sc.gid, max(req.SinceEpoch, sc.joined), limit+1)
	if err != nil {
		return gossip.CommitsResponse{}, fmt.Errorf("node: decisions: %w", err)
	}
	var resp gossip.CommitsResponse
	if len(ds) > limit {
		ds, resp.More = ds[:limit], true
	}
	for _, d := range ds {
		resp.Commits = append(resp.Commits, gossip.CommitRecord{
			Epoch:       d.Epoch,
			Commit:      commitValue{Commit: d.Commit, Welcome: d.Welcome}.marshal(),
			Certificate: d.Certificate,
		})
	}
	return resp, nil
}

// serveMessages returns the logged ciphertexts after the requester's
// cursor, skipping those of epochs before it joined.
func (n *Node) serveMessages(ctx context.Context, sc servingScope, req gossip.MessagesRequest) (gossip.MessagesResponse, error) {
	var cur messageCursor
	if len(req.Cursor) > 0 {
		var err error
		if cur, err = parseMessageCursor(req.Cursor); err != nil {
			return gossip.MessagesResponse{}, fmt.Errorf("%w: %w", err, gossip.ErrBadRequest)
		}
	}
	log := n.store.MessageLog()
	limit := n.batch(req.Limit)
	read := func(after uint64, count int) ([]datastore.LogEntry, error) {
		es, err := log.After(ctx, sc.gid, after, count)
		if err != nil {
			return nil, fmt.Errorf("node: message log: %w", err)
		}
		return es, nil
	}
	// One read serves the check of the cursor's entry and the page (and
	// one entry more, to tell whether more follow).
	pos := messageCursor{} // where the answer leaves the requester
	want := limit + 1
	var es []datastore.LogEntry
	var err error
	if cur.seq > 0 {
		if es, err = read(cur.seq-1, want+1); err != nil {
			return gossip.MessagesResponse{}, err
		}
		if len(es) > 0 && es[0].Seq == cur.seq && entryCheck(es[0].Ciphertext) == cur.check {
			pos, es = cur, es[1:]
		} else {
			// The entry was trimmed, or the cursor is from a log this node
			// deleted since: everything it holds is after it.
			es = nil
		}
	}
	if pos.seq == 0 {
		if es, err = read(0, want); err != nil {
			return gossip.MessagesResponse{}, err
		}
	}
	var (
		resp    gossip.MessagesResponse
		size    int
		scanned int
		last    *datastore.LogEntry
	)
	for {
		for i := range es {
			e := &es[i]
			full := len(resp.Messages) == limit || (len(resp.Messages) > 0 && size+len(e.Ciphertext) > maxPageBytes)
			if full || scanned == scanPages*limit {
				resp.More = true
				break
			}
			scanned++
			last = e
			if e.Epoch >= sc.joined {
				resp.Messages = append(resp.Messages, e.Ciphertext)
				size += len(e.Ciphertext)
			}
		}
		if resp.More || len(es) < want {
			break
		}
		// Every entry read was skipped or taken and more may follow.
		if es, err = read(last.Seq, want); err != nil {
			return gossip.MessagesResponse{}, err
		}
	}
	if last != nil {
		pos = messageCursor{seq: last.Seq, check: entryCheck(last.Ciphertext)}
	}
	pos.epoch = sc.epoch
	resp.Next = pos.marshal()
	return resp, nil
}

// catchUpState is a group's catch-up bookkeeping, owned by the loop.
type catchUpState struct {
	// rounds are the catch-ups in flight, by serving peer: at most one per
	// peer, and a round asked for meanwhile runs once the current ends.
	rounds map[peer.ID]*syncRound
	// unsavedPages counts pages processed since the group state was last
	// stored; batch is the history of the page being processed (catchup.go).
	unsavedPages int
	batch        *historyBatch
	// While rounds fetch a backlog (holding counts them), messages from the
	// topic wait in held: a live message from far ahead in a sender's
	// ratchet would make this node skip the keys of the backlog's messages
	// of that sender beyond the profile's MaxRetainedKeys, and the backlog
	// would then be lost. They are handled once the backlog is in.
	holding   int
	held      [][]byte
	heldBytes int
	// dropped counts live messages dropped while the hold was full; a
	// sync round follows when the hold ends, to fetch them.
	dropped int
}

type syncRound struct {
	again, commits bool // run again when done; with Commits first
	holding        bool // this round counts in catchUpState.holding
}

// Catch-up pages in flight: fetched and handed to the loop, not processed
// yet. More would only hold memory: the loop is the bottleneck.
const pagesAhead = 4

// saveEveryPages bounds how many pages are processed between two saves of
// the group state during a long catch-up (it is also saved at the end).
// Receiving never risks a reused key: after a crash the node only fetches
// and decrypts those messages again and drops them as duplicates.
const saveEveryPages = 8

// watchConnections starts a catch-up with every peer the node connects to
// (once per peer, however many transports it connected on).
func (n *Node) watchConnections() error {
	ch, err := n.net.PeerEvents(n.ctx)
	if err != nil {
		return fmt.Errorf("node: watch connections: %w", err)
	}
	n.goAsync(func(ctx context.Context) {
		for ev := range ch {
			if ev.Type != gossip.PeerConnected {
				continue
			}
			p := ev.Peer
			if !n.post(func() { n.catchUpWith(p) }) {
				return
			}
		}
	})
	return nil
}

// catchUpWith catches up, Commits first, in every group p is a member of.
func (n *Node) catchUpWith(p peer.ID) {
	id, err := identity.ParsePeerID(p.String())
	if err != nil {
		return
	}
	for _, g := range n.st.groups {
		if g.inactive {
			continue
		}
		if _, ok := n.memberLeaf(g, id); !ok {
			continue
		}
		n.startSync(g, p, true)
	}
}

// syncCommits asks one connected member of g, in turn, for what g may have
// missed: the ciphertexts after the cursor of that member (one small
// request when nothing is new) and, when that member is in a later epoch,
// messages of a later epoch came, or early messages wait, the decided
// Commits first. A decision broadcast or a message that gossip did not
// deliver is never repeated, so without this a member would wait for its
// next reconnection. Runs every Delivery.CommitSyncInterval.
func (n *Node) syncCommits(g *group) {
	var members []peer.ID
	for _, p := range n.net.Host().Network().Peers() {
		id, err := identity.ParsePeerID(p.String())
		if err != nil {
			continue
		}
		if _, ok := n.memberLeaf(g, id); ok {
			members = append(members, p)
		}
	}
	if len(members) == 0 {
		return
	}
	p := members[g.commitSyncTurn%len(members)]
	g.commitSyncTurn++
	n.startSync(g, p, len(g.early) > 0)
}

// holdDuringCatchUp takes a payload from the group's topic while a backlog
// is fetched: it keeps it within the profile's early-message bounds and
// drops it beyond them (gossip replays the tail of a burst to a member
// that comes back, thousands of messages at once; a sync fetches whatever
// is dropped from a member's log, in order). It reports whether it took
// the payload. Decides carry no ratchet and go through at once.
func (n *Node) holdDuringCatchUp(g *group, payload []byte) bool {
	cu := &g.catchUp
	if cu.holding == 0 || len(payload) == 0 || payload[0] != tagMLS {
		return false
	}
	oo := n.prof.OutOfOrder
	if len(cu.held) >= oo.EarlyBufferMessages || cu.heldBytes+len(payload) > oo.EarlyBufferBytes {
		cu.dropped++
		return true
	}
	cu.held = append(cu.held, payload)
	cu.heldBytes += len(payload)
	return true
}

// holdLive starts or ends r's hold on live messages; when the last hold
// ends, the held messages are handled in the order they came.
func (n *Node) holdLive(g *group, r *syncRound, on bool) {
	cu := &g.catchUp
	if r == nil || r.holding == on {
		return
	}
	r.holding = on
	if on {
		cu.holding++
		return
	}
	if cu.holding--; cu.holding > 0 {
		return
	}
	held := cu.held
	cu.held, cu.heldBytes = nil, 0
	if cu.dropped > 0 {
		n.log.Debug("live messages dropped during a catch-up; syncing again", "dropped", cu.dropped)
		cu.dropped = 0
		g.lastCommitSync = time.Time{} // the next tick syncs with a member
	}
	for _, p := range held {
		if g.inactive {
			return
		}
		n.handlePayload(g, p)
	}
}

// startSync starts a catch-up round with p in g, or, if one is running,
// asks it to run once more when done.
func (n *Node) startSync(g *group, p peer.ID, commits bool) {
	if !n.claimSync(g, p, commits) {
		return
	}
	gid, since := bytes.Clone(g.id), g.mls.Epoch()
	n.goAsync(func(ctx context.Context) { n.runSync(ctx, p, gid, commits, since) })
}

// claimSync registers a round with p in g; false if one is running (which
// then runs again).
func (n *Node) claimSync(g *group, p peer.ID, commits bool) bool {
	cu := &g.catchUp
	if r, ok := cu.rounds[p]; ok {
		r.again = true
		r.commits = r.commits || commits
		return false
	}
	if cu.rounds == nil {
		cu.rounds = make(map[peer.ID]*syncRound)
	}
	r := &syncRound{}
	cu.rounds[p] = r
	if commits {
		// A (re)connection: gossip may replay the tail of a burst that the
		// catch-up is about to fetch in full.
		n.holdLive(g, r, true)
	}
	return true
}

// fetchFrom runs a catch-up with p, Commits from epoch since first, so
// that the node is in the newest epoch, then ciphertexts. If one with p is
// running, that one runs once more instead.
func (n *Node) fetchFrom(ctx context.Context, p peer.ID, gid []byte, since uint64) {
	claimed, err := call(ctx, n, func() (bool, error) {
		g, ok := n.st.groups[string(gid)]
		return ok && !g.inactive && n.claimSync(g, p, true), nil
	})
	if err == nil && claimed {
		n.runSync(ctx, p, gid, true, since)
	}
}

// runSync runs catch-up rounds with p until none was asked for meanwhile,
// then releases the claim and stores the group state if messages were
// processed since it was last stored.
func (n *Node) runSync(ctx context.Context, p peer.ID, gid []byte, commits bool, since uint64) {
	type next struct {
		again, commits bool
		since          uint64
	}
	for {
		n.syncRound(ctx, p, gid, commits, since)
		nx, err := call(ctx, n, func() (next, error) {
			g, ok := n.st.groups[string(gid)]
			if !ok {
				return next{}, nil
			}
			n.saveCaughtUp(g)
			r := g.catchUp.rounds[p]
			n.holdLive(g, r, false)
			if r == nil || !r.again || g.inactive {
				delete(g.catchUp.rounds, p)
				return next{}, nil
			}
			c := r.commits || len(g.early) > 0
			r.again, r.commits = false, false
			return next{again: true, commits: c, since: g.mls.Epoch()}, nil
		})
		if err != nil || !nx.again {
			return
		}
		commits, since = nx.commits, nx.since
	}
}

// syncRound is one catch-up with p: Commits (if asked) and then the
// ciphertexts after the stored cursor; if p turns out to be in a later
// epoch, or sent messages of one, it learns the Commits and fetches the
// ciphertexts again.
func (n *Node) syncRound(ctx context.Context, p peer.ID, gid []byte, commits bool, since uint64) {
	if commits && !n.fetchCommits(ctx, p, gid, since) {
		return
	}
	for attempt := 0; ; attempt++ {
		res, ok := n.fetchMessages(ctx, p, gid)
		if !ok || !res.behind || attempt == 1 {
			return
		}
		if !n.fetchCommits(ctx, p, gid, res.epoch) {
			return
		}
	}
}

// fetchCommits fetches and learns p's decisions from epoch since on; it
// reports whether p answered every request.
func (n *Node) fetchCommits(ctx context.Context, p peer.ID, gid []byte, since uint64) bool {
	batch := uint32(n.prof.Delivery.CatchUpBatch)
	for {
		resp, err := n.net.FetchCommits(ctx, p, gossip.CommitsRequest{GroupID: gid, SinceEpoch: since, Limit: batch})
		if err != nil {
			n.log.Debug("catch-up of Commits failed", "peer", p, "err", err)
			return false
		}
		if len(resp.Commits) == 0 {
			return true
		}
		recs := resp.Commits
		if !n.post(func() { n.learnCommits(gid, recs) }) {
			return false
		}
		since = recs[len(recs)-1].Epoch + 1
		if !resp.More {
			return true
		}
	}
}

// fetched is the outcome of fetchMessages.
type fetched struct {
	// behind: p is in a later epoch than this node, or sent messages of a
	// later epoch (kept as early messages, and the cursor not moved past
	// them); epoch is this node's epoch after the last page.
	behind bool
	epoch  uint64
}

// fetchMessages fetches p's ciphertexts after the stored cursor, page by
// page, while the loop processes the pages before (at most pagesAhead
// ahead). After each page the loop stores p's new cursor; ok is false if p
// did not answer or the node is closing.
func (n *Node) fetchMessages(ctx context.Context, p peer.ID, gid []byte) (res fetched, ok bool) {
	var cursor []byte
	stored, err := n.store.SyncCursors().Get(ctx, gid, []byte(p))
	switch {
	case err == nil:
		cursor = stored.Cursor
	case !errors.Is(err, datastore.ErrNotFound):
		n.log.Error("sync cursor unreadable; starting over with this peer", "peer", p, "err", err)
	}
	var (
		stop, behind atomic.Bool
		epoch        atomic.Uint64
		window       = make(chan struct{}, pagesAhead)
	)
	batch := uint32(n.prof.Delivery.CatchUpBatch)
	for !stop.Load() {
		resp, err := n.net.FetchMessages(ctx, p, gossip.MessagesRequest{GroupID: gid, Cursor: cursor, Limit: batch})
		if errors.Is(err, gossip.ErrBadRequest) && cursor != nil {
			// p does not take the cursor it gave (it was upgraded, or
			// the cursor is damaged): start over with p next time.
			n.log.Info("sync cursor refused; starting over with this peer", "peer", p, "err", err)
			if err := n.store.SyncCursors().Delete(n.ctx, gid, []byte(p)); err != nil {
				n.log.Error("sync cursor", "err", err)
			}
			return fetched{}, false
		}
		if err != nil {
			n.log.Debug("catch-up of messages failed", "peer", p, "err", err)
			return fetched{}, false
		}
		next, err := parseMessageCursor(resp.Next)
		if err != nil {
			n.log.Debug("catch-up peer sent a bad cursor", "peer", p, "err", err)
			return fetched{}, false
		}
		if resp.More && len(resp.Messages) == 0 && bytes.Equal(resp.Next, cursor) {
			n.log.Debug("catch-up peer says more follow but does not move on", "peer", p)
			resp.More = false
		}
		select {
		case window <- struct{}{}:
		case <-ctx.Done():
			return fetched{}, false
		}
		msgs, last, raw := resp.Messages, !resp.More, resp.Next
		posted := n.post(func() {
			defer func() { <-window }()
			if stop.Load() {
				return
			}
			g, ok := n.st.groups[string(gid)]
			if !ok || g.inactive {
				stop.Store(true)
				return
			}
			ahead := n.receivePage(g, msgs)
			epoch.Store(g.mls.Epoch())
			if ahead || next.epoch > g.mls.Epoch() {
				behind.Store(true)
			}
			if ahead {
				// Keep the cursor before this page: once the Commits are
				// learned the page is fetched again.
				stop.Store(true)
				return
			}
			n.storeCursor(g, p, raw)
			if last || g.catchUp.unsavedPages >= saveEveryPages {
				n.saveCaughtUp(g)
			}
			if !last {
				n.holdLive(g, g.catchUp.rounds[p], true) // a backlog
			}
		})
		if !posted || last {
			break
		}
		cursor = raw
	}
	// Wait for the loop to process every page handed to it.
	for range cap(window) {
		select {
		case window <- struct{}{}:
		case <-ctx.Done():
			return fetched{}, false
		}
	}
	return fetched{behind: behind.Load(), epoch: epoch.Load()}, true
}

// storeCursor keeps where the catch-up with p stands in g.
func (n *Node) storeCursor(g *group, p peer.ID, cursor []byte) {
	c := datastore.SyncCursor{Peer: []byte(p), Cursor: cursor, UpdatedAt: n.clock.Now()}
	if err := n.store.SyncCursors().Put(n.ctx, g.id, c); err != nil {
		n.log.Error("sync cursor not kept", "err", err)
	}
}

// saveCaughtUp stores g's state if catch-up moved its ratchets since it
// was last stored.
func (n *Node) saveCaughtUp(g *group) {
	if g.catchUp.unsavedPages == 0 || g.inactive {
		return
	}
	g.catchUp.unsavedPages = 0
	if err := n.saveState(g); err != nil {
		n.log.Error("state after catch-up not saved", "err", err)
	}
}

// learnCommits applies fetched decisions in epoch order, each only after
// its certificate checks out against the epoch's members.
func (n *Node) learnCommits(gid []byte, recs []gossip.CommitRecord) {
	g, ok := n.st.groups[string(gid)]
	if !ok {
		return
	}
	for _, r := range recs {
		if g.inactive || g.cur == nil || r.Epoch != g.cur.epoch || g.cur.decided {
			continue
		}
		var cert consensus.Certificate
		if err := cert.UnmarshalBinary(r.Certificate); err != nil {
			n.log.Debug("fetched certificate does not parse", "err", err)
			return
		}
		ei := g.cur
		if err := ei.inst.Learn(r.Commit, &cert); err != nil {
			n.log.Warn("fetched decision rejected", "epoch", r.Epoch, "err", err)
			return
		}
		n.drain(g, ei)
	}
}
