package datastore

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	ds "github.com/ipfs/go-datastore"
)

// The key layout (schema version 1). One namespace per subsystem under
// "/v1/"; identifiers are blinded (keys.blindID); numbers are fixed-width
// lowercase hex so that key order is numeric order. docs/storage.md has the
// table.
//
//	/meta                                    metadata (unsealed)
//	/v1/identity                             Identity
//	/v1/keypackage/<ref>                     KeyPackage
//	/v1/group/<g>/state                      GroupState
//	/v1/group/<g>/secrets/<epoch>            epoch secrets
//	/v1/group/<g>/keys/<epoch>/<leaf>/<gen>  RatchetKey
//	/v1/consensus/<g>/<epoch>                consensus acceptor state
//	/v1/decision/<g>/<epoch>                 Decision
//	/v1/log/<g>/<seq>                        LogEntry
//	/v1/logid/<g>/<message id>               message-log index
//	/v1/history/<g>/<seq>                    HistoryEntry
//	/v1/outbox/<id>                          OutboxItem
//	/v1/contact/<peer>                       Contact
//	/v1/cursor/<g>/<peer>                    SyncCursor
const root = "/v1/"

const (
	nsIdentity   = root + "identity"
	nsKeyPackage = root + "keypackage/"
	nsGroup      = root + "group/"
	nsConsensus  = root + "consensus/"
	nsDecision   = root + "decision/"
	nsLog        = root + "log/"
	nsLogID      = root + "logid/"
	nsHistory    = root + "history/"
	nsOutbox     = root + "outbox/"
	nsContact    = root + "contact/"
	nsSyncCursor = root + "cursor/"
)

func hex64(v uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return hex.EncodeToString(b[:])
}

func hex32(v uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return hex.EncodeToString(b[:])
}

func parseHex64(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("key component %q is not 16 hex digits", s)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return 0, fmt.Errorf("key component %q: %w", s, err)
	}
	return binary.BigEndian.Uint64(b), nil
}

func (ks *keys) group(g []byte) string { return ks.blindID("group", g) }

func (ks *keys) keyPackageKey(ref []byte) string {
	return nsKeyPackage + ks.blindID("keypackage", ref)
}

func groupPrefix(bg string) string           { return nsGroup + bg + "/" }
func stateKey(bg string) string              { return groupPrefix(bg) + "state" }
func secretsPrefix(bg string) string         { return groupPrefix(bg) + "secrets/" }
func secretsKey(bg string, e uint64) string  { return secretsPrefix(bg) + hex64(e) }
func ratchetPrefix(bg string) string         { return groupPrefix(bg) + "keys/" }
func decisionPrefix(bg string) string        { return nsDecision + bg + "/" }
func decisionKey(bg string, e uint64) string { return decisionPrefix(bg) + hex64(e) }
func consensusPrefix(bg string) string       { return nsConsensus + bg + "/" }
func acceptorKey(bg string, e uint64) string { return consensusPrefix(bg) + hex64(e) }
func outboxKey(id uint64) string             { return nsOutbox + hex64(id) }

func ratchetKeyKey(bg string, id KeyID) string {
	return ratchetPrefix(bg) + hex64(id.Epoch) + "/" + hex32(id.Leaf) + "/" + hex32(id.Generation)
}

func (ks *keys) contactKey(peer []byte) string { return nsContact + ks.blindID("contact", peer) }

func (ks *keys) logIndexKey(bg string, messageID []byte) string {
	return nsLogID + bg + "/" + ks.blindID("message", messageID)
}

// recordKindOf tells which kind of record a key holds, from its shape.
func recordKindOf(key string) (kind, bool) {
	if !strings.HasPrefix(key, root) {
		return 0, false
	}
	parts := strings.Split(key[len(root):], "/")
	switch {
	case len(parts) == 1 && parts[0] == "identity":
		return kindIdentity, true
	case len(parts) == 2 && parts[0] == "keypackage":
		return kindKeyPackage, true
	case len(parts) == 3 && parts[0] == "group" && parts[2] == "state":
		return kindGroupState, true
	case len(parts) == 4 && parts[0] == "group" && parts[2] == "secrets":
		return kindEpochSecrets, true
	case len(parts) == 6 && parts[0] == "group" && parts[2] == "keys":
		return kindRatchetKey, true
	case len(parts) == 3 && parts[0] == "decision":
		return kindDecision, true
	case len(parts) == 3 && parts[0] == "consensus":
		return kindAcceptor, true
	case len(parts) == 3 && parts[0] == "log":
		return kindLogEntry, true
	case len(parts) == 3 && parts[0] == "logid":
		return kindLogIndex, true
	case len(parts) == 3 && parts[0] == "history":
		return kindHistory, true
	case len(parts) == 2 && parts[0] == "outbox":
		return kindOutbox, true
	case len(parts) == 2 && parts[0] == "contact":
		return kindContact, true
	case len(parts) == 3 && parts[0] == "cursor":
		return kindSyncCursor, true
	}
	return 0, false
}

func dsKey(key string) ds.Key { return ds.RawKey(key) }
