package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/gossip"
	"github.com/conclave-im/conclave/identity"
	"github.com/conclave-im/conclave/mls"
)

// ContentEvent marks a history entry the node wrote itself for a
// membership change (RFC 9750 asks that users see them). It is never sent.
const ContentEvent ContentType = 0xFF01

// Outbox kinds.
const (
	outboxMessage    = "message"
	outboxInvitation = "invitation"
	outboxWelcome    = "welcome" // a decided Welcome still to be delivered (welcome.go)
)

// Invitation is a Welcome waiting for the user's decision.
type Invitation struct {
	GroupID    []byte
	From       string // the peer that delivered the Welcome
	ReceivedAt time.Time
}

type invitation struct {
	Invitation
	welcome  []byte
	outboxID uint64
}

// GroupStatus describes one group as this node sees it.
type GroupStatus struct {
	GroupID            []byte
	Epoch              uint64
	EpochAuthenticator []byte
	Members            []MemberStatus
	Active             bool
	// Pending are the membership changes this node asked for that the
	// group has not decided yet, with why each waits.
	Pending []PendingChange
	// Name and Topic are the group settings (settings.go); empty if unset.
	Name, Topic string
}

// MemberStatus is one member of a group.
type MemberStatus struct {
	Leaf      uint32
	PeerID    string // empty for a basic credential
	Assurance identity.Assurance
	// Verification is whether the user compared the safety code with this
	// member (contacts), for members with a Conclave credential.
	Verification datastore.Verification
	Self         bool
}

// CreateGroup creates a group with this node as its only member and returns
// its ID; opts may give it a name and topic (WithName, WithTopic).
func (n *Node) CreateGroup(ctx context.Context, opts ...GroupOption) ([]byte, error) {
	settings, err := creationExtensions(opts) // name and topic (settings.go)
	if err != nil {
		return nil, err
	}
	return call(ctx, n, func() ([]byte, error) {
		gid := make([]byte, n.prof.Crypto.GroupIDSize)
		if _, err := io.ReadFull(n.rand, gid); err != nil {
			return nil, fmt.Errorf("node: group ID: %w", err)
		}
		cs := n.prof.GroupCipherSuite()
		id, sigPriv, err := n.newMLSIdentity(cs)
		if err != nil {
			return nil, err
		}
		rc := n.prof.RequiredCapabilities()
		rcb, err := rc.Marshal()
		if err != nil {
			return nil, fmt.Errorf("node: required capabilities: %w", err)
		}
		mg, err := mls.NewGroup(n.groupOptions(), cs, gid, id, append(mls.Extensions{{Type: mls.ExtensionTypeRequiredCapabilities, Data: rcb}}, settings...))
		if err != nil {
			return nil, fmt.Errorf("node: new group: %w", err)
		}
		g := &group{id: gid, mls: mg, sigPriv: sigPriv, lastUpdate: n.clock.Now()}
		rec, err := g.record()
		if err != nil {
			return nil, err
		}
		if err := n.store.Groups().Create(n.ctx, datastore.NewGroup{GroupID: gid, Epoch: 0, State: rec}); err != nil {
			return nil, fmt.Errorf("node: store new group: %w", err)
		}
		if err := n.attachGroup(g); err != nil {
			return nil, err
		}
		if err := n.newInstance(g); err != nil {
			return nil, err
		}
		n.emit(GroupJoined{GroupID: bytes.Clone(gid), Epoch: 0})
		return bytes.Clone(gid), nil
	})
}

