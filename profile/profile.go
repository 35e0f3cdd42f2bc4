// Package profile is Conclave's operational profile: every parameter and
// policy that RFC 9750 §7 ("Operational Requirements") says a deployment of
// MLS must fix, as one typed value with documented defaults and a
// validator. Code that enforces one of these choices reads it from a
// Profile instead of keeping its own constant, so the values in
// docs/profile.md are the values the node runs with.
//
// Fields marked "group-wide" decide whether a Commit or message is valid, so
// every member of a group must use the same value (a node with a different
// one would vote differently on Commits); the other fields are local and
// may be tuned per node.
package profile

import (
	"strconv"
	"time"

	"github.com/conclave-im/conclave/identity"
	"github.com/conclave-im/conclave/mls"
)

// ExtensionTypeGroupSettings is Conclave's group context extension holding
// the group's name and topic (private-use range, RFC 9420 §17.3; the codec
// is in node/). Every Conclave leaf advertises it and every new group
// requires it, so that any member can change the settings.
const ExtensionTypeGroupSettings mls.ExtensionType = 0xF0C2

// Name identifies this version of the profile. It changes whenever a
// group-wide default changes, so nodes can tell they disagree.
const Name = "conclave/1"

// Profile holds Conclave's operational parameters and policies. Default
// returns the values Conclave runs with; Validate checks a modified copy.
type Profile struct {
	// Name is the profile version the values belong to (Name by default).
	Name string

	Crypto      CryptoPolicy
	Credentials CredentialPolicy
	KeyPackages KeyPackagePolicy
	Membership  MembershipPolicy
	Commits     CommitPolicy
	Messages    MessagePolicy
	OutOfOrder  OutOfOrderPolicy
	Epochs      EpochPolicy
	Delivery    DeliveryPolicy
	Consensus   ConsensusPolicy
}

// CryptoPolicy fixes the protocol version, cipher suites and extensions.
type CryptoPolicy struct {
	// ProtocolVersion is the MLS version of every group (group-wide).
	ProtocolVersion mls.ProtocolVersion
	// CipherSuites are the suites the node accepts, in order of preference:
	// new groups use the first, and KeyPackages are published for each
	// (group-wide for existing groups: a group never changes suite).
	CipherSuites []mls.CipherSuite
	// GroupIDSize is the length of the random group IDs of new groups.
	GroupIDSize int
	// RequiredGroupExtensions are put in the required_capabilities of every
	// new group as extension types all members must support (group-wide).
	RequiredGroupExtensions []mls.ExtensionType
	// ForbiddenExtensions may not appear in any GroupContext, GroupInfo or
	// KeyPackage (group-wide): they exist for external joins and external
	// senders, which this profile does not allow.
	ForbiddenExtensions []mls.ExtensionType
}

// CredentialPolicy fixes which credentials identify members.
type CredentialPolicy struct {
	// Own is the credential type the node issues for its own leaves.
	Own mls.CredentialType
	// Accepted are the credential types allowed in a leaf (group-wide).
	// Basic credentials are accepted for interoperability and shown as
	// "unverified identity".
	Accepted []mls.CredentialType
	// RequiredCredentials are put in the required_capabilities of every
	// new group (group-wide).
	RequiredCredentials []mls.CredentialType
}

