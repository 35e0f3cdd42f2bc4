// Package interop serves the MLS working group's interoperability protocol
// (the MLSClient gRPC service of mls_client.proto) on top of Conclave's mls
// package, and drives the working group's test scenarios against one or
// more such servers.
//
// A Service holds the client-side objects the test runner refers to by
// number: group states, pending joins (KeyPackages waiting for a Welcome),
// groups waiting to be reinitialized, and external signers. All numbers come
// from one counter, so StorePSK can tell a state from a transaction.
package interop

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conclave-im/conclave/internal/interop/mlsclientpb"
	"github.com/conclave-im/conclave/mls"
)

// Name is the implementation name the service reports.
const Name = "Conclave"

// epochRetention is how many past epochs a state keeps: enough for the
// scenarios' resumption PSKs of older epochs and for application messages
// delayed across Commits.
const epochRetention = 8

// supportedSuites are the cipher suites served, in the order reported.
var supportedSuites = []mls.CipherSuite{
	mls.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
	mls.MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
	mls.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
	mls.MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448,
	mls.MLS_256_DHKEMP521_AES256GCM_SHA512_P521,
	mls.MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448,
	mls.MLS_256_DHKEMP384_AES256GCM_SHA384_P384,
}

// groupState is one member's state of a group.
type groupState struct {
	group    *mls.Group
	identity mls.Identity
	encrypt  bool
	// sent are the digests of the proposals this member sent: the runner
	// hands a member its own proposals back, and a member cannot process
	// its own PrivateMessage (the key is used up) nor needs to.
	sent map[[32]byte]bool
}

// transaction is a KeyPackage waiting for a Welcome.
type transaction struct {
	bundle *mls.KeyPackageBundle
	psks   []mls.ExternalPSK
}

// reinitState is a member of a group whose ReInit was committed, with the
// KeyPackage it offers for the new group.
type reinitState struct {
	old      *groupState
	bundle   *mls.KeyPackageBundle
	identity mls.Identity
}

// externalSigner is an external sender's signing key.
type externalSigner struct {
	suite  mls.CipherSuite
	signer *mls.Signer
}

// Service implements the MLSClient gRPC service. It is safe for concurrent
// use; calls are serialized.
type Service struct {
	mlsclientpb.UnimplementedMLSClientServer

	cfg *mls.Config

	mu      sync.Mutex
	next    uint32
	states  map[uint32]*groupState
	txs     map[uint32]*transaction
	reinits map[uint32]*reinitState
	signers map[uint32]*externalSigner
}

// NewService returns an empty service. cfg supplies randomness and time to
// the mls package (nil: crypto/rand and time.Now).
func NewService(cfg *mls.Config) *Service {
	if cfg == nil {
		cfg = &mls.Config{}
	}
	return &Service{
		cfg:     cfg,
		states:  map[uint32]*groupState{},
		txs:     map[uint32]*transaction{},
		reinits: map[uint32]*reinitState{},
		signers: map[uint32]*externalSigner{},
	}
}

func (s *Service) groupOptions() mls.GroupOptions {
	// Other implementations issue KeyPackages valid for [0, 2^64-1].
	return mls.GroupOptions{Config: s.cfg, EpochRetention: epochRetention, UnboundedLifetimes: true}
}

func (s *Service) newID() uint32 {
	s.next++
	return s.next
}

// Errors are gRPC statuses: NotFound for an unknown id, InvalidArgument for
// input that does not decode or an unsupported cipher suite, and
// FailedPrecondition when the mls package rejects the operation.
func notFound(kind string, id uint32) error {
	return status.Errorf(codes.NotFound, "interop: unknown %s %d", kind, id)
}

func badInput(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, "interop: "+format, args...)
}

func rejected(op string, err error) error {
	return status.Errorf(codes.FailedPrecondition, "interop: %s: %v", op, err)
}

// suite checks a cipher suite number from a request. An unsupported suite is
// answered with InvalidArgument, as the runner only schedules the suites a
// client lists in SupportedCiphersuites.
func suite(n uint32) (mls.CipherSuite, error) {
	cs := mls.CipherSuite(n)
	if n > 0xffff || !cs.Supported() {
		return 0, status.Errorf(codes.InvalidArgument, "interop: unsupported cipher suite %d", n)
	}
	return cs, nil
}

func (s *Service) newIdentity(cs mls.CipherSuite, name []byte) (mls.Identity, error) {
	priv, _, err := cs.GenerateSignatureKeyPair(s.cfg.Random())
	if err != nil {
		return mls.Identity{}, status.Errorf(codes.Internal, "interop: signature key: %v", err)
	}
	return mls.Identity{SignaturePrivateKey: priv, Credential: mls.NewBasicCredential(append([]byte(nil), name...))}, nil
}

func (s *Service) state(id uint32) (*groupState, error) {
	st, ok := s.states[id]
	if !ok {
		return nil, notFound("state", id)
	}
	return st, nil
}

// onState runs f on the state id names, under the service lock: the
// preamble of every RPC that works on one group state.
func onState[T any](s *Service, id uint32, f func(st *groupState) (T, error)) (T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(id)
	if err != nil {
		var zero T
		return zero, err
	}
	return f(st)
}

func (s *Service) addState(st *groupState) uint32 {
	id := s.newID()
	s.states[id] = st
	return id
}

func newGroupState(g *mls.Group, id mls.Identity, encrypt bool) *groupState {
	return &groupState{group: g, identity: id, encrypt: encrypt, sent: map[[32]byte]bool{}}
}

func (st *groupState) sendOptions() *mls.SendOptions {
	return &mls.SendOptions{Encrypt: st.encrypt}
}

func marshalMessage(m *mls.MLSMessage) ([]byte, error) {
	b, err := m.Marshal()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "interop: encoding message: %v", err)
	}
	return b, nil
}