// Invite adds a peer to a group: it fetches one of the peer's KeyPackages,
// commits the Add, has the group decide it through consensus, merges it and
// delivers the Welcome. It returns once the Add is part of the group (or
// ctx ends; the invitation then still goes on in the background).
func (n *Node) Invite(ctx context.Context, groupID []byte, peerID string) error {
	pid, err := identity.ParsePeerID(peerID)
	if err != nil {
		return fmt.Errorf("node: invite: %w", err)
	}
	lp, err := peer.Decode(peerID)
	if err != nil {
		return fmt.Errorf("node: invite: %w", err)
	}
	o := &op{desc: "invite " + peerID, peer: pid, done: make(chan error, 1)}
	_, err = call(ctx, n, func() (struct{}, error) {
		g, err := n.activeGroup(groupID)
		if err != nil {
			return struct{}{}, err
		}
		if _, ok := n.memberLeaf(g, pid); ok {
			return struct{}{}, fmt.Errorf("node: invite %s: %w", peerID, ErrAlreadyMember)
		}
		g.ops = append(g.ops, o)
		cs := g.mls.CipherSuite()
		gid := bytes.Clone(g.id)
		n.goAsync(func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			kp, err := n.net.FetchKeyPackage(ctx, lp, uint16(cs))
			n.post(func() { n.onKeyPackage(gid, o, kp, err) })
		})
		return struct{}{}, nil
	})
	if err != nil {
		return err
	}
	return waitOp(ctx, n, o)
}

// Remove removes a member from a group through a decided Commit. It returns
// once the removal is part of the group.
func (n *Node) Remove(ctx context.Context, groupID []byte, peerID string) error {
	pid, err := identity.ParsePeerID(peerID)
	if err != nil {
		return fmt.Errorf("node: remove: %w", err)
	}
	o := &op{desc: "remove " + peerID, peer: pid, done: make(chan error, 1)}
	_, err = call(ctx, n, func() (struct{}, error) {
		g, err := n.activeGroup(groupID)
		if err != nil {
			return struct{}{}, err
		}
		leaf, ok := n.memberLeaf(g, pid)
		if !ok {
			return struct{}{}, fmt.Errorf("node: remove %s: %w", peerID, ErrNotMember)
		}
		if leaf == g.mls.OwnLeaf() {
			return struct{}{}, errors.New("node: a member cannot commit its own removal; another member must")
		}
		o.proposals = []mls.Proposal{{Type: mls.ProposalTypeRemove, Removed: leaf}}
		g.ops = append(g.ops, o)
		n.tryCommit(g)
		return struct{}{}, nil
	})
	if err != nil {
		return err
	}
	return waitOp(ctx, n, o)
}

func waitOp(ctx context.Context, n *Node, o *op) error {
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrClosed
	}
}

func (n *Node) activeGroup(groupID []byte) (*group, error) {
	g, ok := n.st.groups[string(groupID)]
	if !ok {
		return nil, fmt.Errorf("node: group %x: %w", groupID, ErrUnknownGroup)
	}
	if g.inactive {
		return nil, fmt.Errorf("node: group %x: %w", groupID, ErrGroupInactive)
	}
	return g, nil
}

// memberLeaf returns the leaf of the member with identity id.
func (n *Node) memberLeaf(g *group, id identity.ID) (mls.LeafIndex, bool) {
	if g.cur != nil && g.cur.epoch == g.mls.Epoch() {
		leaf, ok := g.cur.byID[id]
		return leaf, ok
	}
	cs := g.mls.CipherSuite()
	for _, m := range g.mls.Members() {
		li, err := n.verifyLeaf(cs, m.Credential, m.SignatureKey)
		if err == nil && li.Assurance == identity.Verified && li.ID == id {
			return m.Leaf, true
		}
	}
	return 0, false
}

// onKeyPackage checks a KeyPackage fetched for an invitation and queues the
// Add for commit.
func (n *Node) onKeyPackage(gid []byte, o *op, kpBytes []byte, fetchErr error) {
	g, ok := n.st.groups[string(gid)]
	fail := func(err error) {
		if ok {
			if i := slices.Index(g.ops, o); i >= 0 {
				g.ops = slices.Delete(g.ops, i, i+1)
			}
			n.tryCommit(g)
		}
		o.finish(err)
	}
	if !ok || g.inactive {
		fail(fmt.Errorf("node: group %x: %w", gid, ErrGroupInactive))
		return
	}
	if fetchErr != nil {
		fail(fmt.Errorf("node: %s: fetch KeyPackage: %w", o.desc, fetchErr))
		return
	}
	kp, err := n.checkKeyPackage(g, o.peer, kpBytes)
	if err != nil {
		fail(fmt.Errorf("node: %s: %w", o.desc, err))
		return
	}
	o.proposals = []mls.Proposal{{Type: mls.ProposalTypeAdd, KeyPackage: kp}}
	n.tryCommit(g)
}

