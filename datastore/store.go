package datastore

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"
	pebbleds "github.com/ipfs/go-ds-pebble"
)

// Backend selects the datastore under the typed stores.
type Backend int

const (
	// BackendPebble keeps the store in embedded Pebble under Options.Dir. The
	// default.
	BackendPebble Backend = iota
	// BackendMemory keeps the store in memory, for tests. Every Open of it
	// starts empty.
	BackendMemory
)

func (b Backend) String() string {
	switch b {
	case BackendPebble:
		return "pebble"
	case BackendMemory:
		return "memory"
	default:
		return fmt.Sprintf("backend(%d)", int(b))
	}
}

// Files in the data directory.
const (
	pebbleDirName = "pebble"
	keyFileName   = "datastore.key"
	lockFileName  = "datastore.lock"
)

// Options configure Open.
type Options struct {
	// Dir is the node's data directory (created 0700 if missing). It holds
	// pebble/ (the database), datastore.key (the data key when there is no
	// passphrase) and datastore.lock. Required for BackendPebble; ignored by
	// BackendMemory.
	Dir string
	// Backend chooses Pebble (default) or memory.
	Backend Backend
	// Passphrase, when non-empty, wraps the data key with a key derived by
	// Argon2id; the store then cannot be opened without it. When empty, the
	// data key is kept in Dir/datastore.key (mode 0600), or, for a memory
	// store, only in memory.
	Passphrase []byte
	// KDF sets the Argon2id parameters for a new store or a new passphrase.
	// The zero value is DefaultKDFParams. An existing store uses the
	// parameters it was created with.
	KDF KDFParams
	// VerifyAll makes Open check every record, message log and history
	// included. Open always checks the metadata and every record that the node
	// needs to run (identity, KeyPackages, groups, consensus, outbox,
	// contacts).
	VerifyAll bool
	// ReadOnly opens an existing Pebble store without writing to it (for
	// inspection and verification): every write returns ErrReadOnly.
	ReadOnly bool
	// Logger receives the store's log lines; nil means slog.Default().
	Logger *slog.Logger

	// datastore, set only by this package's tests, replaces the backend so
	// that a test can reopen the same in-memory datastore or inspect it.
	datastore ds.Batching
}

// Store is an open datastore. Its methods are safe for concurrent use.
type Store struct {
	dir     string
	ds      ds.Batching
	pdb     *pebble.DB // set for BackendPebble: range reads and compaction
	closer  func() error
	lock    *dirLock
	keys    *keys
	dataKey []byte // kept to rewrap it on ChangePassphrase
	meta    meta
	kdf     KDFParams
	log     *slog.Logger
	ro      bool // opened with Options.ReadOnly

	life   sync.RWMutex // held for reading by every operation, for writing by Close
	closed bool

	groupMu sync.Mutex // serializes group-state writes (epoch checks then batch)
	seqMu   sync.Mutex // guards nextSeq and outbox IDs
	nextSeq map[string]uint64
}

