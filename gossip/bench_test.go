package gossip

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The benchmarks run real hosts on 127.0.0.1 and compare Conclave's layer
// (envelope, validator, rate limiter, backpressure, scoring, resource
// limits) with plain go-libp2p-pubsub on the same kind of hosts, the same
// topology and the same signing policy (StrictNoSign, content-hash IDs).
// Use a fixed iteration count, since each run builds its own hosts:
//
//	go test -run '^$' -bench 'Gossip' -benchtime 500x -count 3 ./gossip/
//
// BenchmarkGossipPaired is the one to compare the two sides with: on a
// shared machine, load from other programs changes from one benchmark to
// the next, so it runs both networks at once and alternates messages
// between them, and its ratios are meaningful where separate runs are not.

const benchPayload = 256

// benchSide is one way of moving messages: Conclave's or raw pubsub's.
type benchSide struct {
	publish func(ctx context.Context, data []byte) error
	next    []func(ctx context.Context) ([]byte, error) // one per receiver
}

// topology connects host i to i+1 and i+3 (mod n): every host has about
// four neighbours, so messages cross several hops on the larger networks.
func topology(n int) [][2]int {
	var edges [][2]int
	seen := make(map[[2]int]bool)
	for i := 0; i < n; i++ {
		for _, d := range []int{1, 3} {
			j := (i + d) % n
			e := [2]int{min(i, j), max(i, j)}
			if i != j && !seen[e] {
				seen[e] = true
				edges = append(edges, e)
			}
		}
	}
	return edges
}

func conclaveSide(b *testing.B, hosts int, tweak func(*Config)) benchSide {
	nets := newNets(b, hosts, tweak)
	for _, e := range topology(hosts) {
		connect(b, nets[e[0]], nets[e[1]])
	}
	gid := []byte("bench-group")
	groups := make([]*Group, hosts)
	for i, n := range nets {
		g, err := n.Join(gid)
		if err != nil {
			b.Fatal(err)
		}
		groups[i] = g
	}
	ctx := testCtx(b, 30*time.Second)
	for _, g := range groups {
		if err := g.WaitMesh(ctx, min(hosts-1, 2)); err != nil {
			b.Fatal(err)
		}
	}
	side := benchSide{publish: func(ctx context.Context, data []byte) error {
		return groups[0].Publish(ctx, KindGroupMessage, data)
	}}
	for _, g := range groups[1:] {
		side.next = append(side.next, func(ctx context.Context) ([]byte, error) {
			m, err := g.Next(ctx)
			return m.Payload, err
		})
	}
	return side
}

// graftWaiter is the only tracer on the raw side: it lets the benchmark
// wait for the mesh, as Conclave's side does, at the cost of one atomic add
// per graft.
type graftWaiter struct {
	sentCounter
	grafts atomic.Int64
}

func (g *graftWaiter) Graft(peer.ID, string) { g.grafts.Add(1) }

// rawSide builds plain pubsub hosts. queues gives them Conclave's queue
// sizes; validate registers a minimal inline validator (parse the
// envelope), which isolates the cost of having any validator at all:
// without one, pubsub skips its validation pipeline.
func rawSide(b *testing.B, hosts int, queues, validate bool) benchSide {
	var opts []pubsub.Option
	if queues {
		// Conclave's queue sizes, so that the comparison measures the
		// layer rather than the configuration.
		var pc PubsubConfig
		pc.setDefaults()
		opts = append(opts, pubsub.WithPeerOutboundQueueSize(pc.PeerOutboundQueue), pubsub.WithValidateQueueSize(pc.ValidateQueue))
	}
	hs := make([]host.Host, hosts)
	subs := make([]*pubsub.Subscription, hosts)
	tracers := make([]*graftWaiter, hosts)
	var topic0 *pubsub.Topic
	for i := range hs {
		tracers[i] = &graftWaiter{}
		h, ps := newRawPubsub(b, false, append(slices.Clone(opts), pubsub.WithRawTracer(tracers[i]))...)
		if validate {
			err := ps.RegisterTopicValidator(Topic([]byte("bench-group")), func(_ context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
				if _, err := ParseEnvelope(m.Data, 1<<20); err != nil {
					return pubsub.ValidationReject
				}
				return pubsub.ValidationAccept
			}, pubsub.WithValidatorInline(true))
			if err != nil {
				b.Fatal(err)
			}
		}
		t, err := ps.Join(Topic([]byte("bench-group")))
		if err != nil {
			b.Fatal(err)
		}
		var subOpts []pubsub.SubOpt
		if queues {
			subOpts = append(subOpts, pubsub.WithBufferSize(4096))
		}
		if subs[i], err = t.Subscribe(subOpts...); err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			topic0 = t
		}
		hs[i] = h
	}
	ctx := testCtx(b, 30*time.Second)
	for _, e := range topology(hosts) {
		if err := hs[e[0]].Connect(ctx, peer.AddrInfo{ID: hs[e[1]].ID(), Addrs: hs[e[1]].Addrs()}); err != nil {
			b.Fatal(err)
		}
	}
	for _, tr := range tracers {
		if err := eventually(ctx, func() bool { return tr.grafts.Load() >= int64(min(hosts-1, 2)) }); err != nil {
			b.Fatal("raw mesh did not form")
		}
	}
	side := benchSide{publish: func(ctx context.Context, data []byte) error { return topic0.Publish(ctx, data) }}
	for _, s := range subs[1:] {
		side.next = append(side.next, func(ctx context.Context) ([]byte, error) {
			m, err := s.Next(ctx)
			if err != nil {
				return nil, err
			}
			if env, err := ParseEnvelope(m.Data, len(m.Data)); err == nil {
				return env.Body, nil
			}
			return m.Data, nil
		})
	}
	return side
}

