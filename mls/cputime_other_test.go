//go:build !unix

package mls

// processCPUTime is not available here; benchmarks then report zero CPU time.
func processCPUTime() int64 { return 0 }
