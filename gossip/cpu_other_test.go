//go:build !unix

package gossip

import "time"

// processCPU is not measured on this platform; benchmarks then report no
// CPU figures.
func processCPU() time.Duration { return 0 }