// propose marshals an own proposal and remembers it as sent.
func (st *groupState) propose(m *mls.MLSMessage, err error) (*mlsclientpb.ProposalResponse, error) {
	if err != nil {
		return nil, rejected("proposal", err)
	}
	b, err := marshalMessage(m)
	if err != nil {
		return nil, err
	}
	st.sent[sha256.Sum256(b)] = true
	return &mlsclientpb.ProposalResponse{Proposal: b}, nil
}

// processProposals processes proposals received from others, skipping the
// member's own.
func (st *groupState) processProposals(proposals [][]byte) error {
	for i, p := range proposals {
		if st.sent[sha256.Sum256(p)] {
			continue
		}
		r, err := st.group.ProcessBytes(p)
		if err != nil {
			return rejected(fmt.Sprintf("proposal %d", i), err)
		}
		if r.Kind != mls.ReceivedProposal {
			return badInput("proposal %d is a %v message", i, r.Kind)
		}
	}
	return nil
}

// decodeKeyPackage accepts a KeyPackage framed as an MLSMessage (what
// CreateKeyPackage returns, as other implementations do) or bare.
func decodeKeyPackage(b []byte) (*mls.KeyPackage, error) {
	var m mls.MLSMessage
	if err := m.Unmarshal(b); err == nil {
		if m.KeyPackage == nil {
			return nil, badInput("message is a %v, not a key package", m.WireFormat)
		}
		return m.KeyPackage, nil
	}
	var kp mls.KeyPackage
	if err := kp.Unmarshal(b); err != nil {
		return nil, badInput("key package: %v", err)
	}
	return &kp, nil
}

func decodeKeyPackages(list [][]byte) ([]*mls.KeyPackage, error) {
	out := make([]*mls.KeyPackage, len(list))
	for i, b := range list {
		kp, err := decodeKeyPackage(b)
		if err != nil {
			return nil, err
		}
		out[i] = kp
	}
	return out, nil
}

func decodeWelcome(b []byte) (*mls.Welcome, error) {
	var m mls.MLSMessage
	if err := m.Unmarshal(b); err != nil {
		return nil, badInput("welcome: %v", err)
	}
	if m.Welcome == nil {
		return nil, badInput("message is a %v, not a welcome", m.WireFormat)
	}
	return m.Welcome, nil
}

func decodeGroupInfo(b []byte) (*mls.GroupInfo, error) {
	var m mls.MLSMessage
	if err := m.Unmarshal(b); err != nil {
		return nil, badInput("group info: %v", err)
	}
	if m.GroupInfo == nil {
		return nil, badInput("message is a %v, not a group info", m.WireFormat)
	}
	return m.GroupInfo, nil
}

// decodeTree decodes an out-of-band ratchet tree; empty means none.
func decodeTree(b []byte) (mls.TreeNodes, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var t mls.TreeNodes
	if err := t.Unmarshal(b); err != nil {
		return nil, badInput("ratchet tree: %v", err)
	}
	return t, nil
}

func decodeExtensions(list []*mlsclientpb.Extension) (mls.Extensions, error) {
	out := make(mls.Extensions, 0, len(list))
	for _, e := range list {
		if e.GetExtensionType() > 0xffff {
			return nil, badInput("extension type %d out of range", e.GetExtensionType())
		}
		out = append(out, mls.Extension{Type: mls.ExtensionType(e.GetExtensionType()), Data: append([]byte{}, e.GetExtensionData()...)})
	}
	return out, nil
}

// leafOf finds the member whose basic credential carries identity.
func leafOf(members []mls.Member, identity []byte) (mls.LeafIndex, error) {
	for _, m := range members {
		if string(m.Credential.Identity) == string(identity) {
			return m.Leaf, nil
		}
	}
	return 0, badInput("no member with identity %q", identity)
}

// treeMembers lists the members of a ratchet tree in wire form.
func treeMembers(cs mls.CipherSuite, nodes mls.TreeNodes) ([]mls.Member, error) {
	t, err := mls.NewRatchetTreeFromNodes(cs, nodes)
	if err != nil {
		return nil, badInput("ratchet tree: %v", err)
	}
	var out []mls.Member
	for l, ln := range t.Members() {
		out = append(out, mls.Member{Leaf: l, Credential: ln.Credential, SignatureKey: ln.SignatureKey, EncryptionKey: ln.EncryptionKey})
	}
	return out, nil
}

// groupInfoTree returns the ratchet tree of a GroupInfo: the one given out
// of band, else its ratchet_tree extension.
func groupInfoTree(gi *mls.GroupInfo, outOfBand []byte) (mls.TreeNodes, error) {
	if len(outOfBand) > 0 {
		return decodeTree(outOfBand)
	}
	ext, ok := gi.Extensions.Find(mls.ExtensionTypeRatchetTree)
	if !ok {
		return nil, badInput("group info carries no ratchet tree and none was given")
	}
	return decodeTree(ext.Data)
}

func (s *Service) pskNonce(cs mls.CipherSuite) ([]byte, error) {
	nonce := make([]byte, cs.HashSize())
	if _, err := s.cfg.Random().Read(nonce); err != nil {
		return nil, status.Errorf(codes.Internal, "interop: randomness: %v", err)
	}
	return nonce, nil
}

// Name reports the implementation name.
func (s *Service) Name(context.Context, *mlsclientpb.NameRequest) (*mlsclientpb.NameResponse, error) {
	return &mlsclientpb.NameResponse{Name: Name}, nil
}

// SupportedCiphersuites lists the suites of RFC 9420 §17.1, all implemented.
func (s *Service) SupportedCiphersuites(context.Context, *mlsclientpb.SupportedCiphersuitesRequest) (*mlsclientpb.SupportedCiphersuitesResponse, error) {
	out := make([]uint32, len(supportedSuites))
	for i, cs := range supportedSuites {
		out[i] = uint32(cs)
	}
	return &mlsclientpb.SupportedCiphersuitesResponse{Ciphersuites: out}, nil
}