// KeyPackagePolicy sizes the KeyPackage pool and bounds lifetimes.
type KeyPackagePolicy struct {
	// Lifetime is not_after - not_before of the KeyPackages the node issues.
	Lifetime time.Duration
	// MaxAcceptedLifetime is the longest total lifetime accepted in a
	// peer's KeyPackage or leaf (group-wide).
	MaxAcceptedLifetime time.Duration
	// ClockSkew is how far in the past not_before is set when issuing, and
	// how far in the future a peer's not_before may be when accepting.
	ClockSkew time.Duration
	// PoolSize is the number of single-use KeyPackages kept ready per
	// cipher suite; the pool is refilled to PoolSize when it falls below
	// RefillBelow.
	PoolSize    int
	RefillBelow int
	// RenewBefore replaces KeyPackages this long before they expire.
	RenewBefore time.Duration
	// LastResortRotation replaces the last-resort KeyPackage this often.
	LastResortRotation time.Duration
	// ExpiredInitKeyGrace keeps the private init key of an expired (or
	// rotated last-resort) KeyPackage this long, for Welcomes in flight.
	ExpiredInitKeyGrace time.Duration
	// ExpireTreeLeaves also rejects leaves already in a ratchet tree (seen
	// when joining or in a received Commit) whose lifetime has ended. RFC
	// 9420 §7.3 only recommends it; Conclave leaves it off because a member
	// that has not updated since joining keeps its KeyPackage's lifetime,
	// and idle eviction, not a joiner's refusal, is the remedy. The total
	// lifetime bound applies to every leaf regardless (group-wide).
	ExpireTreeLeaves bool
	// ServeLimit bounds how many KeyPackages one peer may fetch per
	// ServeWindow, so nobody can drain the pool and force the last resort.
	ServeLimit  int
	ServeWindow time.Duration
}

// Permission says which members may make a kind of membership change.
type Permission uint8

const (
	// AnyMember: every member of the group.
	AnyMember Permission = iota + 1
	// Creator: only the identity that created the group (recorded in the
	// group's metadata).
	Creator
)

func (p Permission) String() string {
	switch p {
	case AnyMember:
		return "any member"
	case Creator:
		return "group creator"
	default:
		return "Permission(" + strconv.Itoa(int(p)) + ")"
	}
}

// MembershipPolicy fixes who may change the membership and how.
type MembershipPolicy struct {
	// MayAdd and MayRemove say who may propose adding or removing others
	// (group-wide). A member may always propose its own removal (leave).
	MayAdd    Permission
	MayRemove Permission
	// MaxMembers bounds the group size (group-wide).
	MaxMembers int
	// UniqueIdentities allows at most one leaf per verified identity: a
	// Commit that adds an identity already in the group is invalid
	// (group-wide). A node is one client, so a second leaf could only be
	// a stale one or an impostor's copy.
	UniqueIdentities bool
	// AllowExternalJoins permits external Commits (group-wide).
	AllowExternalJoins bool
	// AllowExternalSenders permits proposals from non-members (group-wide).
	AllowExternalSenders bool
	// AllowReInit permits ReInit proposals (group-wide).
	AllowReInit bool
	// AllowedProposals are the proposal types valid in a Commit
	// (group-wide).
	AllowedProposals []mls.ProposalType
	// IdleEviction removes a member whose leaf has not been updated for
	// this long (any member proposes it). Zero disables eviction.
	IdleEviction time.Duration
	// IdleAwayGap: a pause of at least this long between two of this
	// node's own ticks (it was suspended, or its clock jumped) counts as
	// time the node was away, which, like the time it was stopped, is left
	// out of every member's idle time: a node does not evict members it
	// did not watch (local). Zero turns the detection off: every pause
	// then counts as watched time (the stopped time still does not).
	IdleAwayGap time.Duration
}

// CommitPolicy fixes when members commit.
type CommitPolicy struct {
	// CommitPendingAfter is how long a valid proposal (a member leaving, an
	// update) may wait before a member commits it.
	CommitPendingAfter time.Duration
	// MaxProposalsPerCommit bounds the proposals in one Commit (group-wide).
	MaxProposalsPerCommit int
	// AlwaysIncludePath makes every Commit a full Commit with an
	// UpdatePath, even where RFC 9420 allows a partial one.
	AlwaysIncludePath bool
	// LeafUpdateInterval is how often a member refreshes its own leaf keys
	// with a Commit.
	LeafUpdateInterval time.Duration
}

