package node

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/conclave-im/conclave/consensus"
	"github.com/conclave-im/conclave/gossip"
	"github.com/conclave-im/conclave/identity"
)

// Catch-up: a member that was away fetches, from any member it connects
// to, the decided Commits it missed (each checked against its certificate
// before it is applied) and then the group's retained ciphertexts, which
// it decrypts with the current or a retained past epoch. Duplicates are
// dropped by message ID, so each message lands in the history once.

func (h handlers) CommitsSince(ctx context.Context, from peer.ID, req gossip.CommitsRequest) (gossip.CommitsResponse, error) {
	return call(ctx, h.n, func() (gossip.CommitsResponse, error) { return h.n.serveCommits(from, req) })
}

func (h handlers) MessagesSince(ctx context.Context, from peer.ID, req gossip.MessagesRequest) (gossip.MessagesResponse, error) {
	return call(ctx, h.n, func() (gossip.MessagesResponse, error) { return h.n.serveMessages(from, req) })
}

// servingGroup returns the group a catch-up request names, if the
// requester is one of its members; to anyone else the group does not exist.
func (n *Node) servingGroup(from peer.ID, gid []byte) (*group, error) {
	g, ok := n.st.groups[string(gid)]
	if !ok || g.inactive {
		return nil, fmt.Errorf("node: no such group: %w", gossip.ErrNotFound)
	}
	id, err := identity.ParsePeerID(from.String())
	if err != nil {
		return nil, fmt.Errorf("node: no such group: %w", gossip.ErrNotFound)
	}
	if _, ok := n.memberLeaf(g, id); !ok {
		return nil, fmt.Errorf("node: no such group: %w", gossip.ErrNotFound)
	}
	return g, nil
}

func (n *Node) batch(limit uint32) int {
	b := n.prof.Delivery.CatchUpBatch
	if limit > 0 && int(limit) < b {
		b = int(limit)
	}
	return b
}

func (n *Node) serveCommits(from peer.ID, req gossip.CommitsRequest) (gossip.CommitsResponse, error) {
	g, err := n.servingGroup(from, req.GroupID)
	if err != nil {
		return gossip.CommitsResponse{}, err
	}
	limit := n.batch(req.Limit)
	ds, err := n.store.Groups().Decisions(n.ctx, g.id, req.SinceEpoch, limit+1)
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

func (n *Node) serveMessages(from peer.ID, req gossip.MessagesRequest) (gossip.MessagesResponse, error) {
	g, err := n.servingGroup(from, req.GroupID)
	if err != nil {
		return gossip.MessagesResponse{}, err
	}
	var cursor uint64
	switch len(req.Cursor) {
	case 0:
	case 8:
		cursor = binary.BigEndian.Uint64(req.Cursor)
	default:
		return gossip.MessagesResponse{}, fmt.Errorf("node: cursor of %d bytes: %w", len(req.Cursor), gossip.ErrBadRequest)
	}
	limit := n.batch(req.Limit)
	es, err := n.store.MessageLog().After(n.ctx, g.id, cursor, limit+1)
	if err != nil {
		return gossip.MessagesResponse{}, fmt.Errorf("node: message log: %w", err)
	}
	var resp gossip.MessagesResponse
	if len(es) > limit {
		es, resp.More = es[:limit], true
	}
	for _, e := range es {
		resp.Messages = append(resp.Messages, e.Ciphertext)
		cursor = e.Seq
	}
	resp.Next = binary.BigEndian.AppendUint64(nil, cursor)
	return resp, nil
}

// watchConnections starts a catch-up with every peer the node connects to.
func (n *Node) watchConnections() {
	n.net.Host().Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			p := c.RemotePeer()
			go n.post(func() { n.catchUpWith(p) })
		},
	})
}

// catchUpWith fetches what this node missed in every group p is a member of.
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
		gid, since := g.id, g.mls.Epoch()
		n.goAsync(func(ctx context.Context) { n.fetchFrom(ctx, p, gid, since) })
	}
}

// fetchFrom runs one catch-up with p: Commits first, so that the node is
// in the newest epoch, then ciphertexts.
func (n *Node) fetchFrom(ctx context.Context, p peer.ID, gid []byte, since uint64) {
	if n.fetchCommits(ctx, p, gid, since) {
		n.fetchMessages(ctx, p, gid)
	}
}

// syncCommits asks one connected member, in turn, for decisions g may have
// missed. A Committed broadcast that gossip did not deliver (for example to
// a member that joined while the next epoch was being decided) is never
// repeated, so without this the member would wait for its next reconnection.
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
	gid, since := g.id, g.mls.Epoch()
	n.goAsync(func(ctx context.Context) { n.fetchCommits(ctx, p, gid, since) })
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
		n.post(func() { n.learnCommits(gid, recs) })
		since = recs[len(recs)-1].Epoch + 1
		if !resp.More {
			return true
		}
	}
}

// fetchMessages fetches p's retained ciphertexts of the group.
func (n *Node) fetchMessages(ctx context.Context, p peer.ID, gid []byte) {
	batch := uint32(n.prof.Delivery.CatchUpBatch)
	var cursor []byte
	for {
		resp, err := n.net.FetchMessages(ctx, p, gossip.MessagesRequest{GroupID: gid, Cursor: cursor, Limit: batch})
		if err != nil {
			n.log.Debug("catch-up of messages failed", "peer", p, "err", err)
			return
		}
		msgs := resp.Messages
		if len(msgs) > 0 {
			n.post(func() { n.receiveCaughtUp(gid, msgs) })
		}
		if !resp.More || len(resp.Next) == 0 {
			return
		}
		cursor = resp.Next
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

func (n *Node) receiveCaughtUp(gid []byte, msgs [][]byte) {
	g, ok := n.st.groups[string(gid)]
	if !ok {
		return
	}
	g.batching = true
	for _, m := range msgs {
		if g.inactive {
			break
		}
		n.handlePayload(g, append([]byte{tagMLS}, m...))
	}
	g.batching = false
	if g.dirty && !g.inactive {
		g.dirty = false
		if err := n.saveState(g); err != nil {
			n.log.Error("state after catch-up not saved", "err", err)
		}
	}
}