// benchMessage carries a sequence number and the send time.
func benchMessage(seq int) []byte {
	b := make([]byte, benchPayload)
	binary.BigEndian.PutUint64(b, uint64(seq))
	binary.BigEndian.PutUint64(b[8:], uint64(time.Now().UnixNano()))
	return b
}

// wrapRaw gives raw pubsub the same bytes on the wire as Conclave (an
// envelope around the payload) so both move identical message sizes.
func wrapRaw(p []byte) []byte {
	b, _ := Envelope{Kind: KindGroupMessage, Body: p}.Marshal()
	return b
}

// receivers runs one goroutine per receiver, calling got for every message.
func receivers(ctx context.Context, side benchSide, got func(r int, payload []byte)) *sync.WaitGroup {
	var wg sync.WaitGroup
	for r, next := range side.next {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p, err := next(ctx)
				if err != nil {
					return
				}
				got(r, p)
			}
		}()
	}
	return &wg
}

// benchLatency publishes one message at a time and waits until every host
// has it: publish-to-delivery latency without queueing.
func benchLatency(b *testing.B, side benchSide, raw bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	arrived := make(chan struct{}, len(side.next)*4)
	wg := receivers(ctx, side, func(_ int, p []byte) {
		d := time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(p[8:]))))
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
		arrived <- struct{}{}
	})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg := benchMessage(i)
		if raw {
			msg = wrapRaw(msg)
		}
		if err := side.publish(ctx, msg); err != nil {
			b.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		for range side.next {
			select {
			case <-arrived:
			case <-wctx.Done():
				b.Fatalf("message %d not delivered everywhere", i)
			}
		}
		wcancel()
	}
	b.StopTimer()
	cancel()
	wg.Wait()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// benchThroughput publishes b.N messages back to back and measures the
// time until every host has all of them (or 30 s pass); it reports
// messages per second and how many deliveries were lost.
func benchThroughput(b *testing.B, side benchSide, raw bool) (lost int64) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var received atomic.Int64
	want := int64(b.N * len(side.next))
	all := make(chan struct{})
	wg := receivers(ctx, side, func(int, []byte) {
		if received.Add(1) == want {
			close(all)
		}
	})
	start := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg := benchMessage(i)
		if raw {
			msg = wrapRaw(msg)
		}
		if err := side.publish(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	wg.Wait()
	lost = want - received.Load()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(lost), "lost")
	return lost
}

func BenchmarkGossip(b *testing.B) {
	for _, hosts := range []int{3, 10, 30} {
		b.Run(fmt.Sprintf("latency/hosts=%d/conclave", hosts), func(b *testing.B) {
			benchLatency(b, conclaveSide(b, hosts, nil), false)
		})
		b.Run(fmt.Sprintf("latency/hosts=%d/raw", hosts), func(b *testing.B) {
			benchLatency(b, rawSide(b, hosts, true, false), true)
		})
		b.Run(fmt.Sprintf("latency/hosts=%d/raw+validator", hosts), func(b *testing.B) {
			benchLatency(b, rawSide(b, hosts, true, true), true)
		})
		b.Run(fmt.Sprintf("throughput/hosts=%d/conclave", hosts), func(b *testing.B) {
			benchThroughput(b, conclaveSide(b, hosts, nil), false)
		})
		b.Run(fmt.Sprintf("throughput/hosts=%d/raw", hosts), func(b *testing.B) {
			benchThroughput(b, rawSide(b, hosts, true, false), true)
		})
		b.Run(fmt.Sprintf("throughput/hosts=%d/raw+validator", hosts), func(b *testing.B) {
			benchThroughput(b, rawSide(b, hosts, true, true), true)
		})
	}
}

