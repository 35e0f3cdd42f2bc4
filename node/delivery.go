package node

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/conclave-im/conclave/gossip"
)

// DeliveryState is where one of this node's own messages stands.
type DeliveryState uint8

const (
	// DeliveryPending: the message is in the outbox and not yet handed to
	// any member (Message.Waiting says why).
	DeliveryPending DeliveryState = 1
	// DeliverySent: the message was published while at least one member
	// of the group was connected. Members offline then fetch it from any
	// member's log when they come back.
	DeliverySent DeliveryState = 2
)

// String returns "pending" or "sent".
func (s DeliveryState) String() string {
	switch s {
	case DeliveryPending:
		return "pending"
	case DeliverySent:
		return "sent"
	}
	return fmt.Sprintf("DeliveryState(%d)", uint8(s))
}

// PendingChange is a membership change this node has asked for and waits
// on, with the reason it waits.
type PendingChange struct {
	Desc    string // "invite <peer>", "remove <peer>", "leave", "leaf update", ...
	Since   time.Time
	Waiting string
}

// WaitingSending is the reason of an own message between Send and its
// hand-over to the network (or a reason to wait longer).
const WaitingSending = "sending"

// Reasons an own message waits.
const (
	waitSending  = WaitingSending
	waitNoMember = "no member of the group is online"
)

// unsent is one of this node's messages, encrypted and in the message log,
// that no member has received from it yet.
type unsent struct {
	outboxID uint64
	id       [MessageIDLen]byte
	payload  []byte
	inFlight bool
}

// markOwn records the delivery state of an own message and tells
// subscribers when it changed.
func (n *Node) markOwn(g *group, id [MessageIDLen]byte, state DeliveryState, waiting string) {
	prev, had := n.st.outgoing[id]
	if state == DeliverySent {
		delete(n.st.outgoing, id)
		if !had {
			return
		}
	} else {
		if had && prev == waiting {
			return
		}
		n.st.outgoing[id] = waiting
	}
	n.emit(MessageStateChanged{GroupID: bytes.Clone(g.id), ID: id, State: state, Waiting: waiting})
}

// deliver hands an own message to the group's topic if a member is there
// to receive it; otherwise it waits in g.unsent for one to appear.
func (n *Node) deliver(g *group, u *unsent) {
	if g.topic == nil || len(g.topic.Peers()) == 0 {
		n.markOwn(g, u.id, DeliveryPending, waitNoMember)
		return
	}
	u.inFlight = true
	n.publish(g, gossip.KindGroupMessage, u.payload, func(err error) {
		u.inFlight = false
		if err != nil {
			n.markOwn(g, u.id, DeliveryPending, "retrying: "+err.Error())
			return
		}
		g.unsent = slices.DeleteFunc(g.unsent, func(x *unsent) bool { return x == u })
		if err := n.store.Outbox().Remove(n.ctx, u.outboxID); err != nil {
			n.log.Error("outbox", "err", err)
		}
		n.markOwn(g, u.id, DeliverySent, "")
	})
}

// retryUnsent publishes the messages that found no member online, once
// one is.
func (n *Node) retryUnsent(g *group) {
	if len(g.unsent) == 0 || g.topic == nil || len(g.topic.Peers()) == 0 {
		return
	}
	for _, u := range g.unsent {
		if !u.inFlight {
			n.deliver(g, u)
		}
	}
}

// ownState returns the delivery state of the own message id.
func (n *Node) ownState(id [MessageIDLen]byte) (DeliveryState, string) {
	if w, ok := n.st.outgoing[id]; ok {
		return DeliveryPending, w
	}
	return DeliverySent, ""
}

// reachable counts the members of the current epoch this node can talk to
// right now, itself included, and the majority consensus needs.
func (n *Node) reachable(g *group) (reach, total, needed int) {
	if g.cur == nil {
		return 0, 0, 0
	}
	total = len(g.cur.members)
	needed = total/2 + 1
	self := n.net.ID()
	for _, mk := range g.cur.members {
		if mk.peer == self || (mk.peer != "" && n.net.Host().Network().Connectedness(mk.peer) == network.Connected) {
			reach++
		}
	}
	return reach, total, needed
}

// pendingChanges lists the membership changes this node waits on in g.
func (n *Node) pendingChanges(g *group) []PendingChange {
	// Runs every tick for every group: count reachable members only when
	// something waits on them.
	if g.inactive || (g.active == nil && len(g.ops) == 0 && g.leaving == nil) {
		return nil
	}
	now := n.clock.Now()
	reach, total, needed := n.reachable(g)
	quorum := "being decided by the members"
	if reach < needed {
		quorum = fmt.Sprintf("waiting for a majority of members to be online (%d of %d reachable, %d needed)", reach, total, needed)
	}
	var out []PendingChange
	add := func(o *op, waiting string) {
		if o.since.IsZero() {
			o.since = now
		}
		out = append(out, PendingChange{Desc: o.desc, Since: o.since, Waiting: waiting})
	}
	if g.active != nil {
		add(g.active, quorum)
	}
	for _, o := range g.ops {
		switch {
		case o.proposals == nil:
			add(o, "fetching a KeyPackage of "+o.peer.PeerID())
		case g.active != nil:
			add(o, "queued behind: "+g.active.desc)
		default:
			add(o, quorum)
		}
	}
	if g.leaving != nil {
		if g.leavingSince.IsZero() {
			g.leavingSince = now
		}
		w := "waiting for another member to commit the removal"
		if reach < needed {
			w = quorum
		}
		out = append(out, PendingChange{Desc: "leave", Since: g.leavingSince, Waiting: w})
	}
	return out
}

// notePending tells subscribers when g's pending changes or their reasons
// changed since the last time.
func (n *Node) notePending(g *group) {
	p := n.pendingChanges(g)
	var sig strings.Builder
	for _, c := range p {
		sig.WriteString(c.Desc)
		sig.WriteByte(0)
		sig.WriteString(c.Waiting)
		sig.WriteByte(0)
	}
	if sig.String() == g.pendingSig {
		return
	}
	g.pendingSig = sig.String()
	n.emit(PendingChanged{GroupID: bytes.Clone(g.id), Pending: p})
}
