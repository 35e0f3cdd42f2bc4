package profile

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/conclave-im/conclave/identity"
	"github.com/conclave-im/conclave/mls"
)

// ErrInvalid is wrapped by every FieldError.
var ErrInvalid = errors.New("profile: invalid value")

// FieldError reports one profile field with an unacceptable value.
type FieldError struct {
	Field  string // dotted path, e.g. "KeyPackages.PoolSize"
	Reason string
}

func (e *FieldError) Error() string { return "profile: " + e.Field + ": " + e.Reason }

func (e *FieldError) Unwrap() error { return ErrInvalid }

// Bounds on values that no sensible deployment exceeds; they keep a typo in
// a configuration file from turning into a resource problem.
const (
	maxGroupIDSize     = 255 // the gossip envelope's limit
	maxMembers         = 1 << 16
	maxForwardDistance = 1 << 16
	maxPastEpochs      = 64
	maxPaddingBlock    = 4096
	maxGossipMessage   = 1 << 20  // gossipsub's practical ceiling
	maxDirectPayload   = 64 << 20 // the network layer's envelope limit
	minGossipMessage   = 1 << 10
	// messageOverhead is room for MLS framing, the signature and the
	// network envelope around one application message.
	messageOverhead = 1 << 10
)

// Validate reports every field that is out of range or inconsistent with
// another, joined; each is a *FieldError wrapping ErrInvalid.
func (p *Profile) Validate() error {
	v := &validator{}
	v.check(p.Name != "", "Name", "empty")
	p.validateCrypto(v)
	p.validateCredentials(v)
	p.validateKeyPackages(v)
	p.validateMembership(v)
	p.validateCommits(v)
	p.validateMessages(v)
	p.validateOutOfOrder(v)
	p.validateEpochs(v)
	p.validateDelivery(v)
	p.validateConsensus(v)
	return errors.Join(v.errs...)
}

type validator struct{ errs []error }