// CreateGroup creates a one-member group.
func (s *Service) CreateGroup(_ context.Context, req *mlsclientpb.CreateGroupRequest) (*mlsclientpb.CreateGroupResponse, error) {
	cs, err := suite(req.GetCipherSuite())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.newIdentity(cs, req.GetIdentity())
	if err != nil {
		return nil, err
	}
	g, err := mls.NewGroup(s.groupOptions(), cs, req.GetGroupId(), id, nil)
	if err != nil {
		return nil, rejected("create group", err)
	}
	return &mlsclientpb.CreateGroupResponse{StateId: s.addState(newGroupState(g, id, req.GetEncryptHandshake()))}, nil
}

// CreateKeyPackage creates a KeyPackage and keeps its private keys until
// JoinGroup or HandleBranch uses it.
func (s *Service) CreateKeyPackage(_ context.Context, req *mlsclientpb.CreateKeyPackageRequest) (*mlsclientpb.CreateKeyPackageResponse, error) {
	cs, err := suite(req.GetCipherSuite())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.newIdentity(cs, req.GetIdentity())
	if err != nil {
		return nil, err
	}
	kpb, err := mls.NewKeyPackage(s.cfg, cs, id, nil)
	if err != nil {
		return nil, rejected("key package", err)
	}
	b, err := marshalMessage(mls.NewKeyPackageMessage(kpb.KeyPackage))
	if err != nil {
		return nil, err
	}
	txID := s.newID()
	s.txs[txID] = &transaction{bundle: kpb}
	return &mlsclientpb.CreateKeyPackageResponse{
		TransactionId:  txID,
		KeyPackage:     b,
		InitPriv:       kpb.InitPrivateKey,
		EncryptionPriv: kpb.EncryptionPrivateKey,
		SignaturePriv:  kpb.SignaturePrivateKey,
	}, nil
}

// JoinGroup joins from a Welcome with the KeyPackage of a transaction.
func (s *Service) JoinGroup(_ context.Context, req *mlsclientpb.JoinGroupRequest) (*mlsclientpb.JoinGroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, ok := s.txs[req.GetTransactionId()]
	if !ok {
		return nil, notFound("transaction", req.GetTransactionId())
	}
	w, err := decodeWelcome(req.GetWelcome())
	if err != nil {
		return nil, err
	}
	tree, err := decodeTree(req.GetRatchetTree())
	if err != nil {
		return nil, err
	}
	g, err := mls.JoinFromWelcome(mls.JoinOptions{GroupOptions: s.groupOptions(), RatchetTree: tree, ExternalPSKs: tx.psks}, w, tx.bundle)
	if err != nil {
		return nil, rejected("join", err)
	}
	id := mls.Identity{SignaturePrivateKey: tx.bundle.SignaturePrivateKey, Credential: tx.bundle.KeyPackage.LeafNode.Credential}
	delete(s.txs, req.GetTransactionId())
	stateID := s.addState(newGroupState(g, id, req.GetEncryptHandshake()))
	return &mlsclientpb.JoinGroupResponse{StateId: stateID, EpochAuthenticator: g.EpochAuthenticator()}, nil
}

// ExternalJoin joins through an external Commit.
func (s *Service) ExternalJoin(_ context.Context, req *mlsclientpb.ExternalJoinRequest) (*mlsclientpb.ExternalJoinResponse, error) {
	gi, err := decodeGroupInfo(req.GetGroupInfo())
	if err != nil {
		return nil, err
	}
	cs, err := suite(uint32(gi.GroupContext.CipherSuite))
	if err != nil {
		return nil, err
	}
	tree, err := decodeTree(req.GetRatchetTree())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.newIdentity(cs, req.GetIdentity())
	if err != nil {
		return nil, err
	}
	opts := mls.ExternalJoinOptions{JoinOptions: mls.JoinOptions{GroupOptions: s.groupOptions(), RatchetTree: tree}}
	if req.GetRemovePrior() {
		nodes, err := groupInfoTree(gi, req.GetRatchetTree())
		if err != nil {
			return nil, err
		}
		members, err := treeMembers(cs, nodes)
		if err != nil {
			return nil, err
		}
		prior, err := leafOf(members, req.GetIdentity())
		if err != nil {
			return nil, err
		}
		opts.Resync = &prior
	}
	for _, p := range req.GetPsks() {
		opts.ExternalPSKs = append(opts.ExternalPSKs, mls.ExternalPSK{ID: p.GetPskId(), PSK: p.GetPskSecret()})
		opts.PSKs = append(opts.PSKs, mls.PreSharedKeyID{Type: mls.PSKTypeExternal, PSKID: p.GetPskId()})
	}
	g, commit, err := mls.JoinExternal(opts, gi, id)
	if err != nil {
		return nil, rejected("external join", err)
	}
	b, err := marshalMessage(commit)
	if err != nil {
		return nil, err
	}
	stateID := s.addState(newGroupState(g, id, req.GetEncryptHandshake()))
	return &mlsclientpb.ExternalJoinResponse{StateId: stateID, Commit: b, EpochAuthenticator: g.EpochAuthenticator()}, nil
}

// GroupInfo returns a signed GroupInfo of the current epoch, with the
// ratchet tree inside unless it is asked for separately.
func (s *Service) GroupInfo(_ context.Context, req *mlsclientpb.GroupInfoRequest) (*mlsclientpb.GroupInfoResponse, error) {
	return onState(s, req.GetStateId(), func(st *groupState) (*mlsclientpb.GroupInfoResponse, error) {
		gi, err := st.group.GroupInfo(!req.GetExternalTree())
		if err != nil {
			return nil, rejected("group info", err)
		}
		resp := &mlsclientpb.GroupInfoResponse{}
		if resp.GroupInfo, err = marshalMessage(gi); err != nil {
			return nil, err
		}
		if req.GetExternalTree() {
			if resp.RatchetTree, err = st.group.RatchetTree().Marshal(); err != nil {
				return nil, status.Errorf(codes.Internal, "interop: encoding tree: %v", err)
			}
		}
		return resp, nil
	})
}

