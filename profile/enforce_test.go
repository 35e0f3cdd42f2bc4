package profile

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/conclave-im/conclave/identity"
	"github.com/conclave-im/conclave/mls"
)

func TestPolicyQueries(t *testing.T) {
	p := Default()
	if p.GroupCipherSuite() != mls.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 {
		t.Errorf("GroupCipherSuite() = %v", p.GroupCipherSuite())
	}
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"accepts suite 1", p.AcceptsCipherSuite(mls.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519), true},
		{"accepts suite 3", p.AcceptsCipherSuite(mls.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519), true},
		{"rejects suite 2", p.AcceptsCipherSuite(mls.MLS_128_DHKEMP256_AES128GCM_SHA256_P256), false},
		{"accepts Conclave credentials", p.AcceptsCredential(identity.CredentialTypeConclave), true},
		{"accepts basic credentials", p.AcceptsCredential(mls.CredentialTypeBasic), true},
		{"rejects x509 credentials", p.AcceptsCredential(mls.CredentialTypeX509), false},
		{"allows Add", p.AllowsProposal(mls.ProposalTypeAdd), true},
		{"allows GroupContextExtensions", p.AllowsProposal(mls.ProposalTypeGroupContextExtensions), true},
		{"rejects ReInit", p.AllowsProposal(mls.ProposalTypeReInit), false},
		{"rejects ExternalInit", p.AllowsProposal(mls.ProposalTypeExternalInit), false},
		{"rejects PSK", p.AllowsProposal(mls.ProposalTypePSK), false},
		{"forbids external_senders", p.ForbidsExtension(mls.ExtensionTypeExternalSenders), true},
		{"forbids external_pub", p.ForbidsExtension(mls.ExtensionTypeExternalPub), true},
		{"allows ratchet_tree", p.ForbidsExtension(mls.ExtensionTypeRatchetTree), false},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	rc := p.RequiredCapabilities()
	if len(rc.CredentialTypes) != 1 || rc.CredentialTypes[0] != identity.CredentialTypeConclave {
		t.Errorf("RequiredCapabilities().CredentialTypes = %v", rc.CredentialTypes)
	}
	rc.CredentialTypes[0] = 0
	if p.Credentials.RequiredCredentials[0] != identity.CredentialTypeConclave {
		t.Error("RequiredCapabilities shares its slices with the profile")
	}
	if _, err := rc.Marshal(); err != nil {
		t.Errorf("RequiredCapabilities().Marshal() = %v", err)
	}
}

func TestLeafCapabilities(t *testing.T) {
	p := Default()
	c := p.LeafCapabilities()
	if len(c.Versions) != 1 || c.Versions[0] != mls.ProtocolVersionMLS10 {
		t.Errorf("Versions = %v", c.Versions)
	}
	if !slices.Equal(c.CipherSuites, p.Crypto.CipherSuites) || !slices.Equal(c.Credentials, p.Credentials.Accepted) {
		t.Errorf("capabilities %+v do not follow the profile", c)
	}
	if !slices.Contains(c.Credentials, p.Credentials.Own) {
		t.Error("own credential type not advertised")
	}
	// Any member may change the group settings, so every leaf supports
	// the extension and every new group requires it.
	if !slices.Contains(c.Extensions, ExtensionTypeGroupSettings) {
		t.Errorf("leaf capabilities %v lack the group settings extension", c.Extensions)
	}
	if rc := p.RequiredCapabilities(); !slices.Contains(rc.ExtensionTypes, ExtensionTypeGroupSettings) {
		t.Errorf("required capabilities %v lack the group settings extension", rc.ExtensionTypes)
	}
	c.CipherSuites[0], c.Credentials[0] = 0, 0
	if p.Crypto.CipherSuites[0] == 0 || p.Credentials.Accepted[0] == 0 {
		t.Error("LeafCapabilities shares its slices with the profile")
	}
}

func TestLifetimes(t *testing.T) {
	p := Default()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	issued := p.IssueLifetime(now)
	if got := time.Duration(issued.NotAfter-issued.NotBefore) * time.Second; got != p.KeyPackages.Lifetime {
		t.Errorf("issued lifetime spans %v, want %v", got, p.KeyPackages.Lifetime)
	}
	if err := p.CheckLifetime(issued, now); err != nil {
		t.Fatalf("own lifetime rejected: %v", err)
	}
	at := func(d time.Duration) uint64 { return uint64(now.Add(d).Unix()) }
	tests := []struct {
		name string
		lt   mls.Lifetime
		want error
	}{
		{"own, issued now", issued, nil},
		{"issued by a peer whose clock is 30 minutes fast", mls.Lifetime{NotBefore: at(30 * time.Minute), NotAfter: at(28 * day)}, nil},
		{"starts in two hours", mls.Lifetime{NotBefore: at(2 * time.Hour), NotAfter: at(28 * day)}, ErrLifetimeNotYetValid},
		{"expired a second ago", mls.Lifetime{NotBefore: at(-28 * day), NotAfter: at(-time.Second)}, ErrLifetimeExpired},
		{"exactly 90 days", mls.Lifetime{NotBefore: at(-day), NotAfter: at(89 * day)}, nil},
		{"91 days", mls.Lifetime{NotBefore: at(-day), NotAfter: at(90 * day)}, ErrLifetimeTooLong},
		{"ends before it starts", mls.Lifetime{NotBefore: at(day), NotAfter: at(-day)}, ErrLifetimeTooLong},
		{"the forever lifetime", mls.Lifetime{NotBefore: 0, NotAfter: ^uint64(0)}, ErrLifetimeTooLong},
	}
	for _, tc := range tests {
		err := p.CheckLifetime(tc.lt, now)
		if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: CheckLifetime = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestTreeLifetimes(t *testing.T) {
	p := Default()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) uint64 { return uint64(now.Add(d).Unix()) }
	expired := mls.Lifetime{NotBefore: at(-60 * day), NotAfter: at(-32 * day)}
	tooLong := mls.Lifetime{NotBefore: at(-day), NotAfter: at(100 * day)}
	if err := p.CheckTreeLifetime(expired, now); err != nil {
		t.Errorf("expired tree leaf rejected by default: %v", err)
	}
	if err := p.CheckTreeLifetime(tooLong, now); !errors.Is(err, ErrLifetimeTooLong) {
		t.Errorf("over-long tree leaf: %v, want ErrLifetimeTooLong", err)
	}
	p.KeyPackages.ExpireTreeLeaves = true
	if err := p.CheckTreeLifetime(expired, now); !errors.Is(err, ErrLifetimeExpired) {
		t.Errorf("expired tree leaf with ExpireTreeLeaves: %v, want ErrLifetimeExpired", err)
	}
}

func TestMLSConfig(t *testing.T) {
	p := Default()
	c := p.MLSConfig(nil, nil)
	if c.MaxForwardDistance != p.OutOfOrder.MaxForwardDistance || c.MaxRetainedKeys != p.OutOfOrder.MaxRetainedKeys ||
		c.PaddingBlock != p.Messages.PaddingBlock {
		t.Fatalf("MLSConfig() = %+v does not carry the profile", c)
	}
	p.OutOfOrder.MaxRetainedKeys = 0
	if c := p.MLSConfig(nil, nil); c.MaxRetainedKeys >= 0 {
		t.Fatalf("MaxRetainedKeys 0 maps to %d; mls reads 0 as its default, so none must be negative", c.MaxRetainedKeys)
	}
	if got := p.TickTimeout(); got != time.Second {
		t.Errorf("TickTimeout() = %v, want 1s", got)
	}
}
