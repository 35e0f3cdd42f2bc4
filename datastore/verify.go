package datastore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// validators decode a record payload of each kind, to check its structure.
var validators = map[kind]func([]byte) error{
	kindIdentity:     func(p []byte) error { _, err := unmarshalIdentity(p); return err },
	kindKeyPackage:   func(p []byte) error { _, err := unmarshalKeyPackage(p); return err },
	kindGroupState:   func(p []byte) error { _, err := unmarshalGroupState(p); return err },
	kindEpochSecrets: func(p []byte) error { _, err := unmarshalEpochSecrets(p); return err },
	kindRatchetKey:   func(p []byte) error { _, err := unmarshalRatchetKey(p); return err },
	kindDecision:     func(p []byte) error { _, err := unmarshalDecision(p); return err },
	kindAcceptor:     func(p []byte) error { _, err := unmarshalAcceptor(p); return err },
	kindLogEntry:     func(p []byte) error { _, err := unmarshalLogEntry(p); return err },
	kindLogIndex:     func(p []byte) error { _, err := unmarshalLogIndex(p); return err },
	kindHistory:      func(p []byte) error { _, err := unmarshalHistoryEntry(p); return err },
	kindOutbox:       func(p []byte) error { _, err := unmarshalOutboxItem(p); return err },
	kindContact:      func(p []byte) error { _, err := unmarshalContact(p); return err },
	kindSyncCursor:   func(p []byte) error { _, err := unmarshalSyncCursor(p); return err },
}

// VerifyReport is the result of Store.Verify.
type VerifyReport struct {
	Records int                   // records checked
	Damaged []*CorruptRecordError // records that do not open or decode
}

// Verify reads every record in the store and reports those that are
// damaged: unknown keys, values that fail authentication (truncated,
// garbled, moved) and payloads that do not decode.
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	if err := s.enter(); err != nil {
		return VerifyReport{}, err
	}
	defer s.life.RUnlock()
	return s.verify(ctx, true)
}

// bulkNamespaces are skipped by the check at Open unless Options.VerifyAll:
// they grow with traffic and time, and a damaged entry there is reported
// when read.
var bulkNamespaces = []string{nsLog, nsLogID, nsHistory, nsDecision}

func (s *Store) verify(ctx context.Context, all bool) (VerifyReport, error) {
	var rep VerifyReport
	check := func(key string, v []byte) (bool, error) {
		if key == metaKey {
			return true, nil
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		rep.Records++
		k, ok := recordKindOf(key)
		if !ok {
			rep.Damaged = append(rep.Damaged, &CorruptRecordError{Key: key, Record: "unknown", Err: errors.New("key outside the schema's layout")})
			return true, nil
		}
		p, err := s.keys.open(k, key, v)
		if err == nil {
			err = validators[k](p)
		}
		if err != nil {
			rep.Damaged = append(rep.Damaged, &CorruptRecordError{Key: key, Record: k.String(), Err: err})
		}
		return true, nil
	}
	if all || s.pdb == nil {
		err := s.scan(ctx, span{prefix: "/"}, func(key string, v []byte) (bool, error) {
			if !all && inBulkNamespace(key) {
				return true, nil
			}
			return check(key, v)
		})
		return rep, err
	}
	// On Pebble, skip the bulk namespaces without reading them: Open's cost
	// must not grow with years of history. Every other record is checked, and
	// a seek per namespace finds keys outside the layout.
	it, err := s.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte("/"), UpperBound: []byte("0")})
	if err != nil {
		return rep, fmt.Errorf("datastore: iterate: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; {
		key := string(it.Key())
		if ns, bulk := bulkNamespaceOf(key); bulk {
			ok = it.SeekGE(prefixEnd(ns))
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return rep, fmt.Errorf("datastore: read %s: %w", key, err)
		}
		if _, err := check(key, v); err != nil {
			return rep, err
		}
		ok = it.Next()
	}
	if err := it.Error(); err != nil {
		return rep, fmt.Errorf("datastore: iterate: %w", err)
	}
	return rep, nil
}

func inBulkNamespace(key string) bool {
	_, ok := bulkNamespaceOf(key)
	return ok
}

func bulkNamespaceOf(key string) (string, bool) {
	for _, ns := range bulkNamespaces {
		if strings.HasPrefix(key, ns) {
			return ns, true
		}
	}
	return "", false
}

// verifyOnOpen refuses a store whose critical records are damaged, rather
// than letting the node start without, say, one of its groups.
func (s *Store) verifyOnOpen(ctx context.Context, all bool) error {
	rep, err := s.verify(ctx, all)
	if err != nil {
		return fmt.Errorf("datastore: verify: %w", err)
	}
	if len(rep.Damaged) == 0 {
		return nil
	}
	names := make([]string, 0, 3)
	for i, d := range rep.Damaged {
		if i == 3 {
			names = append(names, fmt.Sprintf("and %d more", len(rep.Damaged)-3))
			break
		}
		names = append(names, fmt.Sprintf("%s record %s (%v)", d.Record, d.Key, d.Err))
	}
	return s.unreadable(fmt.Sprintf("%d of %d records are damaged: %s", len(rep.Damaged), rep.Records, strings.Join(names, "; ")), rep.Damaged[0])
}