// MessagePolicy fixes the wire format of messages and its limits.
type MessagePolicy struct {
	// EncryptHandshake sends standalone proposals as PrivateMessage; when
	// false they go as PublicMessage (group-wide). Commits are always
	// PublicMessages inside the consensus value, which itself only travels
	// MLS-encrypted or over encrypted direct streams to members (so that a
	// member restarted between staging and decision can process the Commit
	// again; see docs/node.md, "Commits as PublicMessage").
	EncryptHandshake bool
	// PaddingBlock pads each PrivateMessage plaintext to a multiple of this
	// many bytes.
	PaddingBlock int
	// MaxApplicationMessage bounds the application data of one message.
	MaxApplicationMessage int
	// MaxGossipMessage bounds one message on the group's gossip topic;
	// larger payloads (Commits of big groups) are sent by reference.
	MaxGossipMessage int
	// MaxDirectPayload bounds one payload on a direct stream (a Welcome
	// with its ratchet tree, a catch-up batch).
	MaxDirectPayload int
	// AllowAuthenticatedData accepts non-empty authenticated_data in
	// PrivateMessages (group-wide). Conclave puts nothing there.
	AllowAuthenticatedData bool
}

// OutOfOrderPolicy bounds the tolerance for reordered and early messages.
type OutOfOrderPolicy struct {
	// MaxForwardDistance is how many generations a sender's ratchet is
	// moved forward for one message (group-wide in effect: a smaller value
	// makes a receiver drop what others accept).
	MaxForwardDistance uint32
	// MaxRetainedKeys bounds the unused (skipped) keys kept per sender and
	// ratchet; they live no longer than their epoch (Epochs).
	MaxRetainedKeys int
	// Early messages (for an epoch not reached yet) are buffered, at most
	// EarlyBufferMessages and EarlyBufferBytes per group, each for at most
	// EarlyBufferAge, and only if at most MaxEpochsAhead epochs ahead.
	// A message dropped from the buffer is fetched again by catch-up.
	EarlyBufferMessages int
	EarlyBufferBytes    int
	EarlyBufferAge      time.Duration
	MaxEpochsAhead      uint64
}

// EpochPolicy bounds how long secrets of past epochs live.
type EpochPolicy struct {
	// PastEpochs is how many past epochs' secrets are kept to decrypt late
	// messages; PastEpochMaxAge deletes them earlier once that old.
	PastEpochs      int
	PastEpochMaxAge time.Duration
	// ResumptionPSKs is how many past epochs' resumption PSKs are kept.
	ResumptionPSKs int
}

// DeliveryPolicy fixes how Welcomes, GroupInfo and stored ciphertexts are
// delivered.
type DeliveryPolicy struct {
	// RatchetTreeInWelcome puts the ratchet_tree extension in every
	// Welcome's GroupInfo: there is no server to fetch the tree from.
	RatchetTreeInWelcome bool
	// PublishGroupInfo publishes GroupInfo for external joins.
	PublishGroupInfo bool
	// WelcomeRetry is the interval between deliveries of a Welcome to a
	// new member that has not confirmed it; members keep and serve it for
	// WelcomeRetention.
	WelcomeRetry     time.Duration
	WelcomeRetention time.Duration
	// CiphertextRetention is how long members keep a group's ciphertexts
	// and decided Commits to serve catch-up; RetentionBytes bounds the
	// store per group (oldest dropped first).
	CiphertextRetention time.Duration
	RetentionBytes      int64
	// CatchUpBatch is the number of messages per catch-up response.
	CatchUpBatch int
	// CommitSyncInterval is how often a member asks one connected member, in
	// turn, for decided Commits it may have missed: a decision broadcast that
	// gossip did not deliver is never repeated otherwise.
	CommitSyncInterval time.Duration
}