// checkKeyPackage verifies a peer's KeyPackage before the node adds it:
// signature, suite, the Conclave credential naming exactly that peer,
// lifetime and forbidden extensions.
func (n *Node) checkKeyPackage(g *group, want identity.ID, b []byte) (*mls.KeyPackage, error) {
	var m mls.MLSMessage
	if err := m.Unmarshal(b); err != nil || m.KeyPackage == nil {
		return nil, fmt.Errorf("%w: does not parse (%v)", ErrBadKeyPackage, err)
	}
	kp := m.KeyPackage
	if kp.CipherSuite != g.mls.CipherSuite() {
		return nil, fmt.Errorf("%w: suite %v, group uses %v", ErrBadKeyPackage, kp.CipherSuite, g.mls.CipherSuite())
	}
	if err := kp.Verify(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKeyPackage, err)
	}
	li, err := n.verifyLeaf(kp.CipherSuite, kp.LeafNode.Credential, kp.LeafNode.SignatureKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKeyPackage, err)
	}
	if li.Assurance != identity.Verified || li.ID != want {
		return nil, fmt.Errorf("%w: credential does not name the invited peer", ErrBadKeyPackage)
	}
	if err := n.prof.CheckLifetime(kp.LeafNode.Lifetime, n.clock.Now()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKeyPackage, err)
	}
	for _, e := range append(slices.Clone(kp.Extensions), kp.LeafNode.Extensions...) {
		if n.prof.ForbidsExtension(e.Type) {
			return nil, fmt.Errorf("%w: forbidden extension %v", ErrBadKeyPackage, e.Type)
		}
	}
	return kp, nil
}

// onWelcome handles a Welcome delivered to this node.
func (n *Node) onWelcome(from peer.ID, groupID, welcome []byte) error {
	var m mls.MLSMessage
	if err := m.Unmarshal(welcome); err != nil || m.Welcome == nil {
		return fmt.Errorf("node: Welcome does not parse (%v): %w", err, gossip.ErrBadRequest)
	}
	if g, ok := n.st.groups[string(groupID)]; ok && !g.inactive {
		return nil // already joined: a repeated delivery
	}
	if _, ok := n.st.invitations[string(groupID)]; ok {
		return nil
	}
	if _, ok := n.st.pool.findWelcomeKeyPackage(m.Welcome); !ok {
		return fmt.Errorf("node: Welcome is not addressed to any of this node's KeyPackages: %w", gossip.ErrNotFound)
	}
	inv := &invitation{Invitation: Invitation{GroupID: bytes.Clone(groupID), From: from.String(), ReceivedAt: n.clock.Now()}, welcome: bytes.Clone(welcome)}
	if n.opts.AutoAccept {
		return n.join(inv)
	}
	id, err := n.store.Outbox().Add(n.ctx, datastore.OutboxItem{Kind: outboxInvitation, GroupID: inv.GroupID, Payload: inv.encode(), CreatedAt: inv.ReceivedAt})
	if err != nil {
		return fmt.Errorf("node: keep invitation: %w", err)
	}
	inv.outboxID = id
	n.st.invitations[string(groupID)] = inv
	n.emit(InvitationReceived{Invitation: inv.Invitation})
	return nil
}

