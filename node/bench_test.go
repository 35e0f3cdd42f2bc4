package node

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkDeliver measures send-to-delivered latency: from Send on one
// member until every other member has the message in its event stream, on
// real libp2p hosts over loopback. Reports p50 and p99.
func BenchmarkDeliver(b *testing.B) {
	for _, size := range []int{3, 10} {
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
// has joined, with a group of five members before the invitation.
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
	b.ResetTimer()
	for range b.N {
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
		if err := base[0].Invite(ctx, gid, n.ID()); err != nil {
			b.Fatal(err)
		}
		waitJoined(b, ctx, n, gid)
		b.StopTimer()
		if err := base[0].Remove(ctx, gid, n.ID()); err != nil {
			b.Fatal(err)
		}
		closeNode(b, n.Node)
		b.StartTimer()
	}
}