// ConsensusPolicy sets the clock of the per-epoch consensus.
type ConsensusPolicy struct {
	// TickInterval is the wall-clock length of one consensus tick.
	TickInterval time.Duration
	// TimeoutTicks is the base timeout before a proposer retries with a
	// higher ballot (randomized and backed off by the consensus package).
	TimeoutTicks int
}

// Default returns Conclave's profile. docs/profile.md gives the reason for
// every value.
func Default() Profile {
	return Profile{
		Name: Name,
		Crypto: CryptoPolicy{
			ProtocolVersion: mls.ProtocolVersionMLS10,
			CipherSuites: []mls.CipherSuite{
				mls.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
				mls.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
			},
			GroupIDSize:             32,
			RequiredGroupExtensions: []mls.ExtensionType{ExtensionTypeGroupSettings},
			ForbiddenExtensions: []mls.ExtensionType{
				mls.ExtensionTypeExternalPub,
				mls.ExtensionTypeExternalSenders,
			},
		},
		Credentials: CredentialPolicy{
			Own:                 identity.CredentialTypeConclave,
			Accepted:            []mls.CredentialType{identity.CredentialTypeConclave, mls.CredentialTypeBasic},
			RequiredCredentials: []mls.CredentialType{identity.CredentialTypeConclave},
		},
		KeyPackages: KeyPackagePolicy{
			Lifetime:            28 * day,
			MaxAcceptedLifetime: 90 * day,
			ClockSkew:           time.Hour,
			PoolSize:            32,
			RefillBelow:         8,
			RenewBefore:         7 * day,
			LastResortRotation:  7 * day,
			ExpiredInitKeyGrace: 3 * day,
			ExpireTreeLeaves:    false,
			ServeLimit:          10,
			ServeWindow:         time.Hour,
		},
		Membership: MembershipPolicy{
			MayAdd:               AnyMember,
			MayRemove:            AnyMember,
			MaxMembers:           256,
			UniqueIdentities:     true,
			AllowExternalJoins:   false,
			AllowExternalSenders: false,
			AllowReInit:          false,
			AllowedProposals: []mls.ProposalType{
				mls.ProposalTypeAdd,
				mls.ProposalTypeUpdate,
				mls.ProposalTypeRemove,
				mls.ProposalTypeGroupContextExtensions,
			},
			IdleEviction: 30 * day,
			IdleAwayGap:  time.Hour,
		},
		Commits: CommitPolicy{
			CommitPendingAfter:    2 * time.Second,
			MaxProposalsPerCommit: 64,
			AlwaysIncludePath:     true,
			LeafUpdateInterval:    day,
		},
		Messages: MessagePolicy{
			EncryptHandshake:       true,
			PaddingBlock:           256,
			MaxApplicationMessage:  64 << 10,
			MaxGossipMessage:       256 << 10,
			MaxDirectPayload:       16 << 20,
			AllowAuthenticatedData: false,
		},
		OutOfOrder: OutOfOrderPolicy{
			MaxForwardDistance:  1024,
			MaxRetainedKeys:     128,
			EarlyBufferMessages: 1024,
			EarlyBufferBytes:    4 << 20,
			EarlyBufferAge:      10 * time.Minute,
			MaxEpochsAhead:      4,
		},
		Epochs: EpochPolicy{
			PastEpochs:      8,
			PastEpochMaxAge: 3 * day,
			ResumptionPSKs:  0,
		},
		Delivery: DeliveryPolicy{
			RatchetTreeInWelcome: true,
			PublishGroupInfo:     false,
			WelcomeRetry:         30 * time.Second,
			WelcomeRetention:     7 * day,
			CiphertextRetention:  7 * day,
			RetentionBytes:       256 << 20,
			CatchUpBatch:         256,
			CommitSyncInterval:   5 * time.Second,
		},
		Consensus: ConsensusPolicy{
			TickInterval: 100 * time.Millisecond,
			TimeoutTicks: 10,
		},
	}
}

const day = 24 * time.Hour
