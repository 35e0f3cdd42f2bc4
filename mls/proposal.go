package mls

import (
	"errors"
	"fmt"
)

// ProposalType identifies the kind of a Proposal (RFC 9420 §12.1).
type ProposalType uint16

// Proposal types of RFC 9420 §17.4.
const (
	ProposalTypeAdd                    ProposalType = 0x0001
	ProposalTypeUpdate                 ProposalType = 0x0002
	ProposalTypeRemove                 ProposalType = 0x0003
	ProposalTypePSK                    ProposalType = 0x0004
	ProposalTypeReInit                 ProposalType = 0x0005
	ProposalTypeExternalInit           ProposalType = 0x0006
	ProposalTypeGroupContextExtensions ProposalType = 0x0007
)

func (t ProposalType) String() string {
	switch t {
	case ProposalTypeAdd:
		return "add"
	case ProposalTypeUpdate:
		return "update"
	case ProposalTypeRemove:
		return "remove"
	case ProposalTypePSK:
		return "psk"
	case ProposalTypeReInit:
		return "reinit"
	case ProposalTypeExternalInit:
		return "external_init"
	case ProposalTypeGroupContextExtensions:
		return "group_context_extensions"
	}
	return fmt.Sprintf("ProposalType(%#04x)", uint16(t))
}

// ErrUnknownProposalType reports a proposal of a type this package cannot
// parse. A proposal body carries no length prefix, so an unknown proposal
// cannot be skipped; RFC 9420 §12.1 lets it be rejected.
var ErrUnknownProposalType = errors.New("mls: unknown proposal type")

// PSKType says where a pre-shared key comes from (RFC 9420 §8.4).
type PSKType uint8

// PSK types.
const (
	PSKTypeExternal   PSKType = 1
	PSKTypeResumption PSKType = 2
)

// ResumptionPSKUsage says why a resumption PSK is used (RFC 9420 §8.4).
type ResumptionPSKUsage uint8

// Resumption PSK usages.
const (
	ResumptionPSKUsageApplication ResumptionPSKUsage = 1
	ResumptionPSKUsageReInit      ResumptionPSKUsage = 2
	ResumptionPSKUsageBranch      ResumptionPSKUsage = 3
)

// PreSharedKeyID names a PSK and carries its nonce (RFC 9420 §8.4). PSKID is
// used by external PSKs; Usage, PSKGroupID and PSKEpoch by resumption PSKs.
type PreSharedKeyID struct {
	Type       PSKType
	PSKID      []byte
	Usage      ResumptionPSKUsage
	PSKGroupID []byte
	PSKEpoch   uint64
	PSKNonce   []byte
}

func (x *PreSharedKeyID) marshal(e *Encoder) {
	e.Uint8(uint8(x.Type))
	switch x.Type {
	case PSKTypeExternal:
		e.Opaque(x.PSKID)
	case PSKTypeResumption:
		e.Uint8(uint8(x.Usage))
		e.Opaque(x.PSKGroupID)
		e.Uint64(x.PSKEpoch)
	default:
		e.Fail(fmt.Errorf("%w: psk type %d", ErrInvalidValue, x.Type))
	}
	e.Opaque(x.PSKNonce)
}

func (x *PreSharedKeyID) unmarshal(d *Decoder) {
	*x = PreSharedKeyID{Type: PSKType(d.Uint8())}
	switch x.Type {
	case PSKTypeExternal:
		x.PSKID = d.Opaque()
	case PSKTypeResumption:
		x.Usage = ResumptionPSKUsage(d.Uint8())
		if d.Err() == nil && (x.Usage < ResumptionPSKUsageApplication || x.Usage > ResumptionPSKUsageBranch) {
			d.Fail(fmt.Errorf("%w: resumption psk usage %d", ErrInvalidValue, x.Usage))
		}
		x.PSKGroupID = d.Opaque()
		x.PSKEpoch = d.Uint64()
	default:
		if d.Err() == nil {
			d.Fail(fmt.Errorf("%w: psk type %d", ErrInvalidValue, x.Type))
		}
	}
	x.PSKNonce = d.Opaque()
}

// Marshal encodes the PSK ID.
func (x *PreSharedKeyID) Marshal() ([]byte, error) { return encode(x) }

// Unmarshal decodes a PSK ID; trailing bytes are an error.
func (x *PreSharedKeyID) Unmarshal(b []byte) error { return decodeAll(b, x) }

// ReInit proposes to restart the group with new parameters (RFC 9420
// §12.1.5).
type ReInit struct {
	GroupID     []byte
	Version     ProtocolVersion
	CipherSuite CipherSuite
	Extensions  Extensions
}

// Proposal is a proposed change to the group (RFC 9420 §12.1). The field
// that matches Type carries the body:
//
//	Add: KeyPackage; Update: LeafNode; Remove: Removed; PSK: PSK;
//	ReInit: ReInit; ExternalInit: KEMOutput; GroupContextExtensions: Extensions.
type Proposal struct {
	Type       ProposalType
	KeyPackage *KeyPackage
	LeafNode   *LeafNode
	Removed    LeafIndex
	PSK        *PreSharedKeyID
	ReInit     *ReInit
	KEMOutput  []byte
	Extensions Extensions
}