// join processes a Welcome and starts taking part in the group.
func (n *Node) join(inv *invitation) error {
	var m mls.MLSMessage
	if err := m.Unmarshal(inv.welcome); err != nil || m.Welcome == nil {
		return fmt.Errorf("node: Welcome does not parse (%v)", err)
	}
	ref, ok := n.st.pool.findWelcomeKeyPackage(m.Welcome)
	if !ok {
		return errors.New("node: Welcome is not addressed to any of this node's KeyPackages")
	}
	kpb, _, err := n.st.pool.bundle(ref)
	if err != nil {
		return err
	}
	mg, err := mls.JoinFromWelcome(mls.JoinOptions{GroupOptions: n.groupOptions()}, m.Welcome, kpb)
	if err != nil {
		return fmt.Errorf("node: join: %w", err)
	}
	if !bytes.Equal(mg.GroupID(), inv.GroupID) {
		return errors.New("node: Welcome is for another group than announced")
	}
	if !n.prof.AcceptsCipherSuite(mg.CipherSuite()) {
		return fmt.Errorf("node: group uses cipher suite %v", mg.CipherSuite())
	}
	// Every leaf of the tree must carry a valid credential, and no identity
	// may hold two leaves.
	seen := make(map[identity.ID]bool)
	for _, mem := range mg.Members() {
		li, err := n.verifyLeaf(mg.CipherSuite(), mem.Credential, mem.SignatureKey)
		if err != nil {
			return fmt.Errorf("node: join: member at leaf %d: %w", mem.Leaf, err)
		}
		if li.Assurance == identity.Verified && n.prof.Membership.UniqueIdentities {
			if seen[li.ID] {
				return fmt.Errorf("node: join: %s holds two leaves", li.ID)
			}
			seen[li.ID] = true
		}
	}
	g := &group{id: mg.GroupID(), mls: mg, sigPriv: bytes.Clone(kpb.SignaturePrivateKey), lastUpdate: n.clock.Now()}
	rec, err := g.record()
	if err != nil {
		return err
	}
	err = n.store.Groups().Join(n.ctx, datastore.NewGroup{GroupID: g.id, Epoch: mg.Epoch(), State: rec, KeyPackageRef: ref})
	if err != nil {
		return fmt.Errorf("node: store joined group: %w", err)
	}
	n.st.pool.used(ref)
	if err := n.st.pool.refill(n.ctx, n); err != nil {
		n.log.Error("KeyPackage pool refill failed", "err", err)
	}
	if err := n.attachGroup(g); err != nil {
		return err
	}
	if err := n.newInstance(g); err != nil {
		return err
	}
	n.log.Info("joined group", "group", fmt.Sprintf("%x", g.id), "epoch", mg.Epoch(), "from", inv.From)
	n.emit(GroupJoined{GroupID: bytes.Clone(g.id), Epoch: mg.Epoch()})
	// What members sent between the decision and this node's subscription
	// reaching them is not gossiped again: fetch it from the member that
	// delivered the Welcome now, and once more when that member is on the
	// topic (and so sees this node there), after which gossip carries the
	// rest.
	if p, err := peer.Decode(inv.From); err == nil {
		gid, since, topic := bytes.Clone(g.id), mg.Epoch(), g.topic
		n.goAsync(func(ctx context.Context) {
			n.fetchFrom(ctx, p, gid, since)
			wctx, cancel := context.WithTimeout(ctx, n.prof.Delivery.CommitSyncInterval)
			defer cancel()
			if topic.WaitPeer(wctx, p) == nil {
				n.fetchFrom(ctx, p, gid, since)
			}
		})
	}
	return nil
}

// Invitations lists the Welcomes waiting for a decision.
func (n *Node) Invitations(ctx context.Context) ([]Invitation, error) {
	return call(ctx, n, func() ([]Invitation, error) {
		var out []Invitation
		for _, inv := range n.st.invitations {
			out = append(out, inv.Invitation)
		}
		slices.SortFunc(out, func(a, b Invitation) int { return a.ReceivedAt.Compare(b.ReceivedAt) })
		return out, nil
	})
}

// AcceptInvitation joins the group of a pending invitation.
func (n *Node) AcceptInvitation(ctx context.Context, groupID []byte) error {
	_, err := call(ctx, n, func() (struct{}, error) {
		inv, ok := n.st.invitations[string(groupID)]
		if !ok {
			return struct{}{}, ErrNoInvitation
		}
		if err := n.join(inv); err != nil {
			return struct{}{}, err
		}
		delete(n.st.invitations, string(groupID))
		return struct{}{}, n.store.Outbox().Remove(n.ctx, inv.outboxID)
	})
	return err
}

