// Command mls-interop-driver runs the MLS working group's interop scenarios
// (testdata/interop, in the format of test-config.md) against MLSClient
// gRPC servers and prints a pass/fail line per scenario and cipher suite.
//
// Without -client it starts its own servers (-servers, default 2) on
// loopback, each with its own state, so the scenarios check the engine
// against itself across process-like boundaries. With -client host:port
// (repeatable) it drives running servers, e.g. two mls-interop instances or
// another implementation's interop client.
//
//	mls-interop-driver                          # every scenario, every suite
//	mls-interop-driver -suite 1 -scenario commit,reinit
//	mls-interop-driver -client localhost:50051 -client localhost:50052
//	mls-interop-driver -generate-deep-random testdata/interop/deep_random.json
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/conclave-im/conclave/internal/interop"
	"github.com/conclave-im/conclave/mls"
)

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func main() {
	os.Exit(run())
}

func run() int {
	var clients, scenarios listFlag
	dir := flag.String("dir", filepath.Join("testdata", "interop"), "directory of the scenario files")
	flag.Var(&scenarios, "scenario", "scenario to run (repeatable or comma-separated; default all)")
	suite := flag.Uint("suite", 0, "run only this cipher suite (0: every suite all clients support)")
	flag.Var(&clients, "client", "host:port of an MLSClient server (repeatable; default: start loopback servers)")
	servers := flag.Int("servers", 2, "loopback servers to start when no -client is given")
	timeout := flag.Duration("timeout", 30*time.Minute, "bound on the whole run")
	generate := flag.String("generate-deep-random", "", "write the generated deep_random scenario to this file and exit")
	flag.Parse()

	if *generate != "" {
		return writeDeepRandom(*generate)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	var pool []*interop.Client
	if len(clients) == 0 {
		lb, err := interop.StartLoopback(ctx, *servers)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer lb.Close()
		pool = lb.Clients
	} else {
		for _, addr := range clients {
			c, err := interop.Dial(ctx, addr)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			defer c.Close()
			pool = append(pool, c.Client)
		}
	}
	names := interop.Scenarios
	if len(scenarios) > 0 {
		names = nil
		for _, s := range scenarios {
			names = append(names, strings.Split(s, ",")...)
		}
	}
	suites := interop.CommonSuites(pool)
	if *suite != 0 {
		if !slices.Contains(suites, uint32(*suite)) {
			fmt.Fprintf(os.Stderr, "suite %d is not supported by every client\n", *suite)
			return 2
		}
		suites = []uint32{uint32(*suite)}
	}
	fmt.Printf("clients: %d (%s), suites: %v\n", len(pool), clientNames(pool), suites)

	passed, total := 0, 0
	for _, name := range names {
		cfg, err := interop.LoadConfig(filepath.Join(*dir, name+".json"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		for _, cs := range suites {
			start := time.Now()
			outcomes := interop.RunScenario(ctx, name, cfg, pool, cs, interop.RunOptions{})
			failed := interop.Failed(outcomes)
			verdict := "PASS"
			if len(failed) > 0 {
				verdict = "FAIL"
			} else {
				passed++
			}
			total++
			fmt.Printf("%s  %-18s suite %d %-52s %3d/%d runs  %v\n", verdict, name, cs, mls.CipherSuite(cs),
				len(outcomes)-len(failed), len(outcomes), time.Since(start).Round(time.Millisecond))
			for _, o := range failed {
				fmt.Printf("      %s/%s %s shift %d: %v\n", o.Scenario, o.Script, o.Mode(), o.Shift, o.Err)
			}
		}
	}
	fmt.Printf("scenarios x suites passed: %d/%d\n", passed, total)
	if passed != total {
		return 1
	}
	return 0
}

func clientNames(pool []*interop.Client) string {
	names := make([]string, len(pool))
	for i, c := range pool {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

func writeDeepRandom(path string) int {
	cfg, err := interop.GenerateDeepRandom(interop.DeepRandomSeed, interop.DeepRandomRounds)
	if err == nil {
		var b []byte
		if b, err = interop.MarshalConfig(cfg); err == nil {
			err = os.WriteFile(path, b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
