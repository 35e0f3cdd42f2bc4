//go:build windows

package datastore

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// dirLock is an exclusive lock on a file in the data directory, released by
// the system when the holder exits.
type dirLock struct{ f *os.File }

func lockFile(path string) (*dirLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("datastore: open lock file: %w", err)
	}
	ol := new(windows.Overlapped)
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if err != nil {
		_ = f.Close()
		if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
			return nil, fmt.Errorf("%w (lock %s is held; stop the other conclave daemon first)", ErrLocked, path)
		}
		return nil, fmt.Errorf("datastore: lock %s: %w", path, err)
	}
	return &dirLock{f: f}, nil
}

func (l *dirLock) unlock() error {
	return l.f.Close()
}