// DeclineInvitation drops a pending invitation and deletes the private
// keys of the KeyPackage it used.
func (n *Node) DeclineInvitation(ctx context.Context, groupID []byte) error {
	_, err := call(ctx, n, func() (struct{}, error) {
		inv, ok := n.st.invitations[string(groupID)]
		if !ok {
			return struct{}{}, ErrNoInvitation
		}
		var m mls.MLSMessage
		if err := m.Unmarshal(inv.welcome); err == nil && m.Welcome != nil {
			if ref, ok := n.st.pool.findWelcomeKeyPackage(m.Welcome); ok {
				if _, rec, err := n.st.pool.bundle(ref); err == nil && !rec.LastResort {
					if err := n.store.KeyPackages().Delete(n.ctx, ref); err != nil {
						return struct{}{}, fmt.Errorf("node: delete used KeyPackage: %w", err)
					}
					n.st.pool.used(ref)
				}
			}
		}
		delete(n.st.invitations, string(groupID))
		return struct{}{}, n.store.Outbox().Remove(n.ctx, inv.outboxID)
	})
	return err
}

// encode stores an invitation in the outbox:
// struct { opaque from<u16>; opaque welcome<rest>; }
func (inv *invitation) encode() []byte { return joinPrefixed([]byte(inv.From), inv.welcome) }

// joinPrefixed is the outbox payload of invitations and of Welcomes to
// deliver: struct { opaque first<u16>; opaque rest<rest>; }
func joinPrefixed(first, rest []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(first)))
	b = append(b, first...)
	return append(b, rest...)
}

// splitPrefixed reads joinPrefixed's layout.
func splitPrefixed(b []byte) (first, rest []byte, ok bool) {
	if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
		return nil, nil, false
	}
	l := 2 + int(binary.BigEndian.Uint16(b))
	return b[2:l], b[l:], true
}

func (n *Node) loadInvitations(ctx context.Context) error {
	items, err := n.store.Outbox().List(ctx)
	if err != nil {
		return fmt.Errorf("node: load outbox: %w", err)
	}
	for _, it := range items {
		if it.Kind != outboxInvitation {
			continue
		}
		from, welcome, ok := splitPrefixed(it.Payload)
		if !ok {
			n.log.Error("dropping an unreadable stored invitation")
			continue
		}
		inv := &invitation{
			Invitation: Invitation{GroupID: it.GroupID, From: string(from), ReceivedAt: it.CreatedAt},
			welcome:    welcome,
			outboxID:   it.ID,
		}
		n.st.invitations[string(it.GroupID)] = inv
	}
	return nil
}

// Send sends a text message to a group. It returns once the message is in
// the outbox, encrypted and in the history; delivery to the network goes on
// in the background and is retried after a restart until it succeeds.
func (n *Node) Send(ctx context.Context, groupID []byte, text string, replyTo []byte) (Message, error) {
	return call(ctx, n, func() (Message, error) {
		g, err := n.activeGroup(groupID)
		if err != nil {
			return Message{}, err
		}
		c := Content{Type: ContentText, SentAt: n.clock.Now(), ReplyTo: replyTo, Body: []byte(text)}
		if _, err := io.ReadFull(n.rand, c.ID[:]); err != nil {
			return Message{}, fmt.Errorf("node: message ID: %w", err)
		}
		cb, err := c.Marshal()
		if err != nil {
			return Message{}, err
		}
		if len(cb)+1 > n.prof.Messages.MaxApplicationMessage {
			return Message{}, fmt.Errorf("%w: %d bytes, at most %d", ErrMessageTooLong, len(cb)+1, n.prof.Messages.MaxApplicationMessage)
		}
		id, err := n.store.Outbox().Add(n.ctx, datastore.OutboxItem{Kind: outboxMessage, GroupID: g.id, Payload: cb, CreatedAt: c.SentAt})
		if err != nil {
			return Message{}, fmt.Errorf("node: outbox: %w", err)
		}
		h := []datastore.HistoryEntry{{MessageID: c.ID[:], Epoch: g.mls.Epoch(), Sender: []byte(n.ID()), SentAt: c.SentAt, ReceivedAt: c.SentAt, Body: cb}}
		if err := n.store.History().Append(n.ctx, g.id, h); err != nil {
			return Message{}, fmt.Errorf("node: history: %w", err)
		}
		msg := Message{GroupID: bytes.Clone(g.id), Seq: h[0].Seq, ID: c.ID, Sender: n.ID(), Epoch: g.mls.Epoch(), SentAt: c.SentAt, ReceivedAt: c.SentAt, ReplyTo: c.ReplyTo, Type: c.Type, Text: text, Own: true}
		n.st.outgoing[c.ID] = waitSending
		msg.State, msg.Waiting = DeliveryPending, waitSending
		n.emit(MessageReceived{Message: msg})
		n.sendContent(g, id, cb)
		msg.State, msg.Waiting = n.ownState(c.ID)
		return msg, nil
	})
}