// StateAuth returns the epoch authenticator.
func (s *Service) StateAuth(_ context.Context, req *mlsclientpb.StateAuthRequest) (*mlsclientpb.StateAuthResponse, error) {
	return onState(s, req.GetStateId(), func(st *groupState) (*mlsclientpb.StateAuthResponse, error) {
		return &mlsclientpb.StateAuthResponse{StateAuthSecret: st.group.EpochAuthenticator()}, nil
	})
}

// Export derives an exported secret.
func (s *Service) Export(_ context.Context, req *mlsclientpb.ExportRequest) (*mlsclientpb.ExportResponse, error) {
	return onState(s, req.GetStateId(), func(st *groupState) (*mlsclientpb.ExportResponse, error) {
		if req.GetKeyLength() > 0xffff {
			return nil, badInput("key length %d out of range", req.GetKeyLength())
		}
		out, err := st.group.Export(req.GetLabel(), req.GetContext(), int(req.GetKeyLength()))
		if err != nil {
			return nil, rejected("export", err)
		}
		return &mlsclientpb.ExportResponse{ExportedSecret: out}, nil
	})
}

// Protect encrypts application data.
func (s *Service) Protect(_ context.Context, req *mlsclientpb.ProtectRequest) (*mlsclientpb.ProtectResponse, error) {
	return onState(s, req.GetStateId(), func(st *groupState) (*mlsclientpb.ProtectResponse, error) {
		m, err := st.group.EncryptApplication(req.GetPlaintext(), req.GetAuthenticatedData())
		if err != nil {
			return nil, rejected("protect", err)
		}
		b, err := marshalMessage(m)
		if err != nil {
			return nil, err
		}
		return &mlsclientpb.ProtectResponse{Ciphertext: b}, nil
	})
}

// Unprotect decrypts application data of the current or a retained epoch.
func (s *Service) Unprotect(_ context.Context, req *mlsclientpb.UnprotectRequest) (*mlsclientpb.UnprotectResponse, error) {
	return onState(s, req.GetStateId(), func(st *groupState) (*mlsclientpb.UnprotectResponse, error) {
		r, err := st.group.ProcessBytes(req.GetCiphertext())
		if err != nil {
			return nil, rejected("unprotect", err)
		}
		if r.Kind != mls.ReceivedApplication {
			return nil, badInput("message is a %v, not application data", r.Kind)
		}
		return &mlsclientpb.UnprotectResponse{AuthenticatedData: r.AuthenticatedData, Plaintext: r.ApplicationData}, nil
	})
}

// StorePSK stores an external PSK in a state or in a pending join.
func (s *Service) StorePSK(_ context.Context, req *mlsclientpb.StorePSKRequest) (*mlsclientpb.StorePSKResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := req.GetStateOrTransactionId()
	if st, ok := s.states[id]; ok {
		st.group.SetExternalPSK(req.GetPskId(), req.GetPskSecret())
		return &mlsclientpb.StorePSKResponse{}, nil
	}
	if tx, ok := s.txs[id]; ok {
		tx.psks = append(tx.psks, mls.ExternalPSK{ID: append([]byte(nil), req.GetPskId()...), PSK: append([]byte(nil), req.GetPskSecret()...)})
		return &mlsclientpb.StorePSKResponse{}, nil
	}
	return nil, notFound("state or transaction", id)
}

// AddProposal proposes adding the client of a KeyPackage.
func (s *Service) AddProposal(_ context.Context, req *mlsclientpb.AddProposalRequest) (*mlsclientpb.ProposalResponse, error) {
	return onState(s, req.GetStateId(), func(st *groupState) (*mlsclientpb.ProposalResponse, error) {
		kp, err := decodeKeyPackage(req.GetKeyPackage())
		if err != nil {
			return nil, err
		}
		return st.propose(st.group.ProposeAdd(kp, st.sendOptions()))
	})
}

// UpdateProposal proposes a fresh leaf for the member.
func (s *Service) UpdateProposal(_ context.Context, req *mlsclientpb.UpdateProposalRequest) (*mlsclientpb.ProposalResponse, error) {
	return onState(s, req.GetStateId(), func(st *groupState) (*mlsclientpb.ProposalResponse, error) {
		return st.propose(st.group.ProposeUpdate(st.sendOptions()))
	})
}

// RemoveProposal proposes removing the member with the given identity.
func (s *Service) RemoveProposal(_ context.Context, req *mlsclientpb.RemoveProposalRequest) (*mlsclientpb.ProposalResponse, error) {
	return onState(s, req.GetStateId(), func(st *groupState) (*mlsclientpb.ProposalResponse, error) {
		leaf, err := leafOf(st.group.Members(), req.GetRemovedId())
		if err != nil {
			return nil, err
		}
		return st.propose(st.group.ProposeRemove(leaf, st.sendOptions()))
	})
}

// ExternalPSKProposal proposes injecting a stored external PSK.
func (s *Service) ExternalPSKProposal(_ context.Context, req *mlsclientpb.ExternalPSKProposalRequest) (*mlsclientpb.ProposalResponse, error) {
	return onState(s, req.GetStateId(), func(st *groupState) (*mlsclientpb.ProposalResponse, error) {
		return st.propose(st.group.ProposeExternalPSK(req.GetPskId(), st.sendOptions()))
	})
}

