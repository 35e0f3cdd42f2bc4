package testnet

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conclave-im/conclave/api"
	"github.com/conclave-im/conclave/node"
)

func startTestnet(t *testing.T, ctx context.Context, n int) *Testnet {
	t.Helper()
	tn, err := Start(ctx, Options{Dir: t.TempDir(), Nodes: n, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := tn.Close(cctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return tn
}

// watcher follows one node's API event stream and keeps what it saw, so a
// test waits for a state (a text arrived, an epoch reached) whatever order
// the events come in.
type watcher struct {
	name    string
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every event
	texts   map[string]int
	epochs  map[string]uint64
	invited map[string]bool
	left    map[string]bool
	err     error
}

func watch(t *testing.T, ctx context.Context, name string, c *api.Client) *watcher {
	t.Helper()
	es, err := c.Events(ctx, "")
	if err != nil {
		t.Fatalf("%s: events: %v", name, err)
	}
	w := &watcher{name: name, changed: make(chan struct{}), texts: map[string]int{}, epochs: map[string]uint64{},
		invited: map[string]bool{}, left: map[string]bool{}}
	done := make(chan struct{})
	t.Cleanup(func() { es.Close(); <-done })
	go func() {
		defer close(done)
		for {
			ev, err := es.Next()
			w.mu.Lock()
			if err != nil {
				w.err = err
			} else {
				switch ev.Type {
				case api.EventMessage:
					if ev.Message.Kind == api.KindText {
						w.texts[ev.Message.Text]++
					}
				case api.EventEpochChanged, api.EventGroupJoined:
					w.epochs[ev.GroupID] = max(w.epochs[ev.GroupID], ev.Epoch)
				case api.EventInvitation:
					w.invited[ev.GroupID] = true
				case api.EventGroupLeft:
					w.left[ev.GroupID] = true
				}
			}
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return w
}

// wait blocks until cond holds on what w saw.
func (w *watcher) wait(t *testing.T, ctx context.Context, what string, cond func(w *watcher) bool) {
	t.Helper()
	for {
		w.mu.Lock()
		ok, err, ch := cond(w), w.err, w.changed
		w.mu.Unlock()
		if ok {
			return
		}
		if err != nil {
			t.Fatalf("%s: waiting for %s: event stream ended: %v", w.name, what, err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("%s: waiting for %s: %v", w.name, what, ctx.Err())
		}
	}
}

func (w *watcher) waitText(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	w.wait(t, ctx, "message "+text, func(w *watcher) bool { return w.texts[text] > 0 })
}

func (w *watcher) waitEpoch(t *testing.T, ctx context.Context, gid string, epoch uint64) {
	t.Helper()
	w.wait(t, ctx, "epoch", func(w *watcher) bool { return w.epochs[gid] >= epoch })
}

// TestPartitionRehearsal is the rehearsal docs/testnet.md describes, driven
// through the nodes' API sockets and the control API as a user would: five
// nodes in one group; a partition {1,2} | {3,4,5}; the minority keeps
// chatting but its removal waits for a majority; the majority removes a
// member and chats on; after healing, the minority's removal goes through
// too and the remaining members agree on the epoch and have every message
// once.
func TestPartitionRehearsal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const n = 5
	tn := startTestnet(t, ctx, n)
	ctl := NewClient(tn.Dir())
	defer ctl.Close()

	c := make([]*api.Client, n+1)
	w := make([]*watcher, n+1)
	ids := make([]string, n+1)
	for i := 1; i <= n; i++ {
		c[i] = tn.Client(i)
		defer c[i].Close()
		id, err := c[i].Identity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id.PeerID
		w[i] = watch(t, ctx, "node"+strconv.Itoa(i), c[i])
	}
	st, err := ctl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range st.Nodes {
		if !ns.Running || len(ns.ConnectedTo) != n-1 || ns.PeerID != ids[ns.Index] {
			t.Fatalf("after start, %s: %+v; want running and connected to the %d others", ns.Name, ns, n-1)
		}
	}

	gid, err := c[1].CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= n; i++ {
		if _, err := c[1].Invite(ctx, gid, ids[i]); err != nil {
			t.Fatalf("invite node%d: %v", i, err)
		}
		w[i].wait(t, ctx, "invitation", func(w *watcher) bool { return w.invited[gid] })
		if _, err := c[i].Accept(ctx, gid); err != nil {
			t.Fatalf("node%d accepts: %v", i, err)
		}
	}
	const formed = n - 1 // one Add per invitee
	for i := 1; i <= n; i++ {
		w[i].waitEpoch(t, ctx, gid, formed)
	}

	// Partition. The node subscription shows why the minority's change waits.
	pending, stopPending, err := tn.Node(1).Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stopPending()
	st, err = ctl.Partition(ctx, [][]int{{1, 2}, {3, 4, 5}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range st.Nodes {
		for _, o := range ns.ConnectedTo {
			if (ns.Index <= 2) != (o <= 2) {
				t.Fatalf("after the partition %s is still connected to node%d", ns.Name, o)
			}
		}
	}

	// The minority chats.
	if _, err := c[1].Send(ctx, gid, "minority: 1 to 2", ""); err != nil {
		t.Fatal(err)
	}
	w[2].waitText(t, ctx, "minority: 1 to 2")
	if _, err := c[2].Send(ctx, gid, "minority: 2 to 1", ""); err != nil {
		t.Fatal(err)
	}
	w[1].waitText(t, ctx, "minority: 2 to 1")

	// The minority's removal of node4 waits for a majority.
	minorityRemove := make(chan error, 1)
	go func() {
		_, err := c[1].Remove(ctx, gid, ids[4])
		minorityRemove <- err
	}()
	waitPending(t, ctx, pending, "remove "+ids[4], "waiting for a majority")
	st, err = ctl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if gs := st.Nodes[0].Groups; len(gs) != 1 || len(gs[0].Pending) != 1 || !strings.Contains(gs[0].Pending[0].Waiting, "waiting for a majority") {
		t.Fatalf("status of node1 during the partition: %+v; want its removal waiting for a majority", st.Nodes[0])
	}

	// The majority removes node5 and chats on.
	if _, err := c[3].Remove(ctx, gid, ids[5]); err != nil {
		t.Fatalf("majority removes node5: %v", err)
	}
	w[4].waitEpoch(t, ctx, gid, formed+1)
	w[5].wait(t, ctx, "removal", func(w *watcher) bool { return w.left[gid] })
	if _, err := c[3].Send(ctx, gid, "majority: 3 after removing 5", ""); err != nil {
		t.Fatal(err)
	}
	w[4].waitText(t, ctx, "majority: 3 after removing 5")
	select {
	case err := <-minorityRemove:
		t.Fatalf("the minority's removal finished without a majority: %v", err)
	default:
	}
	if _, err := ctl.WaitAgree(ctx, gid, time.Millisecond); !errors.Is(err, ErrNotAgreed) || !strings.Contains(err.Error(), "node1 at epoch 4 waiting on remove") {
		t.Fatalf("wait for agreement during the partition: %v, want ErrNotAgreed naming node1's wait", err)
	}
	if g, err := c[1].Group(ctx, gid); err != nil || g.Epoch != formed {
		t.Fatalf("the minority moved on alone: epoch %d, %v; want %d", g.Epoch, err, formed)
	}

	// Heal: the minority learns the majority's Commit, its own removal is
	// carried into the next epoch and decided.
	if _, err := ctl.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-minorityRemove:
		if err != nil {
			t.Fatalf("the minority's removal after healing: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the minority's removal did not complete after healing")
	}
	final := uint64(formed + 2)
	agreed, err := ctl.WaitAgree(ctx, gid[:8], 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(agreed.Nodes, []int{1, 2, 3}) || agreed.Group.Epoch != final || agreed.Group.Members != 3 {
		t.Fatalf("agreement after healing: %+v; want nodes 1,2,3 at epoch %d with 3 members", agreed, final)
	}
	for _, i := range []int{1, 2, 3} {
		w[i].waitEpoch(t, ctx, gid, final)
	}
	w[4].wait(t, ctx, "removal", func(w *watcher) bool { return w.left[gid] })

	st, err = ctl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range st.Nodes[:3] {
		if len(ns.Groups) != 1 || ns.Groups[0].Epoch != final || ns.Groups[0].Members != 3 || len(ns.Groups[0].Pending) != 0 {
			t.Fatalf("status of %s after healing: %+v", ns.Name, ns.Groups)
		}
	}
	for _, ns := range st.Nodes[3:] {
		if len(ns.Groups) != 0 {
			t.Fatalf("status of removed %s: %+v", ns.Name, ns.Groups)
		}
	}

	all := []string{"minority: 1 to 2", "minority: 2 to 1", "majority: 3 after removing 5"}
	var want api.Group
	for _, i := range []int{1, 2, 3} {
		for _, text := range all {
			w[i].waitText(t, ctx, text)
		}
		g, err := c[i].Group(ctx, gid)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			want = g
		}
		if g.Epoch != final || g.EpochAuthenticator != want.EpochAuthenticator {
			t.Fatalf("node%d ends at epoch %d authenticator %s; node1 at %d %s", i, g.Epoch, g.EpochAuthenticator, want.Epoch, want.EpochAuthenticator)
		}
		var members []string
		for _, m := range g.Members {
			members = append(members, m.PeerID)
		}
		slices.Sort(members)
		wantMembers := []string{ids[1], ids[2], ids[3]}
		slices.Sort(wantMembers)
		if !slices.Equal(members, wantMembers) {
			t.Fatalf("node%d members %v, want nodes 1, 2, 3", i, members)
		}
		hist, err := c[i].History(ctx, gid, 1000)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, m := range hist {
			if m.Kind == api.KindText {
				count[m.Text]++
			}
		}
		for _, text := range all {
			if count[text] != 1 {
				t.Fatalf("node%d has %q %d times in its history, want once", i, text, count[text])
			}
		}
	}
}

// waitPending waits until the node reports a pending change desc whose
// reason contains why.
func waitPending(t *testing.T, ctx context.Context, events <-chan node.Event, desc, why string) {
	t.Helper()
	for {
		select {
		case ev := <-events:
			pc, ok := ev.(node.PendingChanged)
			if !ok {
				continue
			}
			for _, p := range pc.Pending {
				if p.Desc == desc && strings.Contains(p.Waiting, why) {
					t.Logf("pending: %s: %s", p.Desc, p.Waiting)
					return
				}
			}
		case <-ctx.Done():
			t.Fatalf("waiting for %q to be pending (%s): %v", desc, why, ctx.Err())
		}
	}
}

// TestStopStart stops a member; the others change the group and chat
// without it; started again, it catches up on the Commit and the message.
func TestStopStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn := startTestnet(t, ctx, 4)
	ctl := NewClient(tn.Dir())
	defer ctl.Close()
	c := make([]*api.Client, 5)
	ids := make([]string, 5)
	for i := 1; i <= 4; i++ {
		c[i] = tn.Client(i)
		defer c[i].Close()
		id, err := c[i].Identity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id.PeerID
	}
	gid, err := c[1].CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w3 := watch(t, ctx, "node3", c[3])
	for _, i := range []int{2, 3} {
		w := watch(t, ctx, "node"+strconv.Itoa(i), c[i])
		if _, err := c[1].Invite(ctx, gid, ids[i]); err != nil {
			t.Fatal(err)
		}
		w.wait(t, ctx, "invitation", func(w *watcher) bool { return w.invited[gid] })
		if _, err := c[i].Accept(ctx, gid); err != nil {
			t.Fatal(err)
		}
	}
	w3.waitEpoch(t, ctx, gid, 2)

	st, err := ctl.StopNode(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if st.Nodes[2].Running || slices.Contains(st.Nodes[0].ConnectedTo, 3) {
		t.Fatalf("after stop: %+v", st.Nodes)
	}
	if _, err := c[3].Status(ctx); !errors.Is(err, api.ErrDaemonNotRunning) {
		t.Fatalf("API of a stopped node: %v, want daemon not running", err)
	}
	if _, err := ctl.StopNode(ctx, 3); !isInput(err, "already stopped") {
		t.Fatalf("stopping a stopped node: %v", err)
	}

	// Two of three members are a majority: node1 adds node4 without node3.
	w4 := watch(t, ctx, "node4", c[4])
	if _, err := c[1].Invite(ctx, gid, ids[4]); err != nil {
		t.Fatal(err)
	}
	w4.wait(t, ctx, "invitation", func(w *watcher) bool { return w.invited[gid] })
	if _, err := c[4].Accept(ctx, gid); err != nil {
		t.Fatal(err)
	}
	if _, err := c[1].Send(ctx, gid, "while 3 was away", ""); err != nil {
		t.Fatal(err)
	}

	st, err = ctl.StartNode(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Nodes[2].Running || !slices.Equal(st.Nodes[2].ConnectedTo, []int{1, 2, 4}) {
		t.Fatalf("after start: %+v", st.Nodes[2])
	}
	// Subscribe first, then look: what arrived before the subscription is
	// in the group and the history, what arrives after is an event.
	w3 = watch(t, ctx, "node3 again", c[3])
	if g, err := c[3].Group(ctx, gid); err != nil {
		t.Fatal(err)
	} else if g.Epoch < 3 {
		w3.waitEpoch(t, ctx, gid, 3)
	}
	hist, err := c[3].History(ctx, gid, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(hist, func(m api.Message) bool { return m.Text == "while 3 was away" }) {
		w3.waitText(t, ctx, "while 3 was away")
	}
	g3, err := c[3].Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	g1, err := c[1].Group(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	if g3.Epoch != 3 || g3.EpochAuthenticator != g1.EpochAuthenticator || len(g3.Members) != 4 {
		t.Fatalf("node3 after catching up: epoch %d, %d members, authenticator %s; node1 %d %s", g3.Epoch, len(g3.Members), g3.EpochAuthenticator, g1.Epoch, g1.EpochAuthenticator)
	}
}

// TestRestartKeepsState: a testnet started again on its directory has the
// same nodes with their groups.
func TestRestartKeepsState(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	opts := Options{Dir: dir, Nodes: 2, Logger: slog.New(slog.DiscardHandler)}
	tn, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	c := tn.Client(2)
	id, err := c.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gid, err := c.CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := tn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := ReadMarker(dir); err != nil || n != 2 {
		t.Fatalf("marker after a run: %d, %v", n, err)
	}

	tn, err = Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close(ctx)
	c = tn.Client(2)
	defer c.Close()
	again, err := c.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.PeerID != id.PeerID {
		t.Fatalf("node2 came back as %s, was %s", again.PeerID, id.PeerID)
	}
	if _, err := c.Group(ctx, gid); err != nil {
		t.Fatalf("node2's group after the restart: %v", err)
	}
}

func TestLongDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	_, err := Start(context.Background(), Options{Dir: dir, Nodes: 1, Logger: slog.New(slog.DiscardHandler)})
	if !isInput(err, "too long for a Unix socket") {
		t.Fatalf("a directory too long for the sockets: %v", err)
	}
}

func isInput(err error, contains string) bool {
	var ie *InputError
	return errors.As(err, &ie) && strings.Contains(err.Error(), contains)
}

func TestControlErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	notRunning := NewClient(t.TempDir())
	if _, err := notRunning.Status(ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("status of no testnet: %v, want ErrNotRunning", err)
	}

	tn := startTestnet(t, ctx, 2)
	ctl := NewClient(tn.Dir())
	defer ctl.Close()
	if _, err := Start(ctx, Options{Dir: tn.Dir(), Nodes: 2, Logger: slog.New(slog.DiscardHandler)}); !errors.Is(err, ErrRunning) {
		t.Fatalf("second testnet in the same directory: %v, want ErrRunning", err)
	}
	if err := Reset(tn.Dir()); !errors.Is(err, ErrRunning) {
		t.Fatalf("reset of a running testnet: %v, want ErrRunning", err)
	}
	for _, tc := range []struct {
		name  string
		sides [][]int
		want  string
	}{
		{"unknown node", [][]int{{1}, {3}}, "there is no node 3: the testnet has nodes 1 to 2"},
		{"overlap", [][]int{{1, 2}, {2}}, "sides 1 and 2 overlap: node 2 is on both"},
		{"one side", [][]int{{1, 2}}, "at least two sides"},
		{"empty side", [][]int{{1}, {}}, "side 2 names no node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ctl.Partition(ctx, tc.sides); !isInput(err, tc.want) {
				t.Fatalf("partition %v: %v, want an input error with %q", tc.sides, err, tc.want)
			}
		})
	}
	for _, g := range []string{"xyz", "ab", "abcd"} {
		if _, err := ctl.WaitAgree(ctx, g, time.Second); !isInput(err, g) {
			t.Fatalf("wait for group %q: %v, want an input error", g, err)
		}
	}
	if _, err := ctl.StopNode(ctx, 9); !isInput(err, "there is no node 9") {
		t.Fatalf("stop node 9: %v", err)
	}
	if _, err := ctl.StartNode(ctx, 1); !isInput(err, "node1 is already running") {
		t.Fatalf("start a running node: %v", err)
	}
	if tn.Sides() != nil {
		t.Fatalf("refused partitions left %v in force", tn.Sides())
	}

	// A partition naming one side puts the rest on the other.
	st, err := ctl.Partition(ctx, [][]int{{2}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(st.Partition, [][]int{{1}, {2}}, slices.Equal) || len(st.Nodes[0].ConnectedTo) != 0 || st.Nodes[1].Side != 2 {
		t.Fatalf("partition 2: %+v", st)
	}
	st, err = ctl.Heal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Partition != nil || !slices.Equal(st.Nodes[0].ConnectedTo, []int{2}) {
		t.Fatalf("after heal: %+v", st)
	}

	// As `conclave testnet up` does: close the testnet once asked to.
	closed := make(chan error, 1)
	go func() {
		<-tn.Done()
		closed <- tn.Close(ctx)
	}()
	if err := ctl.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if tn.Node(1) != nil || tn.Node(2) != nil {
		t.Fatal("nodes still run after down")
	}
	if _, err := ctl.Status(ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("status after down: %v, want ErrNotRunning", err)
	}
}

// TestCloseEndsWait: a wait for agreement in flight ends when the testnet
// closes, instead of holding up the shutdown.
func TestCloseEndsWait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	started := make(chan struct{})
	var once sync.Once
	tn, err := Start(ctx, Options{Dir: t.TempDir(), Nodes: 2, AutoAccept: true, Logger: slog.New(slog.DiscardHandler),
		waitHook: func() { once.Do(func() { close(started) }) }})
	if err != nil {
		t.Fatal(err)
	}
	n1, n2 := tn.Node(1), tn.Node(2)
	joined, stopJoined, err := n2.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stopJoined()
	gid, err := n1.CreateGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.Invite(ctx, gid, n2.ID()); err != nil {
		t.Fatal(err)
	}
	for ev := range joined {
		if _, ok := ev.(node.GroupJoined); ok {
			break
		}
	}
	pending, stopPending, err := n1.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stopPending()
	if err := tn.Partition(ctx, [][]int{{1}, {2}}); err != nil {
		t.Fatal(err)
	}
	go n1.Remove(ctx, gid, n2.ID()) // one of two members: never decided here
	waitPending(t, ctx, pending, "remove "+n2.ID(), "waiting for a majority")

	ctl := NewClient(tn.Dir())
	defer ctl.Close()
	waiting := make(chan error, 1)
	go func() {
		_, err := ctl.WaitAgree(ctx, hex.EncodeToString(gid), time.Minute)
		waiting <- err
	}()
	<-started
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	if err := tn.Close(cctx); err != nil {
		t.Fatalf("close with a wait in flight: %v", err)
	}
	if err := <-waiting; err == nil {
		t.Fatal("the wait reported agreement")
	}
}

func TestParseSides(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want [][]int
		err  string
	}{
		{[]string{"1,2", "3,4,5"}, [][]int{{1, 2}, {3, 4, 5}}, ""},
		{[]string{"node1,node2", " 3 "}, [][]int{{1, 2}, {3}}, ""},
		{[]string{"1,,2"}, [][]int{{1, 2}}, ""},
		{nil, nil, "no sides"},
		{[]string{"1,x"}, nil, `"x" is not a node number`},
		{[]string{","}, nil, "names no node"},
	} {
		got, err := ParseSides(tc.args)
		if tc.err != "" {
			if !isInput(err, tc.err) {
				t.Errorf("ParseSides(%q) = %v, %v; want error %q", tc.args, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.EqualFunc(got, tc.want, slices.Equal) {
			t.Errorf("ParseSides(%q) = %v, %v; want %v", tc.args, got, err, tc.want)
		}
	}
}

func TestNormalizeSides(t *testing.T) {
	for _, tc := range []struct {
		sides [][]int
		n     int
		want  [][]int
		err   string
	}{
		{[][]int{{3, 1}, {2}}, 3, [][]int{{1, 3}, {2}}, ""},
		{[][]int{{4, 5}}, 5, [][]int{{1, 2, 3}, {4, 5}}, ""},
		{[][]int{{1}, {2}}, 4, [][]int{{1}, {2}, {3, 4}}, ""},
		{[][]int{{1, 1}, {2}}, 2, nil, "side 1 names node 1 twice"},
		{[][]int{{0}, {1}}, 2, nil, "there is no node 0"},
		{[][]int{{1, 2}}, 2, nil, "at least two sides"},
	} {
		got, err := normalizeSides(tc.sides, tc.n)
		if tc.err != "" {
			if !isInput(err, tc.err) {
				t.Errorf("normalizeSides(%v, %d) = %v, %v; want error %q", tc.sides, tc.n, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.EqualFunc(got, tc.want, slices.Equal) {
			t.Errorf("normalizeSides(%v, %d) = %v, %v; want %v", tc.sides, tc.n, got, err, tc.want)
		}
	}
}

func TestReset(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "not-a-testnet")
	if err := os.MkdirAll(other, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "precious"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Reset(other); !isInput(err, "not a testnet directory") {
		t.Fatalf("reset of a directory without a marker: %v", err)
	}
	if _, err := Start(context.Background(), Options{Dir: other, Nodes: 1, Logger: slog.New(slog.DiscardHandler)}); !isInput(err, "refusing to use") {
		t.Fatalf("a testnet in a directory with other data: %v", err)
	}
	if _, err := os.Stat(filepath.Join(other, "precious")); err != nil {
		t.Fatalf("the refused reset deleted a file: %v", err)
	}
	tnDir := filepath.Join(dir, "tn")
	if err := os.MkdirAll(filepath.Join(tnDir, "node1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tnDir, MarkerFile), []byte(`{"nodes":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := ReadMarker(tnDir); err != nil || n != 1 {
		t.Fatalf("ReadMarker = %d, %v", n, err)
	}
	if err := Reset(tnDir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tnDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after reset: %v", err)
	}
	if err := Reset(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("reset of a missing directory: %v", err)
	}
	if err := os.WriteFile(filepath.Join(other, MarkerFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadMarker(other); err == nil {
		t.Fatal("ReadMarker accepted a malformed marker")
	}
}

// FuzzParseSides: any input either is refused with an InputError or parses
// to sides that SideArgs renders back to arguments parsing to the same
// sides, and whose rendering is stable.
func FuzzParseSides(f *testing.F) {
	for _, seed := range []string{"1,2 3,4,5", "node1,node2 3", "1,,2", ",", "1,x", " 7 ", "-1,0", "99999999999999999999"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		sides, err := ParseSides(strings.Fields(in))
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("ParseSides(%q): %v is not an InputError", in, err)
			}
			return
		}
		args := SideArgs(sides)
		again, err := ParseSides(args)
		if err != nil || !slices.EqualFunc(again, sides, slices.Equal) {
			t.Fatalf("ParseSides(%q) = %v; rendered %q parses to %v, %v", in, sides, args, again, err)
		}
		if !slices.Equal(SideArgs(again), args) {
			t.Fatalf("rendering of %v is not stable: %q then %q", sides, args, SideArgs(again))
		}
		if _, err := normalizeSides(sides, MaxNodes); err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("normalizeSides(%v): %v is not an InputError", sides, err)
			}
		}
	})
}