// sendContent encrypts content in the group's current epoch, logs the
// ciphertext for catch-up and hands it to the members online; the outbox
// item goes once the network has taken it (delivery.go).
func (n *Node) sendContent(g *group, outboxID uint64, cb []byte) {
	var c Content
	if err := c.Unmarshal(cb); err != nil {
		n.log.Error("unreadable outbox item dropped", "err", err)
		if err := n.store.Outbox().Remove(n.ctx, outboxID); err != nil {
			n.log.Error("outbox", "err", err)
		}
		return
	}
	g.sendSeq++
	m, err := g.mls.EncryptApplication(encodeContentFrame(g.sendSeq, cb), nil)
	if err != nil {
		n.log.Error("encrypt message; it stays in the outbox", "err", err)
		n.markOwn(g, c.ID, DeliveryPending, "cannot encrypt: "+err.Error())
		return
	}
	if err := n.saveState(g); err != nil {
		n.log.Error("message stays in the outbox", "err", err)
		n.markOwn(g, c.ID, DeliveryPending, "cannot save the group state")
		return
	}
	b, err := m.Marshal()
	if err != nil {
		n.log.Error("encode message", "err", err)
		return
	}
	err = n.store.MessageLog().Append(n.ctx, g.id, []datastore.LogEntry{{MessageID: c.ID[:], Epoch: g.mls.Epoch(), ReceivedAt: n.clock.Now(), Ciphertext: b}})
	if err != nil {
		n.log.Error("message log", "err", err)
	}
	u := &unsent{outboxID: outboxID, id: c.ID, payload: append([]byte{tagMLS}, b...)}
	g.unsent = append(g.unsent, u)
	n.deliver(g, u)
}

// resendOutbox publishes the messages a previous run accepted but did not
// get onto the network. Receivers drop duplicates by message ID.
func (n *Node) resendOutbox() {
	items, err := n.store.Outbox().List(n.ctx)
	if err != nil {
		n.log.Error("load outbox", "err", err)
		return
	}
	for _, it := range items {
		if it.Kind == outboxWelcome {
			n.resumeWelcome(it)
			continue
		}
		if it.Kind != outboxMessage {
			continue
		}
		g, ok := n.st.groups[string(it.GroupID)]
		if !ok || g.inactive {
			continue
		}
		n.sendContent(g, it.ID, it.Payload)
	}
}

