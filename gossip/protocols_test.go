package gossip

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// testNode implements every handler interface the way a node would, over
// in-memory state.
type testNode struct {
	mu       sync.Mutex
	welcomes [][]byte
	direct   [][]byte
	commits  []CommitRecord
	messages [][]byte
	payloads map[Hash][]byte
}

func (s *testNode) KeyPackage(_ context.Context, _ peer.ID, suite uint16) ([]byte, error) {
	switch suite {
	case 1:
		return []byte("keypackage for suite 1"), nil
	case 99:
		return nil, errors.New("disk on fire")
	}
	return nil, fmt.Errorf("no KeyPackage for suite %d: %w", suite, ErrNotFound)
}

func (s *testNode) HandleWelcome(_ context.Context, _ peer.ID, groupID, welcome []byte) error {
	if bytes.Equal(groupID, []byte("refused")) {
		return fmt.Errorf("not expecting a Welcome: %w", ErrBadRequest)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.welcomes = append(s.welcomes, welcome)
	return nil
}

// CommitsSince deliberately ignores the limit, as a careless handler
// might; the Network trims the page.
func (s *testNode) CommitsSince(_ context.Context, _ peer.ID, req CommitsRequest) (CommitsResponse, error) {
	var out CommitsResponse
	for _, c := range s.commits {
		if c.Epoch >= req.SinceEpoch {
			out.Commits = append(out.Commits, c)
		}
	}
	return out, nil
}

// MessagesSince uses the cursor as a one-byte index.
func (s *testNode) MessagesSince(_ context.Context, _ peer.ID, req MessagesRequest) (MessagesResponse, error) {
	start := 0
	if len(req.Cursor) == 1 {
		start = int(req.Cursor[0])
	}
	end := min(start+int(req.Limit), len(s.messages))
	return MessagesResponse{Messages: s.messages[start:end], Next: []byte{byte(end)}, More: end < len(s.messages)}, nil
}

func (s *testNode) HandleDirect(_ context.Context, _ peer.ID, _, payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.direct = append(s.direct, payload)
	return nil
}

func (s *testNode) Payload(_ context.Context, _ peer.ID, h Hash) ([]byte, error) {
	if p, ok := s.payloads[h]; ok {
		return p, nil
	}
	return nil, ErrNotFound
}

func (s *testNode) handlers() Handlers {
	return Handlers{KeyPackages: s, Welcomes: s, Sync: s, Direct: s, Payloads: s}
}

func TestDirectProtocols(t *testing.T) {
	node := &testNode{payloads: make(map[Hash][]byte)}
	for e := uint64(1); e <= 10; e++ {
		node.commits = append(node.commits, CommitRecord{Epoch: e, Commit: fmt.Appendf(nil, "commit %d", e), Certificate: []byte("cert")})
	}
	for i := 0; i < 5; i++ {
		node.messages = append(node.messages, fmt.Appendf(nil, "ciphertext %d", i))
	}
	big := bytes.Repeat([]byte("x"), 3<<20)
	bigHash := Hash(sha256.Sum256(big))
	node.payloads[bigHash] = big
	liar := Hash{0xaa}
	node.payloads[liar] = []byte("bytes that do not hash to 0xaa...")

	server := newNet(t, func() Config { c := testConfig(t); c.Handlers = node.handlers(); return c }())
	bare := newNet(t, testConfig(t))
	client := newNet(t, testConfig(t))
	connect(t, client, server)
	connect(t, client, bare)
	ctx := testCtx(t, 30*time.Second)
	gid := []byte("group")

	t.Run("keypackage", func(t *testing.T) {
		kp, err := client.FetchKeyPackage(ctx, server.ID(), 1)
		if err != nil || string(kp) != "keypackage for suite 1" {
			t.Fatalf("got %q, %v", kp, err)
		}
		if _, err := client.FetchKeyPackage(ctx, server.ID(), 2); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing suite: %v", err)
		}
		var re *RemoteError
		_, err = client.FetchKeyPackage(ctx, server.ID(), 99)
		if !errors.As(err, &re) || re.Code != CodeInternal || re.Message != "internal error" {
			t.Fatalf("handler failure: %v (internal details must not leak)", err)
		}
	})
	t.Run("welcome", func(t *testing.T) {
		if err := client.SendWelcome(ctx, server.ID(), gid, []byte("welcome!")); err != nil {
			t.Fatal(err)
		}
		if err := client.SendWelcome(ctx, server.ID(), []byte("refused"), []byte("w")); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("refused welcome: %v", err)
		}
		if err := client.SendWelcome(ctx, server.ID(), gid, make([]byte, protoWelcome.maxRequest)); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("oversized welcome: %v", err)
		}
		node.mu.Lock()
		defer node.mu.Unlock()
		if len(node.welcomes) != 1 || string(node.welcomes[0]) != "welcome!" {
			t.Fatalf("server got %q", node.welcomes)
		}
	})
	t.Run("sync commits", func(t *testing.T) {
		resp, err := client.FetchCommits(ctx, server.ID(), CommitsRequest{GroupID: gid, SinceEpoch: 4, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Commits) != 3 || resp.Commits[0].Epoch != 4 || !resp.More {
			t.Fatalf("page: %d commits from epoch %d, more %v", len(resp.Commits), resp.Commits[0].Epoch, resp.More)
		}
		resp, err = client.FetchCommits(ctx, server.ID(), CommitsRequest{GroupID: gid, SinceEpoch: 9})
		if err != nil || len(resp.Commits) != 2 || resp.More {
			t.Fatalf("last page: %+v, %v", resp, err)
		}
	})
	t.Run("sync messages", func(t *testing.T) {
		var all [][]byte
		var cursor []byte
		for {
			resp, err := client.FetchMessages(ctx, server.ID(), MessagesRequest{GroupID: gid, Cursor: cursor, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, resp.Messages...)
			cursor = resp.Next
			if !resp.More {
				break
			}
		}
		if len(all) != 5 || string(all[4]) != "ciphertext 4" {
			t.Fatalf("got %q", all)
		}
	})
	t.Run("direct", func(t *testing.T) {
		if err := client.SendDirect(ctx, server.ID(), gid, []byte("vote")); err != nil {
			t.Fatal(err)
		}
		node.mu.Lock()
		defer node.mu.Unlock()
		if len(node.direct) != 1 || string(node.direct[0]) != "vote" {
			t.Fatalf("server got %q", node.direct)
		}
	})
	t.Run("payload", func(t *testing.T) {
		p, err := client.FetchPayload(ctx, server.ID(), bigHash)
		if err != nil || !bytes.Equal(p, big) {
			t.Fatalf("got %d bytes, %v", len(p), err)
		}
		if _, err := client.FetchPayload(ctx, server.ID(), Hash{1}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown hash: %v", err)
		}
		if _, err := client.FetchPayload(ctx, server.ID(), liar); !errors.Is(err, ErrMalformed) {
			t.Fatalf("payload not matching its hash: %v", err)
		}
	})
	t.Run("not served", func(t *testing.T) {
		if _, err := client.FetchKeyPackage(ctx, bare.ID(), 1); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("keypackage from a node without a provider: %v", err)
		}
		if err := client.SendDirect(ctx, bare.ID(), gid, nil); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("direct to a node without a handler: %v", err)
		}
	})
	t.Run("bad arguments", func(t *testing.T) {
		if err := client.SendDirect(ctx, server.ID(), nil, []byte("x")); err == nil {
			t.Fatal("empty group id accepted")
		}
		if _, err := client.FetchMessages(ctx, server.ID(), MessagesRequest{GroupID: gid, Cursor: make([]byte, maxCursorLen+1)}); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("long cursor: %v", err)
		}
	})
}

func TestFitCommits(t *testing.T) {
	var r CommitsResponse
	for e := uint64(0); e < 100; e++ {
		r.Commits = append(r.Commits, CommitRecord{Epoch: e, Commit: make([]byte, 1000)})
	}
	b := fitCommits(r, 50, 10_000)
	var got CommitsResponse
	if err := got.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if len(b) > 10_000 || !got.More || len(got.Commits) == 0 || got.Commits[0].Epoch != 0 {
		t.Fatalf("%d bytes, %d commits, more %v", len(b), len(got.Commits), got.More)
	}
}
