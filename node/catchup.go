package node

import (
	"bytes"
	"encoding/binary"
	"slices"
	"time"

	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/mls"
)

// Processing a page of fetched ciphertexts. Live messages are stored one
// at a time as they arrive; a catch-up page is stored at once: one append
// to the message log for the page and one to the history for what it
// delivers, then the events. Order is kept: each sender's messages of an
// epoch are delivered in sender_seq order (order.go), within the page
// first (a member's log is in its arrival order, which gossip may have
// shuffled) and across pages and live messages through the per-sender
// queues.

// caughtUp is one content message of a fetched page, decrypted.
type caughtUp struct {
	key        orderKey
	seq        uint64
	content    Content
	body       []byte // the encoded Content, as the history keeps it
	ciphertext []byte
	dup        bool // already in the message log
}

// historyBatch collects what a page delivers, in delivery order, for one
// history append.
type historyBatch struct {
	items []caughtUp
	at    time.Time
}

// receivePage decrypts and delivers one fetched page. Messages of an epoch
// this node has not reached are kept as early messages and reported: the
// caller learns the Commits and fetches the page again.
func (n *Node) receivePage(g *group, msgs [][]byte) (ahead bool) {
	now := n.clock.Now()
	items := make([]caughtUp, 0, len(msgs))
	processed := false
	for _, raw := range msgs {
		var m mls.MLSMessage
		if err := m.Unmarshal(raw); err != nil || m.PrivateMessage == nil || m.PrivateMessage.ContentType != mls.ContentTypeApplication {
			// Logs hold application messages only.
			n.log.Debug("dropped a fetched message that is not an application PrivateMessage", "err", err)
			continue
		}
		if e := m.PrivateMessage.Epoch; e > g.mls.Epoch() {
			n.bufferEarly(g, e, append([]byte{tagMLS}, raw...))
			ahead = true
			continue
		}
		r, err := g.mls.Process(&m)
		if err != nil {
			n.log.Debug("dropped a fetched message", "err", err) // typically one already received
			continue
		}
		processed = true
		if it, ok := n.caughtUpContent(r, raw); ok {
			items = append(items, it)
		}
	}
	if processed {
		g.catchUp.unsavedPages++
	}
	if len(items) == 0 {
		return ahead
	}
	entries := make([]datastore.LogEntry, len(items))
	for i, it := range items {
		entries[i] = datastore.LogEntry{MessageID: bytes.Clone(it.content.ID[:]), Epoch: it.key.epoch, ReceivedAt: now, Ciphertext: it.ciphertext}
	}
	if err := n.store.MessageLog().Append(n.ctx, g.id, entries); err != nil {
		n.log.Error("message log", "err", err)
		return ahead
	}
	for i := range items {
		items[i].dup = entries[i].Seq == 0
	}
	sortPerSender(items)

	g.catchUp.batch = &historyBatch{at: now}
	for _, it := range items {
		var deliver func()
		if !it.dup {
			deliver = func() { n.deliverCaughtUp(g, it) }
		}
		if q := g.order[it.key]; q != nil && len(q.held) > 0 {
			// This message may release held ones, some of which write to
			// the history themselves: what comes before them, this message
			// included, goes first, unbatched.
			n.flushHistory(g)
			batch := g.catchUp.batch
			g.catchUp.batch = nil
			n.ordered(g, it.key, it.seq, deliver)
			g.catchUp.batch = batch
			continue
		}
		n.ordered(g, it.key, it.seq, deliver)
	}
	n.flushHistory(g)
	g.catchUp.batch = nil
	return ahead
}

// caughtUpContent checks and decodes a decrypted content message, like
// handleMLS and receiveContent do for a live one.
func (n *Node) caughtUpContent(r *mls.Received, ciphertext []byte) (caughtUp, bool) {
	data := r.ApplicationData
	switch {
	case r.Kind != mls.ReceivedApplication || len(data) == 0:
		return caughtUp{}, false
	case len(r.AuthenticatedData) != 0 && !n.prof.Messages.AllowAuthenticatedData:
		n.log.Debug("dropped a message with authenticated data")
		return caughtUp{}, false
	case data[0] != frameContent || len(data) < 9:
		n.log.Debug("dropped a fetched message that is not content", "frame", data[0])
		return caughtUp{}, false
	}
	it := caughtUp{
		key:        orderKey{epoch: r.Epoch, sender: n.senderName(r.Credential)},
		seq:        binary.BigEndian.Uint64(data[1:9]),
		body:       bytes.Clone(data[9:]),
		ciphertext: ciphertext,
	}
	if err := it.content.Unmarshal(it.body); err != nil {
		n.log.Debug("dropped malformed content", "err", err)
		return caughtUp{}, false
	}
	return it, true
}

// sortPerSender puts each sender's messages of an epoch in sender_seq
// order, leaving every message where one of that sender's was: the
// interleaving of senders stays as it was.
func sortPerSender(items []caughtUp) {
	where := make(map[orderKey][]int)
	for i, it := range items {
		where[it.key] = append(where[it.key], i)
	}
	for _, pos := range where {
		ordered := true
		for j := 1; j < len(pos); j++ {
			if items[pos[j]].seq < items[pos[j-1]].seq {
				ordered = false
				break
			}
		}
		if ordered {
			continue
		}
		vals := make([]caughtUp, len(pos))
		for j, p := range pos {
			vals[j] = items[p]
		}
		slices.SortStableFunc(vals, func(a, b caughtUp) int { return int64Cmp(a.seq, b.seq) })
		for j, p := range pos {
			items[p] = vals[j]
		}
	}
}

// deliverCaughtUp delivers a fetched message: into the page's history
// batch while the page is processed, on its own when a later message
// released it from its sender's queue.
func (n *Node) deliverCaughtUp(g *group, it caughtUp) {
	if b := g.catchUp.batch; b != nil {
		b.items = append(b.items, it)
		return
	}
	g.catchUp.batch = &historyBatch{at: n.clock.Now(), items: []caughtUp{it}}
	n.flushHistory(g)
	g.catchUp.batch = nil
}

// flushHistory writes the open batch into the history in one append and
// tells subscribers, in order.
func (n *Node) flushHistory(g *group) {
	b := g.catchUp.batch
	if b == nil || len(b.items) == 0 {
		return
	}
	items := b.items
	b.items = nil
	hs := make([]datastore.HistoryEntry, len(items))
	for i, it := range items {
		hs[i] = datastore.HistoryEntry{MessageID: bytes.Clone(it.content.ID[:]), Epoch: it.key.epoch, Sender: []byte(it.key.sender), SentAt: it.content.SentAt, ReceivedAt: b.at, Body: it.body}
	}
	if err := n.store.History().Append(n.ctx, g.id, hs); err != nil {
		n.log.Error("history", "err", err)
		return
	}
	for i, it := range items {
		c := it.content
		n.emit(MessageReceived{Message: Message{
			GroupID: bytes.Clone(g.id), Seq: hs[i].Seq, ID: c.ID, Sender: it.key.sender, Epoch: it.key.epoch,
			SentAt: c.SentAt, ReceivedAt: b.at, ReplyTo: c.ReplyTo, Type: c.Type, Text: string(c.Body),
		}})
	}
}
