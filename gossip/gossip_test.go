package gossip

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

func TestGroupDelivery(t *testing.T) {
	nets := newNets(t, 3, nil)
	connect(t, nets[0], nets[1])
	connect(t, nets[1], nets[2])
	gid := []byte("delivery-group")
	groups := make([]*Group, len(nets))
	for i, n := range nets {
		g, err := n.Join(gid)
		if err != nil {
			t.Fatal(err)
		}
		groups[i] = g
	}
	ctx := testCtx(t, 30*time.Second)
	for i, g := range groups {
		want := 1
		if i == 1 {
			want = 2
		}
		if err := g.WaitMesh(ctx, want); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nets[0].Join(gid); err == nil {
		t.Fatal("joining a group twice succeeded")
	}

	large := make([]byte, 300<<10) // above the 256 KiB gossip limit: sent by reference
	rand.Read(large)
	type sentMsg struct {
		kind    Kind
		payload []byte
	}
	sent := []sentMsg{
		{KindGroupMessage, []byte("hello group")},
		{KindConsensus, []byte("proposal")},
		{KindGroupMessage, large},
	}
	for _, s := range sent {
		if err := groups[0].Publish(ctx, s.kind, s.payload); err != nil {
			t.Fatal(err)
		}
	}
	// Both other hosts, one of them two hops away, receive everything
	// with the large payload resolved. Gossip does not promise order
	// (validation runs concurrently), so match by content.
	for i, g := range groups[1:] {
		pending := slices.Clone(sent)
		for len(pending) > 0 {
			m, err := nextRemote(ctx, g)
			if err != nil {
				t.Fatalf("host %d: %v (%d messages missing)", i+1, err, len(pending))
			}
			k := slices.IndexFunc(pending, func(s sentMsg) bool { return s.kind == m.Kind && bytes.Equal(s.payload, m.Payload) })
			if k < 0 || !bytes.Equal(m.GroupID, gid) {
				t.Fatalf("host %d got an unexpected %v of %d bytes", i+1, m.Kind, len(m.Payload))
			}
			pending = slices.Delete(pending, k, k+1)
		}
	}
	// The publisher sees its own messages marked Local.
	m, err := groups[0].Next(ctx)
	if err != nil || !m.Local {
		t.Fatalf("own message: %v, %v", m.Kind, err)
	}

	if err := groups[0].Publish(ctx, KindWelcome, []byte("x")); err == nil {
		t.Fatal("published a stream-only kind on a topic")
	}
	if err := groups[0].Publish(ctx, KindGroupMessage, make([]byte, 17<<20)); err == nil {
		t.Fatal("published a payload above MaxPayloadSize")
	}
	if err := groups[2].Leave(); err != nil {
		t.Fatal(err)
	}
	if _, err := groups[2].Next(ctx); err != ErrClosed {
		t.Fatalf("Next after Leave: %v, want ErrClosed", err)
	}
}

// TestMocknet50 spreads messages over 50 hosts that are each connected to
// only a few others, so delivery depends on gossipsub's mesh forwarding, and
// checks that every subscriber gets every message.
func TestMocknet50(t *testing.T) {
	const hosts, publishers, perPublisher = 50, 5, 4
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	nets := make([]*Network, hosts)
	groups := make([]*Group, hosts)
	gid := []byte("mocknet-group")
	ctx := testCtx(t, 60*time.Second)
	for i := range nets {
		h, err := mn.AddPeer(newKey(t), multiaddr.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 20000+i)))
		if err != nil {
			t.Fatal(err)
		}
		n, err := NewWithHost(ctx, h, Config{
			DisableMDNS: true, DHT: DHTOff,
			Registerer: prometheus.NewRegistry(),
			Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nets[i] = n
		if groups[i], err = n.Join(gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	// A ring with chords: each host dials 3 others, so it has about 6
	// neighbours and the graph's diameter is several hops.
	for i := range nets {
		for _, d := range []int{1, 2, 7} {
			if _, err := mn.ConnectPeers(nets[i].ID(), nets[(i+d)%hosts].ID()); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, g := range groups {
		if err := g.WaitMesh(ctx, 4); err != nil {
			t.Fatal(err)
		}
	}

	want := publishers * perPublisher
	var wg sync.WaitGroup
	errs := make(chan error, hosts)
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := make(map[string]bool)
			for len(seen) < want {
				m, err := g.Next(ctx)
				if err != nil {
					errs <- fmt.Errorf("host %d received %d of %d (%v): %w", i, len(seen), want, seen, err)
					return
				}
				if seen[string(m.Payload)] {
					errs <- fmt.Errorf("host %d received %q twice", i, m.Payload)
					return
				}
				seen[string(m.Payload)] = true
			}
		}()
	}
	for p := 0; p < publishers; p++ {
		for k := 0; k < perPublisher; k++ {
			if err := groups[p*hosts/publishers].Publish(ctx, KindGroupMessage, fmt.Appendf(nil, "msg %d/%d", p, k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		for i, n := range nets {
			mfs, _ := n.cfg.Registerer.(*prometheus.Registry).Gather()
			for _, mf := range mfs {
				if mf.GetName() == "conclave_gossip_drops_total" {
					for _, m := range mf.GetMetric() {
						t.Logf("host %d drops %v %v", i, m.GetLabel()[0].GetValue(), m.GetCounter().GetValue())
					}
				}
			}
		}
	}
	for i, n := range nets {
		for _, r := range []string{DropOutbound, DropSubscriberSlow, DropValidateQueue} {
			if c := dropCount(n, r); c != 0 {
				t.Errorf("host %d dropped %v messages: %s", i, c, r)
			}
		}
	}
}
