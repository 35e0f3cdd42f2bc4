package profile

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/conclave-im/conclave/mls"
)

// The helpers below are where the node applies the profile, so that each
// rule lives in one place.

// Errors of CheckLifetime.
var (
	ErrLifetimeNotYetValid = errors.New("profile: lifetime not yet valid")
	ErrLifetimeExpired     = errors.New("profile: lifetime expired")
	ErrLifetimeTooLong     = errors.New("profile: lifetime longer than the profile accepts")
)

// GroupCipherSuite returns the suite of new groups (zero if the profile
// lists none, which Validate rejects).
func (p *Profile) GroupCipherSuite() mls.CipherSuite {
	if len(p.Crypto.CipherSuites) == 0 {
		return 0
	}
	return p.Crypto.CipherSuites[0]
}

// AcceptsCipherSuite reports whether groups and KeyPackages of suite cs are
// acceptable.
func (p *Profile) AcceptsCipherSuite(cs mls.CipherSuite) bool {
	return slices.Contains(p.Crypto.CipherSuites, cs)
}

// AcceptsCredential reports whether a leaf may carry a credential of type t.
func (p *Profile) AcceptsCredential(t mls.CredentialType) bool {
	return slices.Contains(p.Credentials.Accepted, t)
}

// AllowsProposal reports whether proposals of type t are valid in a Commit.
func (p *Profile) AllowsProposal(t mls.ProposalType) bool {
	return slices.Contains(p.Membership.AllowedProposals, t)
}

// ForbidsExtension reports whether extension t must be rejected wherever it
// appears.
func (p *Profile) ForbidsExtension(t mls.ExtensionType) bool {
	return slices.Contains(p.Crypto.ForbiddenExtensions, t)
}

// RequiredCapabilities returns the required_capabilities extension data of a
// new group.
func (p *Profile) RequiredCapabilities() mls.RequiredCapabilities {
	return mls.RequiredCapabilities{
		ExtensionTypes:  slices.Clone(p.Crypto.RequiredGroupExtensions),
		ProposalTypes:   []mls.ProposalType{},
		CredentialTypes: slices.Clone(p.Credentials.RequiredCredentials),
	}
}

// LeafCapabilities returns the capabilities the node advertises in its own
// leaves and KeyPackages (RFC 9420 §7.2): the profile's version and cipher
// suites, the non-default extension types it requires of groups, and every
// accepted credential type (RFC 9420 requires each member to support the
// credential type of every leaf). The standard proposal types are defaults
// and so are not listed.
func (p *Profile) LeafCapabilities() mls.Capabilities {
	return mls.Capabilities{
		Versions:     []mls.ProtocolVersion{p.Crypto.ProtocolVersion},
		CipherSuites: slices.Clone(p.Crypto.CipherSuites),
		Extensions:   slices.Clone(p.Crypto.RequiredGroupExtensions),
		Proposals:    []mls.ProposalType{},
		Credentials:  slices.Clone(p.Credentials.Accepted),
	}
}

// IssueLifetime returns the lifetime of a KeyPackage issued at now:
// not_before is ClockSkew in the past so that peers with slow clocks
// accept it at once.
func (p *Profile) IssueLifetime(now time.Time) mls.Lifetime {
	nb := now.Add(-p.KeyPackages.ClockSkew)
	return mls.Lifetime{
		NotBefore: unixSeconds(nb),
		NotAfter:  unixSeconds(nb.Add(p.KeyPackages.Lifetime)),
	}
}

// CheckLifetime checks the lifetime of a peer's KeyPackage about to be
// added (by the committer, and by every member validating the Commit
// before voting) at now: it must have started (allowing ClockSkew), not
// ended, and not span more than MaxAcceptedLifetime.
func (p *Profile) CheckLifetime(lt mls.Lifetime, now time.Time) error {
	skew := uint64(p.KeyPackages.ClockSkew / time.Second)
	t := unixSeconds(now)
	switch {
	case lt.NotAfter < lt.NotBefore || lt.NotAfter-lt.NotBefore > uint64(p.KeyPackages.MaxAcceptedLifetime/time.Second):
		return fmt.Errorf("%w: %d..%d spans more than %v", ErrLifetimeTooLong, lt.NotBefore, lt.NotAfter, p.KeyPackages.MaxAcceptedLifetime)
	case lt.NotBefore > t && lt.NotBefore-t > skew:
		return fmt.Errorf("%w: starts at %d, now is %d", ErrLifetimeNotYetValid, lt.NotBefore, t)
	case lt.NotAfter < t:
		return fmt.Errorf("%w: ended at %d, now is %d", ErrLifetimeExpired, lt.NotAfter, t)
	}
	return nil
}

// CheckTreeLifetime checks the lifetime of a leaf already in a ratchet
// tree (a tree joined through a Welcome, a leaf in a received proposal or
// Commit): the total lifetime is always bounded; whether it has ended is
// checked only if KeyPackages.ExpireTreeLeaves is set.
func (p *Profile) CheckTreeLifetime(lt mls.Lifetime, now time.Time) error {
	if p.KeyPackages.ExpireTreeLeaves {
		return p.CheckLifetime(lt, now)
	}
	if lt.NotAfter < lt.NotBefore || lt.NotAfter-lt.NotBefore > uint64(p.KeyPackages.MaxAcceptedLifetime/time.Second) {
		return fmt.Errorf("%w: %d..%d spans more than %v", ErrLifetimeTooLong, lt.NotBefore, lt.NotAfter, p.KeyPackages.MaxAcceptedLifetime)
	}
	return nil
}

func unixSeconds(t time.Time) uint64 {
	if s := t.Unix(); s > 0 {
		return uint64(s)
	}
	return 0
}

// MLSConfig returns the mls.Config carrying the profile's message-layer
// limits, with the given randomness and clock (nil means the mls
// defaults: crypto/rand and time.Now).
func (p *Profile) MLSConfig(rand io.Reader, now func() time.Time) *mls.Config {
	retained := p.OutOfOrder.MaxRetainedKeys
	if retained == 0 {
		retained = -1 // mls.Config: negative keeps none, zero means its default
	}
	return &mls.Config{
		Rand:               rand,
		Time:               now,
		MaxForwardDistance: p.OutOfOrder.MaxForwardDistance,
		MaxRetainedKeys:    retained,
		PaddingBlock:       p.Messages.PaddingBlock,
	}
}

// TickTimeout returns the wall-clock length of the consensus base timeout.
func (p *Profile) TickTimeout() time.Duration {
	return time.Duration(p.Consensus.TimeoutTicks) * p.Consensus.TickInterval
}
