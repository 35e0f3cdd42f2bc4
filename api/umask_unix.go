//go:build unix

package api

import "syscall"

// withUmask runs f with the process umask set to mask. The umask is
// process-wide: files other goroutines create meanwhile get at most the
// stricter mode, never a looser one.
func withUmask(mask int, f func() error) error {
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	return f()
}
