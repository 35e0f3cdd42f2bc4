package datastore

import (
	"errors"
	"fmt"
	"time"
)

// kind tags each sealed record with its type, so that a value read from a key
// is decoded as what that key holds and nothing else.
type kind uint8

const (
	kindIdentity kind = iota + 1
	kindKeyPackage
	kindGroupState
	kindEpochSecrets
	kindRatchetKey
	kindDecision
	kindAcceptor
	kindLogEntry
	kindLogIndex
	kindHistory
	kindOutbox
	kindContact
	kindSyncCursor
)

var kindNames = map[kind]string{
	kindIdentity:     "identity",
	kindKeyPackage:   "KeyPackage",
	kindGroupState:   "group state",
	kindEpochSecrets: "epoch secrets",
	kindRatchetKey:   "ratchet key",
	kindDecision:     "decision",
	kindAcceptor:     "consensus acceptor",
	kindLogEntry:     "message log",
	kindLogIndex:     "message log index",
	kindHistory:      "history",
	kindOutbox:       "outbox",
	kindContact:      "contact",
	kindSyncCursor:   "sync cursor",
}

func (k kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// Times are stored as Unix nanoseconds; 0 stands for the zero time.
func putTime(e *encoder, t time.Time) {
	if t.IsZero() {
		e.i64(0)
		return
	}
	e.i64(t.UnixNano())
}

func getTime(d *decoder) time.Time {
	n := d.i64()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Identity is the node's long-term identity key pair. PrivateKey is opaque
// (the encoding chosen by the caller, e.g. an Ed25519 seed or a libp2p
// private key protobuf).
type Identity struct {
	PrivateKey []byte
	PublicKey  []byte
	CreatedAt  time.Time
}

func (r *Identity) marshal() []byte {
	var e encoder
	e.bytes(r.PrivateKey)
	e.bytes(r.PublicKey)
	putTime(&e, r.CreatedAt)
	return e.b
}

func unmarshalIdentity(p []byte) (Identity, error) {
	d := decoder{b: p}
	r := Identity{PrivateKey: d.bytes(), PublicKey: d.bytes(), CreatedAt: getTime(&d)}
	return r, d.finish()
}

// KeyPackage is one of the node's published KeyPackages with the private keys
// that its Welcome will need. Ref is the KeyPackageRef (RFC 9420 §5.2).
type KeyPackage struct {
	Ref                 []byte
	KeyPackage          []byte // the public KeyPackage as published
	InitPrivateKey      []byte // HPKE init key: deleted once a Welcome used it
	LeafPrivateKey      []byte // HPKE leaf encryption key
	SignaturePrivateKey []byte // the per-membership signature key
	CreatedAt           time.Time
	NotAfter            time.Time
	LastResort          bool // may be used by several Welcomes (RFC 9420 §16.8)
	// ServedAt is when a single-use KeyPackage was handed to a peer; it is
	// never served again. Zero until then. (Added after the first
	// version; records without it decode as never served.)
	ServedAt time.Time
}

func (r *KeyPackage) marshal() []byte {
	var e encoder
	e.bytes(r.Ref)
	e.bytes(r.KeyPackage)
	e.bytes(r.InitPrivateKey)
	e.bytes(r.LeafPrivateKey)
	e.bytes(r.SignaturePrivateKey)
	putTime(&e, r.CreatedAt)
	putTime(&e, r.NotAfter)
	e.bool(r.LastResort)
	if !r.ServedAt.IsZero() {
		putTime(&e, r.ServedAt)
	}
	return e.b
}

func unmarshalKeyPackage(p []byte) (KeyPackage, error) {
	d := decoder{b: p}
	r := KeyPackage{
		Ref:                 d.bytes(),
		KeyPackage:          d.bytes(),
		InitPrivateKey:      d.bytes(),
		LeafPrivateKey:      d.bytes(),
		SignaturePrivateKey: d.bytes(),
		CreatedAt:           getTime(&d),
		NotAfter:            getTime(&d),
		LastResort:          d.bool(),
	}
	if d.err == nil && len(d.b) > 0 {
		if r.ServedAt = getTime(&d); r.ServedAt.IsZero() && d.err == nil {
			d.fail(errors.New("served time present but zero"))
		}
	}
	return r, d.finish()
}

// GroupState is the MLS state of one group at one epoch, as opaque bytes from
// the mls package (ratchet tree, group context, own private keys).
type GroupState struct {
	GroupID   []byte
	Epoch     uint64
	State     []byte
	UpdatedAt time.Time
}

func (r *GroupState) marshal() []byte {
	var e encoder
	e.bytes(r.GroupID)
	e.u64(r.Epoch)
	e.bytes(r.State)
	putTime(&e, r.UpdatedAt)
	return e.b
}

func unmarshalGroupState(p []byte) (GroupState, error) {
	d := decoder{b: p}
	r := GroupState{GroupID: d.bytes(), Epoch: d.u64(), State: d.bytes(), UpdatedAt: getTime(&d)}
	return r, d.finish()
}

// epochSecrets is the record of one epoch's retained secrets (secret tree
// and ratchet heads), opaque bytes from the mls package.
type epochSecrets struct {
	GroupID []byte
	Epoch   uint64
	Secrets []byte
}

func (r *epochSecrets) marshal() []byte {
	var e encoder
	e.bytes(r.GroupID)
	e.u64(r.Epoch)
	e.bytes(r.Secrets)
	return e.b
}

func unmarshalEpochSecrets(p []byte) (epochSecrets, error) {
	d := decoder{b: p}
	r := epochSecrets{GroupID: d.bytes(), Epoch: d.u64(), Secrets: d.bytes()}
	return r, d.finish()
}

// KeyID names one message key of the secret tree: the epoch, the sender's
// leaf index and the ratchet generation.
type KeyID struct {
	Epoch      uint64
	Leaf       uint32
	Generation uint32
}

// RatchetKey is a message key kept for a message that has not arrived yet
// (out-of-order tolerance). It is deleted when used, or when its epoch leaves
// the retention window. Key is opaque (key, nonce and anything else mls
// needs).
type RatchetKey struct {
	KeyID
	Key []byte
}

func (r *RatchetKey) marshal() []byte {
	var e encoder
	e.u64(r.Epoch)
	e.u32(r.Leaf)
	e.u32(r.Generation)
	e.bytes(r.Key)
	return e.b
}

func unmarshalRatchetKey(p []byte) (RatchetKey, error) {
	d := decoder{b: p}
	r := RatchetKey{KeyID: KeyID{Epoch: d.u64(), Leaf: d.u32(), Generation: d.u32()}, Key: d.bytes()}
	return r, d.finish()
}

// Decision is the Commit that consensus decided for an epoch, with its
// certificate (a quorum of signatures by that epoch's members) and the
// Welcome decided with it, if any. Epoch is the epoch the Commit ends.
type Decision struct {
	GroupID     []byte
	Epoch       uint64
	Commit      []byte
	Welcome     []byte
	Certificate []byte
	DecidedAt   time.Time
}

func (r *Decision) marshal() []byte {
	var e encoder
	e.bytes(r.GroupID)
	e.u64(r.Epoch)
	e.bytes(r.Commit)
	e.bytes(r.Welcome)
	e.bytes(r.Certificate)
	putTime(&e, r.DecidedAt)
	return e.b
}

func unmarshalDecision(p []byte) (Decision, error) {
	d := decoder{b: p}
	r := Decision{
		GroupID:     d.bytes(),
		Epoch:       d.u64(),
		Commit:      d.bytes(),
		Welcome:     d.bytes(),
		Certificate: d.bytes(),
		DecidedAt:   getTime(&d),
	}
	return r, d.finish()
}

// acceptorRecord is the consensus acceptor state of one (group, epoch),
// opaque bytes from the consensus package.
type acceptorRecord struct {
	GroupID []byte
	Epoch   uint64
	State   []byte
}

func (r *acceptorRecord) marshal() []byte {
	var e encoder
	e.bytes(r.GroupID)
	e.u64(r.Epoch)
	e.bytes(r.State)
	return e.b
}

func unmarshalAcceptor(p []byte) (acceptorRecord, error) {
	d := decoder{b: p}
	r := acceptorRecord{GroupID: d.bytes(), Epoch: d.u64(), State: d.bytes()}
	return r, d.finish()
}

// LogEntry is one ciphertext (an MLS PrivateMessage or other group message)
// kept for the retention window so that members who were away can catch up.
// Seq is assigned by the store: strictly increasing per group.
type LogEntry struct {
	Seq        uint64
	MessageID  []byte // the sender-independent ID used to drop duplicates; may be empty
	Epoch      uint64
	ReceivedAt time.Time
	Ciphertext []byte
}

func (r *LogEntry) marshal() []byte {
	var e encoder
	e.u64(r.Seq)
	e.bytes(r.MessageID)
	e.u64(r.Epoch)
	putTime(&e, r.ReceivedAt)
	e.bytes(r.Ciphertext)
	return e.b
}

func unmarshalLogEntry(p []byte) (LogEntry, error) {
	d := decoder{b: p}
	r := LogEntry{Seq: d.u64(), MessageID: d.bytes(), Epoch: d.u64(), ReceivedAt: getTime(&d), Ciphertext: d.bytes()}
	return r, d.finish()
}

// logIndex maps a message ID to its log sequence number.
type logIndex struct{ Seq uint64 }

func (r *logIndex) marshal() []byte {
	var e encoder
	e.u64(r.Seq)
	return e.b
}

func unmarshalLogIndex(p []byte) (logIndex, error) {
	d := decoder{b: p}
	r := logIndex{Seq: d.u64()}
	return r, d.finish()
}

// HistoryEntry is one decrypted message of a group's history, as the user
// sees it. Seq is assigned by the store: strictly increasing per group.
type HistoryEntry struct {
	Seq        uint64
	MessageID  []byte
	Epoch      uint64
	Sender     []byte // the sender's identity (peer ID bytes)
	SentAt     time.Time
	ReceivedAt time.Time
	Body       []byte
}

func (r *HistoryEntry) marshal() []byte {
	var e encoder
	e.u64(r.Seq)
	e.bytes(r.MessageID)
	e.u64(r.Epoch)
	e.bytes(r.Sender)
	putTime(&e, r.SentAt)
	putTime(&e, r.ReceivedAt)
	e.bytes(r.Body)
	return e.b
}

func unmarshalHistoryEntry(p []byte) (HistoryEntry, error) {
	d := decoder{b: p}
	r := HistoryEntry{
		Seq:        d.u64(),
		MessageID:  d.bytes(),
		Epoch:      d.u64(),
		Sender:     d.bytes(),
		SentAt:     getTime(&d),
		ReceivedAt: getTime(&d),
		Body:       d.bytes(),
	}
	return r, d.finish()
}

// OutboxItem is a piece of pending work that must survive a restart: a
// message to publish, a Welcome to deliver, a Commit to propose. ID is
// assigned by the store; Kind and Payload are the node's.
type OutboxItem struct {
	ID        uint64
	Kind      string
	GroupID   []byte
	Payload   []byte
	CreatedAt time.Time
	NotBefore time.Time // do not retry before this time
	Attempts  uint32
}

func (r *OutboxItem) marshal() []byte {
	var e encoder
	e.u64(r.ID)
	e.str(r.Kind)
	e.bytes(r.GroupID)
	e.bytes(r.Payload)
	putTime(&e, r.CreatedAt)
	putTime(&e, r.NotBefore)
	e.u32(r.Attempts)
	return e.b
}

func unmarshalOutboxItem(p []byte) (OutboxItem, error) {
	d := decoder{b: p}
	r := OutboxItem{
		ID:        d.u64(),
		Kind:      d.str(),
		GroupID:   d.bytes(),
		Payload:   d.bytes(),
		CreatedAt: getTime(&d),
		NotBefore: getTime(&d),
		Attempts:  d.u32(),
	}
	return r, d.finish()
}

// Verification is how far the user has verified a contact's identity.
type Verification uint8

const (
	// Unverified: the identity key was learned but never compared.
	Unverified Verification = iota
	// Verified: the safety code was compared out of band.
	Verified
	// KeyChanged: the contact's identity key differs from the verified one.
	KeyChanged
)

func (v Verification) String() string {
	switch v {
	case Unverified:
		return "unverified"
	case Verified:
		return "verified"
	case KeyChanged:
		return "key changed"
	default:
		return fmt.Sprintf("verification(%d)", uint8(v))
	}
}

// Contact is a peer the user knows, with its verification state.
type Contact struct {
	PeerID       []byte
	Name         string
	IdentityKey  []byte
	Verification Verification
	SafetyCode   string // the code compared when the contact was verified
	AddedAt      time.Time
	VerifiedAt   time.Time
}

func (r *Contact) marshal() []byte {
	var e encoder
	e.bytes(r.PeerID)
	e.str(r.Name)
	e.bytes(r.IdentityKey)
	e.u8(uint8(r.Verification))
	e.str(r.SafetyCode)
	putTime(&e, r.AddedAt)
	putTime(&e, r.VerifiedAt)
	return e.b
}

func unmarshalContact(p []byte) (Contact, error) {
	d := decoder{b: p}
	r := Contact{PeerID: d.bytes(), Name: d.str(), IdentityKey: d.bytes()}
	v := Verification(d.u8())
	if v > KeyChanged {
		d.fail(fmt.Errorf("unknown verification state %d", v))
	}
	r.Verification = v
	r.SafetyCode = d.str()
	r.AddedAt = getTime(&d)
	r.VerifiedAt = getTime(&d)
	return r, d.finish()
}
