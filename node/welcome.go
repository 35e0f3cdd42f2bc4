package node

import (
	"bytes"
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/identity"
	"github.com/conclave-im/conclave/mls"
)

// deliverWelcome sends the decided Welcome to each added member. Each
// delivery is kept in the outbox until the member acknowledges it or
// Delivery.WelcomeRetention passes, so that a restart resumes it.
func (n *Node) deliverWelcome(g *group, added []mls.Member, welcome []byte) {
	cs := g.mls.CipherSuite()
	now := n.clock.Now()
	for _, m := range added {
		li, err := n.verifyLeaf(cs, m.Credential, m.SignatureKey)
		if err != nil || li.Assurance != identity.Verified {
			continue
		}
		pid, err := peer.Decode(li.ID.PeerID())
		if err != nil {
			continue
		}
		it := datastore.OutboxItem{Kind: outboxWelcome, GroupID: bytes.Clone(g.id), Payload: encodeWelcomeItem(pid, welcome), CreatedAt: now}
		id, err := n.store.Outbox().Add(n.ctx, it)
		if err != nil {
			// Still try now; only a restart would lose it.
			n.log.Error("Welcome not kept in the outbox", "to", pid, "err", err)
		}
		it.ID = id
		n.sendWelcome(it, pid, welcome, err == nil)
	}
}

// resumeWelcome continues a Welcome delivery a previous run started.
func (n *Node) resumeWelcome(it datastore.OutboxItem) {
	pid, welcome, ok := decodeWelcomeItem(it.Payload)
	if !ok {
		n.log.Error("dropping an unreadable stored Welcome")
		n.removeOutbox(it.ID)
		return
	}
	n.sendWelcome(it, pid, welcome, true)
}

// sendWelcome retries every Delivery.WelcomeRetry until the member takes
// the Welcome or WelcomeRetention after it was decided; then the outbox
// item goes.
func (n *Node) sendWelcome(it datastore.OutboxItem, pid peer.ID, welcome []byte, stored bool) {
	gid := it.GroupID
	deadline := it.CreatedAt.Add(n.prof.Delivery.WelcomeRetention)
	n.goAsync(func(ctx context.Context) {
		retry := n.prof.Delivery.WelcomeRetry
		var tick Ticker
		for {
			if !n.clock.Now().Before(deadline) {
				n.log.Warn("gave up delivering a Welcome", "to", pid, "decided", it.CreatedAt)
				break
			}
			sctx, cancel := context.WithTimeout(ctx, retry)
			err := n.net.SendWelcome(sctx, pid, gid, welcome)
			cancel()
			if err == nil {
				break
			}
			n.log.Debug("Welcome not delivered yet", "to", pid, "err", err)
			if tick == nil {
				tick = n.clock.NewTicker(retry)
				defer tick.Stop()
			}
			select {
			case <-tick.C():
			case <-ctx.Done():
				return // the node is closing: the outbox keeps it
			}
		}
		if stored {
			n.post(func() { n.removeOutbox(it.ID) })
		}
	})
}

func (n *Node) removeOutbox(id uint64) {
	if err := n.store.Outbox().Remove(n.ctx, id); err != nil {
		n.log.Error("outbox", "err", err)
	}
}

// encodeWelcomeItem is a pending Welcome in the outbox: the member's peer
// ID and the Welcome (joinPrefixed).
func encodeWelcomeItem(p peer.ID, welcome []byte) []byte { return joinPrefixed([]byte(p), welcome) }

func decodeWelcomeItem(b []byte) (peer.ID, []byte, bool) {
	id, welcome, ok := splitPrefixed(b)
	if !ok || len(welcome) == 0 {
		return "", nil, false
	}
	pid, err := peer.IDFromBytes(id)
	if err != nil {
		return "", nil, false
	}
	return pid, welcome, true
}
