package node

import (
	"context"
	"time"
)

// Event is something that happened at the node, delivered to subscribers in
// the order the node's loop saw it.
type Event interface{ isEvent() }

// GroupJoined: this node is now a member of a group (it created it, or it
// processed a Welcome).
type GroupJoined struct {
	GroupID []byte
	Epoch   uint64
}

// InvitationReceived: a Welcome arrived and waits for AcceptInvitation or
// DeclineInvitation (only without Options.AutoAccept).
type InvitationReceived struct {
	Invitation Invitation
}

// EpochChanged: a decided Commit was merged; Added and Removed are peer IDs.
type EpochChanged struct {
	GroupID            []byte
	Epoch              uint64
	EpochAuthenticator []byte
	Added, Removed     []string
}

// MessageReceived: a message was added to a group's history (received from
// another member, or sent by this node).
type MessageReceived struct {
	Message Message
}

// GroupLeft: this node was removed from a group.
type GroupLeft struct {
	GroupID []byte
	Epoch   uint64
}

// MessageStateChanged: the delivery state of one of this node's own
// messages changed.
type MessageStateChanged struct {
	GroupID []byte
	ID      [MessageIDLen]byte
	State   DeliveryState
	Waiting string // for a pending message, why it waits
}

// PendingChanged: the membership changes this node waits on in a group,
// or the reasons they wait, changed. Pending is the whole new list.
type PendingChanged struct {
	GroupID []byte
	Pending []PendingChange
}

func (GroupJoined) isEvent()         {}
func (InvitationReceived) isEvent()  {}
func (EpochChanged) isEvent()        {}
func (MessageReceived) isEvent()     {}
func (GroupLeft) isEvent()           {}
func (MessageStateChanged) isEvent() {}
func (PendingChanged) isEvent()      {}

// Message is one message of a group's history.
type Message struct {
	GroupID    []byte
	Seq        uint64 // position in this node's history of the group
	ID         [MessageIDLen]byte
	Sender     string // peer ID
	Epoch      uint64
	SentAt     time.Time // the sender's clock
	ReceivedAt time.Time
	ReplyTo    []byte
	Type       ContentType
	Text       string
	Own        bool
	// State and Waiting are set for this node's own messages only.
	State   DeliveryState
	Waiting string
}

// Subscribe returns a channel of the node's events from now on, and a
// function that ends the subscription. A subscriber that lets its channel
// fill up loses the events that do not fit.
func (n *Node) Subscribe(ctx context.Context) (<-chan Event, func(), error) {
	ch := make(chan Event, n.opts.EventBuffer)
	id, err := call(ctx, n, func() (int, error) {
		n.st.nextSub++
		n.st.subs[n.st.nextSub] = ch
		return n.st.nextSub, nil
	})
	if err != nil {
		return nil, nil, err
	}
	cancel := func() { n.post(func() { delete(n.st.subs, id) }) }
	return ch, cancel, nil
}

// emit delivers e to every subscriber without blocking the loop.
func (n *Node) emit(e Event) {
	for id, ch := range n.st.subs {
		select {
		case ch <- e:
		default:
			n.log.Warn("subscriber too slow, event dropped", "subscription", id)
		}
	}
}
