package node

import (
	"bytes"
	"context"
	"time"

	"github.com/conclave-im/conclave/datastore"
)

// retentionInterval is how often a running node enforces the retention
// window (profile Delivery.CiphertextRetention and RetentionBytes) on what
// it keeps to serve catch-up.
const retentionInterval = time.Hour

// enforceRetention trims, in the background, each group's stored
// ciphertexts to the retention window and deletes decided Commits older
// than it. A member away longer than the window catches up on Commits from
// whoever still has them; messages older than the window are gone for it,
// which is the profile's promise (docs/profile.md).
func (n *Node) enforceRetention(now time.Time) {
	if now.Sub(n.st.lastRetention) < retentionInterval {
		return
	}
	n.st.lastRetention = now
	d := n.prof.Delivery
	cutoff := now.Add(-d.CiphertextRetention)
	var gids [][]byte
	for _, g := range n.st.groups {
		if !g.inactive {
			gids = append(gids, bytes.Clone(g.id))
		}
	}
	n.goAsync(func(ctx context.Context) {
		for _, gid := range gids {
			if err := n.trimGroup(ctx, gid, cutoff, d.RetentionBytes); err != nil {
				n.log.Warn("retention not enforced", "group", gid, "err", err)
			}
		}
	})
}

// trimGroup enforces the window on one group.
func (n *Node) trimGroup(ctx context.Context, gid []byte, cutoff time.Time, maxBytes int64) error {
	if _, err := n.store.MessageLog().Trim(ctx, gid, datastore.Retention{Before: cutoff, MaxBytes: maxBytes}); err != nil {
		return err
	}
	// Decisions are in epoch order, and so in decision time order: find the
	// first one inside the window.
	const page = 256
	var from, newestOld uint64
	for {
		ds, err := n.store.Groups().Decisions(ctx, gid, from, page)
		if err != nil {
			return err
		}
		for _, dec := range ds {
			if !dec.DecidedAt.Before(cutoff) {
				return n.pruneDecisions(ctx, gid, dec.Epoch)
			}
			newestOld = dec.Epoch
		}
		if len(ds) < page {
			// Every decision is older than the window; keep the newest so
			// that a member one epoch behind can still catch up.
			return n.pruneDecisions(ctx, gid, newestOld)
		}
		from = ds[len(ds)-1].Epoch + 1
	}
}

func (n *Node) pruneDecisions(ctx context.Context, gid []byte, before uint64) error {
	if before == 0 {
		return nil
	}
	return n.store.Groups().PruneDecisions(ctx, gid, before)
}