// ResumptionPSKProposal proposes injecting the resumption PSK of an epoch.
func (s *Service) ResumptionPSKProposal(_ context.Context, req *mlsclientpb.ResumptionPSKProposalRequest) (*mlsclientpb.ProposalResponse, error) {
	return onState(s, req.GetStateId(), func(st *groupState) (*mlsclientpb.ProposalResponse, error) {
		return st.propose(st.group.ProposeResumptionPSK(req.GetEpochId(), st.sendOptions()))
	})
}

// GroupContextExtensionsProposal proposes new group context extensions.
func (s *Service) GroupContextExtensionsProposal(_ context.Context, req *mlsclientpb.GroupContextExtensionsProposalRequest) (*mlsclientpb.ProposalResponse, error) {
	return onState(s, req.GetStateId(), func(st *groupState) (*mlsclientpb.ProposalResponse, error) {
		exts, err := decodeExtensions(req.GetExtensions())
		if err != nil {
			return nil, err
		}
		return st.propose(st.group.ProposeGroupContextExtensions(exts, st.sendOptions()))
	})
}

// ReInitProposal proposes reinitializing the group.
func (s *Service) ReInitProposal(_ context.Context, req *mlsclientpb.ReInitProposalRequest) (*mlsclientpb.ProposalResponse, error) {
	cs, err := suite(req.GetCipherSuite())
	if err != nil {
		return nil, err
	}
	exts, err := decodeExtensions(req.GetExtensions())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	r := mls.ReInit{GroupID: req.GetGroupId(), Version: mls.ProtocolVersionMLS10, CipherSuite: cs, Extensions: exts}
	return st.propose(st.group.ProposeReInit(r, st.sendOptions()))
}

// proposalFromDescription builds a by-value or external proposal. members
// resolves a removed identity; group is the group's ID and suite.
func (s *Service) proposalFromDescription(d *mlsclientpb.ProposalDescription, cs mls.CipherSuite, groupID []byte, members func() ([]mls.Member, error)) (mls.Proposal, error) {
	if d == nil {
		return mls.Proposal{}, badInput("missing proposal description")
	}
	switch string(d.GetProposalType()) {
	case "add":
		kp, err := decodeKeyPackage(d.GetKeyPackage())
		if err != nil {
			return mls.Proposal{}, err
		}
		return mls.Proposal{Type: mls.ProposalTypeAdd, KeyPackage: kp}, nil
	case "remove":
		ms, err := members()
		if err != nil {
			return mls.Proposal{}, err
		}
		leaf, err := leafOf(ms, d.GetRemovedId())
		if err != nil {
			return mls.Proposal{}, err
		}
		return mls.Proposal{Type: mls.ProposalTypeRemove, Removed: leaf}, nil
	case "externalPSK":
		nonce, err := s.pskNonce(cs)
		if err != nil {
			return mls.Proposal{}, err
		}
		psk := &mls.PreSharedKeyID{Type: mls.PSKTypeExternal, PSKID: d.GetPskId(), PSKNonce: nonce}
		return mls.Proposal{Type: mls.ProposalTypePSK, PSK: psk}, nil
	case "resumptionPSK":
		nonce, err := s.pskNonce(cs)
		if err != nil {
			return mls.Proposal{}, err
		}
		psk := &mls.PreSharedKeyID{Type: mls.PSKTypeResumption, Usage: mls.ResumptionPSKUsageApplication,
			PSKGroupID: append([]byte(nil), groupID...), PSKEpoch: d.GetEpochId(), PSKNonce: nonce}
		return mls.Proposal{Type: mls.ProposalTypePSK, PSK: psk}, nil
	case "groupContextExtensions":
		exts, err := decodeExtensions(d.GetExtensions())
		if err != nil {
			return mls.Proposal{}, err
		}
		return mls.Proposal{Type: mls.ProposalTypeGroupContextExtensions, Extensions: exts}, nil
	case "reinit":
		newSuite, err := suite(d.GetCipherSuite())
		if err != nil {
			return mls.Proposal{}, err
		}
		exts, err := decodeExtensions(d.GetExtensions())
		if err != nil {
			return mls.Proposal{}, err
		}
		r := &mls.ReInit{GroupID: d.GetGroupId(), Version: mls.ProtocolVersionMLS10, CipherSuite: newSuite, Extensions: exts}
		return mls.Proposal{Type: mls.ProposalTypeReInit, ReInit: r}, nil
	}
	return mls.Proposal{}, badInput("unknown proposal type %q", d.GetProposalType())
}

// commit creates an own Commit: the proposals by reference are processed
// first (the member's own are already cached), those by value are carried
// in the Commit.
func (s *Service) commit(req *mlsclientpb.CommitRequest) (*mlsclientpb.CommitResponse, error) {
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	if err := st.processProposals(req.GetByReference()); err != nil {
		return nil, err
	}
	g := st.group
	members := func() ([]mls.Member, error) { return g.Members(), nil }
	byValue := make([]mls.Proposal, 0, len(req.GetByValue()))
	for _, d := range req.GetByValue() {
		p, err := s.proposalFromDescription(d, g.CipherSuite(), g.GroupID(), members)
		if err != nil {
			return nil, err
		}
		byValue = append(byValue, p)
	}
	pc, err := g.Commit(&mls.CommitOptions{
		SendOptions:   *st.sendOptions(),
		Proposals:     byValue,
		NoPath:        !req.GetForcePath(),
		OutOfBandTree: req.GetExternalTree(),
	})
	if err != nil {
		return nil, rejected("commit", err)
	}
	resp := &mlsclientpb.CommitResponse{}
	if resp.Commit, err = marshalMessage(pc.Commit); err != nil {
		return nil, err
	}
	if pc.Welcome != nil {
		if resp.Welcome, err = marshalMessage(pc.Welcome); err != nil {
			return nil, err
		}
	}
	if req.GetExternalTree() {
		// The tree of the epoch the Commit starts, as the joiners need it.
		gi, err := pc.GroupInfo(true)
		if err != nil {
			return nil, rejected("commit tree", err)
		}
		ext, ok := gi.GroupInfo.Extensions.Find(mls.ExtensionTypeRatchetTree)
		if !ok {
			return nil, status.Errorf(codes.Internal, "interop: group info of the commit lacks the ratchet tree")
		}
		resp.RatchetTree = ext.Data
	}
	return resp, nil
}

