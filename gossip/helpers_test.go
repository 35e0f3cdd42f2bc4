package gossip

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// loopbackAddrs keeps every test host on 127.0.0.1.
var loopbackAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

func newKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// testConfig is a loopback-only config with everything that would reach
// beyond 127.0.0.1 (mDNS, port mapping, relays, the DHT) off; tests turn on
// what they exercise.
func testConfig(t testing.TB) Config {
	return Config{
		Identity:            newKey(t),
		ListenAddrs:         loopbackAddrs,
		DisableMDNS:         true,
		DisablePortMapping:  true,
		DisableAutoRelay:    true,
		DisableHolePunching: true,
		DHT:                 DHTOff,
		Registerer:          prometheus.NewRegistry(),
		Logger:              slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func newNet(t testing.TB, cfg Config) *Network {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func newNets(t testing.TB, count int, tweak func(*Config)) []*Network {
	nets := make([]*Network, count)
	for i := range nets {
		cfg := testConfig(t)
		if tweak != nil {
			tweak(&cfg)
		}
		nets[i] = newNet(t, cfg)
	}
	return nets
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func connect(t testing.TB, a, b *Network) {
	t.Helper()
	if err := a.Connect(testCtx(t, 10*time.Second), b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
}

// nextRemote waits for the next message on g that is not g's own.
func nextRemote(ctx context.Context, g *Group) (Message, error) {
	for {
		m, err := g.Next(ctx)
		if err != nil || !m.Local {
			return m, err
		}
	}
}

func dropCount(n *Network, reason string) float64 {
	var m dto.Metric
	if err := n.metrics.drops.WithLabelValues(reason).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// drops returns every non-zero drop counter of n by reason.
func drops(n *Network) map[string]float64 {
	out := make(map[string]float64)
	ch := make(chan prometheus.Metric, 64)
	go func() { n.metrics.drops.Collect(ch); close(ch) }()
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) == nil && d.GetCounter().GetValue() > 0 {
			out[d.GetLabel()[0].GetValue()] = d.GetCounter().GetValue()
		}
	}
	return out
}

// waitFor waits on a notification channel until cond holds or ctx ends;
// every send on ch prompts a re-check.
func waitFor[T any](ctx context.Context, ch <-chan T, cond func() bool) error {
	for !cond() {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
