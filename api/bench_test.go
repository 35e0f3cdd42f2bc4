package api

import (
	"context"
	"testing"
)

// BenchmarkSendUnix is one `conclave send` as the daemon sees it: a request
// over the Unix socket that stores, encrypts and publishes one message in a
// one-member group (the goal: under 50 ms).
func BenchmarkSendUnix(b *testing.B) {
	n := startNodeTB(b)
	f := serveTB(b, n)
	ctx := context.Background()
	gid, err := f.client.CreateGroup(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.client.Send(ctx, gid, "benchmark message", ""); err != nil {
			b.Fatal(err)
		}
	}
}
