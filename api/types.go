package api

import (
	"encoding/hex"
	"time"

	"github.com/conclave-im/conclave/node"
)

// Version is the API version in every path.
const Version = "v1"

// Identity is the daemon's node identity.
type Identity struct {
	PeerID string `json:"peer_id"`
	// Addrs are full multiaddrs, /p2p/<peer ID> included, that other nodes
	// can dial.
	Addrs []string `json:"addrs"`
	// Fingerprint is this identity's half of every safety code.
	Fingerprint string `json:"fingerprint"`
}

// Status summarises the running daemon.
type Status struct {
	Identity
	StartedAt   time.Time `json:"started_at"`
	Groups      int       `json:"groups"`
	Invitations int       `json:"invitations"`
	// Peers counts the peers this node is connected to.
	Peers int `json:"peers"`
}

// Group is one group as this node sees it.
type Group struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name,omitempty"`
	Topic              string   `json:"topic,omitempty"`
	Epoch              uint64   `json:"epoch"`
	EpochAuthenticator string   `json:"epoch_authenticator"`
	Active             bool     `json:"active"`
	Members            []Member `json:"members"`
	// Pending are the membership changes this node asked for that the
	// group has not decided yet, each with why it waits.
	Pending []PendingChange `json:"pending"`
}

// PendingChange is a membership change this node waits on.
type PendingChange struct {
	Desc    string    `json:"desc"` // "invite <peer>", "remove <peer>", "leave", ...
	Since   time.Time `json:"since"`
	Waiting string    `json:"waiting"` // e.g. "waiting for a majority of members to be online (1 of 3 reachable, 2 needed)"
}

// Member is one member of a group.
type Member struct {
	Leaf      uint32 `json:"leaf"`
	PeerID    string `json:"peer_id,omitempty"`
	Assurance string `json:"assurance"`
	Self      bool   `json:"self"`
	// SafetyCode is the code this node and the member compare out of band;
	// empty for this node itself and for unverified credentials.
	SafetyCode string `json:"safety_code,omitempty"`
}

// Invitation is a Welcome waiting for accept or decline.
type Invitation struct {
	GroupID    string    `json:"group_id"`
	From       string    `json:"from"`
	ReceivedAt time.Time `json:"received_at"`
}

// Message kinds.
const (
	KindText  = "text"
	KindEvent = "event" // a membership change the node recorded
	KindOther = "other" // a content type this version does not know
)

// Message is one entry of a group's history.
type Message struct {
	GroupID    string    `json:"group_id"`
	Seq        uint64    `json:"seq"`
	ID         string    `json:"id"`
	Sender     string    `json:"sender,omitempty"`
	Epoch      uint64    `json:"epoch"`
	SentAt     time.Time `json:"sent_at"`
	ReceivedAt time.Time `json:"received_at"`
	ReplyTo    string    `json:"reply_to,omitempty"`
	Kind       string    `json:"kind"`
	Text       string    `json:"text"`
	Own        bool      `json:"own"`
	// State is the delivery state of this node's own messages (StatePending
	// or StateSent); empty for others' messages and for events.
	State string `json:"state,omitempty"`
	// Waiting says why a pending message waits.
	Waiting string `json:"waiting,omitempty"`
}

// Delivery states of this node's own messages.
const (
	// StatePending: in the outbox, not yet handed to any member.
	StatePending = "pending"
	// StateSent: published while at least one member was connected;
	// members offline then fetch it from any member when they return.
	StateSent = "sent"
	// WaitingSending is the reason of a pending message while the daemon
	// hands it to the members online; the state changes within moments.
	WaitingSending = node.WaitingSending
)