// Commit creates a Commit and keeps it pending.
func (s *Service) Commit(_ context.Context, req *mlsclientpb.CommitRequest) (*mlsclientpb.CommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commit(req)
}

// handleCommit processes a Commit of another member (after its proposals)
// and merges it.
func (s *Service) handleCommit(req *mlsclientpb.HandleCommitRequest) (*groupState, *mls.MergeResult, error) {
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, nil, err
	}
	if err := st.processProposals(req.GetProposal()); err != nil {
		return nil, nil, err
	}
	r, err := st.group.ProcessBytes(req.GetCommit())
	if err != nil {
		return nil, nil, rejected("commit", err)
	}
	if r.Kind != mls.ReceivedCommit {
		return nil, nil, badInput("message is a %v, not a commit", r.Kind)
	}
	res, err := st.group.Merge(r.Commit)
	if err != nil {
		return nil, nil, rejected("merge", err)
	}
	return st, res, nil
}

// HandleCommit applies a Commit of another member. The state keeps its id.
func (s *Service) HandleCommit(_ context.Context, req *mlsclientpb.HandleCommitRequest) (*mlsclientpb.HandleCommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, res, err := s.handleCommit(req)
	if err != nil {
		return nil, err
	}
	resp := &mlsclientpb.HandleCommitResponse{StateId: req.GetStateId()}
	if !res.Removed {
		resp.EpochAuthenticator = st.group.EpochAuthenticator()
	}
	return resp, nil
}

// handlePending merges the own pending Commit.
func (s *Service) handlePending(id uint32) (*groupState, *mls.MergeResult, error) {
	st, err := s.state(id)
	if err != nil {
		return nil, nil, err
	}
	pc := st.group.Pending()
	if pc == nil {
		return nil, nil, rejected("handle pending commit", mls.ErrNoPendingCommit)
	}
	res, err := st.group.Merge(pc.Staged())
	if err != nil {
		return nil, nil, rejected("merge", err)
	}
	return st, res, nil
}

// HandlePendingCommit applies the member's own pending Commit.
func (s *Service) HandlePendingCommit(_ context.Context, req *mlsclientpb.HandlePendingCommitRequest) (*mlsclientpb.HandleCommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, _, err := s.handlePending(req.GetStateId())
	if err != nil {
		return nil, err
	}
	return &mlsclientpb.HandleCommitResponse{StateId: req.GetStateId(), EpochAuthenticator: st.group.EpochAuthenticator()}, nil
}

// ReInitCommit commits a ReInit proposal (a Commit like any other).
func (s *Service) ReInitCommit(_ context.Context, req *mlsclientpb.CommitRequest) (*mlsclientpb.CommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commit(req)
}

// reinitialized records a group whose ReInit is committed, with a fresh
// signing identity and KeyPackage for the new suite.
func (s *Service) reinitialized(st *groupState, res *mls.MergeResult) (*mlsclientpb.HandleReInitCommitResponse, error) {
	if res.ReInit == nil {
		return nil, badInput("the commit does not reinitialize the group")
	}
	id, err := s.newIdentity(res.ReInit.CipherSuite, st.identity.Credential.Identity)
	if err != nil {
		return nil, err
	}
	kpb, err := mls.NewKeyPackage(s.cfg, res.ReInit.CipherSuite, id, nil)
	if err != nil {
		return nil, rejected("key package", err)
	}
	b, err := marshalMessage(mls.NewKeyPackageMessage(kpb.KeyPackage))
	if err != nil {
		return nil, err
	}
	reinitID := s.newID()
	s.reinits[reinitID] = &reinitState{old: st, bundle: kpb, identity: id}
	return &mlsclientpb.HandleReInitCommitResponse{ReinitId: reinitID, KeyPackage: b, EpochAuthenticator: st.group.EpochAuthenticator()}, nil
}

// HandlePendingReInitCommit applies the member's own ReInit Commit.
func (s *Service) HandlePendingReInitCommit(_ context.Context, req *mlsclientpb.HandlePendingCommitRequest) (*mlsclientpb.HandleReInitCommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, res, err := s.handlePending(req.GetStateId())
	if err != nil {
		return nil, err
	}
	return s.reinitialized(st, res)
}

// HandleReInitCommit applies another member's ReInit Commit.
func (s *Service) HandleReInitCommit(_ context.Context, req *mlsclientpb.HandleCommitRequest) (*mlsclientpb.HandleReInitCommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, res, err := s.handleCommit(req)
	if err != nil {
		return nil, err
	}
	return s.reinitialized(st, res)
}

// subgroupResponse describes a group created by ReInitWelcome or
// CreateBranch.
func (s *Service) subgroupResponse(g *mls.Group, id mls.Identity, encrypt bool, welcome *mls.MLSMessage, externalTree bool) (*mlsclientpb.CreateSubgroupResponse, error) {
	resp := &mlsclientpb.CreateSubgroupResponse{EpochAuthenticator: g.EpochAuthenticator()}
	var err error
	if resp.Welcome, err = marshalMessage(welcome); err != nil {
		return nil, err
	}
	if externalTree {
		if resp.RatchetTree, err = g.RatchetTree().Marshal(); err != nil {
			return nil, status.Errorf(codes.Internal, "interop: encoding tree: %v", err)
		}
	}
	resp.StateId = s.addState(newGroupState(g, id, encrypt))
	return resp, nil
}

