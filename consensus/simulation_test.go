package consensus

import (
	"flag"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	flagSeeds  = flag.Int("seeds", 2000, "number of simulation seeds TestSimulation runs")
	flagSeed   = flag.Uint64("seed", 0, "replay this one simulation seed (with its event trace) instead of -seeds")
	flagBroken = flag.String("variant", "correct", "with -seed: run a deliberately broken variant (forget-on-restart, half-quorum, send-before-persist, skip-validation, ignore-promises)")
)

func parseVariant(name string) (variant, error) {
	for v := correct; v <= ignorePromises; v++ {
		if v.String() == name {
			return v, nil
		}
	}
	return correct, fmt.Errorf("unknown variant %q", name)
}

// replayCommand is the one command that reruns a failing seed.
func replayCommand(seed uint64, v variant) string {
	cmd := fmt.Sprintf("go test -count=1 -v -run '^TestSimulation$' ./consensus/ -args -seed %d", seed)
	if v != correct {
		cmd += " -variant " + v.String()
	}
	return cmd
}

// TestSimulation runs the simulator over -seeds seeds (or the one -seed),
// failing on the first seed whose checker reports a violation.
func TestSimulation(t *testing.T) {
	if *flagSeed != 0 {
		v, err := parseVariant(*flagBroken)
		if err != nil {
			t.Fatal(err)
		}
		stats, events, err := runSimulation(simConfig{seed: *flagSeed, variant: v, trace: true})
		for _, e := range events {
			t.Log(e)
		}
		if err != nil {
			t.Fatalf("%v\nreplay: %s", err, replayCommand(*flagSeed, v))
		}
		t.Logf("seed %d: %d epochs decided in %d ticks, %d sends, %d deliveries, %d bytes", *flagSeed, stats.decisions, stats.ticks, stats.sends, stats.deliveries, stats.bytesSent)
		return
	}
	seeds := uint64(*flagSeeds)
	var (
		mu       sync.Mutex
		failures []string
		total    simStats
		wg       sync.WaitGroup
		next     = make(chan uint64)
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range next {
				stats, _, err := runSimulation(simConfig{seed: seed})
				mu.Lock()
				if err != nil {
					failures = append(failures, fmt.Sprintf("%v\n    replay: %s", err, replayCommand(seed, correct)))
				}
				total.decisions += stats.decisions
				total.underFault += stats.underFault
				total.sends += stats.sends
				total.deliveries += stats.deliveries
				total.bytesSent += stats.bytesSent
				total.ticks += stats.ticks
				mu.Unlock()
			}
		}()
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		mu.Lock()
		stop := len(failures) >= 5
		mu.Unlock()
		if stop {
			break
		}
		next <- seed
	}
	close(next)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d failing seeds (first ones shown):\n%s", len(failures), strings.Join(failures, "\n"))
	}
	t.Logf("%d seeds, 0 violations: %d epochs decided (%d while faults were active), %d ticks, %d sends, %d deliveries, %d bytes", seeds, total.decisions, total.underFault, total.ticks, total.sends, total.deliveries, total.bytesSent)
}

// TestCheckerCatchesBrokenVariants runs deliberately broken variants of the
// protocol under the same simulator: the checker must report a violation
// for each within a bounded number of seeds, or it is not checking much.
func TestCheckerCatchesBrokenVariants(t *testing.T) {
	const bound = 500
	for _, v := range []variant{forgetOnRestart, halfQuorum, sendBeforePersist, skipValidation, ignorePromises} {
		t.Run(v.String(), func(t *testing.T) {
			for seed := uint64(1); seed <= bound; seed++ {
				_, _, err := runSimulation(simConfig{seed: seed, variant: v})
				if err != nil {
					t.Logf("caught after %d seeds: %v\n    replay: %s", seed, err, replayCommand(seed, v))
					return
				}
			}
			t.Fatalf("the checker found no violation in %d seeds", bound)
		})
	}
}
