//go:build unix

package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The benchmarks of the goals, as a user meets them: whole
// processes of the built binary against daemons running as separate
// processes. Each reports the median besides the mean (ns/op), since one
// slow outlier on a shared machine moves the mean a lot.
//
//	go test -run '^$' -bench . -benchtime 20x ./cmd/conclave/

type durations []time.Duration

func (d durations) report(b *testing.B) {
	if len(d) == 0 {
		return
	}
	s := slices.Clone(d)
	slices.Sort(s)
	b.ReportMetric(float64(s[len(s)/2].Microseconds())/1000, "median-ms")
}

// BenchmarkSendCLI is `conclave send` end to end, process start to exit,
// in a group of two whose other member is online (goal: under 50 ms once
// the daemon is up).
func BenchmarkSendCLI(b *testing.B) {
	w := twoMembers(b)
	bin := filepath.Join(binary(b), "conclave")
	var d durations
	for b.Loop() {
		start := time.Now()
		cmd := exec.Command(bin, "--home", w.alice, "send", w.group, "a benchmark message")
		cmd.Env = w.env
		out, err := cmd.CombinedOutput()
		d = append(d, time.Since(start))
		if err != nil || !strings.HasPrefix(string(out), "sent ") {
			b.Fatalf("send: %v\n%s", err, out)
		}
	}
	d.report(b)
}

// BenchmarkDaemonStart is `conclave daemon` on an existing data directory
// (an identity, KeyPackages, a group of two with history), from process
// start to the ready line (goal: under 1 s). Stopping is not timed.
func BenchmarkDaemonStart(b *testing.B) {
	w := twoMembers(b)
	w.sh("conclave --home " + w.alice + " send " + w.group + " some history")
	w.aliceProc.stop(b)
	var d durations
	for b.Loop() {
		start := time.Now()
		p := startDaemon(b, w.env, "conclave --home "+w.alice+" daemon")
		d = append(d, time.Since(start))
		b.StopTimer()
		p.stop(b)
		b.StartTimer()
	}
	d.report(b)
}

// BenchmarkChatFirstScreen is `conclave chat` in a pseudo-terminal, from
// process start to the first screen with the group and its scrollback
// drawn (goal: under 200 ms). Quitting is not timed.
func BenchmarkChatFirstScreen(b *testing.B) {
	w := twoMembers(b)
	w.sh("conclave --home " + w.alice + " send " + w.group + " the newest line")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var d durations
	for b.Loop() {
		c := startPtyChat(b, w.env, w.alice)
		c.waitScreen(ctx, "the first screen", func(s string) bool {
			return strings.Contains(s, "conclave chat · group "+w.group[:8]) && strings.Contains(s, "<you> the newest line")
		})
		d = append(d, time.Since(c.started))
		b.StopTimer()
		c.quit(ctx)
		b.StartTimer()
	}
	d.report(b)
}
