//go:build unix

package mls

import "syscall"

// processCPUTime returns the CPU time (user and system) the test process has
// used, in nanoseconds. Benchmarks report it per operation next to wall
// time, because on a machine shared with other work wall time mostly
// measures the wait for a CPU.
func processCPUTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