func (v *validator) check(ok bool, field, format string, args ...any) {
	if !ok {
		v.errs = append(v.errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
}

func (v *validator) noDuplicates(field string, n int, key func(i int) uint16) {
	seen := make(map[uint16]bool, n)
	for i := range n {
		k := key(i)
		v.check(!seen[k], field, "%#04x listed twice", k)
		seen[k] = true
	}
}

func (p *Profile) validateCrypto(v *validator) {
	c := &p.Crypto
	v.check(c.ProtocolVersion == mls.ProtocolVersionMLS10, "Crypto.ProtocolVersion", "%d is not MLS 1.0", c.ProtocolVersion)
	v.check(len(c.CipherSuites) > 0, "Crypto.CipherSuites", "empty")
	for _, cs := range c.CipherSuites {
		v.check(cs.Supported(), "Crypto.CipherSuites", "%v is not supported", cs)
	}
	v.noDuplicates("Crypto.CipherSuites", len(c.CipherSuites), func(i int) uint16 { return uint16(c.CipherSuites[i]) })
	v.check(c.GroupIDSize >= 16 && c.GroupIDSize <= maxGroupIDSize, "Crypto.GroupIDSize",
		"%d outside 16..%d (shorter IDs could collide)", c.GroupIDSize, maxGroupIDSize)
	v.noDuplicates("Crypto.RequiredGroupExtensions", len(c.RequiredGroupExtensions), func(i int) uint16 { return uint16(c.RequiredGroupExtensions[i]) })
	v.noDuplicates("Crypto.ForbiddenExtensions", len(c.ForbiddenExtensions), func(i int) uint16 { return uint16(c.ForbiddenExtensions[i]) })
	for _, t := range c.RequiredGroupExtensions {
		v.check(!slices.Contains(c.ForbiddenExtensions, t), "Crypto.RequiredGroupExtensions", "%#04x is also forbidden", uint16(t))
	}
}

func (p *Profile) validateCredentials(v *validator) {
	c := &p.Credentials
	v.check(c.Own == identity.CredentialTypeConclave, "Credentials.Own",
		"%#04x: a node identifies its leaves with the Conclave credential", uint16(c.Own))
	v.check(slices.Contains(c.Accepted, c.Own), "Credentials.Accepted", "does not include the node's own credential type")
	for _, t := range c.Accepted {
		v.check(t == identity.CredentialTypeConclave || t == mls.CredentialTypeBasic, "Credentials.Accepted",
			"%#04x: only the Conclave and basic credentials can be checked", uint16(t))
	}
	v.noDuplicates("Credentials.Accepted", len(c.Accepted), func(i int) uint16 { return uint16(c.Accepted[i]) })
	for _, t := range c.RequiredCredentials {
		v.check(slices.Contains(c.Accepted, t), "Credentials.RequiredCredentials", "%#04x is not accepted", uint16(t))
	}
	v.noDuplicates("Credentials.RequiredCredentials", len(c.RequiredCredentials), func(i int) uint16 { return uint16(c.RequiredCredentials[i]) })
}

func (p *Profile) validateKeyPackages(v *validator) {
	k := &p.KeyPackages
	v.check(k.Lifetime >= day, "KeyPackages.Lifetime", "%v is under a day", k.Lifetime)
	v.check(k.MaxAcceptedLifetime >= k.Lifetime && k.MaxAcceptedLifetime <= 366*day, "KeyPackages.MaxAcceptedLifetime",
		"%v outside Lifetime..366 days", k.MaxAcceptedLifetime)
	v.check(k.ClockSkew >= 0 && k.ClockSkew <= k.Lifetime/4, "KeyPackages.ClockSkew", "%v outside 0..Lifetime/4", k.ClockSkew)
	v.check(k.PoolSize >= 1 && k.PoolSize <= 1024, "KeyPackages.PoolSize", "%d outside 1..1024", k.PoolSize)
	v.check(k.RefillBelow >= 1 && k.RefillBelow <= k.PoolSize, "KeyPackages.RefillBelow", "%d outside 1..PoolSize", k.RefillBelow)
	v.check(k.RenewBefore > 0 && k.RenewBefore < k.Lifetime, "KeyPackages.RenewBefore", "%v outside (0, Lifetime)", k.RenewBefore)
	v.check(k.LastResortRotation > 0 && k.LastResortRotation <= k.Lifetime-k.RenewBefore, "KeyPackages.LastResortRotation",
		"%v: must rotate before the last-resort KeyPackage is due for renewal (Lifetime - RenewBefore)", k.LastResortRotation)
	v.check(k.ExpiredInitKeyGrace >= 0 && k.ExpiredInitKeyGrace <= k.Lifetime, "KeyPackages.ExpiredInitKeyGrace",
		"%v outside 0..Lifetime", k.ExpiredInitKeyGrace)
	v.check(k.ServeLimit >= 1, "KeyPackages.ServeLimit", "%d: peers could not fetch any KeyPackage", k.ServeLimit)
	v.check(k.ServeWindow > 0, "KeyPackages.ServeWindow", "%v is not positive", k.ServeWindow)
}

// knownProposals are the proposal types this profile can allow.
var knownProposals = []mls.ProposalType{
	mls.ProposalTypeAdd, mls.ProposalTypeUpdate, mls.ProposalTypeRemove, mls.ProposalTypePSK,
	mls.ProposalTypeReInit, mls.ProposalTypeExternalInit, mls.ProposalTypeGroupContextExtensions,
}

func (p *Profile) validateMembership(v *validator) {
	m := &p.Membership
	v.check(m.MayAdd == AnyMember || m.MayAdd == Creator, "Membership.MayAdd", "unknown %v", m.MayAdd)
	v.check(m.MayRemove == AnyMember || m.MayRemove == Creator, "Membership.MayRemove", "unknown %v", m.MayRemove)
	v.check(m.MaxMembers >= 2 && m.MaxMembers <= maxMembers, "Membership.MaxMembers", "%d outside 2..%d", m.MaxMembers, maxMembers)
	allowed := func(t mls.ProposalType) bool { return slices.Contains(m.AllowedProposals, t) }
	for _, t := range m.AllowedProposals {
		v.check(slices.Contains(knownProposals, t), "Membership.AllowedProposals", "unknown %v", t)
	}
	v.noDuplicates("Membership.AllowedProposals", len(m.AllowedProposals), func(i int) uint16 { return uint16(m.AllowedProposals[i]) })
	v.check(allowed(mls.ProposalTypeAdd) && allowed(mls.ProposalTypeRemove), "Membership.AllowedProposals",
		"must allow Add and Remove, or no group could change")
	v.check(allowed(mls.ProposalTypeReInit) == m.AllowReInit, "Membership.AllowedProposals",
		"ReInit must be listed exactly when AllowReInit is set")
	v.check(!allowed(mls.ProposalTypeExternalInit) || m.AllowExternalJoins, "Membership.AllowedProposals",
		"ExternalInit requires AllowExternalJoins")
	v.check(!allowed(mls.ProposalTypePSK) || p.Epochs.ResumptionPSKs > 0, "Membership.AllowedProposals",
		"PreSharedKey requires retained resumption PSKs (Conclave distributes no external PSKs)")
	forbidden := func(t mls.ExtensionType) bool { return slices.Contains(p.Crypto.ForbiddenExtensions, t) }
	v.check(!m.AllowExternalJoins || !forbidden(mls.ExtensionTypeExternalPub), "Membership.AllowExternalJoins",
		"external joins need the external_pub extension, which Crypto.ForbiddenExtensions forbids")
	v.check(m.AllowExternalJoins || forbidden(mls.ExtensionTypeExternalPub), "Crypto.ForbiddenExtensions",
		"must forbid external_pub when external joins are not allowed")
	v.check(m.AllowExternalSenders != forbidden(mls.ExtensionTypeExternalSenders), "Membership.AllowExternalSenders",
		"external_senders must be forbidden exactly when external senders are not allowed")
	v.check(m.IdleEviction == 0 || m.IdleEviction >= 4*p.Commits.LeafUpdateInterval, "Membership.IdleEviction",
		"%v: must be zero or at least 4 × Commits.LeafUpdateInterval, so that active members are never evicted", m.IdleEviction)
	v.check(m.IdleAwayGap == 0 || m.IdleAwayGap >= time.Minute, "Membership.IdleAwayGap",
		"%v: must be zero (off) or at least a minute, so that ordinary scheduling stalls count as watched time", m.IdleAwayGap)
}

func (p *Profile) validateCommits(v *validator) {
	c := &p.Commits
	v.check(c.CommitPendingAfter > 0 && c.CommitPendingAfter <= time.Hour, "Commits.CommitPendingAfter",
		"%v outside (0, 1h]", c.CommitPendingAfter)
	v.check(c.MaxProposalsPerCommit >= 1 && c.MaxProposalsPerCommit <= 2*p.Membership.MaxMembers,
		"Commits.MaxProposalsPerCommit", "%d outside 1..2×MaxMembers", c.MaxProposalsPerCommit)
	v.check(c.LeafUpdateInterval >= time.Minute, "Commits.LeafUpdateInterval", "%v is under a minute", c.LeafUpdateInterval)
	v.check(c.LeafUpdateInterval <= p.KeyPackages.MaxAcceptedLifetime, "Commits.LeafUpdateInterval",
		"%v is longer than any leaf may live (KeyPackages.MaxAcceptedLifetime)", c.LeafUpdateInterval)
}

func (p *Profile) validateMessages(v *validator) {
	m := &p.Messages
	v.check(m.PaddingBlock >= 1 && m.PaddingBlock <= maxPaddingBlock, "Messages.PaddingBlock",
		"%d outside 1..%d", m.PaddingBlock, maxPaddingBlock)
	v.check(m.MaxGossipMessage >= minGossipMessage && m.MaxGossipMessage <= maxGossipMessage, "Messages.MaxGossipMessage",
		"%d outside %d..%d", m.MaxGossipMessage, minGossipMessage, maxGossipMessage)
	v.check(m.MaxApplicationMessage >= 1<<10 && m.MaxApplicationMessage+m.PaddingBlock+messageOverhead <= m.MaxGossipMessage,
		"Messages.MaxApplicationMessage", "%d: must be at least 1 KiB and fit, padded and framed, in one gossip message", m.MaxApplicationMessage)
	v.check(m.MaxDirectPayload >= m.MaxGossipMessage && m.MaxDirectPayload <= maxDirectPayload, "Messages.MaxDirectPayload",
		"%d outside MaxGossipMessage..%d", m.MaxDirectPayload, maxDirectPayload)
}

func (p *Profile) validateOutOfOrder(v *validator) {
	o := &p.OutOfOrder
	v.check(o.MaxForwardDistance >= 1 && o.MaxForwardDistance <= maxForwardDistance, "OutOfOrder.MaxForwardDistance",
		"%d outside 1..%d", o.MaxForwardDistance, maxForwardDistance)
	v.check(o.MaxRetainedKeys >= 0 && o.MaxRetainedKeys <= int(o.MaxForwardDistance), "OutOfOrder.MaxRetainedKeys",
		"%d outside 0..MaxForwardDistance", o.MaxRetainedKeys)
	v.check(o.EarlyBufferMessages >= 0, "OutOfOrder.EarlyBufferMessages", "%d is negative", o.EarlyBufferMessages)
	if o.EarlyBufferMessages > 0 {
		v.check(o.EarlyBufferBytes >= p.Messages.MaxGossipMessage, "OutOfOrder.EarlyBufferBytes",
			"%d cannot hold one full gossip message", o.EarlyBufferBytes)
		v.check(o.EarlyBufferAge > 0, "OutOfOrder.EarlyBufferAge", "%v is not positive", o.EarlyBufferAge)
		v.check(o.MaxEpochsAhead >= 1 && o.MaxEpochsAhead <= 64, "OutOfOrder.MaxEpochsAhead", "%d outside 1..64", o.MaxEpochsAhead)
	}
}

func (p *Profile) validateEpochs(v *validator) {
	e := &p.Epochs
	v.check(e.PastEpochs >= 0 && e.PastEpochs <= maxPastEpochs, "Epochs.PastEpochs", "%d outside 0..%d", e.PastEpochs, maxPastEpochs)
	v.check(e.PastEpochs == 0 || e.PastEpochMaxAge > 0, "Epochs.PastEpochMaxAge", "%v is not positive", e.PastEpochMaxAge)
	v.check(e.PastEpochMaxAge <= p.Delivery.CiphertextRetention, "Epochs.PastEpochMaxAge",
		"%v outlives the ciphertexts it decrypts (Delivery.CiphertextRetention)", e.PastEpochMaxAge)
	v.check(e.ResumptionPSKs >= 0 && e.ResumptionPSKs <= maxPastEpochs, "Epochs.ResumptionPSKs",
		"%d outside 0..%d", e.ResumptionPSKs, maxPastEpochs)
	v.check(!p.Membership.AllowReInit || e.ResumptionPSKs >= 1, "Epochs.ResumptionPSKs",
		"ReInit needs the resumption PSK of the old group's last epoch")
}

func (p *Profile) validateDelivery(v *validator) {
	d := &p.Delivery
	v.check(d.RatchetTreeInWelcome, "Delivery.RatchetTreeInWelcome",
		"must be set: without a server, a new member has no other source for the tree")
	v.check(!d.PublishGroupInfo || p.Membership.AllowExternalJoins, "Delivery.PublishGroupInfo",
		"GroupInfo is only published for external joins, which are not allowed")
	v.check(d.WelcomeRetry > 0, "Delivery.WelcomeRetry", "%v is not positive", d.WelcomeRetry)
	v.check(d.WelcomeRetention >= d.WelcomeRetry, "Delivery.WelcomeRetention", "%v is shorter than WelcomeRetry", d.WelcomeRetention)
	v.check(d.CiphertextRetention >= time.Hour, "Delivery.CiphertextRetention", "%v is under an hour", d.CiphertextRetention)
	v.check(d.RetentionBytes >= int64(p.Messages.MaxDirectPayload), "Delivery.RetentionBytes",
		"%d cannot hold one direct payload", d.RetentionBytes)
	v.check(d.CatchUpBatch >= 1 && d.CatchUpBatch <= 1<<14, "Delivery.CatchUpBatch", "%d outside 1..16384", d.CatchUpBatch)
	v.check(d.CommitSyncInterval > 0, "Delivery.CommitSyncInterval", "%v is not positive", d.CommitSyncInterval)
}

func (p *Profile) validateConsensus(v *validator) {
	c := &p.Consensus
	v.check(c.TickInterval >= 10*time.Millisecond && c.TickInterval <= 10*time.Second, "Consensus.TickInterval",
		"%v outside 10ms..10s", c.TickInterval)
	v.check(c.TimeoutTicks >= 2 && c.TimeoutTicks <= 1000, "Consensus.TimeoutTicks", "%d outside 2..1000", c.TimeoutTicks)
}