// BenchmarkGossipPaired builds a Conclave network and a raw pubsub network
// of the same size side by side and publishes on them in turn, one message
// at a time, each delivered everywhere before the next. Both sides see the
// same load, so the ratios (Conclave's percentile over raw's) compare them
// fairly on a busy machine. cpu-µs/msg is the process's CPU time while a
// message was in flight, summed over all hosts: what the layer costs, and
// what turns into queueing when the cores are busy.
func BenchmarkGossipPaired(b *testing.B) {
	for _, hosts := range []int{3, 10, 30} {
		b.Run(fmt.Sprintf("latency/hosts=%d", hosts), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sides := []*probe{
				newProbe(ctx, conclaveSide(b, hosts, nil), false),
				newProbe(ctx, rawSide(b, hosts, true, false), true),
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Alternate which side goes first, so that neither always
				// runs in the other's wake (its garbage, its cold caches).
				for k := range sides {
					sides[(i+k)%2].once(b, ctx, i)
				}
			}
			b.StopTimer()
			c, r := sides[0], sides[1]
			for _, q := range []struct {
				name string
				pct  int
			}{{"p50", 50}, {"p99", 99}} {
				cq, rq := c.percentile(q.pct), r.percentile(q.pct)
				b.ReportMetric(float64(cq.Microseconds()), "conclave-"+q.name+"-µs")
				b.ReportMetric(float64(rq.Microseconds()), "raw-"+q.name+"-µs")
				b.ReportMetric(float64(cq)/float64(rq), q.name+"-ratio")
			}
			if c.cpu > 0 && r.cpu > 0 {
				b.ReportMetric(float64(c.cpu.Microseconds())/float64(b.N), "conclave-cpu-µs/msg")
				b.ReportMetric(float64(r.cpu.Microseconds())/float64(b.N), "raw-cpu-µs/msg")
			}
		})

		// Throughput: b.N messages per side, in bursts of pairedBurst
		// published back to back, the sides taking turns burst by burst.
		b.Run(fmt.Sprintf("throughput/hosts=%d", hosts), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sides := []*probe{
				newProbe(ctx, conclaveSide(b, hosts, nil), false),
				newProbe(ctx, rawSide(b, hosts, true, false), true),
			}
			// The median burst of each side: a burst slowed down by a
			// neighbour's compile job says nothing about either side.
			var rates [2][]float64
			b.ResetTimer()
			for sent, turn := 0, 0; sent < b.N; sent, turn = sent+pairedBurst, turn+1 {
				n := min(pairedBurst, b.N-sent)
				for k := range sides {
					i := (turn + k) % 2
					rates[i] = append(rates[i], float64(n)/sides[i].burst(b, ctx, sent, n).Seconds())
				}
			}
			b.StopTimer()
			c, r := median(rates[0]), median(rates[1])
			b.ReportMetric(c, "conclave-msgs/s")
			b.ReportMetric(r, "raw-msgs/s")
			b.ReportMetric(c/r, "throughput-ratio")
			if cc, rc := sides[0].cpu, sides[1].cpu; cc > 0 && rc > 0 {
				b.ReportMetric(float64(cc.Microseconds())/float64(b.N), "conclave-cpu-µs/msg")
				b.ReportMetric(float64(rc.Microseconds())/float64(b.N), "raw-cpu-µs/msg")
			}
		})
	}
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// pairedBurst is the burst size of the paired throughput benchmark: large
// enough to fill the pipelines, small enough that both sides take turns
// often under changing load.
const pairedBurst = 50