// Open opens the store described by opts, creating it if the backend is
// empty. It refuses, with an *UnreadableStoreError saying how to recover, a
// store whose metadata or critical records it cannot read or whose schema
// version it does not know; with ErrWrongPassphrase a wrong passphrase; with
// ErrLocked a data directory that another process has open. A refused Open
// writes nothing.
func Open(ctx context.Context, opts Options) (*Store, error) {
	s := &Store{dir: opts.Dir, kdf: opts.KDF.orDefault(), log: opts.Logger, ro: opts.ReadOnly, nextSeq: map[string]uint64{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	if err := s.kdf.validate(); err != nil {
		return nil, invalidf("KDF parameters: %v", err)
	}
	if err := s.openBackend(opts); err != nil {
		return nil, err
	}
	if err := s.loadOrCreate(ctx, opts); err != nil {
		s.release()
		return nil, err
	}
	if err := s.verifyOnOpen(ctx, opts.VerifyAll); err != nil {
		s.release()
		return nil, err
	}
	return s, nil
}

func (s *Store) openBackend(opts Options) error {
	switch {
	case opts.datastore != nil:
		s.ds = opts.datastore
		s.closer = func() error { return nil }
		return nil
	case opts.ReadOnly && (opts.Backend != BackendPebble || opts.datastore != nil):
		return invalidf("only a Pebble store can be opened read-only")
	case opts.Backend == BackendMemory:
		// Nothing of a memory store outlives it, so it keeps no files: its
		// data key lives in memory only, unless a passphrase wraps it.
		s.dir = ""
		m := dssync.MutexWrap(ds.NewMapDatastore())
		s.ds = m
		s.closer = m.Close
		return nil
	case opts.Backend == BackendPebble:
		if opts.Dir == "" {
			return invalidf("the Pebble backend needs Options.Dir")
		}
		pdir := filepath.Join(opts.Dir, pebbleDirName)
		if opts.ReadOnly {
			if _, err := os.Stat(pdir); err != nil {
				return fmt.Errorf("datastore: no store to open read-only in %s: %w", opts.Dir, ErrNotFound)
			}
		} else if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return fmt.Errorf("datastore: create data directory: %w", err)
		}
		if info, err := os.Stat(opts.Dir); err == nil && info.Mode().Perm()&0o077 != 0 {
			s.log.Warn("datastore: data directory is accessible to other users; chmod 700 it", "dir", opts.Dir, "mode", info.Mode().Perm().String())
		}
		lock, err := lockFile(filepath.Join(opts.Dir, lockFileName))
		if err != nil {
			return err
		}
		po := &pebble.Options{Logger: pebbleLogger{s.log}, ReadOnly: opts.ReadOnly}
		// Bloom filters (10 bits per key, all levels) make a lookup of an
		// absent key, such as the duplicate check of every message-log
		// append, skip the tables that cannot hold it.
		po.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
		p, err := pebbleds.NewDatastore(pdir, pebbleds.WithPebbleOpts(po), pebbleds.WithCacheSize(64<<20))
		if err != nil {
			_ = lock.unlock()
			return &UnreadableStoreError{
				Dir:      opts.Dir,
				Reason:   "the Pebble database does not open",
				Recovery: fmt.Sprintf("restore %s from a backup; or move it aside and start with an empty data directory (the node must then be invited to its groups again)", pdir),
				Err:      err,
			}
		}
		s.ds, s.pdb, s.lock = p, p.DB, lock
		s.closer = p.Close
		return nil
	default:
		return invalidf("unknown backend %v", opts.Backend)
	}
}

// release closes the backend and drops the directory lock.
func (s *Store) release() error {
	err := s.closer()
	if s.lock != nil {
		err = errors.Join(err, s.lock.unlock())
	}
	return err
}

const metaKey = "/meta"

func (s *Store) loadOrCreate(ctx context.Context, opts Options) error {
	raw, err := s.ds.Get(ctx, ds.RawKey(metaKey))
	if errors.Is(err, ds.ErrNotFound) {
		empty, err := s.isEmpty(ctx)
		if err != nil {
			return err
		}
		if !empty {
			return s.unreadable("the metadata record is missing but the store holds records", nil)
		}
		if s.ro {
			return fmt.Errorf("%w: there is no store to open read-only in %s", ErrNotFound, s.dir)
		}
		return s.create(ctx, opts)
	}
	if err != nil {
		return fmt.Errorf("datastore: read metadata: %w", err)
	}
	m, err := unmarshalMeta(raw)
	if errors.Is(err, ErrSchemaVersion) {
		return &UnreadableStoreError{
			Dir:      s.dir,
			Reason:   "unsupported schema version",
			Recovery: fmt.Sprintf("run the Conclave release that wrote this store (schema %d), or a newer one that migrates it; this build reads schema %d", m.Version, SchemaVersion),
			Err:      err,
		}
	}
	if err != nil {
		return s.unreadable("the metadata record is corrupt", err)
	}
	dataKey, err := s.recoverDataKey(m, opts)
	if err != nil {
		return err
	}
	ks, err := deriveKeys(dataKey)
	if err != nil {
		return err
	}
	s.keys, s.meta, s.dataKey = ks, m, dataKey
	if m.Mode == keyModePassphrase && s.dir != "" && !s.ro {
		// A key file beside a passphrase store is left over from a
		// ChangePassphrase interrupted by a crash; it must not outlive it.
		path := filepath.Join(s.dir, keyFileName)
		if _, err := os.Stat(path); err == nil {
			s.log.Warn("datastore: removing a key file left beside a passphrase-protected store", "path", path)
			if err := shredFile(path); err != nil {
				return fmt.Errorf("datastore: remove stale key file: %w", err)
			}
		}
	}
	return nil
}

func (s *Store) unreadable(reason string, err error) error {
	return &UnreadableStoreError{
		Dir:      s.dir,
		Reason:   reason,
		Recovery: "restore the data directory from a backup; or move it aside and start with an empty one (the node must then be invited to its groups again). Store.Verify lists every damaged record",
		Err:      err,
	}
}

func (s *Store) isEmpty(ctx context.Context) (bool, error) {
	res, err := s.ds.Query(ctx, dsq.Query{KeysOnly: true, Limit: 1})
	if err != nil {
		return false, fmt.Errorf("datastore: scan: %w", err)
	}
	entries, err := res.Rest()
	if err != nil {
		return false, fmt.Errorf("datastore: scan: %w", err)
	}
	return len(entries) == 0, nil
}

// dataKey recovers the data key of an existing store.
func (s *Store) recoverDataKey(m meta, opts Options) ([]byte, error) {
	switch m.Mode {
	case keyModePassphrase:
		if len(opts.Passphrase) == 0 {
			return nil, ErrPassphraseRequired
		}
		return unwrapKey(m.WrappedKey, opts.Passphrase, m.KDF, m.Salt, m.StoreID)
	case keyModeFile:
		if len(opts.Passphrase) != 0 {
			return nil, ErrNoPassphraseSet
		}
		if s.dir == "" {
			return nil, s.unreadable("the data key is in a key file but Options.Dir is empty", nil)
		}
		path := filepath.Join(s.dir, keyFileName)
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, &UnreadableStoreError{
				Dir:      s.dir,
				Reason:   "the key file cannot be read",
				Recovery: fmt.Sprintf("restore %s from a backup; without it the store's records cannot be decrypted", path),
				Err:      err,
			}
		}
		kf, err := unmarshalKeyFile(raw)
		if err != nil {
			return nil, &UnreadableStoreError{
				Dir:      s.dir,
				Reason:   "the key file is damaged",
				Recovery: fmt.Sprintf("restore %s from a backup; without it the store's records cannot be decrypted", path),
				Err:      err,
			}
		}
		if !bytes.Equal(kf.StoreID, m.StoreID) || !hmac.Equal(keyCheck(kf.Key, m.StoreID), m.KeyCheck) {
			return nil, fmt.Errorf("%w: %s was made for another store", ErrKeyMismatch, path)
		}
		return kf.Key, nil
	default:
		return nil, s.unreadable("the store's data key was never saved (it was an in-memory store)", nil)
	}
}

