package testnet

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ParseSides parses sides as the CLI takes them: one argument per side,
// node numbers separated by commas ("1,2" "3,4,5"). It checks only the
// syntax; Partition checks the numbers against the testnet.
func ParseSides(args []string) ([][]int, error) {
	if len(args) == 0 {
		return nil, inputErr("no sides: give each side as comma-separated node numbers, e.g. 1,2 3,4,5")
	}
	var sides [][]int
	for _, a := range args {
		var side []int
		for f := range strings.SplitSeq(a, ",") {
			f = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(f), "node"))
			if f == "" {
				continue
			}
			i, err := strconv.Atoi(f)
			if err != nil {
				return nil, inputErr("side %q: %q is not a node number", a, f)
			}
			side = append(side, i)
		}
		if len(side) == 0 {
			return nil, inputErr("side %q names no node", a)
		}
		sides = append(sides, side)
	}
	return sides, nil
}

// normalizeSides checks sides against a testnet of n nodes and returns them
// sorted, with the nodes no side names gathered into one more side. Every
// node must be on exactly one side and there must be at least two.
func normalizeSides(sides [][]int, n int) ([][]int, error) {
	on := make(map[int]int) // node -> 1-based side that named it first
	var out [][]int
	for s, side := range sides {
		if len(side) == 0 {
			return nil, inputErr("side %d names no node", s+1)
		}
		var norm []int
		for _, i := range side {
			if i < 1 || i > n {
				return nil, inputErr("there is no node %d: the testnet has nodes 1 to %d", i, n)
			}
			if prev, ok := on[i]; ok {
				if prev == s+1 {
					return nil, inputErr("side %d names node %d twice", s+1, i)
				}
				return nil, inputErr("sides %d and %d overlap: node %d is on both", prev, s+1, i)
			}
			on[i] = s + 1
			norm = append(norm, i)
		}
		slices.Sort(norm)
		out = append(out, norm)
	}
	var rest []int
	for i := 1; i <= n; i++ {
		if _, ok := on[i]; !ok {
			rest = append(rest, i)
		}
	}
	if len(rest) > 0 {
		out = append(out, rest)
	}
	if len(out) < 2 {
		return nil, inputErr("a partition needs at least two sides, and %s puts every node on one", formatSides(sides))
	}
	slices.SortFunc(out, func(a, b []int) int { return a[0] - b[0] })
	return out, nil
}

// SideArgs renders sides as ParseSides takes them: one argument per
// side, node numbers separated by commas.
func SideArgs(sides [][]int) []string {
	args := make([]string, len(sides))
	for s, side := range sides {
		nums := make([]string, len(side))
		for k, i := range side {
			nums[k] = strconv.Itoa(i)
		}
		args[s] = strings.Join(nums, ",")
	}
	return args
}

// formatSides renders sides for people: "1,2 | 3,4,5".
func formatSides(sides [][]int) string { return strings.Join(SideArgs(sides), " | ") }

// Partition cuts the network into sides (node numbers, 1-based): every
// node's gater refuses the nodes on other sides and their open connections
// are closed, while nodes on one side stay (or get) connected. Nodes that
// no side names form one more side together. A partition replaces the one
// in force; nodes stopped now get theirs when they start.
func (t *Testnet) Partition(ctx context.Context, sides [][]int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrNotRunning
	}
	norm, err := normalizeSides(sides, len(t.nodes))
	if err != nil {
		return err
	}
	t.sides = norm
	t.applyBlocks()
	t.log.Info("testnet: partitioned " + formatSides(norm))
	return t.connect(ctx, nil)
}

// Heal ends the partition in force: every gater allows every node again and
// the running nodes are connected in a full mesh.
func (t *Testnet) Heal(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrNotRunning
	}
	t.sides = nil
	t.applyBlocks()
	t.log.Info("testnet: healed: every node may reach every other")
	return t.connect(ctx, nil)
}

