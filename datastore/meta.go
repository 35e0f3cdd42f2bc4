package datastore

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
)

// SchemaVersion is the layout version this build writes and reads. Record
// keys live under "/v<SchemaVersion>/"; the metadata record at "/meta" says
// which version a store holds. See docs/storage.md for the migration path.
const SchemaVersion = 1

var (
	metaMagic    = []byte("CNCLVDS\x00")
	keyFileMagic = []byte("CNCLVKEY")
	castagnoli   = crc32.MakeTable(crc32.Castagnoli)
)

// keyMode says where a store's data key lives.
type keyMode uint8

const (
	// keyModeFile: the data key is in the key file beside the store.
	keyModeFile keyMode = 1
	// keyModePassphrase: the data key is wrapped in the metadata by a key
	// derived from a passphrase with Argon2id.
	keyModePassphrase keyMode = 2
	// keyModeEphemeral: the data key was never stored (an in-memory store);
	// the store cannot be reopened.
	keyModeEphemeral keyMode = 3
)

// meta is the one unsealed record: everything Open needs before it has the
// data key. It ends with a CRC-32C so that damage is told from a wrong key.
type meta struct {
	Version    uint16
	StoreID    []byte // 16 random bytes
	Mode       keyMode
	KDF        KDFParams
	Salt       []byte // passphrase mode
	WrappedKey []byte // passphrase mode
	KeyCheck   []byte // key-file and ephemeral modes
}

func (m *meta) marshal() []byte {
	e := encoder{b: append([]byte{}, metaMagic...)}
	e.u16(m.Version)
	e.bytes(m.StoreID)
	e.u8(uint8(m.Mode))
	e.u32(m.KDF.Time)
	e.u32(m.KDF.MemoryKiB)
	e.u8(m.KDF.Threads)
	e.bytes(m.Salt)
	e.bytes(m.WrappedKey)
	e.bytes(m.KeyCheck)
	e.u32(crc32.Checksum(e.b, castagnoli))
	return e.b
}

// unmarshalMeta reads the metadata record. A version other than
// SchemaVersion is reported with ErrSchemaVersion before the rest is parsed,
// since another version may lay the record out differently.
func unmarshalMeta(p []byte) (meta, error) {
	if len(p) < len(metaMagic)+2+4 || !bytes.Equal(p[:len(metaMagic)], metaMagic) {
		return meta{}, errors.New("not a Conclave datastore metadata record")
	}
	body, sum := p[:len(p)-4], binary.BigEndian.Uint32(p[len(p)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return meta{}, errors.New("metadata checksum mismatch")
	}
	d := decoder{b: body[len(metaMagic):]}
	m := meta{Version: d.u16()}
	if m.Version != SchemaVersion {
		return m, fmt.Errorf("%w: store has schema version %d, this build reads version %d", ErrSchemaVersion, m.Version, SchemaVersion)
	}
	m.StoreID = d.bytes()
	m.Mode = keyMode(d.u8())
	m.KDF = KDFParams{Time: d.u32(), MemoryKiB: d.u32(), Threads: d.u8()}
	m.Salt = d.bytes()
	m.WrappedKey = d.bytes()
	m.KeyCheck = d.bytes()
	if err := d.finish(); err != nil {
		return meta{}, err
	}
	if len(m.StoreID) != 16 {
		return meta{}, fmt.Errorf("store ID has %d bytes, want 16", len(m.StoreID))
	}
	switch m.Mode {
	case keyModePassphrase:
		if err := m.KDF.validate(); err != nil {
			return meta{}, err
		}
		if len(m.Salt) < 16 || len(m.WrappedKey) == 0 || len(m.KeyCheck) != 0 {
			return meta{}, errors.New("passphrase metadata incomplete")
		}
	case keyModeFile, keyModeEphemeral:
		if m.KDF != (KDFParams{}) || len(m.Salt) != 0 || len(m.WrappedKey) != 0 || len(m.KeyCheck) != 32 {
			return meta{}, errors.New("key-file metadata inconsistent")
		}
	default:
		return meta{}, fmt.Errorf("unknown key mode %d", m.Mode)
	}
	return m, nil
}

// keyFile is the 0600 file that holds the data key of a store without a
// passphrase: magic, version, store ID, key, CRC-32C.
type keyFile struct {
	StoreID []byte
	Key     []byte
}

const keyFileVersion = 1

func (k *keyFile) marshal() []byte {
	e := encoder{b: append([]byte{}, keyFileMagic...)}
	e.u16(keyFileVersion)
	e.raw(k.StoreID)
	e.raw(k.Key)
	e.u32(crc32.Checksum(e.b, castagnoli))
	return e.b
}

func unmarshalKeyFile(p []byte) (keyFile, error) {
	want := len(keyFileMagic) + 2 + 16 + dataKeySize + 4
	if len(p) != want || !bytes.Equal(p[:len(keyFileMagic)], keyFileMagic) {
		return keyFile{}, fmt.Errorf("not a Conclave datastore key file (%d bytes)", len(p))
	}
	body, sum := p[:len(p)-4], binary.BigEndian.Uint32(p[len(p)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return keyFile{}, errors.New("key file checksum mismatch")
	}
	d := decoder{b: body[len(keyFileMagic):]}
	if v := d.u16(); v != keyFileVersion {
		return keyFile{}, fmt.Errorf("key file version %d, this build reads version %d", v, keyFileVersion)
	}
	k := keyFile{StoreID: d.fixed(16), Key: d.fixed(dataKeySize)}
	return k, d.finish()
}

// writeFileAtomic writes data to path with the given mode through a
// temporary file, fsyncs it and the directory, and renames it into place, so
// a crash leaves either the old file or the new one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// shredFile overwrites a key file with random bytes before removing it. On
// copy-on-write or flash storage the old blocks may survive; docs/storage.md
// says so.
func shredFile(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	junk := make([]byte, info.Size())
	_, _ = rand.Read(junk)
	_, werr := f.WriteAt(junk, 0)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return err
	}
	return os.Remove(path)
}