// receiveContent records a member's message once, however often it
// arrives.
func (n *Node) receiveContent(g *group, r *mls.Received, frame, ciphertext []byte) {
	if len(frame) < 8 {
		n.log.Debug("dropped a content frame without a sequence number")
		return
	}
	seq := binary.BigEndian.Uint64(frame)
	cb := frame[8:]
	var c Content
	if err := c.Unmarshal(cb); err != nil {
		n.log.Debug("dropped malformed content", "err", err)
		return
	}
	now := n.clock.Now()
	sender := n.senderName(r.Credential)
	key := orderKey{epoch: r.Epoch, sender: sender}
	entries := []datastore.LogEntry{{MessageID: c.ID[:], Epoch: r.Epoch, ReceivedAt: now, Ciphertext: ciphertext}}
	if err := n.store.MessageLog().Append(n.ctx, g.id, entries); err != nil {
		n.log.Error("message log", "err", err)
		return
	}
	if entries[0].Seq == 0 {
		n.ordered(g, key, seq, nil) // a duplicate
		return
	}
	cb = bytes.Clone(cb)
	epoch := r.Epoch
	n.ordered(g, key, seq, func() {
		h := []datastore.HistoryEntry{{MessageID: c.ID[:], Epoch: epoch, Sender: []byte(sender), SentAt: c.SentAt, ReceivedAt: now, Body: cb}}
		if err := n.store.History().Append(n.ctx, g.id, h); err != nil {
			n.log.Error("history", "err", err)
			return
		}
		msg := Message{GroupID: bytes.Clone(g.id), Seq: h[0].Seq, ID: c.ID, Sender: sender, Epoch: epoch, SentAt: c.SentAt, ReceivedAt: now, ReplyTo: c.ReplyTo, Type: c.Type, Text: string(c.Body)}
		n.emit(MessageReceived{Message: msg})
	})
}

// senderName is credentialName, cached: parsing a credential checks its
// identity key, which costs about as much as decrypting a message.
func (n *Node) senderName(c mls.Credential) string {
	k := fmt.Sprintf("%d/%s", c.Type, c.Identity)
	if name, ok := n.st.names[k]; ok {
		return name
	}
	if len(n.st.names) >= 4096 {
		clear(n.st.names)
	}
	name := credentialName(c)
	n.st.names[k] = name
	return name
}

// credentialName is the peer ID a credential claims. Every leaf's
// credential was verified when it entered the group.
func credentialName(c mls.Credential) string {
	if cc, err := identity.CredentialFromMLS(c); err == nil {
		return cc.Identity().PeerID()
	}
	return fmt.Sprintf("unverified:%q", c.Identity)
}

// recordMembershipEvent writes a membership change into the history.
func (n *Node) recordMembershipEvent(g *group, ev EpochChanged) {
	if len(ev.Added) == 0 && len(ev.Removed) == 0 {
		return
	}
	var sb strings.Builder
	for _, p := range ev.Added {
		fmt.Fprintf(&sb, "added %s; ", p)
	}
	for _, p := range ev.Removed {
		fmt.Fprintf(&sb, "removed %s; ", p)
	}
	c := Content{Type: ContentEvent, SentAt: n.clock.Now(), Body: []byte(strings.TrimSuffix(sb.String(), "; "))}
	if _, err := io.ReadFull(n.rand, c.ID[:]); err != nil {
		return
	}
	cb, err := c.Marshal()
	if err != nil {
		return
	}
	e := datastore.HistoryEntry{MessageID: c.ID[:], Epoch: ev.Epoch, SentAt: c.SentAt, ReceivedAt: c.SentAt, Body: cb}
	if err := n.store.History().Append(n.ctx, g.id, []datastore.HistoryEntry{e}); err != nil {
		n.log.Error("history", "err", err)
	}
}