// Peer is one peer this node is connected to.
type Peer struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`          // remote multiaddrs of the open connections
	Name   string   `json:"name,omitempty"` // the contact's name, if the peer is a contact
	Groups []string `json:"groups"`         // active groups the peer is a member of
}

// GroupPeers lists the peers subscribed to one group's topic.
type GroupPeers struct {
	GroupID string   `json:"group_id"`
	Peers   []string `json:"peers"`
}

// Event types on the event stream.
const (
	EventMessage      = "message"
	EventInvitation   = "invitation"
	EventGroupJoined  = "group_joined"
	EventGroupLeft    = "group_left"
	EventEpochChanged = "epoch_changed"
	// EventMessageState: the delivery state of one of this node's own
	// messages changed.
	EventMessageState = "message_state"
	// EventPendingChanged: the membership changes this node waits on in a
	// group, or why they wait, changed.
	EventPendingChanged = "pending_changed"
)

// Event is one entry of the event stream (GET /v1/events). Type says which
// of the other fields are set.
type Event struct {
	Type       string      `json:"type"`
	GroupID    string      `json:"group_id"`
	Epoch      uint64      `json:"epoch,omitempty"`
	Message    *Message    `json:"message,omitempty"`
	Invitation *Invitation `json:"invitation,omitempty"`
	Added      []string    `json:"added,omitempty"`
	Removed    []string    `json:"removed,omitempty"`
	// MessageID, State and Waiting: message_state.
	MessageID string `json:"message_id,omitempty"`
	State     string `json:"state,omitempty"`
	Waiting   string `json:"waiting,omitempty"`
	// Pending: pending_changed, the whole new list (absent when nothing
	// is pending any more).
	Pending []PendingChange `json:"pending,omitempty"`
}

// Request bodies.
type (
	// SendRequest is the body of POST /v1/groups/{id}/messages.
	SendRequest struct {
		Text    string `json:"text"`
		ReplyTo string `json:"reply_to,omitempty"` // hex message ID
	}
	// PeerRequest is the body of invite and remove.
	PeerRequest struct {
		Peer string `json:"peer"`
	}
	// ConnectRequest is the body of POST /v1/peers/connect: multiaddrs of
	// one peer, each ending in /p2p/<peer ID>.
	ConnectRequest struct {
		Addrs []string `json:"addrs"`
	}
	// CreatedGroup is the response of POST /v1/groups.
	CreatedGroup struct {
		ID string `json:"id"`
	}
)

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a machine-readable code and a human message.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Contact is a peer the user knows, with the safety code to compare with
// them and whether it was compared.
type Contact struct {
	PeerID     string     `json:"peer_id"`
	Name       string     `json:"name,omitempty"`
	Verified   bool       `json:"verified"`
	SafetyCode string     `json:"safety_code"`
	AddedAt    time.Time  `json:"added_at"`
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
}

// ContactRequest adds a contact.
type ContactRequest struct {
	Peer string `json:"peer"`
	Name string `json:"name,omitempty"`
}

// RenameRequest renames a contact.
type RenameRequest struct {
	Name string `json:"name"`
}

// VerifyRequest records that the safety code was compared out of band:
// Code is the code the other person read out.
type VerifyRequest struct {
	Code string `json:"code"`
	Name string `json:"name,omitempty"`
}

// Error codes.
const (
	CodeBadRequest     = "bad_request"
	CodeUnauthorized   = "unauthorized"
	CodeForbidden      = "forbidden"
	CodeNotFound       = "not_found"
	CodeConflict       = "conflict"
	CodeTooLarge       = "too_large"
	CodeUnavailable    = "unavailable"
	CodeTimeout        = "timeout"
	CodeInternal       = "internal"
	CodeMethodNotAllow = "method_not_allowed"
)

func messageFrom(m node.Message) Message {
	out := Message{
		GroupID: hex.EncodeToString(m.GroupID), Seq: m.Seq, ID: hex.EncodeToString(m.ID[:]),
		Sender: m.Sender, Epoch: m.Epoch, SentAt: m.SentAt, ReceivedAt: m.ReceivedAt,
		Text: m.Text, Own: m.Own, State: stateName(m.State), Waiting: m.Waiting,
	}
	if len(m.ReplyTo) > 0 {
		out.ReplyTo = hex.EncodeToString(m.ReplyTo)
	}
	switch m.Type {
	case node.ContentText:
		out.Kind = KindText
	case node.ContentEvent:
		out.Kind = KindEvent
	default:
		out.Kind = KindOther
	}
	return out
}

// stateName is the API's name of a delivery state; empty for the zero
// state (messages from others).
func stateName(s node.DeliveryState) string {
	switch s {
	case node.DeliveryPending:
		return StatePending
	case node.DeliverySent:
		return StateSent
	}
	return ""
}

func pendingFrom(ps []node.PendingChange) []PendingChange {
	out := make([]PendingChange, 0, len(ps))
	for _, p := range ps {
		out = append(out, PendingChange{Desc: p.Desc, Since: p.Since, Waiting: p.Waiting})
	}
	return out
}

func invitationFrom(inv node.Invitation) Invitation {
	return Invitation{GroupID: hex.EncodeToString(inv.GroupID), From: inv.From, ReceivedAt: inv.ReceivedAt}
}

// eventFrom converts a node event; ok is false for events the API does not
// carry.
func eventFrom(e node.Event) (Event, bool) {
	switch e := e.(type) {
	case node.MessageReceived:
		m := messageFrom(e.Message)
		return Event{Type: EventMessage, GroupID: m.GroupID, Epoch: m.Epoch, Message: &m}, true
	case node.InvitationReceived:
		inv := invitationFrom(e.Invitation)
		return Event{Type: EventInvitation, GroupID: inv.GroupID, Invitation: &inv}, true
	case node.GroupJoined:
		return Event{Type: EventGroupJoined, GroupID: hex.EncodeToString(e.GroupID), Epoch: e.Epoch}, true
	case node.GroupLeft:
		return Event{Type: EventGroupLeft, GroupID: hex.EncodeToString(e.GroupID), Epoch: e.Epoch}, true
	case node.EpochChanged:
		return Event{Type: EventEpochChanged, GroupID: hex.EncodeToString(e.GroupID), Epoch: e.Epoch, Added: e.Added, Removed: e.Removed}, true
	case node.MessageStateChanged:
		return Event{Type: EventMessageState, GroupID: hex.EncodeToString(e.GroupID), MessageID: hex.EncodeToString(e.ID[:]), State: stateName(e.State), Waiting: e.Waiting}, true
	case node.PendingChanged:
		return Event{Type: EventPendingChanged, GroupID: hex.EncodeToString(e.GroupID), Pending: pendingFrom(e.Pending)}, true
	}
	return Event{}, false
}
