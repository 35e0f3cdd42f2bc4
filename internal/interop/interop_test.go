package interop

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// scenarioDir holds the scenario files in the working group's format.
var scenarioDir = filepath.Join("..", "..", "testdata", "interop")

// TestScenarios runs every scenario for suite 1 against two loopback
// servers: each script with public and private handshake messages, and
// with the actors dealt to the two servers in turn starting with each, so
// that every actor is played by both.
func TestScenarios(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lb, err := StartLoopback(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	for _, name := range Scenarios {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(scenarioDir, name+".json")
			if _, err := os.Stat(path); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			outcomes := RunScenario(ctx, name, cfg, lb.Clients, 1, RunOptions{})
			for _, o := range Failed(outcomes) {
				t.Errorf("%s/%s suite %d %s: %v", o.Scenario, o.Script, o.Suite, o.Mode(), o.Err)
			}
			t.Logf("%d runs in %v", len(outcomes), time.Since(start).Round(time.Millisecond))
		})
	}
}