// History returns the newest limit entries of a group's history, oldest
// first: messages and membership events.
func (n *Node) History(ctx context.Context, groupID []byte, limit int) ([]Message, error) {
	entries, err := n.store.History().Newest(ctx, groupID, limit)
	if err != nil {
		return nil, fmt.Errorf("node: history: %w", err)
	}
	pending, err := call(ctx, n, func() (map[[MessageIDLen]byte]string, error) {
		m := make(map[[MessageIDLen]byte]string)
		for _, e := range entries {
			if id, ok := messageID(e.MessageID); ok {
				if w, ok := n.st.outgoing[id]; ok {
					m[id] = w
				}
			}
		}
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(entries))
	for _, e := range entries {
		var c Content
		if err := c.Unmarshal(e.Body); err != nil {
			n.log.Error("unreadable history entry", "seq", e.Seq, "err", err)
			continue
		}
		out = append(out, Message{
			GroupID: bytes.Clone(groupID), Seq: e.Seq, ID: c.ID, Sender: string(e.Sender), Epoch: e.Epoch,
			SentAt: c.SentAt, ReceivedAt: e.ReceivedAt, ReplyTo: c.ReplyTo, Type: c.Type, Text: string(c.Body),
			Own: string(e.Sender) == n.ID(),
		})
		if m := &out[len(out)-1]; m.Own && m.Type != ContentEvent {
			m.State = DeliverySent
			if w, ok := pending[m.ID]; ok {
				m.State, m.Waiting = DeliveryPending, w
			}
		}
	}
	return out, nil
}

// Group returns the status of one group.
func (n *Node) Group(ctx context.Context, groupID []byte) (GroupStatus, error) {
	return call(ctx, n, func() (GroupStatus, error) {
		g, ok := n.st.groups[string(groupID)]
		if !ok {
			return GroupStatus{}, fmt.Errorf("node: group %x: %w", groupID, ErrUnknownGroup)
		}
		return n.status(g), nil
	})
}

// Groups returns the status of every group.
func (n *Node) Groups(ctx context.Context) ([]GroupStatus, error) {
	return call(ctx, n, func() ([]GroupStatus, error) {
		var out []GroupStatus
		for _, g := range n.st.groups {
			out = append(out, n.status(g))
		}
		slices.SortFunc(out, func(a, b GroupStatus) int { return bytes.Compare(a.GroupID, b.GroupID) })
		return out, nil
	})
}

func (n *Node) status(g *group) GroupStatus {
	s := GroupStatus{GroupID: bytes.Clone(g.id), Epoch: g.mls.Epoch(), EpochAuthenticator: g.mls.EpochAuthenticator(), Active: !g.inactive, Pending: n.pendingChanges(g)}
	s.Name, s.Topic = n.groupSettings(g)
	cs := g.mls.CipherSuite()
	for _, m := range g.mls.Members() {
		ms := MemberStatus{Leaf: uint32(m.Leaf), Self: m.Leaf == g.mls.OwnLeaf()}
		if li, err := n.verifyLeaf(cs, m.Credential, m.SignatureKey); err == nil {
			ms.Assurance = li.Assurance
			if li.Assurance == identity.Verified {
				ms.PeerID = li.ID.PeerID()
				if c, err := n.store.Contacts().Get(n.ctx, []byte(ms.PeerID)); err == nil {
					ms.Verification = c.Verification
				}
			}
		}
		s.Members = append(s.Members, ms)
	}
	return s
}

// TopicPeers returns the peers this node knows to be subscribed to a
// group's topic (its gossip neighbours for the group).
func (n *Node) TopicPeers(ctx context.Context, groupID []byte) ([]string, error) {
	return call(ctx, n, func() ([]string, error) {
		g, err := n.activeGroup(groupID)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, p := range g.topic.Peers() {
			out = append(out, p.String())
		}
		return out, nil
	})
}

// Leave asks the group to remove this node: it proposes its own removal,
// which another member commits through consensus (a member cannot commit
// its own removal). It returns once the removal is decided and merged.
func (n *Node) Leave(ctx context.Context, groupID []byte) error {
	done, err := call(ctx, n, func() (chan error, error) {
		g, err := n.activeGroup(groupID)
		if err != nil {
			return nil, err
		}
		if len(g.mls.Members()) < 2 {
			return nil, errors.New("node: the last member cannot leave a group")
		}
		if g.leaving == nil {
			g.leaving = make(chan error, 1)
			if err := n.proposeLeave(g); err != nil {
				g.leaving = nil
				return nil, err
			}
		}
		return g.leaving, nil
	})
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrClosed
	}
}

// messageID converts a stored message ID.
func messageID(b []byte) ([MessageIDLen]byte, bool) {
	var id [MessageIDLen]byte
	if len(b) != MessageIDLen {
		return id, false
	}
	copy(id[:], b)
	return id, true
}
