//go:build unix

package datastore

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// dirLock is an exclusive advisory lock on a file in the data directory. A
// flock is tied to the open file, so a second Open in the same process is
// refused too, and the kernel releases it when the holder dies, even by
// SIGKILL.
type dirLock struct{ f *os.File }

func lockFile(path string) (*dirLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("datastore: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (lock %s is held; stop the other conclave daemon first)", ErrLocked, path)
		}
		return nil, fmt.Errorf("datastore: lock %s: %w", path, err)
	}
	return &dirLock{f: f}, nil
}

func (l *dirLock) unlock() error {
	return l.f.Close() // closing the descriptor drops the flock
}