// Sides returns the partition in force (sorted sides of node numbers), nil
// when the network is whole.
func (t *Testnet) Sides() [][]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([][]int, 0, len(t.sides))
	for _, s := range t.sides {
		out = append(out, slices.Clone(s))
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Status is the state of a testnet, as `conclave testnet status` shows it.
type Status struct {
	Dir     string `json:"dir"`
	Control string `json:"control"`
	// Partition lists the sides in force; empty when the network is whole.
	Partition [][]int      `json:"partition,omitempty"`
	Nodes     []NodeStatus `json:"nodes"`
}

// NodeStatus is one node of a testnet.
type NodeStatus struct {
	Index   int    `json:"index"`
	Name    string `json:"name"`
	PeerID  string `json:"peer_id"`
	Home    string `json:"home"`
	Socket  string `json:"socket"`
	Running bool   `json:"running"`
	// Side is the node's side (1-based) in the partition in force, 0 when
	// the network is whole.
	Side int `json:"side,omitempty"`
	// Addrs are the node's listen multiaddrs, each ending in /p2p/<peer ID>.
	Addrs []string `json:"addrs,omitempty"`
	// ConnectedTo are the testnet nodes this one has an open connection with.
	ConnectedTo []int `json:"connected_to"`
	// Groups are the node's active groups as it sees them.
	Groups []GroupView `json:"groups,omitempty"`
	// Error says why the node's connections or groups could not be read.
	Error string `json:"error,omitempty"`
}

// GroupView is one group as one node sees it: comparing the views of the
// nodes shows a partition's effect (epochs apart, changes waiting) and its
// end (one epoch, one authenticator).
type GroupView struct {
	ID                 string `json:"id"`
	Epoch              uint64 `json:"epoch"`
	EpochAuthenticator string `json:"epoch_authenticator"`
	Members            int    `json:"members"`
	// Pending are the membership changes this node asked for that wait,
	// with why ("waiting for a majority of members to be online ...").
	Pending []PendingView `json:"pending,omitempty"`
}

// PendingView is one membership change a node waits on.
type PendingView struct {
	Desc    string    `json:"desc"`
	Since   time.Time `json:"since"`
	Waiting string    `json:"waiting"`
}

// Status reports every node, whom it is connected to, and the partition.
func (t *Testnet) Status(ctx context.Context) (Status, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return Status{}, ErrNotRunning
	}
	st := Status{Dir: t.dir, Control: t.controlPath(), Nodes: []NodeStatus{}}
	for _, side := range t.sides {
		st.Partition = append(st.Partition, slices.Clone(side))
	}
	byID := make(map[string]int)
	for _, m := range t.nodes {
		byID[m.id.String()] = m.index
	}
	for _, m := range t.nodes {
		ns := NodeStatus{Index: m.index, Name: m.name, PeerID: m.id.String(), Home: m.home, Socket: m.socket,
			Running: m.node != nil, ConnectedTo: []int{}}
		if t.sides != nil {
			ns.Side = t.side(m.index) + 1
		}
		if m.node != nil {
			ai := m.node.AddrInfo()
			for _, a := range ai.Addrs {
				ns.Addrs = append(ns.Addrs, fmt.Sprintf("%s/p2p/%s", a, ai.ID))
			}
			peers, err := m.node.Peers(ctx)
			if err != nil {
				ns.Error = err.Error()
			}
			groups, err := m.node.Groups(ctx)
			if err != nil {
				ns.Error = err.Error()
			}
			for _, g := range groups {
				if g.Active {
					ns.Groups = append(ns.Groups, viewOf(g))
				}
			}
			for _, p := range peers {
				if i, ok := byID[p.ID]; ok {
					ns.ConnectedTo = append(ns.ConnectedTo, i)
				}
			}
			slices.Sort(ns.ConnectedTo)
		}
		st.Nodes = append(st.Nodes, ns)
	}
	return st, nil
}
