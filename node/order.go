package node

import (
	"encoding/binary"
	"slices"
	"time"
)

// Per-sender order. gossip may deliver a burst out of order (its
// validation runs concurrently), so every content message carries the
// sender's sequence number within the epoch, starting at 1, in the frame
// around the Content:
//
//	struct { uint8 frame = 0x01; uint64 sender_seq; Content content; }
//
// A receiver delivers each sender's messages of an epoch in that order. A
// message that arrives ahead of a gap is held, bounded by the profile's
// early-message limits, and released when the gap fills, or after one
// consensus timeout (the missing message is then late, and is delivered
// whenever it arrives, for instance through catch-up).

// orderKey names one sender's sequence in one epoch.
type orderKey struct {
	epoch  uint64
	sender string
}

type senderQueue struct {
	next uint64
	held []heldMessage // sorted by seq
}

type heldMessage struct {
	seq     uint64
	at      time.Time
	deliver func()
}

func encodeContentFrame(seq uint64, content []byte) []byte {
	b := make([]byte, 0, 9+len(content))
	b = append(b, frameContent)
	b = binary.BigEndian.AppendUint64(b, seq)
	return append(b, content...)
}

// ordered runs deliver for message seq of key in per-sender order; deliver
// nil means the message was a duplicate, which still fills its place.
func (n *Node) ordered(g *group, key orderKey, seq uint64, deliver func()) {
	if g.order == nil {
		g.order = make(map[orderKey]*senderQueue)
	}
	q := g.order[key]
	if q == nil {
		// Every sender starts each epoch at 1. After a restart the node
		// no longer knows where the senders of its current epoch were, so
		// there the first message it sees sets the place.
		q = &senderQueue{next: 1}
		if key.epoch < g.orderFrom {
			q.next = seq
		}
		g.order[key] = q
	}
	switch {
	case seq < q.next:
		if deliver != nil {
			deliver() // late: its place has passed
		}
		return
	case seq > q.next:
		if deliver == nil {
			return
		}
		if g.heldCount >= n.prof.OutOfOrder.EarlyBufferMessages {
			deliver() // no room to wait for the gap
			return
		}
		i, found := slices.BinarySearchFunc(q.held, seq, func(h heldMessage, s uint64) int { return int64Cmp(h.seq, s) })
		if found {
			return
		}
		q.held = slices.Insert(q.held, i, heldMessage{seq: seq, at: n.clock.Now(), deliver: deliver})
		g.heldCount++
		return
	}
	if deliver != nil {
		deliver()
	}
	q.next++
	n.flushQueue(g, q)
}

func (n *Node) flushQueue(g *group, q *senderQueue) {
	for len(q.held) > 0 && q.held[0].seq <= q.next {
		h := q.held[0]
		q.held = q.held[1:]
		g.heldCount--
		h.deliver()
		if h.seq == q.next {
			q.next++
		}
	}
}

// releaseGaps gives up on gaps older than one consensus timeout, and drops
// the queues of epochs past retention.
func (n *Node) releaseGaps(g *group, now time.Time) {
	wait := n.prof.TickTimeout()
	for key, q := range g.order {
		if len(q.held) > 0 && now.Sub(q.held[0].at) >= wait {
			q.next = q.held[0].seq
			n.flushQueue(g, q)
		}
		if len(q.held) == 0 && key.epoch+uint64(n.prof.Epochs.PastEpochs) < g.mls.Epoch() {
			delete(g.order, key)
		}
	}
}

func int64Cmp(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
