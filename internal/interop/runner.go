package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"

	"github.com/conclave-im/conclave/internal/interop/mlsclientpb"
	"google.golang.org/grpc"
)

// Config is a scenario configuration file in the working group's format
// (test-config.md): named scripts, each a list of actions.
type Config struct {
	Scripts map[string]Script `json:"scripts"`
}

// Script is a sequence of steps. A step refers to the outputs of earlier
// steps by their index in the script.
type Script []Step

// Step is one action of a script: its action and actor, and its raw JSON
// for the action's own parameters.
type Step struct {
	Action string
	Actor  string
	Raw    json.RawMessage
}

// UnmarshalJSON keeps the raw step for the action's parameters.
func (s *Step) UnmarshalJSON(b []byte) error {
	var head struct {
		Action string `json:"action"`
		Actor  string `json:"actor"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	if head.Action == "" {
		return errors.New("interop: step without an action")
	}
	s.Action, s.Actor, s.Raw = head.Action, head.Actor, append(json.RawMessage(nil), b...)
	return nil
}

// MarshalJSON writes the step back as it was read.
func (s Step) MarshalJSON() ([]byte, error) { return s.Raw, nil }

// LoadConfig reads a scenario configuration file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("interop: %s: %w", path, err)
	}
	if len(c.Scripts) == 0 {
		return nil, fmt.Errorf("interop: %s: no scripts", path)
	}
	return &c, nil
}

// ScriptNames returns the config's script names in order.
func (c *Config) ScriptNames() []string {
	names := make([]string, 0, len(c.Scripts))
	for n := range c.Scripts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Extension is a group context extension in a script: its type and its
// data in base64 (the JSON encoding of bytes).
type Extension struct {
	Type uint32 `json:"extension_type"`
	Data []byte `json:"extension_data"`
}

func protoExtensions(list []Extension) []*mlsclientpb.Extension {
	out := make([]*mlsclientpb.Extension, len(list))
	for i, e := range list {
		out[i] = &mlsclientpb.Extension{ExtensionType: e.Type, ExtensionData: e.Data}
	}
	return out
}

// Parameters of the actions, as test-config.md and the working group's
// runner name them.
type (
	createGroupParams struct {
		Members []string `json:"members"`
	}
	joinGroupParams struct {
		Welcome int `json:"welcome"`
	}
	externalJoinParams struct {
		Joiner       string   `json:"joiner"`
		Members      []string `json:"members"`
		ExternalTree bool     `json:"externalTree"`
		RemovePrior  bool     `json:"removePrior"`
		PSKs         []int    `json:"psks"`
	}
	installPSKParams struct {
		Clients []string `json:"clients"`
	}
	groupInfoParams struct {
		ExternalTree bool `json:"externalTree"`
	}
	addProposalParams struct {
		KeyPackage int `json:"keyPackage"`
	}
	removeProposalParams struct {
		Removed string `json:"removed"`
	}
	externalPSKParams struct {
		PSKID int `json:"pskID"`
	}
	resumptionPSKParams struct {
		EpochID uint64 `json:"epochID"`
	}
	extensionsParams struct {
		Extensions []Extension `json:"extensions"`
	}
	proposalDescription struct {
		ProposalType      string      `json:"proposalType"`
		KeyPackage        int         `json:"keyPackage"`
		Removed           string      `json:"removed"`
		PSKID             int         `json:"pskID"`
		EpochID           uint64      `json:"epochID"`
		Extensions        []Extension `json:"extensions"`
		ChangeGroupID     bool        `json:"changeGroupID"`
		ChangeCipherSuite bool        `json:"changeCipherSuite"`
	}
	commitParams struct {
		ByReference  []int                 `json:"byReference"`
		ByValue      []proposalDescription `json:"byValue"`
		Members      []string              `json:"members"`
		Joiners      []string              `json:"joiners"`
		ForcePath    bool                  `json:"force_path"`
		ExternalTree bool                  `json:"external_tree"`
	}
	handleCommitParams struct {
		Commit      int   `json:"commit"`
		ByReference []int `json:"byReference"`
	}
	protectParams struct {
		AuthenticatedData string `json:"authenticatedData"`
		Plaintext         string `json:"plaintext"`
	}
	unprotectParams struct {
		Ciphertext int `json:"ciphertext"`
	}
	reinitParams struct {
		Proposer               string      `json:"proposer"`
		Committer              string      `json:"committer"`
		Welcomer               string      `json:"welcomer"`
		Members                []string    `json:"members"`
		ChangeCipherSuite      bool        `json:"changeCipherSuite"`
		ChangeGroupID          bool        `json:"changeGroupID"`
		Extensions             []Extension `json:"extensions"`
		ForcePath              bool        `json:"forcePath"`
		ExternalTree           bool        `json:"externalTree"`
		ExternalReinitProposal int         `json:"externalReinitProposal"`
	}
	// branchParams accepts both spellings of the flags: the working
	// group's runner reads force_path and external_tree, its branch
	// configuration writes forcePath and externalTree.
	branchParams struct {
		Members       []string    `json:"members"`
		Extensions    []Extension `json:"extensions"`
		ForcePath     bool        `json:"forcePath"`
		ForcePath2    bool        `json:"force_path"`
		ExternalTree  bool        `json:"externalTree"`
		ExternalTree2 bool        `json:"external_tree"`
	}
	newMemberAddParams struct {
		Joiner string `json:"joiner"`
	}
	addExternalSignerParams struct {
		Signer string `json:"signer"`
	}
	externalSignerProposalParams struct {
		Member      string              `json:"member"`
		Description proposalDescription `json:"description"`
	}
)

// Actors returns the actors of a script, sorted: those acting and those
// brought in as members, joiners or signers.
func (s Script) Actors() []string {
	set := map[string]bool{}
	for _, st := range s {
		if st.Actor != "" {
			set[st.Actor] = true
		}
		var extra struct {
			Members []string `json:"members"`
			Joiner  string   `json:"joiner"`
			Signer  string   `json:"signer"`
		}
		if err := json.Unmarshal(st.Raw, &extra); err != nil {
			continue
		}
		if st.Action == "createGroup" {
			for _, m := range extra.Members {
				set[m] = true
			}
		}
		for _, a := range []string{extra.Joiner, extra.Signer} {
			if a != "" {
				set[a] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Client is a connection to one MLSClient server.
type Client struct {
	Name   string
	RPC    mlsclientpb.MLSClientClient
	Suites []uint32
}

// NewClient asks a server for its name and cipher suites.
func NewClient(ctx context.Context, conn grpc.ClientConnInterface) (*Client, error) {
	rpc := mlsclientpb.NewMLSClientClient(conn)
	nr, err := rpc.Name(ctx, &mlsclientpb.NameRequest{})
	if err != nil {
		return nil, fmt.Errorf("interop: name: %w", err)
	}
	sr, err := rpc.SupportedCiphersuites(ctx, &mlsclientpb.SupportedCiphersuitesRequest{})
	if err != nil {
		return nil, fmt.Errorf("interop: supported cipher suites: %w", err)
	}
	return &Client{Name: nr.GetName(), RPC: rpc, Suites: sr.GetCiphersuites()}, nil
}

// CommonSuites returns the suites every client supports, sorted.
func CommonSuites(clients []*Client) []uint32 {
	if len(clients) == 0 {
		return nil
	}
	var out []uint32
	for _, cs := range clients[0].Suites {
		all := true
		for _, c := range clients[1:] {
			all = all && slices.Contains(c.Suites, cs)
		}
		if all {
			out = append(out, cs)
		}
	}
	slices.Sort(out)
	return out
}

// StepError is a script that failed at a step.
type StepError struct {
	Step   int
	Action string
	Err    error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %d (%s): %v", e.Step, e.Action, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// Run is one execution of a script: a cipher suite, whether handshake
// messages are encrypted, and which client plays each actor.
type Run struct {
	Suite   uint32
	Encrypt bool
	Actors  map[string]*Client
	// Suites are the suites a ReInit may change to (the clients' common
	// suites).
	Suites []uint32

	stateID  map[string]uint32
	txID     map[string]uint32
	signerID map[string]uint32
	groupID  []byte
	outputs  []map[string][]byte
}

// Assign gives the actors to the clients in turn, starting at client
// shift, so that a script with two clients and shifts 0 and 1 has every
// actor played by each implementation once.
func Assign(actors []string, clients []*Client, shift int) map[string]*Client {
	out := make(map[string]*Client, len(actors))
	for i, a := range actors {
		out[a] = clients[(i+shift)%len(clients)]
	}
	return out
}

// Execute runs a script and reports the first failing step.
func (r *Run) Execute(ctx context.Context, script Script) error {
	r.stateID = map[string]uint32{}
	r.txID = map[string]uint32{}
	r.signerID = map[string]uint32{}
	r.outputs = make([]map[string][]byte, len(script))
	for i := range r.outputs {
		r.outputs[i] = map[string][]byte{}
	}
	for i, st := range script {
		if err := ctx.Err(); err != nil {
			return &StepError{Step: i, Action: st.Action, Err: err}
		}
		if err := r.step(ctx, i, st); err != nil {
			return &StepError{Step: i, Action: st.Action, Err: err}
		}
	}
	return nil
}

func (r *Run) client(actor string) (*Client, error) {
	c, ok := r.Actors[actor]
	if !ok {
		return nil, fmt.Errorf("no client for actor %q", actor)
	}
	return c, nil
}

func (r *Run) output(step int, key string) ([]byte, error) {
	if step < 0 || step >= len(r.outputs) {
		return nil, fmt.Errorf("reference to step %d out of range", step)
	}
	v, ok := r.outputs[step][key]
	if !ok {
		return nil, fmt.Errorf("step %d has no %s", step, key)
	}
	return v, nil
}

func (r *Run) outputs2(steps []int, key string) ([][]byte, error) {
	out := make([][]byte, len(steps))
	for i, s := range steps {
		v, err := r.output(s, key)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}

// newGroupID returns the group ID of the group the script created,
// changed if asked.
func (r *Run) newGroupID(change bool) []byte {
	id := bytes.Clone(r.groupID)
	if change {
		id = append(id, "++"...)
	}
	return id
}

// changeSuite moves the run to the next common suite after the current one.
func (r *Run) changeSuite() error {
	if len(r.Suites) < 2 {
		return errors.New("no other cipher suite to change to")
	}
	i := slices.Index(r.Suites, r.Suite)
	r.Suite = r.Suites[(i+1)%len(r.Suites)]
	return nil
}

func (r *Run) describe(d proposalDescription) (*mlsclientpb.ProposalDescription, error) {
	out := &mlsclientpb.ProposalDescription{ProposalType: []byte(d.ProposalType)}
	var err error
	switch d.ProposalType {
	case "add":
		out.KeyPackage, err = r.output(d.KeyPackage, "key_package")
	case "remove":
		out.RemovedId = []byte(d.Removed)
	case "externalPSK":
		out.PskId, err = r.output(d.PSKID, "psk_id")
	case "resumptionPSK":
		out.EpochId = d.EpochID
	case "groupContextExtensions":
		out.Extensions = protoExtensions(d.Extensions)
	case "reinit":
		if d.ChangeCipherSuite {
			if err := r.changeSuite(); err != nil {
				return nil, err
			}
		}
		out.Extensions = protoExtensions(d.Extensions)
		out.CipherSuite = r.Suite
		out.GroupId = r.newGroupID(d.ChangeGroupID)
	default:
		err = fmt.Errorf("unknown proposal type %q", d.ProposalType)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// agree checks that an actor reached the expected epoch authenticator.
func agree(who string, got, want []byte) error {
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s disagrees on the epoch authenticator", who)
	}
	return nil
}

func (r *Run) step(ctx context.Context, i int, st Step) error {
	out := r.outputs[i]
	switch st.Action {
	case "createGroup":
		var p createGroupParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return err
		}
		return r.createGroup(ctx, st.Actor, p.Members, out)

	case "createKeyPackage":
		c, err := r.client(st.Actor)
		if err != nil {
			return err
		}
		resp, err := c.RPC.CreateKeyPackage(ctx, &mlsclientpb.CreateKeyPackageRequest{CipherSuite: r.Suite, Identity: []byte(st.Actor)})
		if err != nil {
			return err
		}
		r.txID[st.Actor] = resp.GetTransactionId()
		out["key_package"] = resp.GetKeyPackage()
		return nil

	case "joinGroup":
		var p joinGroupParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return err
		}
		welcome, err := r.output(p.Welcome, "welcome")
		if err != nil {
			return err
		}
		tree := r.outputs[p.Welcome]["ratchet_tree"]
		_, err = r.join(ctx, st.Actor, welcome, tree)
		return err

	case "externalJoin":
		var p externalJoinParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return err
		}
		return r.externalJoin(ctx, st.Actor, p, out)

	case "installExternalPSK":
		var p installPSKParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return err
		}
		id, secret := randomBytes(32), randomBytes(32)
		out["psk_id"], out["psk_secret"] = id, secret
		for _, a := range p.Clients {
			c, err := r.client(a)
			if err != nil {
				return err
			}
			target, ok := r.stateID[a]
			if !ok {
				target = r.txID[a]
			}
			if _, err := c.RPC.StorePSK(ctx, &mlsclientpb.StorePSKRequest{StateOrTransactionId: target, PskId: id, PskSecret: secret}); err != nil {
				return err
			}
		}
		return nil

	case "groupInfo":
		var p groupInfoParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return err
		}
		c, err := r.client(st.Actor)
		if err != nil {
			return err
		}
		resp, err := c.RPC.GroupInfo(ctx, &mlsclientpb.GroupInfoRequest{StateId: r.stateID[st.Actor], ExternalTree: p.ExternalTree})
		if err != nil {
			return err
		}
		out["group_info"], out["ratchet_tree"] = resp.GetGroupInfo(), resp.GetRatchetTree()
		return nil

	case "addProposal", "updateProposal", "removeProposal", "externalPSKProposal",
		"resumptionPSKProposal", "groupContextExtensionsProposal":
		proposal, err := r.propose(ctx, st)
		if err != nil {
			return err
		}
		out["proposal"] = proposal
		return nil

	case "fullCommit", "commit":
		var p commitParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return err
		}
		return r.commit(ctx, st.Actor, p, st.Action == "fullCommit", out)

	case "handleCommit":
		var p handleCommitParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return err
		}
		commit, err := r.output(p.Commit, "commit")
		if err != nil {
			return err
		}
		byRef, err := r.outputs2(p.ByReference, "proposal")
		if err != nil {
			return err
		}
		c, err := r.client(st.Actor)
		if err != nil {
			return err
		}
		resp, err := c.RPC.HandleCommit(ctx, &mlsclientpb.HandleCommitRequest{StateId: r.stateID[st.Actor], Proposal: byRef, Commit: commit})
		if err != nil {
			return err
		}
		r.stateID[st.Actor] = resp.GetStateId()
		if want, ok := r.outputs[p.Commit]["epoch_authenticator"]; ok {
			return agree(st.Actor, resp.GetEpochAuthenticator(), want)
		}
		return nil

	case "handlePendingCommit":
		c, err := r.client(st.Actor)
		if err != nil {
			return err
		}
		resp, err := c.RPC.HandlePendingCommit(ctx, &mlsclientpb.HandlePendingCommitRequest{StateId: r.stateID[st.Actor]})
		if err != nil {
			return err
		}
		r.stateID[st.Actor] = resp.GetStateId()
		out["epoch_authenticator"] = resp.GetEpochAuthenticator()
		return nil

	case "protect":
		var p protectParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return err
		}
		c, err := r.client(st.Actor)
		if err != nil {
			return err
		}
		resp, err := c.RPC.Protect(ctx, &mlsclientpb.ProtectRequest{StateId: r.stateID[st.Actor],
			AuthenticatedData: []byte(p.AuthenticatedData), Plaintext: []byte(p.Plaintext)})
		if err != nil {
			return err
		}
		out["authenticated_data"], out["plaintext"], out["ciphertext"] = []byte(p.AuthenticatedData), []byte(p.Plaintext), resp.GetCiphertext()
		return nil

	case "unprotect":
		var p unprotectParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return err
		}
		ct, err := r.output(p.Ciphertext, "ciphertext")
		if err != nil {
			return err
		}
		c, err := r.client(st.Actor)
		if err != nil {
			return err
		}
		resp, err := c.RPC.Unprotect(ctx, &mlsclientpb.UnprotectRequest{StateId: r.stateID[st.Actor], Ciphertext: ct})
		if err != nil {
			return err
		}
		src := r.outputs[p.Ciphertext]
		if !bytes.Equal(resp.GetAuthenticatedData(), src["authenticated_data"]) {
			return errors.New("wrong authenticated data")
		}
		if !bytes.Equal(resp.GetPlaintext(), src["plaintext"]) {
			return errors.New("wrong plaintext")
		}
		return nil

	case "reinit":
		var p reinitParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return err
		}
		return r.reinit(ctx, p)

	case "branch":
		var p branchParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return err
		}
		return r.branch(ctx, st.Actor, p)

	case "newMemberAddProposal":
		var p newMemberAddParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return err
		}
		return r.newMemberAdd(ctx, st.Actor, p.Joiner, out)

	case "addExternalSigner":
		var p addExternalSignerParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return err
		}
		return r.addExternalSigner(ctx, st.Actor, p.Signer, out)

	case "externalSignerProposal":
		var p externalSignerProposalParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return err
		}
		return r.externalSignerProposal(ctx, st.Actor, p, out)
	}
	return fmt.Errorf("unknown action %q", st.Action)
}

func (r *Run) createGroup(ctx context.Context, actor string, members []string, out map[string][]byte) error {
	c, err := r.client(actor)
	if err != nil {
		return err
	}
	r.groupID = []byte(fmt.Sprintf("group-%x", randomBytes(8)))
	resp, err := c.RPC.CreateGroup(ctx, &mlsclientpb.CreateGroupRequest{GroupId: r.groupID, CipherSuite: r.Suite, EncryptHandshake: r.Encrypt, Identity: []byte(actor)})
	if err != nil {
		return err
	}
	r.stateID[actor] = resp.GetStateId()
	out["group_id"] = r.groupID
	if len(members) == 0 {
		return nil
	}
	adds := make([]*mlsclientpb.ProposalDescription, len(members))
	for i, m := range members {
		mc, err := r.client(m)
		if err != nil {
			return err
		}
		kp, err := mc.RPC.CreateKeyPackage(ctx, &mlsclientpb.CreateKeyPackageRequest{CipherSuite: r.Suite, Identity: []byte(m)})
		if err != nil {
			return err
		}
		r.txID[m] = kp.GetTransactionId()
		adds[i] = &mlsclientpb.ProposalDescription{ProposalType: []byte("add"), KeyPackage: kp.GetKeyPackage()}
	}
	cr, err := c.RPC.Commit(ctx, &mlsclientpb.CommitRequest{StateId: r.stateID[actor], ByValue: adds})
	if err != nil {
		return err
	}
	pr, err := c.RPC.HandlePendingCommit(ctx, &mlsclientpb.HandlePendingCommitRequest{StateId: r.stateID[actor]})
	if err != nil {
		return err
	}
	r.stateID[actor] = pr.GetStateId()
	for _, m := range members {
		auth, err := r.join(ctx, m, cr.GetWelcome(), nil)
		if err != nil {
			return err
		}
		if err := agree(m, auth, pr.GetEpochAuthenticator()); err != nil {
			return err
		}
	}
	return nil
}

// join has an actor join from a Welcome with its last KeyPackage.
func (r *Run) join(ctx context.Context, actor string, welcome, tree []byte) ([]byte, error) {
	c, err := r.client(actor)
	if err != nil {
		return nil, err
	}
	tx, ok := r.txID[actor]
	if !ok {
		return nil, fmt.Errorf("%s has no key package", actor)
	}
	resp, err := c.RPC.JoinGroup(ctx, &mlsclientpb.JoinGroupRequest{TransactionId: tx, Welcome: welcome, EncryptHandshake: r.Encrypt, Identity: []byte(actor), RatchetTree: tree})
	if err != nil {
		return nil, err
	}
	r.stateID[actor] = resp.GetStateId()
	return resp.GetEpochAuthenticator(), nil
}

func (r *Run) externalJoin(ctx context.Context, actor string, p externalJoinParams, out map[string][]byte) error {
	c, err := r.client(actor)
	if err != nil {
		return err
	}
	gi, err := c.RPC.GroupInfo(ctx, &mlsclientpb.GroupInfoRequest{StateId: r.stateID[actor], ExternalTree: p.ExternalTree})
	if err != nil {
		return err
	}
	out["group_info"], out["ratchet_tree"] = gi.GetGroupInfo(), gi.GetRatchetTree()
	psks := make([]*mlsclientpb.PreSharedKey, len(p.PSKs))
	for i, s := range p.PSKs {
		id, err := r.output(s, "psk_id")
		if err != nil {
			return err
		}
		secret, err := r.output(s, "psk_secret")
		if err != nil {
			return err
		}
		psks[i] = &mlsclientpb.PreSharedKey{PskId: id, PskSecret: secret}
	}
	jc, err := r.client(p.Joiner)
	if err != nil {
		return err
	}
	jr, err := jc.RPC.ExternalJoin(ctx, &mlsclientpb.ExternalJoinRequest{
		GroupInfo: gi.GetGroupInfo(), RatchetTree: gi.GetRatchetTree(), EncryptHandshake: r.Encrypt,
		Identity: []byte(p.Joiner), RemovePrior: p.RemovePrior, Psks: psks,
	})
	if err != nil {
		return err
	}
	r.stateID[p.Joiner] = jr.GetStateId()
	out["commit"], out["epoch_authenticator"] = jr.GetCommit(), jr.GetEpochAuthenticator()
	for _, m := range append(slices.Clone(p.Members), actor) {
		mc, err := r.client(m)
		if err != nil {
			return err
		}
		hr, err := mc.RPC.HandleCommit(ctx, &mlsclientpb.HandleCommitRequest{StateId: r.stateID[m], Commit: jr.GetCommit()})
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		if err := agree(m, hr.GetEpochAuthenticator(), jr.GetEpochAuthenticator()); err != nil {
			return err
		}
		r.stateID[m] = hr.GetStateId()
	}
	return nil
}

func (r *Run) propose(ctx context.Context, st Step) ([]byte, error) {
	c, err := r.client(st.Actor)
	if err != nil {
		return nil, err
	}
	id := r.stateID[st.Actor]
	var resp *mlsclientpb.ProposalResponse
	switch st.Action {
	case "addProposal":
		var p addProposalParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return nil, err
		}
		kp, err := r.output(p.KeyPackage, "key_package")
		if err != nil {
			return nil, err
		}
		resp, err = c.RPC.AddProposal(ctx, &mlsclientpb.AddProposalRequest{StateId: id, KeyPackage: kp})
		if err != nil {
			return nil, err
		}
	case "updateProposal":
		resp, err = c.RPC.UpdateProposal(ctx, &mlsclientpb.UpdateProposalRequest{StateId: id})
	case "removeProposal":
		var p removeProposalParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return nil, err
		}
		resp, err = c.RPC.RemoveProposal(ctx, &mlsclientpb.RemoveProposalRequest{StateId: id, RemovedId: []byte(p.Removed)})
	case "externalPSKProposal":
		var p externalPSKParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return nil, err
		}
		pskID, err := r.output(p.PSKID, "psk_id")
		if err != nil {
			return nil, err
		}
		resp, err = c.RPC.ExternalPSKProposal(ctx, &mlsclientpb.ExternalPSKProposalRequest{StateId: id, PskId: pskID})
		if err != nil {
			return nil, err
		}
	case "resumptionPSKProposal":
		var p resumptionPSKParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return nil, err
		}
		resp, err = c.RPC.ResumptionPSKProposal(ctx, &mlsclientpb.ResumptionPSKProposalRequest{StateId: id, EpochId: p.EpochID})
	case "groupContextExtensionsProposal":
		var p extensionsParams
		if err := json.Unmarshal(st.Raw, &p); err != nil {
			return nil, err
		}
		resp, err = c.RPC.GroupContextExtensionsProposal(ctx, &mlsclientpb.GroupContextExtensionsProposalRequest{StateId: id, Extensions: protoExtensions(p.Extensions)})
	}
	if err != nil {
		return nil, err
	}
	return resp.GetProposal(), nil
}

// commit has an actor commit; a full commit is then merged by the
// committer, handled by the members and joined by the joiners, who must all
// agree on the epoch authenticator.
func (r *Run) commit(ctx context.Context, actor string, p commitParams, full bool, out map[string][]byte) error {
	c, err := r.client(actor)
	if err != nil {
		return err
	}
	byRef, err := r.outputs2(p.ByReference, "proposal")
	if err != nil {
		return err
	}
	byValue := make([]*mlsclientpb.ProposalDescription, len(p.ByValue))
	for i, d := range p.ByValue {
		if byValue[i], err = r.describe(d); err != nil {
			return err
		}
	}
	cr, err := c.RPC.Commit(ctx, &mlsclientpb.CommitRequest{StateId: r.stateID[actor], ByReference: byRef, ByValue: byValue, ForcePath: p.ForcePath, ExternalTree: p.ExternalTree})
	if err != nil {
		return err
	}
	out["commit"], out["welcome"] = cr.GetCommit(), cr.GetWelcome()
	if p.ExternalTree {
		out["ratchet_tree"] = cr.GetRatchetTree()
	}
	if !full {
		return nil
	}
	pr, err := c.RPC.HandlePendingCommit(ctx, &mlsclientpb.HandlePendingCommitRequest{StateId: r.stateID[actor]})
	if err != nil {
		return err
	}
	r.stateID[actor] = pr.GetStateId()
	auth := pr.GetEpochAuthenticator()
	out["epoch_authenticator"] = auth
	for _, m := range p.Members {
		mc, err := r.client(m)
		if err != nil {
			return err
		}
		hr, err := mc.RPC.HandleCommit(ctx, &mlsclientpb.HandleCommitRequest{StateId: r.stateID[m], Proposal: byRef, Commit: cr.GetCommit()})
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		if err := agree(m, hr.GetEpochAuthenticator(), auth); err != nil {
			return err
		}
		r.stateID[m] = hr.GetStateId()
	}
	var tree []byte
	if p.ExternalTree {
		tree = cr.GetRatchetTree()
	}
	for _, j := range p.Joiners {
		got, err := r.join(ctx, j, cr.GetWelcome(), tree)
		if err != nil {
			return fmt.Errorf("%s: %w", j, err)
		}
		if err := agree(j, got, auth); err != nil {
			return err
		}
	}
	return nil
}

// reinit runs a whole reinitialization: ReInit proposal (or an external
// one from an earlier step), its Commit, everyone's KeyPackage for the new
// group, the welcomer's new group and everyone else joining it.
func (r *Run) reinit(ctx context.Context, p reinitParams) error {
	var proposal []byte
	if p.Proposer != "" {
		if p.ChangeCipherSuite {
			if err := r.changeSuite(); err != nil {
				return err
			}
		}
		pc, err := r.client(p.Proposer)
		if err != nil {
			return err
		}
		resp, err := pc.RPC.ReInitProposal(ctx, &mlsclientpb.ReInitProposalRequest{
			StateId: r.stateID[p.Proposer], CipherSuite: r.Suite, GroupId: r.newGroupID(p.ChangeGroupID), Extensions: protoExtensions(p.Extensions),
		})
		if err != nil {
			return err
		}
		proposal = resp.GetProposal()
	} else {
		var err error
		if proposal, err = r.output(p.ExternalReinitProposal, "proposal"); err != nil {
			return err
		}
	}
	// Everyone but the committer handles the Commit; everyone but the
	// welcomer joins the new group.
	set := func(exclude string) []string {
		all := append(append([]string{p.Committer, p.Welcomer}, p.Members...), p.Proposer)
		var out []string
		for _, a := range all {
			if a != "" && a != exclude && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
		return out
	}
	cc, err := r.client(p.Committer)
	if err != nil {
		return err
	}
	cr, err := cc.RPC.ReInitCommit(ctx, &mlsclientpb.CommitRequest{StateId: r.stateID[p.Committer], ByReference: [][]byte{proposal}, ForcePath: p.ForcePath})
	if err != nil {
		return err
	}
	pr, err := cc.RPC.HandlePendingReInitCommit(ctx, &mlsclientpb.HandlePendingCommitRequest{StateId: r.stateID[p.Committer]})
	if err != nil {
		return err
	}
	reinitID := map[string]uint32{p.Committer: pr.GetReinitId()}
	keyPackage := map[string][]byte{p.Committer: pr.GetKeyPackage()}
	for _, m := range set(p.Committer) {
		mc, err := r.client(m)
		if err != nil {
			return err
		}
		hr, err := mc.RPC.HandleReInitCommit(ctx, &mlsclientpb.HandleCommitRequest{StateId: r.stateID[m], Proposal: [][]byte{proposal}, Commit: cr.GetCommit()})
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		if err := agree(m, hr.GetEpochAuthenticator(), pr.GetEpochAuthenticator()); err != nil {
			return err
		}
		reinitID[m], keyPackage[m] = hr.GetReinitId(), hr.GetKeyPackage()
	}
	joiners := set(p.Welcomer)
	kps := make([][]byte, len(joiners))
	for i, m := range joiners {
		kps[i] = keyPackage[m]
	}
	wc, err := r.client(p.Welcomer)
	if err != nil {
		return err
	}
	wr, err := wc.RPC.ReInitWelcome(ctx, &mlsclientpb.ReInitWelcomeRequest{ReinitId: reinitID[p.Welcomer], KeyPackage: kps, ForcePath: p.ForcePath, ExternalTree: p.ExternalTree})
	if err != nil {
		return err
	}
	r.stateID[p.Welcomer] = wr.GetStateId()
	var tree []byte
	if p.ExternalTree {
		tree = wr.GetRatchetTree()
	}
	for _, m := range joiners {
		mc, err := r.client(m)
		if err != nil {
			return err
		}
		jr, err := mc.RPC.HandleReInitWelcome(ctx, &mlsclientpb.HandleReInitWelcomeRequest{ReinitId: reinitID[m], Welcome: wr.GetWelcome(), RatchetTree: tree})
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		if err := agree(m, jr.GetEpochAuthenticator(), wr.GetEpochAuthenticator()); err != nil {
			return err
		}
		r.stateID[m] = jr.GetStateId()
	}
	return nil
}

// branch has an actor create a subgroup with the given members, who join it
// from their state in the parent group.
func (r *Run) branch(ctx context.Context, actor string, p branchParams) error {
	tx := map[string]uint32{}
	kps := make([][]byte, len(p.Members))
	for i, m := range p.Members {
		mc, err := r.client(m)
		if err != nil {
			return err
		}
		kr, err := mc.RPC.CreateKeyPackage(ctx, &mlsclientpb.CreateKeyPackageRequest{CipherSuite: r.Suite, Identity: []byte(m)})
		if err != nil {
			return err
		}
		tx[m], kps[i] = kr.GetTransactionId(), kr.GetKeyPackage()
	}
	externalTree := p.ExternalTree || p.ExternalTree2
	c, err := r.client(actor)
	if err != nil {
		return err
	}
	br, err := c.RPC.CreateBranch(ctx, &mlsclientpb.CreateBranchRequest{
		StateId: r.stateID[actor], GroupId: []byte(fmt.Sprintf("branch-%x", randomBytes(8))), Extensions: protoExtensions(p.Extensions),
		KeyPackages: kps, ForcePath: p.ForcePath || p.ForcePath2, ExternalTree: externalTree,
	})
	if err != nil {
		return err
	}
	r.stateID[actor] = br.GetStateId()
	var tree []byte
	if externalTree {
		tree = br.GetRatchetTree()
	}
	for _, m := range p.Members {
		mc, err := r.client(m)
		if err != nil {
			return err
		}
		hr, err := mc.RPC.HandleBranch(ctx, &mlsclientpb.HandleBranchRequest{StateId: r.stateID[m], TransactionId: tx[m], Welcome: br.GetWelcome(), RatchetTree: tree})
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		if err := agree(m, hr.GetEpochAuthenticator(), br.GetEpochAuthenticator()); err != nil {
			return err
		}
		r.stateID[m] = hr.GetStateId()
	}
	return nil
}

func (r *Run) newMemberAdd(ctx context.Context, actor, joiner string, out map[string][]byte) error {
	c, err := r.client(actor)
	if err != nil {
		return err
	}
	gi, err := c.RPC.GroupInfo(ctx, &mlsclientpb.GroupInfoRequest{StateId: r.stateID[actor]})
	if err != nil {
		return err
	}
	jc, err := r.client(joiner)
	if err != nil {
		return err
	}
	resp, err := jc.RPC.NewMemberAddProposal(ctx, &mlsclientpb.NewMemberAddProposalRequest{GroupInfo: gi.GetGroupInfo(), Identity: []byte(joiner)})
	if err != nil {
		return err
	}
	r.txID[joiner] = resp.GetTransactionId()
	out["proposal"] = resp.GetProposal()
	return nil
}

func (r *Run) addExternalSigner(ctx context.Context, actor, signer string, out map[string][]byte) error {
	sc, err := r.client(signer)
	if err != nil {
		return err
	}
	sr, err := sc.RPC.CreateExternalSigner(ctx, &mlsclientpb.CreateExternalSignerRequest{CipherSuite: r.Suite, Identity: []byte(signer)})
	if err != nil {
		return err
	}
	r.signerID[signer] = sr.GetSignerId()
	c, err := r.client(actor)
	if err != nil {
		return err
	}
	resp, err := c.RPC.AddExternalSigner(ctx, &mlsclientpb.AddExternalSignerRequest{StateId: r.stateID[actor], ExternalSender: sr.GetExternalSender()})
	if err != nil {
		return err
	}
	out["proposal"] = resp.GetProposal()
	return nil
}

func (r *Run) externalSignerProposal(ctx context.Context, actor string, p externalSignerProposalParams, out map[string][]byte) error {
	mc, err := r.client(p.Member)
	if err != nil {
		return err
	}
	gi, err := mc.RPC.GroupInfo(ctx, &mlsclientpb.GroupInfoRequest{StateId: r.stateID[p.Member], ExternalTree: true})
	if err != nil {
		return err
	}
	d, err := r.describe(p.Description)
	if err != nil {
		return err
	}
	c, err := r.client(actor)
	if err != nil {
		return err
	}
	resp, err := c.RPC.ExternalSignerProposal(ctx, &mlsclientpb.ExternalSignerProposalRequest{
		SignerId: r.signerID[actor], GroupInfo: gi.GetGroupInfo(), RatchetTree: gi.GetRatchetTree(), Description: d,
	})
	if err != nil {
		return err
	}
	out["proposal"] = resp.GetProposal()
	return nil
}