// ReInitWelcome creates the new group of a reinitialization, adds the
// other members' KeyPackages and returns the Welcome; with external_tree the
// ratchet tree is returned beside it instead of inside it.
func (s *Service) ReInitWelcome(_ context.Context, req *mlsclientpb.ReInitWelcomeRequest) (*mlsclientpb.CreateSubgroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ri, ok := s.reinits[req.GetReinitId()]
	if !ok {
		return nil, notFound("reinit", req.GetReinitId())
	}
	kps, err := decodeKeyPackages(req.GetKeyPackage())
	if err != nil {
		return nil, err
	}
	g, welcome, err := ri.old.group.Reinitialize(s.groupOptions(), ri.identity, kps, &mls.ResumeOptions{
		NoPath:        !req.GetForcePath(),
		OutOfBandTree: req.GetExternalTree(),
	})
	if err != nil {
		return nil, rejected("reinitialize", err)
	}
	delete(s.reinits, req.GetReinitId())
	return s.subgroupResponse(g, ri.identity, ri.old.encrypt, welcome, req.GetExternalTree())
}

// HandleReInitWelcome joins the new group of a reinitialization.
func (s *Service) HandleReInitWelcome(_ context.Context, req *mlsclientpb.HandleReInitWelcomeRequest) (*mlsclientpb.JoinGroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ri, ok := s.reinits[req.GetReinitId()]
	if !ok {
		return nil, notFound("reinit", req.GetReinitId())
	}
	w, err := decodeWelcome(req.GetWelcome())
	if err != nil {
		return nil, err
	}
	tree, err := decodeTree(req.GetRatchetTree())
	if err != nil {
		return nil, err
	}
	opts := mls.JoinOptions{GroupOptions: s.groupOptions(), RatchetTree: tree, Resumed: []*mls.Group{ri.old.group}}
	g, err := mls.JoinFromWelcome(opts, w, ri.bundle)
	if err != nil {
		return nil, rejected("join reinitialized group", err)
	}
	delete(s.reinits, req.GetReinitId())
	stateID := s.addState(newGroupState(g, ri.identity, ri.old.encrypt))
	return &mlsclientpb.JoinGroupResponse{StateId: stateID, EpochAuthenticator: g.EpochAuthenticator()}, nil
}

// CreateBranch creates a subgroup of the state's group with the members of
// the KeyPackages. The parent state is kept.
func (s *Service) CreateBranch(_ context.Context, req *mlsclientpb.CreateBranchRequest) (*mlsclientpb.CreateSubgroupResponse, error) {
	exts, err := decodeExtensions(req.GetExtensions())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	kps, err := decodeKeyPackages(req.GetKeyPackages())
	if err != nil {
		return nil, err
	}
	ro := &mls.ResumeOptions{NoPath: !req.GetForcePath(), OutOfBandTree: req.GetExternalTree()}
	if len(exts) > 0 {
		ro.Extensions = exts
	}
	g, welcome, err := st.group.Branch(s.groupOptions(), req.GetGroupId(), st.identity, kps, ro)
	if err != nil {
		return nil, rejected("branch", err)
	}
	return s.subgroupResponse(g, st.identity, st.encrypt, welcome, req.GetExternalTree())
}

// HandleBranch joins a subgroup of the state's group with the KeyPackage of
// a transaction.
func (s *Service) HandleBranch(_ context.Context, req *mlsclientpb.HandleBranchRequest) (*mlsclientpb.HandleBranchResponse, error) {
	return onState(s, req.GetStateId(), func(st *groupState) (*mlsclientpb.HandleBranchResponse, error) {
		tx, ok := s.txs[req.GetTransactionId()]
		if !ok {
			return nil, notFound("transaction", req.GetTransactionId())
		}
		w, err := decodeWelcome(req.GetWelcome())
		if err != nil {
			return nil, err
		}
		tree, err := decodeTree(req.GetRatchetTree())
		if err != nil {
			return nil, err
		}
		opts := mls.JoinOptions{GroupOptions: s.groupOptions(), RatchetTree: tree, ExternalPSKs: tx.psks, Resumed: []*mls.Group{st.group}}
		g, err := mls.JoinFromWelcome(opts, w, tx.bundle)
		if err != nil {
			return nil, rejected("join branch", err)
		}
		delete(s.txs, req.GetTransactionId())
		id := mls.Identity{SignaturePrivateKey: tx.bundle.SignaturePrivateKey, Credential: tx.bundle.KeyPackage.LeafNode.Credential}
		stateID := s.addState(newGroupState(g, id, st.encrypt))
		return &mlsclientpb.HandleBranchResponse{StateId: stateID, EpochAuthenticator: g.EpochAuthenticator()}, nil
	})
}

// NewMemberAddProposal creates a KeyPackage for the group of a GroupInfo and
// the joiner's own Add proposal (sender new_member_proposal).
func (s *Service) NewMemberAddProposal(_ context.Context, req *mlsclientpb.NewMemberAddProposalRequest) (*mlsclientpb.NewMemberAddProposalResponse, error) {
	gi, err := decodeGroupInfo(req.GetGroupInfo())
	if err != nil {
		return nil, err
	}
	cs, err := suite(uint32(gi.GroupContext.CipherSuite))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.newIdentity(cs, req.GetIdentity())
	if err != nil {
		return nil, err
	}
	kpb, err := mls.NewKeyPackage(s.cfg, cs, id, nil)
	if err != nil {
		return nil, rejected("key package", err)
	}
	m, err := mls.NewJoinProposal(s.cfg, kpb, gi.GroupContext.GroupID, gi.GroupContext.Epoch)
	if err != nil {
		return nil, rejected("join proposal", err)
	}
	b, err := marshalMessage(m)
	if err != nil {
		return nil, err
	}
	txID := s.newID()
	s.txs[txID] = &transaction{bundle: kpb}
	return &mlsclientpb.NewMemberAddProposalResponse{
		TransactionId:  txID,
		Proposal:       b,
		InitPriv:       kpb.InitPrivateKey,
		EncryptionPriv: kpb.EncryptionPrivateKey,
		SignaturePriv:  kpb.SignaturePrivateKey,
	}, nil
}

