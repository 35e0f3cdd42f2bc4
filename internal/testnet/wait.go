package testnet

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/conclave-im/conclave/node"
)

// ErrNotAgreed: a wait for agreement ended before the nodes agreed.
var ErrNotAgreed = errors.New("testnet: the nodes do not agree yet")

// Agreement is a group on which the running nodes that hold it agree.
type Agreement struct {
	Group GroupView `json:"group"`
	// Nodes are the running nodes holding the group (1-based).
	Nodes []int `json:"nodes"`
}

// lookTimeout bounds one look at the nodes' groups.
const lookTimeout = 10 * time.Second

// minGroupPrefix is the shortest group ID prefix WaitAgree takes, as the
// node API.
const minGroupPrefix = 4

// WaitAgree waits until every running node that holds the group (its hex ID
// or a unique prefix of at least 4 digits) is in the same epoch with the
// same epoch authenticator and waits on no membership change of its own;
// that is where a group settles after a partition heals. It rechecks on
// every event of those nodes, so it returns as soon as they agree, and it
// does not hold up other changes to the testnet meanwhile.
func (t *Testnet) WaitAgree(ctx context.Context, group string) (Agreement, error) {
	group = strings.ToLower(strings.TrimSpace(group))
	if _, err := hex.DecodeString(group + strings.Repeat("0", len(group)%2)); err != nil || len(group) < minGroupPrefix {
		return Agreement{}, inputErr("%q is not a group ID (hex, at least %d digits)", group, minGroupPrefix)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return Agreement{}, ErrNotRunning
	}
	type running struct {
		index int
		node  *node.Node
	}
	var nodes []running
	for _, m := range t.nodes {
		if m.node != nil {
			nodes = append(nodes, running{m.index, m.node})
		}
	}
	t.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed := make(chan struct{}, 1)
	for _, r := range nodes {
		events, stop, err := r.node.Subscribe(ctx)
		if err != nil {
			continue // stopped meanwhile: it holds nothing any more
		}
		go func() {
			defer stop()
			for {
				select {
				case <-events:
					select {
					case changed <- struct{}{}:
					default:
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}

	if t.opts.waitHook != nil {
		t.opts.waitHook()
	}
	var id string // the full group ID, once resolved
	var last string
	for {
		// Each look completes even past the wait's deadline, so that a
		// wait that ends says where the nodes stand.
		lookCtx, endLook := context.WithTimeout(context.WithoutCancel(ctx), lookTimeout)
		views := map[int]GroupView{}
		for _, r := range nodes {
			gs, err := r.node.Groups(lookCtx)
			if errors.Is(err, node.ErrClosed) {
				continue // stopped meanwhile: it holds nothing any more
			}
			if err != nil {
				endLook()
				return Agreement{}, notAgreed(group, last, err)
			}
			for _, g := range gs {
				gid := hex.EncodeToString(g.GroupID)
				if !g.Active || !strings.HasPrefix(gid, group) {
					continue
				}
				if id == "" {
					id = gid
				} else if gid != id {
					endLook()
					return Agreement{}, inputErr("group prefix %q is ambiguous: %s and %s", group, id, gid)
				}
				views[r.index] = viewOf(g)
			}
		}
		endLook()
		if id == "" {
			return Agreement{}, inputErr("no running node holds group %s", group)
		}
		if a, ok := agreement(views); ok {
			return a, nil
		}
		last = describeViews(views)
		select {
		case <-changed:
		case <-ctx.Done():
			return Agreement{}, notAgreed(id, last, ctx.Err())
		}
	}
}

func notAgreed(group, where string, err error) error {
	if where == "" {
		where = "not looked at yet"
	}
	return fmt.Errorf("%w on group %s (%s): %w", ErrNotAgreed, group, where, err)
}

func viewOf(g node.GroupStatus) GroupView {
	gv := GroupView{ID: hex.EncodeToString(g.GroupID), Epoch: g.Epoch,
		EpochAuthenticator: hex.EncodeToString(g.EpochAuthenticator), Members: len(g.Members)}
	for _, p := range g.Pending {
		gv.Pending = append(gv.Pending, PendingView{Desc: p.Desc, Since: p.Since, Waiting: p.Waiting})
	}
	return gv
}

// agreement reports whether the views agree: one epoch, one authenticator,
// nothing pending.
func agreement(views map[int]GroupView) (Agreement, bool) {
	var a Agreement
	for i, v := range views {
		if len(v.Pending) > 0 {
			return Agreement{}, false
		}
		if len(a.Nodes) > 0 && (v.Epoch != a.Group.Epoch || v.EpochAuthenticator != a.Group.EpochAuthenticator) {
			return Agreement{}, false
		}
		a.Group = v
		a.Nodes = append(a.Nodes, i)
	}
	slices.Sort(a.Nodes)
	return a, len(a.Nodes) > 0
}

// describeViews says where each node stands, for the error when a wait
// ends without agreement.
func describeViews(views map[int]GroupView) string {
	var idx []int
	for i := range views {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	var parts []string
	for _, i := range idx {
		v := views[i]
		s := fmt.Sprintf("node%d at epoch %d", i, v.Epoch)
		if len(v.Pending) > 0 {
			s += fmt.Sprintf(" waiting on %s: %s", v.Pending[0].Desc, v.Pending[0].Waiting)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
