package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conclave-im/conclave/internal/interop/mlsclientpb"
	"github.com/conclave-im/conclave/mls"
)

func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v, want status %v", err, code)
	}
}

// TestUnsupportedSuite: a suite outside RFC 9420 §17.1 is answered with
// InvalidArgument by every RPC that takes a suite.
func TestUnsupportedSuite(t *testing.T) {
	s := NewService(nil)
	ctx := context.Background()
	for _, cs := range []uint32{0, 8, 0xA0A0, 0x10001} {
		_, err := s.CreateGroup(ctx, &mlsclientpb.CreateGroupRequest{GroupId: []byte("g"), CipherSuite: cs, Identity: []byte("a")})
		wantCode(t, err, codes.InvalidArgument)
		_, err = s.CreateKeyPackage(ctx, &mlsclientpb.CreateKeyPackageRequest{CipherSuite: cs, Identity: []byte("a")})
		wantCode(t, err, codes.InvalidArgument)
		_, err = s.CreateExternalSigner(ctx, &mlsclientpb.CreateExternalSignerRequest{CipherSuite: cs, Identity: []byte("a")})
		wantCode(t, err, codes.InvalidArgument)
	}
	resp, err := s.SupportedCiphersuites(ctx, &mlsclientpb.SupportedCiphersuitesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetCiphersuites()) != 7 {
		t.Fatalf("suites %v, want the 7 of RFC 9420", resp.GetCiphersuites())
	}
}

