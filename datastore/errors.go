package datastore

import (
	"errors"
	"fmt"
)

// Sentinel errors for errors.Is.
var (
	// ErrNotFound: the requested record does not exist.
	ErrNotFound = errors.New("datastore: not found")
	// ErrExists: the record to create already exists.
	ErrExists = errors.New("datastore: already exists")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("datastore: store is closed")
	// ErrWrongPassphrase: the passphrase does not unwrap the data key. Nothing
	// was changed.
	ErrWrongPassphrase = errors.New("datastore: wrong passphrase")
	// ErrPassphraseRequired: the store's data key is wrapped by a passphrase
	// and none was given.
	ErrPassphraseRequired = errors.New("datastore: the store is protected by a passphrase; none was given")
	// ErrNoPassphraseSet: a passphrase was given but the store keeps its data
	// key in a key file. Open without a passphrase, then ChangePassphrase.
	ErrNoPassphraseSet = errors.New("datastore: a passphrase was given but the store has none (open without one, then use ChangePassphrase)")
	// ErrKeyMismatch: the key file does not belong to this store.
	ErrKeyMismatch = errors.New("datastore: key file does not match the store")
	// ErrLocked: another process (or another Store in this process) has the
	// data directory open.
	ErrLocked = errors.New("datastore: data directory is in use by another process")
	// ErrCorrupt: a record or the store metadata cannot be read. Errors that
	// match it are *CorruptRecordError or *UnreadableStoreError.
	ErrCorrupt = errors.New("datastore: corrupt data")
	// ErrEpochConflict: an epoch transition or state update does not follow
	// from the stored epoch. Errors that match it are *EpochConflictError.
	ErrEpochConflict = errors.New("datastore: epoch conflict")
	// ErrSchemaVersion: the store was written with a schema version this
	// build cannot read. Errors that match it are *UnreadableStoreError.
	ErrSchemaVersion = errors.New("datastore: unsupported schema version")
	// ErrReadOnly: a write to a store opened with Options.ReadOnly.
	ErrReadOnly = errors.New("datastore: store is open read-only")
	// ErrInvalidArgument: a caller passed a value that cannot be stored.
	ErrInvalidArgument = errors.New("datastore: invalid argument")
)

// CorruptRecordError names a record whose stored value could not be read:
// truncated, garbled, moved from another key, or sealed under another key.
type CorruptRecordError struct {
	Key    string // the record's datastore key
	Record string // what the record is, e.g. "group state"
	Err    error  // the underlying reason
}

func (e *CorruptRecordError) Error() string {
	return fmt.Sprintf("datastore: %s record %s is corrupt: %v (restore the data directory from a backup; `conclave` refuses to use a store with damaged records)", e.Record, e.Key, e.Err)
}

// Unwrap returns the reason.
func (e *CorruptRecordError) Unwrap() error { return e.Err }

// Is reports ErrCorrupt.
func (e *CorruptRecordError) Is(target error) bool { return target == ErrCorrupt }

// UnreadableStoreError is returned by Open for a store it refuses to use, with
// the steps that recover from it.
type UnreadableStoreError struct {
	Dir      string // the data directory, empty for an in-memory store
	Reason   string // what is wrong
	Recovery string // what the operator can do
	Err      error  // the underlying cause, if any
}

func (e *UnreadableStoreError) Error() string {
	where := e.Dir
	if where == "" {
		where = "(in memory)"
	}
	msg := fmt.Sprintf("datastore: cannot open store %s: %s", where, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Recovery != "" {
		msg += ". To recover: " + e.Recovery
	}
	return msg
}

// Unwrap returns the cause.
func (e *UnreadableStoreError) Unwrap() error { return e.Err }

// Is reports ErrCorrupt, or ErrSchemaVersion when the cause is a version
// mismatch.
func (e *UnreadableStoreError) Is(target error) bool {
	return target == ErrCorrupt && !errors.Is(e.Err, ErrSchemaVersion)
}

// EpochConflictError reports a group write whose epoch does not follow from
// the stored one.
type EpochConflictError struct {
	GroupID []byte
	Stored  uint64 // the epoch on disk
	Want    uint64 // the epoch the write expected to find
}

func (e *EpochConflictError) Error() string {
	return fmt.Sprintf("datastore: group %x is at epoch %d on disk, the write expected epoch %d", e.GroupID, e.Stored, e.Want)
}

// Is reports ErrEpochConflict.
func (e *EpochConflictError) Is(target error) bool { return target == ErrEpochConflict }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, args...)...)
}
