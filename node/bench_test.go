package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkDeliver measures send-to-delivered latency: from Send on one
// member until every other member has the message in its event stream, on
// real libp2p hosts over loopback. Reports p50 and p99.
func BenchmarkDeliver(b *testing.B) {
	for _, size := range []int{3, 10, 30} {
		b.Run(fmt.Sprintf("members=%d", size), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			nodes := make([]*testNode, size)
			for i := range nodes {
				nodes[i] = startNode(b, testOptions(""))
			}
			connectAll(b, ctx, nodes...)
			gid, err := nodes[0].CreateGroup(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for _, o := range nodes[1:] {
				if err := nodes[0].Invite(ctx, gid, o.ID()); err != nil {
					b.Fatal(err)
				}
				waitJoined(b, ctx, o, gid)
			}
			waitTopicPeers(b, ctx, gid, nodes...)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				text := fmt.Sprint("m", i)
				sender := nodes[i%size]
				start := time.Now()
				if _, err := sender.Send(ctx, gid, text, nil); err != nil {
					b.Fatal(err)
				}
				for _, r := range nodes {
					if r != sender {
						waitText(b, ctx, r, gid, text)
					}
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkInvite measures an invitation from Invite until the new member
// has joined (ns/op and join-ms), and until it has received the first
// message the inviter sent once Invite returned (first-message-ms; a
// member still in the epoch before the Add sends what the new member can
// never read, as MLS intends), with a
// group of five members before the invitation.
func BenchmarkInvite(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	base := make([]*testNode, 5)
	for i := range base {
		base[i] = startNode(b, testOptions(""))
	}
	connectAll(b, ctx, base...)
	gid, err := base[0].CreateGroup(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, o := range base[1:] {
		if err := base[0].Invite(ctx, gid, o.ID()); err != nil {
			b.Fatal(err)
		}
		waitJoined(b, ctx, o, gid)
	}
	waitTopicPeers(b, ctx, gid, base...)
	var joins, firsts []time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		// Each round invites a fresh node, then removes it, so the group
		// stays at five members.
		n := startNode(b, testOptions(""))
		for _, m := range base {
			if err := n.Connect(ctx, m.AddrInfo()); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		if err := base[0].Invite(ctx, gid, n.ID()); err != nil {
			b.Fatal(err)
		}
		text := fmt.Sprint("welcome ", i)
		if _, err := base[0].Send(ctx, gid, text, nil); err != nil {
			b.Fatal(err)
		}
		waitJoined(b, ctx, n, gid)
		joins = append(joins, time.Since(start))
		b.StopTimer()
		waitText(b, ctx, n, gid, text)
		firsts = append(firsts, time.Since(start))
		if err := base[0].Remove(ctx, gid, n.ID()); err != nil {
			b.Fatal(err)
		}
		closeNode(b, n.Node)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(median(joins), "join-ms")
	b.ReportMetric(median(firsts), "first-message-ms")
}

// median returns the median of ds in milliseconds.
func median(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}

// BenchmarkCatchUp measures a member catching up on missed messages: from
// its connection to a member that kept them until all are in its history.
// -benchtime 1x is one catch-up of catchUpMessages.
func BenchmarkCatchUp(b *testing.B) {
	const catchUpMessages = 10000
	for range b.N {
		b.StopTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		dir := b.TempDir()
		a, c := startNode(b, testOptions("")), startNode(b, testOptions(dir))
		connectAll(b, ctx, a, c)
		gid := formGroup(b, ctx, a, c)
		closeNode(b, c.Node)
		for i := range catchUpMessages {
			if _, err := a.Send(ctx, gid, fmt.Sprint(i), nil); err != nil {
				b.Fatal(err)
			}
		}
		c2 := startNode(b, testOptions(dir))
		last := fmt.Sprint(catchUpMessages - 1)
		b.StartTimer()
		connectAll(b, ctx, c2, a)
		waitText(b, ctx, c2, gid, last)
		b.StopTimer()
		h, err := c2.History(ctx, gid, 2*catchUpMessages)
		if err != nil {
			b.Fatal(err)
		}
		if len(h) != catchUpMessages {
			b.Fatalf("history holds %d entries after catch-up, want %d", len(h), catchUpMessages)
		}
		closeNode(b, a.Node)
		closeNode(b, c2.Node)
		cancel()
	}
}

// BenchmarkIdleMemory reports the resident memory of the test process with
// one started node in 10 groups (each with one other member, whose node
// runs in the same process), after a GC: an upper bound on one idle node.
func BenchmarkIdleMemory(b *testing.B) {
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		a, o := startNode(b, testOptions("")), startNode(b, testOptions(""))
		connectAll(b, ctx, a, o)
		for range 10 {
			formGroup(b, ctx, a, o)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
		if rss, err := residentMB(); err == nil {
			b.ReportMetric(rss, "rss-MB")
		}
		cancel()
	}
}

// residentMB reads VmRSS from /proc (Linux only).
func residentMB() (float64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}