// TestBadInput: unknown ids and bytes that are not what the RPC expects
// give NotFound and InvalidArgument or FailedPrecondition, and leave the
// state usable.
func TestBadInput(t *testing.T) {
	s := NewService(nil)
	ctx := context.Background()
	g, err := s.CreateGroup(ctx, &mlsclientpb.CreateGroupRequest{GroupId: []byte("g"), CipherSuite: 1, Identity: []byte("alice")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.StateAuth(ctx, &mlsclientpb.StateAuthRequest{StateId: g.GetStateId() + 100})
	wantCode(t, err, codes.NotFound)
	_, err = s.JoinGroup(ctx, &mlsclientpb.JoinGroupRequest{TransactionId: 77, Welcome: []byte{1, 2}})
	wantCode(t, err, codes.NotFound)
	garbage := [][]byte{nil, {0}, {0, 1, 0, 1}, bytes.Repeat([]byte{0xff}, 40)}
	for _, b := range garbage {
		_, err = s.HandleCommit(ctx, &mlsclientpb.HandleCommitRequest{StateId: g.GetStateId(), Commit: b})
		if err == nil {
			t.Fatalf("commit %x accepted", b)
		}
		_, err = s.Unprotect(ctx, &mlsclientpb.UnprotectRequest{StateId: g.GetStateId(), Ciphertext: b})
		if err == nil {
			t.Fatalf("ciphertext %x accepted", b)
		}
		_, err = s.AddProposal(ctx, &mlsclientpb.AddProposalRequest{StateId: g.GetStateId(), KeyPackage: b})
		wantCode(t, err, codes.InvalidArgument)
		_, err = s.ExternalJoin(ctx, &mlsclientpb.ExternalJoinRequest{GroupInfo: b, Identity: []byte("bob")})
		wantCode(t, err, codes.InvalidArgument)
		_, err = s.AddExternalSigner(ctx, &mlsclientpb.AddExternalSignerRequest{StateId: g.GetStateId(), ExternalSender: b})
		wantCode(t, err, codes.InvalidArgument)
	}
	_, err = s.RemoveProposal(ctx, &mlsclientpb.RemoveProposalRequest{StateId: g.GetStateId(), RemovedId: []byte("nobody")})
	wantCode(t, err, codes.InvalidArgument)
	_, err = s.HandlePendingCommit(ctx, &mlsclientpb.HandlePendingCommitRequest{StateId: g.GetStateId()})
	wantCode(t, err, codes.FailedPrecondition)
	// The state still works.
	if _, err := s.Protect(ctx, &mlsclientpb.ProtectRequest{StateId: g.GetStateId(), Plaintext: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Free(ctx, &mlsclientpb.FreeRequest{StateId: g.GetStateId()}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Protect(ctx, &mlsclientpb.ProtectRequest{StateId: g.GetStateId(), Plaintext: []byte("x")})
	wantCode(t, err, codes.NotFound)
}

// TestRunnerDetectsFailures: scripts that must fail do, at the right step:
// a member reading its own message, a member handling a Commit it was not
// meant to see twice, and a Welcome used by a client it does not address.
func TestRunnerDetectsFailures(t *testing.T) {
	ctx := context.Background()
	lb, err := StartLoopback(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	tests := []struct {
		name   string
		script string
		step   int
	}{
		{"own ciphertext", `[
			{"action": "createGroup", "actor": "alice", "members": ["bob"]},
			{"action": "protect", "actor": "alice", "authenticatedData": "", "plaintext": "x"},
			{"action": "unprotect", "actor": "alice", "ciphertext": 1}]`, 2},
		{"commit handled twice", `[
			{"action": "createGroup", "actor": "alice", "members": ["bob"]},
			{"action": "fullCommit", "actor": "alice", "members": ["bob"]},
			{"action": "handleCommit", "actor": "bob", "commit": 1}]`, 2},
		{"welcome not for the joiner", `[
			{"action": "createGroup", "actor": "alice"},
			{"action": "createKeyPackage", "actor": "bob"},
			{"action": "createKeyPackage", "actor": "carol"},
			{"action": "fullCommit", "actor": "alice", "byValue": [{"proposalType": "add", "keyPackage": 1}], "joiners": ["carol"]}]`, 3},
		{"unknown action", `[{"action": "createGroup", "actor": "alice"}, {"action": "dance", "actor": "alice"}]`, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var script Script
			if err := json.Unmarshal([]byte(tc.script), &script); err != nil {
				t.Fatal(err)
			}
			run := &Run{Suite: 1, Actors: Assign(script.Actors(), lb.Clients, 0), Suites: CommonSuites(lb.Clients)}
			err := run.Execute(ctx, script)
			var se *StepError
			if !errors.As(err, &se) || se.Step != tc.step {
				t.Fatalf("got %v, want a failure at step %d", err, tc.step)
			}
		})
	}
}

// TestDeepRandomFile: testdata/interop/deep_random.json is what the
// generator makes (regenerate with mls-interop-driver -generate-deep-random).
func TestDeepRandomFile(t *testing.T) {
	cfg, err := GenerateDeepRandom(DeepRandomSeed, DeepRandomRounds)
	if err != nil {
		t.Fatal(err)
	}
	want, err := MarshalConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(scenarioDir, "deep_random.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("deep_random.json differs from the generator's output; regenerate it")
	}
}

// FuzzExternalSender: the external sender decoder rejects garbage with an
// error and re-encodes what it accepts to the same bytes.
func FuzzExternalSender(f *testing.F) {
	es := mls.ExternalSender{SignatureKey: bytes.Repeat([]byte{7}, 32), Credential: mls.NewBasicCredential([]byte("ds"))}
	seed, err := encodeExternalSender(es)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{0x20, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := decodeExternalSender(b)
		if err != nil {
			return
		}
		again, err := encodeExternalSender(es)
		if err != nil {
			t.Fatalf("re-encoding a decoded sender: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip changed %x into %x", b, again)
		}
	})
}

// FuzzServiceMessages: arbitrary bytes given to the RPCs that decode
// messages are rejected with an error or processed, never crash the
// server, and leave the state usable.
func FuzzServiceMessages(f *testing.F) {
	s := NewService(nil)
	ctx := context.Background()
	g, err := s.CreateGroup(ctx, &mlsclientpb.CreateGroupRequest{GroupId: []byte("g"), CipherSuite: 1, Identity: []byte("alice")})
	if err != nil {
		f.Fatal(err)
	}
	gi, err := s.GroupInfo(ctx, &mlsclientpb.GroupInfoRequest{StateId: g.GetStateId()})
	if err != nil {
		f.Fatal(err)
	}
	kp, err := s.CreateKeyPackage(ctx, &mlsclientpb.CreateKeyPackageRequest{CipherSuite: 1, Identity: []byte("bob")})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(gi.GetGroupInfo())
	f.Add(kp.GetKeyPackage())
	f.Add([]byte{0, 1, 0, 1, 0, 0})
	id := g.GetStateId()
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = s.HandleCommit(ctx, &mlsclientpb.HandleCommitRequest{StateId: id, Commit: b})
		_, _ = s.Unprotect(ctx, &mlsclientpb.UnprotectRequest{StateId: id, Ciphertext: b})
		_, _ = s.ExternalJoin(ctx, &mlsclientpb.ExternalJoinRequest{GroupInfo: b, Identity: []byte("carol")})
		_, _ = s.NewMemberAddProposal(ctx, &mlsclientpb.NewMemberAddProposalRequest{GroupInfo: b, Identity: []byte("dave")})
		_, _ = s.JoinGroup(ctx, &mlsclientpb.JoinGroupRequest{TransactionId: kp.GetTransactionId(), Welcome: b, RatchetTree: b})
		if _, err := s.StateAuth(ctx, &mlsclientpb.StateAuthRequest{StateId: id}); err != nil {
			t.Fatalf("state lost: %v", err)
		}
	})
}