// burst publishes n messages back to back, starting at sequence number
// seq, and returns the time until every receiver has all of them.
func (p *probe) burst(b *testing.B, ctx context.Context, seq, n int) time.Duration {
	start, cpu := time.Now(), processCPU()
	for i := range n {
		msg := benchMessage(seq + i)
		if p.raw {
			msg = wrapRaw(msg)
		}
		if err := p.side.publish(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for range n * len(p.side.next) {
		select {
		case <-p.arrived:
		case <-wctx.Done():
			b.Fatalf("burst at %d not delivered everywhere", seq)
		}
	}
	p.cpu += processCPU() - cpu
	return time.Since(start)
}

// BenchmarkLayerAblation attributes Conclave's latency overhead at 10
// hosts: the paired latency measurement against raw pubsub, with scoring
// off on Conclave's side, and against raw pubsub running a minimal inline
// validator (which isolates the cost of gossipsub's validation pipeline).
//
//	go test -run '^$' -bench 'LayerAblation' -benchtime 800x -count 2 ./gossip/
func BenchmarkLayerAblation(b *testing.B) {
	const hosts = 10
	variants := []struct {
		name          string
		tweak         func(*Config)
		rawValidating bool
	}{
		{"conclave-vs-raw", nil, false},
		{"noscoring-vs-raw", func(c *Config) { c.Pubsub.DisableScoring = true }, false},
		{"conclave-vs-raw+validator", nil, true},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sides := []*probe{
				newProbe(ctx, conclaveSide(b, hosts, v.tweak), false),
				newProbe(ctx, rawSide(b, hosts, true, v.rawValidating), true),
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for k := range sides {
					sides[(i+k)%2].once(b, ctx, i)
				}
			}
			b.StopTimer()
			c, r := sides[0], sides[1]
			b.ReportMetric(float64(c.percentile(50))/float64(r.percentile(50)), "p50-ratio")
			if c.cpu > 0 && r.cpu > 0 {
				b.ReportMetric(float64(c.cpu)/float64(r.cpu), "cpu-ratio")
			}
		})
	}
}

// probe measures one side of a paired benchmark.
type probe struct {
	side    benchSide
	raw     bool
	arrived chan time.Duration
	lat     []time.Duration
	cpu     time.Duration
}

func newProbe(ctx context.Context, side benchSide, raw bool) *probe {
	p := &probe{side: side, raw: raw, arrived: make(chan time.Duration, len(side.next)*4)}
	receivers(ctx, side, func(_ int, payload []byte) {
		p.arrived <- time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(payload[8:]))))
	})
	return p
}

// once publishes message seq and waits until every receiver has it.
func (p *probe) once(b *testing.B, ctx context.Context, seq int) {
	cpu := processCPU()
	msg := benchMessage(seq)
	if p.raw {
		msg = wrapRaw(msg)
	}
	if err := p.side.publish(ctx, msg); err != nil {
		b.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for range p.side.next {
		select {
		case d := <-p.arrived:
			p.lat = append(p.lat, d)
		case <-wctx.Done():
			b.Fatalf("message %d not delivered everywhere", seq)
		}
	}
	p.cpu += processCPU() - cpu
}

func (p *probe) percentile(pct int) time.Duration {
	slices.Sort(p.lat)
	return p.lat[len(p.lat)*pct/100]
}

// BenchmarkBurst2000 publishes a burst of 2,000 messages at 10 hosts and
// fails if any delivery is lost; raw pubsub with its default 32-message
// queues runs alongside to show what the queue sizing and backpressure fix.
func BenchmarkBurst2000(b *testing.B) {
	const burst, hosts = 2000, 10
	b.Run("conclave", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			side := conclaveSide(b, hosts, nil)
			b.StartTimer()
			lost := burstOnce(b, side, burst, false)
			if lost != 0 {
				b.Fatalf("lost %d of %d deliveries", lost, burst*(hosts-1))
			}
		}
	})
	b.Run("raw-default-queues", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			side := rawSide(b, hosts, false, false)
			b.StartTimer()
			burstOnce(b, side, burst, true)
		}
	})
}

// burstOnce publishes burst messages back to back and reports the loss.
func burstOnce(b *testing.B, side benchSide, burst int, raw bool) int64 {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var received atomic.Int64
	want := int64(burst * len(side.next))
	all := make(chan struct{})
	wg := receivers(ctx, side, func(int, []byte) {
		if received.Add(1) == want {
			close(all)
		}
	})
	start := time.Now()
	for i := 0; i < burst; i++ {
		msg := benchMessage(i)
		if raw {
			msg = wrapRaw(msg)
		}
		if err := side.publish(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(20 * time.Second):
	}
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	lost := want - received.Load()
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(100*float64(lost)/float64(want), "lost-%")
	b.ReportMetric(elapsed.Seconds()*1000, "burst-ms")
	return lost
}
