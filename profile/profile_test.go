package profile

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/conclave-im/conclave/identity"
	"github.com/conclave-im/conclave/mls"
)

func TestDefaultIsValid(t *testing.T) {
	p := Default()
	if err := p.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if p.Name != Name {
		t.Errorf("Name = %q, want %q", p.Name, Name)
	}
}

func TestDefaultReturnsIndependentCopies(t *testing.T) {
	a, b := Default(), Default()
	a.Crypto.CipherSuites[0] = 0x0042
	a.Credentials.Accepted[0] = 0x0042
	a.Membership.AllowedProposals[0] = 0x0042
	if b.Crypto.CipherSuites[0] == 0x0042 || b.Credentials.Accepted[0] == 0x0042 || b.Membership.AllowedProposals[0] == 0x0042 {
		t.Fatal("Default() values share slices")
	}
	if err := b.Validate(); err != nil {
		t.Fatalf("Default() changed by a caller's edit: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(p *Profile)
		field  string // the field the error must name; empty means valid
	}{
		{"default", func(p *Profile) {}, ""},
		{"empty name", func(p *Profile) { p.Name = "" }, "Name"},

		{"MLS version 2", func(p *Profile) { p.Crypto.ProtocolVersion = 2 }, "Crypto.ProtocolVersion"},
		{"no cipher suites", func(p *Profile) { p.Crypto.CipherSuites = nil }, "Crypto.CipherSuites"},
		{"unknown cipher suite", func(p *Profile) { p.Crypto.CipherSuites = append(p.Crypto.CipherSuites, 0x0042) }, "Crypto.CipherSuites"},
		{"duplicate cipher suite", func(p *Profile) { p.Crypto.CipherSuites = append(p.Crypto.CipherSuites, p.Crypto.CipherSuites[0]) }, "Crypto.CipherSuites"},
		{"P-256 only is fine", func(p *Profile) {
			p.Crypto.CipherSuites = []mls.CipherSuite{mls.MLS_128_DHKEMP256_AES128GCM_SHA256_P256}
		}, ""},
		{"group ID of 8 bytes", func(p *Profile) { p.Crypto.GroupIDSize = 8 }, "Crypto.GroupIDSize"},
		{"group ID of 256 bytes", func(p *Profile) { p.Crypto.GroupIDSize = 256 }, "Crypto.GroupIDSize"},
		{"extension required and forbidden", func(p *Profile) {
			p.Crypto.RequiredGroupExtensions = []mls.ExtensionType{mls.ExtensionTypeExternalSenders}
		}, "Crypto.RequiredGroupExtensions"},
		{"duplicate forbidden extension", func(p *Profile) {
			p.Crypto.ForbiddenExtensions = append(p.Crypto.ForbiddenExtensions, mls.ExtensionTypeExternalPub)
		}, "Crypto.ForbiddenExtensions"},

		{"own credential basic", func(p *Profile) { p.Credentials.Own = mls.CredentialTypeBasic }, "Credentials.Own"},
		{"own credential not accepted", func(p *Profile) { p.Credentials.Accepted = []mls.CredentialType{mls.CredentialTypeBasic} }, "Credentials.Accepted"},
		{"x509 accepted", func(p *Profile) { p.Credentials.Accepted = append(p.Credentials.Accepted, mls.CredentialTypeX509) }, "Credentials.Accepted"},
		{"basic not accepted is fine", func(p *Profile) { p.Credentials.Accepted = []mls.CredentialType{identity.CredentialTypeConclave} }, ""},
		{"required basic but not accepted", func(p *Profile) {
			p.Credentials.Accepted = []mls.CredentialType{identity.CredentialTypeConclave}
			p.Credentials.RequiredCredentials = []mls.CredentialType{mls.CredentialTypeBasic}
		}, "Credentials.RequiredCredentials"},

		{"KeyPackage lifetime an hour", func(p *Profile) { p.KeyPackages.Lifetime = time.Hour }, "KeyPackages.Lifetime"},
		{"accepted lifetime below own", func(p *Profile) { p.KeyPackages.MaxAcceptedLifetime = 7 * day }, "KeyPackages.MaxAcceptedLifetime"},
		{"accepted lifetime two years", func(p *Profile) { p.KeyPackages.MaxAcceptedLifetime = 730 * day }, "KeyPackages.MaxAcceptedLifetime"},
		{"negative clock skew", func(p *Profile) { p.KeyPackages.ClockSkew = -time.Second }, "KeyPackages.ClockSkew"},
		{"empty pool", func(p *Profile) { p.KeyPackages.PoolSize = 0 }, "KeyPackages.PoolSize"},
		{"refill above pool size", func(p *Profile) { p.KeyPackages.RefillBelow = 33 }, "KeyPackages.RefillBelow"},
		{"refill never", func(p *Profile) { p.KeyPackages.RefillBelow = 0 }, "KeyPackages.RefillBelow"},
		{"renew before longer than lifetime", func(p *Profile) { p.KeyPackages.RenewBefore = 28 * day }, "KeyPackages.RenewBefore"},
		{"last resort never rotated", func(p *Profile) { p.KeyPackages.LastResortRotation = 0 }, "KeyPackages.LastResortRotation"},
		{"last resort rotated after renewal is due", func(p *Profile) { p.KeyPackages.LastResortRotation = 22 * day }, "KeyPackages.LastResortRotation"},
		{"negative init key grace", func(p *Profile) { p.KeyPackages.ExpiredInitKeyGrace = -time.Hour }, "KeyPackages.ExpiredInitKeyGrace"},
		{"serve nothing", func(p *Profile) { p.KeyPackages.ServeLimit = 0 }, "KeyPackages.ServeLimit"},
		{"serve window zero", func(p *Profile) { p.KeyPackages.ServeWindow = 0 }, "KeyPackages.ServeWindow"},

		{"unknown add permission", func(p *Profile) { p.Membership.MayAdd = 0 }, "Membership.MayAdd"},
		{"creator removes", func(p *Profile) { p.Membership.MayRemove = Creator }, ""},
		{"unknown remove permission", func(p *Profile) { p.Membership.MayRemove = 9 }, "Membership.MayRemove"},
		{"one-member groups", func(p *Profile) { p.Membership.MaxMembers = 1 }, "Membership.MaxMembers"},
		{"huge groups", func(p *Profile) { p.Membership.MaxMembers = 1 << 20 }, "Membership.MaxMembers"},
		{"no Remove proposals", func(p *Profile) {
			p.Membership.AllowedProposals = []mls.ProposalType{mls.ProposalTypeAdd, mls.ProposalTypeUpdate}
		}, "Membership.AllowedProposals"},
		{"unknown proposal", func(p *Profile) { p.Membership.AllowedProposals = append(p.Membership.AllowedProposals, 0x0042) }, "Membership.AllowedProposals"},
		{"duplicate proposal", func(p *Profile) {
			p.Membership.AllowedProposals = append(p.Membership.AllowedProposals, mls.ProposalTypeAdd)
		}, "Membership.AllowedProposals"},
		{"ReInit listed but not allowed", func(p *Profile) {
			p.Membership.AllowedProposals = append(p.Membership.AllowedProposals, mls.ProposalTypeReInit)
		}, "Membership.AllowedProposals"},
		{"ReInit allowed without resumption PSK", func(p *Profile) {
			p.Membership.AllowReInit = true
			p.Membership.AllowedProposals = append(p.Membership.AllowedProposals, mls.ProposalTypeReInit)
		}, "Epochs.ResumptionPSKs"},
		{"ReInit allowed with resumption PSK", func(p *Profile) {
			p.Membership.AllowReInit = true
			p.Membership.AllowedProposals = append(p.Membership.AllowedProposals, mls.ProposalTypeReInit)
			p.Epochs.ResumptionPSKs = 1
		}, ""},
		{"PSK proposals without resumption PSKs", func(p *Profile) {
			p.Membership.AllowedProposals = append(p.Membership.AllowedProposals, mls.ProposalTypePSK)
		}, "Membership.AllowedProposals"},
		{"ExternalInit without external joins", func(p *Profile) {
			p.Membership.AllowedProposals = append(p.Membership.AllowedProposals, mls.ProposalTypeExternalInit)
		}, "Membership.AllowedProposals"},
		{"external joins with external_pub forbidden", func(p *Profile) { p.Membership.AllowExternalJoins = true }, "Membership.AllowExternalJoins"},
		{"external joins configured fully", func(p *Profile) {
			p.Membership.AllowExternalJoins = true
			p.Membership.AllowedProposals = append(p.Membership.AllowedProposals, mls.ProposalTypeExternalInit)
			p.Crypto.ForbiddenExtensions = []mls.ExtensionType{mls.ExtensionTypeExternalSenders}
			p.Delivery.PublishGroupInfo = true
		}, ""},
		{"external_pub allowed without external joins", func(p *Profile) {
			p.Crypto.ForbiddenExtensions = []mls.ExtensionType{mls.ExtensionTypeExternalSenders}
		}, "Crypto.ForbiddenExtensions"},
		{"external senders with the extension forbidden", func(p *Profile) { p.Membership.AllowExternalSenders = true }, "Membership.AllowExternalSenders"},
		{"eviction sooner than updates", func(p *Profile) { p.Membership.IdleEviction = 2 * day }, "Membership.IdleEviction"},
		{"eviction disabled", func(p *Profile) { p.Membership.IdleEviction = 0 }, ""},
		{"away gap off", func(p *Profile) { p.Membership.IdleAwayGap = 0 }, ""},
		{"away gap of a second", func(p *Profile) { p.Membership.IdleAwayGap = time.Second }, "Membership.IdleAwayGap"},
		{"negative away gap", func(p *Profile) { p.Membership.IdleAwayGap = -time.Hour }, "Membership.IdleAwayGap"},

		{"commit pending never", func(p *Profile) { p.Commits.CommitPendingAfter = 0 }, "Commits.CommitPendingAfter"},
		{"commit pending after a day", func(p *Profile) { p.Commits.CommitPendingAfter = day }, "Commits.CommitPendingAfter"},
		{"no proposals per commit", func(p *Profile) { p.Commits.MaxProposalsPerCommit = 0 }, "Commits.MaxProposalsPerCommit"},
		{"leaf update every second", func(p *Profile) { p.Commits.LeafUpdateInterval = time.Second }, "Commits.LeafUpdateInterval"},
		{"leaf update once a year", func(p *Profile) {
			p.Commits.LeafUpdateInterval = 365 * day
			p.Membership.IdleEviction = 0
		}, "Commits.LeafUpdateInterval"},

		{"no padding is allowed", func(p *Profile) { p.Messages.PaddingBlock = 1 }, ""},
		{"padding zero", func(p *Profile) { p.Messages.PaddingBlock = 0 }, "Messages.PaddingBlock"},
		{"padding 64 KiB", func(p *Profile) { p.Messages.PaddingBlock = 64 << 10 }, "Messages.PaddingBlock"},
		{"application message does not fit gossip", func(p *Profile) { p.Messages.MaxApplicationMessage = 256 << 10 }, "Messages.MaxApplicationMessage"},
		{"tiny application messages", func(p *Profile) { p.Messages.MaxApplicationMessage = 100 }, "Messages.MaxApplicationMessage"},
		{"gossip message 4 MiB", func(p *Profile) { p.Messages.MaxGossipMessage = 4 << 20 }, "Messages.MaxGossipMessage"},
		{"direct payload below gossip", func(p *Profile) { p.Messages.MaxDirectPayload = 1 << 10 }, "Messages.MaxDirectPayload"},
		{"plaintext handshakes are a valid choice", func(p *Profile) { p.Messages.EncryptHandshake = false }, ""},

		{"forward distance zero", func(p *Profile) { p.OutOfOrder.MaxForwardDistance = 0 }, "OutOfOrder.MaxForwardDistance"},
		{"forward distance a million", func(p *Profile) { p.OutOfOrder.MaxForwardDistance = 1 << 20 }, "OutOfOrder.MaxForwardDistance"},
		{"more retained keys than distance", func(p *Profile) { p.OutOfOrder.MaxRetainedKeys = 2000 }, "OutOfOrder.MaxRetainedKeys"},
		{"strict in-order", func(p *Profile) { p.OutOfOrder.MaxRetainedKeys = 0 }, ""},
		{"negative early buffer", func(p *Profile) { p.OutOfOrder.EarlyBufferMessages = -1 }, "OutOfOrder.EarlyBufferMessages"},
		{"early buffer too small in bytes", func(p *Profile) { p.OutOfOrder.EarlyBufferBytes = 1024 }, "OutOfOrder.EarlyBufferBytes"},
		{"early buffer without age", func(p *Profile) { p.OutOfOrder.EarlyBufferAge = 0 }, "OutOfOrder.EarlyBufferAge"},
		{"early buffer zero epochs ahead", func(p *Profile) { p.OutOfOrder.MaxEpochsAhead = 0 }, "OutOfOrder.MaxEpochsAhead"},
		{"no early buffering", func(p *Profile) {
			p.OutOfOrder.EarlyBufferMessages = 0
			p.OutOfOrder.EarlyBufferBytes = 0
			p.OutOfOrder.EarlyBufferAge = 0
			p.OutOfOrder.MaxEpochsAhead = 0
		}, ""},

		{"negative past epochs", func(p *Profile) { p.Epochs.PastEpochs = -1 }, "Epochs.PastEpochs"},
		{"100 past epochs", func(p *Profile) { p.Epochs.PastEpochs = 100 }, "Epochs.PastEpochs"},
		{"past epochs without age", func(p *Profile) { p.Epochs.PastEpochMaxAge = 0 }, "Epochs.PastEpochMaxAge"},
		{"past epochs outlive ciphertexts", func(p *Profile) { p.Epochs.PastEpochMaxAge = 30 * day }, "Epochs.PastEpochMaxAge"},
		{"negative resumption PSKs", func(p *Profile) { p.Epochs.ResumptionPSKs = -1 }, "Epochs.ResumptionPSKs"},

		{"no ratchet tree in Welcome", func(p *Profile) { p.Delivery.RatchetTreeInWelcome = false }, "Delivery.RatchetTreeInWelcome"},
		{"GroupInfo published without external joins", func(p *Profile) { p.Delivery.PublishGroupInfo = true }, "Delivery.PublishGroupInfo"},
		{"Welcome never retried", func(p *Profile) { p.Delivery.WelcomeRetry = 0 }, "Delivery.WelcomeRetry"},
		{"Welcome retention below retry", func(p *Profile) { p.Delivery.WelcomeRetention = time.Second }, "Delivery.WelcomeRetention"},
		{"ciphertexts kept a minute", func(p *Profile) {
			p.Delivery.CiphertextRetention = time.Minute
			p.Epochs.PastEpochMaxAge = time.Minute
		}, "Delivery.CiphertextRetention"},
		{"retention store below one payload", func(p *Profile) { p.Delivery.RetentionBytes = 1 << 20 }, "Delivery.RetentionBytes"},
		{"catch-up batch zero", func(p *Profile) { p.Delivery.CatchUpBatch = 0 }, "Delivery.CatchUpBatch"},
		{"Commits never synced", func(p *Profile) { p.Delivery.CommitSyncInterval = 0 }, "Delivery.CommitSyncInterval"},

		{"tick 1ms", func(p *Profile) { p.Consensus.TickInterval = time.Millisecond }, "Consensus.TickInterval"},
		{"tick a minute", func(p *Profile) { p.Consensus.TickInterval = time.Minute }, "Consensus.TickInterval"},
		{"timeout one tick", func(p *Profile) { p.Consensus.TimeoutTicks = 1 }, "Consensus.TimeoutTicks"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Default()
			tc.modify(&p)
			err := p.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, want ErrInvalid", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, want a *FieldError", err)
			}
			if !strings.Contains(err.Error(), "profile: "+tc.field+": ") {
				t.Fatalf("Validate() = %q, want an error about %s", err, tc.field)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	p := Default()
	p.Name = ""
	p.KeyPackages.PoolSize = 0
	p.Consensus.TimeoutTicks = 0
	err := p.Validate()
	for _, field := range []string{"Name", "KeyPackages.PoolSize", "Consensus.TimeoutTicks"} {
		if !strings.Contains(err.Error(), "profile: "+field+": ") {
			t.Errorf("Validate() = %q lacks %s", err, field)
		}
	}
}

func TestZeroProfileIsInvalid(t *testing.T) {
	var p Profile
	if err := p.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("zero Profile: Validate() = %v", err)
	}
	if p.GroupCipherSuite() != 0 {
		t.Fatal("zero Profile has a group cipher suite")
	}
}