// encodeExternalSender encodes one ExternalSender (RFC 9420 §12.1.8.1):
// the signature key, then the credential.
func encodeExternalSender(es mls.ExternalSender) ([]byte, error) {
	cred, err := es.Credential.Marshal()
	if err != nil {
		return nil, err
	}
	var e mls.Encoder
	e.Opaque(es.SignatureKey)
	e.Raw(cred)
	return e.Result()
}

func decodeExternalSender(b []byte) (mls.ExternalSender, error) {
	d := mls.NewDecoder(b)
	key := d.Opaque()
	if err := d.Err(); err != nil {
		return mls.ExternalSender{}, badInput("external sender: %v", err)
	}
	var cred mls.Credential
	if err := cred.Unmarshal(d.Raw(d.Remaining())); err != nil {
		return mls.ExternalSender{}, badInput("external sender credential: %v", err)
	}
	return mls.ExternalSender{SignatureKey: key, Credential: cred}, nil
}

// externalSendersOf returns the external_senders extension's list.
func externalSendersOf(exts mls.Extensions) (mls.ExternalSenders, error) {
	ext, ok := exts.Find(mls.ExtensionTypeExternalSenders)
	if !ok {
		return nil, nil
	}
	var list mls.ExternalSenders
	if err := list.Unmarshal(ext.Data); err != nil {
		return nil, badInput("external_senders extension: %v", err)
	}
	return list, nil
}

// CreateExternalSigner creates an external sender's signing key.
func (s *Service) CreateExternalSigner(_ context.Context, req *mlsclientpb.CreateExternalSignerRequest) (*mlsclientpb.CreateExternalSignerResponse, error) {
	cs, err := suite(req.GetCipherSuite())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.newIdentity(cs, req.GetIdentity())
	if err != nil {
		return nil, err
	}
	signer, err := cs.NewSigner(id.SignaturePrivateKey)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "interop: signer: %v", err)
	}
	b, err := encodeExternalSender(mls.ExternalSender{SignatureKey: signer.Public(), Credential: id.Credential})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "interop: encoding external sender: %v", err)
	}
	signerID := s.newID()
	s.signers[signerID] = &externalSigner{suite: cs, signer: signer}
	return &mlsclientpb.CreateExternalSignerResponse{SignerId: signerID, ExternalSender: b}, nil
}

// AddExternalSigner proposes group context extensions that add an external
// sender to the external_senders extension.
func (s *Service) AddExternalSigner(_ context.Context, req *mlsclientpb.AddExternalSignerRequest) (*mlsclientpb.ProposalResponse, error) {
	es, err := decodeExternalSender(req.GetExternalSender())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	exts := st.group.Extensions()
	list, err := externalSendersOf(exts)
	if err != nil {
		return nil, err
	}
	data, err := append(list, es).Marshal()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "interop: encoding external senders: %v", err)
	}
	out := make(mls.Extensions, 0, len(exts)+1)
	for _, e := range exts {
		if e.Type != mls.ExtensionTypeExternalSenders {
			out = append(out, e)
		}
	}
	out = append(out, mls.Extension{Type: mls.ExtensionTypeExternalSenders, Data: data})
	return st.propose(st.group.ProposeGroupContextExtensions(out, st.sendOptions()))
}

// ExternalSignerProposal creates a proposal from an external sender for
// the group of a GroupInfo. The sender's index is where its key appears in
// the group's external_senders extension.
func (s *Service) ExternalSignerProposal(_ context.Context, req *mlsclientpb.ExternalSignerProposalRequest) (*mlsclientpb.ProposalResponse, error) {
	gi, err := decodeGroupInfo(req.GetGroupInfo())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sg, ok := s.signers[req.GetSignerId()]
	if !ok {
		return nil, notFound("signer", req.GetSignerId())
	}
	gc := &gi.GroupContext
	if gc.CipherSuite != sg.suite {
		return nil, badInput("group of suite %v, signer of suite %v", gc.CipherSuite, sg.suite)
	}
	list, err := externalSendersOf(gc.Extensions)
	if err != nil {
		return nil, err
	}
	index := -1
	for i, es := range list {
		if string(es.SignatureKey) == string(sg.signer.Public()) {
			index = i
			break
		}
	}
	if index < 0 {
		return nil, badInput("the signer is not among the group's external senders")
	}
	members := func() ([]mls.Member, error) {
		nodes, err := groupInfoTree(gi, req.GetRatchetTree())
		if err != nil {
			return nil, err
		}
		return treeMembers(gc.CipherSuite, nodes)
	}
	p, err := s.proposalFromDescription(req.GetDescription(), gc.CipherSuite, gc.GroupID, members)
	if err != nil {
		return nil, err
	}
	m, err := mls.NewExternalProposal(s.cfg, sg.signer, gc.GroupID, gc.Epoch, uint32(index), p)
	if err != nil {
		return nil, rejected("external proposal", err)
	}
	b, err := marshalMessage(m)
	if err != nil {
		return nil, err
	}
	return &mlsclientpb.ProposalResponse{Proposal: b}, nil
}

// Free forgets a state.
func (s *Service) Free(_ context.Context, req *mlsclientpb.FreeRequest) (*mlsclientpb.FreeResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.states[req.GetStateId()]; !ok {
		return nil, notFound("state", req.GetStateId())
	}
	delete(s.states, req.GetStateId())
	return &mlsclientpb.FreeResponse{}, nil
}