// create initializes an empty backend: a random store ID and data key, the
// key file or the passphrase wrapping, then the metadata record (synced).
// The key file is written first, so a crash in between leaves an empty store
// that the next Open initializes again.
func (s *Store) create(ctx context.Context, opts Options) error {
	m := meta{Version: SchemaVersion, StoreID: make([]byte, 16)}
	dataKey := make([]byte, dataKeySize)
	_, _ = rand.Read(m.StoreID)
	_, _ = rand.Read(dataKey)
	if err := s.protectKey(&m, dataKey, opts.Passphrase, opts.Backend == BackendMemory || opts.datastore != nil); err != nil {
		return err
	}
	if err := s.ds.Put(ctx, ds.RawKey(metaKey), m.marshal()); err != nil {
		return fmt.Errorf("datastore: write metadata: %w", err)
	}
	if err := s.ds.Sync(ctx, ds.RawKey("/")); err != nil {
		return fmt.Errorf("datastore: sync metadata: %w", err)
	}
	ks, err := deriveKeys(dataKey)
	if err != nil {
		return err
	}
	s.keys, s.meta, s.dataKey = ks, m, dataKey
	s.log.Info("datastore: created store", "dir", s.dir, "schema", SchemaVersion, "passphrase", m.Mode == keyModePassphrase)
	return nil
}

// protectKey fills in m's key mode: wrapped by the passphrase, written to the
// key file, or (for a memory store without a directory) kept nowhere.
func (s *Store) protectKey(m *meta, dataKey, passphrase []byte, memory bool) error {
	m.KDF, m.Salt, m.WrappedKey, m.KeyCheck = KDFParams{}, nil, nil, nil
	switch {
	case len(passphrase) != 0:
		m.Mode, m.KDF, m.Salt = keyModePassphrase, s.kdf, make([]byte, 16)
		_, _ = rand.Read(m.Salt)
		w, err := wrapKey(dataKey, passphrase, m.KDF, m.Salt, m.StoreID)
		if err != nil {
			return err
		}
		m.WrappedKey = w
		return nil
	case s.dir != "":
		m.Mode, m.KeyCheck = keyModeFile, keyCheck(dataKey, m.StoreID)
		kf := keyFile{StoreID: m.StoreID, Key: dataKey}
		if err := writeFileAtomic(filepath.Join(s.dir, keyFileName), kf.marshal(), 0o600); err != nil {
			return fmt.Errorf("datastore: write key file: %w", err)
		}
		return nil
	case memory:
		m.Mode, m.KeyCheck = keyModeEphemeral, keyCheck(dataKey, m.StoreID)
		return nil
	default:
		return invalidf("a store without a passphrase needs Options.Dir for its key file")
	}
}

// ChangePassphrase rewraps the data key: under a new passphrase, or, when
// passphrase is empty, into the key file (which needs a data directory).
// Records are not re-encrypted: the data key stays the same. Switching from
// a key file to a passphrase overwrites and removes the key file after the
// new metadata is synced.
func (s *Store) ChangePassphrase(ctx context.Context, passphrase []byte) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	if s.ro {
		return ErrReadOnly
	}
	dataKey, old := s.dataKey, s.meta
	m := meta{Version: old.Version, StoreID: old.StoreID}
	if err := s.protectKey(&m, dataKey, passphrase, false); err != nil {
		return err
	}
	s.groupMu.Lock() // one metadata writer at a time
	defer s.groupMu.Unlock()
	if err := s.ds.Put(ctx, ds.RawKey(metaKey), m.marshal()); err != nil {
		return fmt.Errorf("datastore: write metadata: %w", err)
	}
	if err := s.ds.Sync(ctx, ds.RawKey("/")); err != nil {
		return fmt.Errorf("datastore: sync metadata: %w", err)
	}
	s.meta = m
	if old.Mode == keyModeFile && m.Mode == keyModePassphrase {
		if err := shredFile(filepath.Join(s.dir, keyFileName)); err != nil {
			return fmt.Errorf("datastore: passphrase set, but removing the old key file failed: %w", err)
		}
	}
	return nil
}