func (x *Proposal) marshal(e *Encoder) {
	e.Uint16(uint16(x.Type))
	switch x.Type {
	case ProposalTypeAdd:
		if x.KeyPackage == nil {
			e.Fail(fmt.Errorf("%w: add proposal without key package", ErrEncoding))
			return
		}
		x.KeyPackage.marshal(e)
	case ProposalTypeUpdate:
		if x.LeafNode == nil {
			e.Fail(fmt.Errorf("%w: update proposal without leaf node", ErrEncoding))
			return
		}
		x.LeafNode.marshal(e)
	case ProposalTypeRemove:
		e.Uint32(uint32(x.Removed))
	case ProposalTypePSK:
		if x.PSK == nil {
			e.Fail(fmt.Errorf("%w: psk proposal without psk id", ErrEncoding))
			return
		}
		x.PSK.marshal(e)
	case ProposalTypeReInit:
		if x.ReInit == nil {
			e.Fail(fmt.Errorf("%w: reinit proposal without parameters", ErrEncoding))
			return
		}
		e.Opaque(x.ReInit.GroupID)
		e.Uint16(uint16(x.ReInit.Version))
		e.Uint16(uint16(x.ReInit.CipherSuite))
		x.ReInit.Extensions.marshal(e)
	case ProposalTypeExternalInit:
		e.Opaque(x.KEMOutput)
	case ProposalTypeGroupContextExtensions:
		x.Extensions.marshal(e)
	default:
		e.Fail(fmt.Errorf("%w: %#04x", ErrUnknownProposalType, uint16(x.Type)))
	}
}

func (x *Proposal) unmarshal(d *Decoder) {
	*x = Proposal{Type: ProposalType(d.Uint16())}
	if d.Err() != nil {
		return
	}
	switch x.Type {
	case ProposalTypeAdd:
		x.KeyPackage = new(KeyPackage)
		x.KeyPackage.unmarshal(d)
	case ProposalTypeUpdate:
		x.LeafNode = new(LeafNode)
		x.LeafNode.unmarshal(d)
	case ProposalTypeRemove:
		x.Removed = LeafIndex(d.Uint32())
	case ProposalTypePSK:
		x.PSK = new(PreSharedKeyID)
		x.PSK.unmarshal(d)
	case ProposalTypeReInit:
		x.ReInit = &ReInit{
			GroupID:     d.Opaque(),
			Version:     ProtocolVersion(d.Uint16()),
			CipherSuite: CipherSuite(d.Uint16()),
		}
		x.ReInit.Extensions.unmarshal(d)
	case ProposalTypeExternalInit:
		x.KEMOutput = d.Opaque()
	case ProposalTypeGroupContextExtensions:
		x.Extensions.unmarshal(d)
	default:
		d.Fail(fmt.Errorf("%w: %#04x", ErrUnknownProposalType, uint16(x.Type)))
	}
}

// Marshal encodes the proposal.
func (x *Proposal) Marshal() ([]byte, error) { return encode(x) }

// Unmarshal decodes a proposal; trailing bytes are an error.
func (x *Proposal) Unmarshal(b []byte) error { return decodeAll(b, x) }

// ProposalRef identifies a proposal by the hash of the AuthenticatedContent
// that carried it (RFC 9420 §5.2).
type ProposalRef []byte

// MakeProposalRef returns RefHash("MLS 1.0 Proposal Reference",
// authenticatedContent), where authenticatedContent is the encoded
// AuthenticatedContent that carried the proposal.
func (cs CipherSuite) MakeProposalRef(authenticatedContent []byte) ProposalRef {
	return cs.RefHash("MLS 1.0 Proposal Reference", authenticatedContent)
}

// ProposalOrRefType says whether a commit carries a proposal inline or by
// reference.
type ProposalOrRefType uint8

// ProposalOrRef types (RFC 9420 §12.4).
const (
	ProposalOrRefTypeProposal  ProposalOrRefType = 1
	ProposalOrRefTypeReference ProposalOrRefType = 2
)

// ProposalOrRef is one entry of a Commit's proposal list: exactly one of
// Proposal and Reference is set.
type ProposalOrRef struct {
	Proposal  *Proposal
	Reference ProposalRef
}

func (x *ProposalOrRef) marshal(e *Encoder) {
	if (x.Proposal == nil) == (x.Reference == nil) {
		e.Fail(fmt.Errorf("%w: proposal-or-ref must hold exactly one of proposal and reference", ErrEncoding))
		return
	}
	if x.Proposal != nil {
		e.Uint8(uint8(ProposalOrRefTypeProposal))
		x.Proposal.marshal(e)
		return
	}
	e.Uint8(uint8(ProposalOrRefTypeReference))
	e.Opaque(x.Reference)
}

func (x *ProposalOrRef) unmarshal(d *Decoder) {
	*x = ProposalOrRef{}
	switch t := ProposalOrRefType(d.Uint8()); t {
	case ProposalOrRefTypeProposal:
		x.Proposal = new(Proposal)
		x.Proposal.unmarshal(d)
	case ProposalOrRefTypeReference:
		x.Reference = d.Opaque()
	default:
		if d.Err() == nil {
			d.Fail(fmt.Errorf("%w: proposal-or-ref type %d", ErrInvalidValue, t))
		}
	}
}
