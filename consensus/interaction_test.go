package consensus

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestInteraction runs the hand-written scenarios in testdata/*.txt, in the
// style of etcd raft's interaction tests. Commands:
//
//	new members=1,2,3 [epoch=N] [timeout=T]   start an instance per member
//	propose node=N value=V                   Propose (values starting "bad" fail validation)
//	deliver [from=N] [to=N] [type=T] [count=K] deliver matching queued messages, oldest first
//	stabilize                                deliver everything until nothing is queued
//	drop [from=N] [to=N] [type=T]            discard matching queued messages
//	partition 1,2 4,5                        only members on the same side can talk;
//	                                         unlisted members are bridges that reach every side
//	heal                                     remove the partition
//	crash node=N                             lose N's volatile state and its queued messages
//	restart node=N                           rebuild N from what it persisted
//	tick [node=N] [n=K]                      tick one or every member K times
//	learn node=N from=M                      hand N the decision that M holds, out of band
//	ask node=N from=M                        N sends M a Learn request
//	forge from=N round=R value=V             queue an Accept that N never proposed, to everyone
//	status                                   acceptor state and decision per member
//
// Every command prints what the instances emitted: states persisted,
// messages sent and decisions.
func TestInteraction(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := &harness{}
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			return h.handle(t, td)
		})
	})
}

type queued struct {
	from, to uint32
	msg      Message
}

type harness struct {
	members []uint32
	epoch   uint64
	timeout int
	nodes   map[uint32]*Instance
	stored  map[uint32]HardState
	queue   []queued
	side    map[uint32]int
	out     strings.Builder
}

func (h *harness) handle(t *testing.T, td *datadriven.TestData) string {
	h.out.Reset()
	switch td.Cmd {
	case "new":
		h.members = parseLeaves(t, argString(t, td, "members", ""))
		h.epoch = uint64(argInt(t, td, "epoch", 0))
		h.timeout = argInt(t, td, "timeout", 5)
		h.nodes, h.stored, h.queue, h.side = map[uint32]*Instance{}, map[uint32]HardState{}, nil, map[uint32]int{}
		for _, m := range h.members {
			h.boot(t, m)
		}
		fmt.Fprintf(&h.out, "coordinator %d, quorum %d\n", h.nodes[h.members[0]].Coordinator(), Quorum(len(h.members)))
	case "propose":
		n := h.node(t, td)
		if err := n.Propose([]byte(argString(t, td, "value", ""))); err != nil {
			fmt.Fprintf(&h.out, "error: %v\n", err)
		}
		h.drain()
	case "deliver":
		h.deliver(t, td, false)
	case "drop":
		h.deliver(t, td, true)
	case "stabilize":
		for len(h.queue) > 0 {
			h.deliver(t, td, false)
		}
	case "partition":
		clear(h.side)
		for i, arg := range td.CmdArgs {
			for _, k := range parseLeaves(t, arg.Key) {
				h.side[k] = i + 1
			}
		}
		h.out.WriteString("ok\n")
	case "heal":
		clear(h.side)
		h.out.WriteString("ok\n")
	case "crash":
		leaf := uint32(argInt(t, td, "node", -1))
		delete(h.nodes, leaf)
		h.queue = slices.DeleteFunc(h.queue, func(q queued) bool { return q.to == leaf || q.from == leaf })
		fmt.Fprintf(&h.out, "%d crashed\n", leaf)
	case "restart":
		leaf := uint32(argInt(t, td, "node", -1))
		h.boot(t, leaf)
		hs := h.stored[leaf]
		fmt.Fprintf(&h.out, "%d restarted: promised=%v accepted=%v%s\n", leaf, hs.Promised, hs.Accepted, valueSuffix(hs.Value))
	case "tick":
		times := argInt(t, td, "n", 1)
		targets := h.members
		if td.HasArg("node") {
			targets = []uint32{uint32(argInt(t, td, "node", -1))}
		}
		for range times {
			for _, m := range targets {
				if n, ok := h.nodes[m]; ok {
					n.Tick()
				}
			}
			h.drain()
		}
	case "learn":
		n := h.node(t, td)
		src := h.nodes[uint32(argInt(t, td, "from", -1))]
		if src == nil || src.Decision() == nil {
			t.Fatalf("%s: source has no decision", td.Pos)
		}
		d := src.Decision()
		if err := n.Learn(d.Value, &d.Certificate); err != nil {
			fmt.Fprintf(&h.out, "error: %v\n", err)
		}
		h.drain()
	case "ask":
		n := h.node(t, td)
		from := uint32(argInt(t, td, "from", -1))
		h.queue = append(h.queue, queued{from: n.self, to: from, msg: Message{Type: MsgLearn, Epoch: h.epoch, From: n.self}})
		fmt.Fprintf(&h.out, "%d -> %d: Learn\n", n.self, from)
	case "forge":
		from := uint32(argInt(t, td, "from", -1))
		m := Message{Type: MsgAccept, Epoch: h.epoch, From: from, Ballot: Ballot{Round: uint32(argInt(t, td, "round", 2)), Leaf: from}, Value: []byte(argString(t, td, "value", ""))}
		for _, r := range h.members {
			if r != from {
				h.queue = append(h.queue, queued{from: from, to: r, msg: m})
			}
		}
		fmt.Fprintf(&h.out, "forged %s\n", describeMessage(m))
	case "status":
		for _, m := range h.members {
			n, ok := h.nodes[m]
			if !ok {
				fmt.Fprintf(&h.out, "%d: down\n", m)
				continue
			}
			fmt.Fprintf(&h.out, "%d: promised=%v accepted=%v%s", m, n.hs.Promised, n.hs.Accepted, valueSuffix(n.hs.Value))
			if d := n.Decision(); d != nil {
				fmt.Fprintf(&h.out, " decided %q", d.Value)
			}
			h.out.WriteString("\n")
		}
	default:
		t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
	}
	if h.out.Len() == 0 {
		return "(nothing)\n"
	}
	return h.out.String()
}

func (h *harness) boot(t *testing.T, leaf uint32) {
	validate := func(v []byte) error {
		if strings.HasPrefix(string(v), "bad") {
			return fmt.Errorf("value %q rejected", v)
		}
		return nil
	}
	var st Storage
	if hs, ok := h.stored[leaf]; ok {
		st = staticStorage(hs)
	}
	n, err := New(Config{
		GroupID: []byte("interaction"), Epoch: h.epoch, Self: leaf, Members: h.members,
		Signer: simSigner(leaf), Verifier: simVerifier{}, Validate: validate, Storage: st,
		Rand: rand.New(rand.NewPCG(uint64(leaf), 7)), TimeoutTicks: h.timeout,
	})
	if err != nil {
		t.Fatalf("new instance %d: %v", leaf, err)
	}
	h.nodes[leaf] = n
}

func (h *harness) node(t *testing.T, td *datadriven.TestData) *Instance {
	n, ok := h.nodes[uint32(argInt(t, td, "node", -1))]
	if !ok {
		t.Fatalf("%s: no such live node", td.Pos)
	}
	return n
}

// drain handles every instance's Ready in leaf order: persist, queue the
// messages, report decisions.
func (h *harness) drain() {
	for _, m := range h.members {
		n, ok := h.nodes[m]
		if !ok || !n.HasReady() {
			continue
		}
		rd := n.Ready()
		if rd.State != nil {
			h.stored[m] = *rd.State
			fmt.Fprintf(&h.out, "%d: persist promised=%v accepted=%v%s\n", m, rd.State.Promised, rd.State.Accepted, valueSuffix(rd.State.Value))
		}
		for _, env := range rd.Messages {
			to := "all"
			if !env.Broadcast() {
				to = strconv.Itoa(int(env.To))
			}
			fmt.Fprintf(&h.out, "%d -> %s: %s\n", m, to, describeMessage(env.Message))
			for _, r := range h.members {
				if r != m && (env.Broadcast() || env.To == r) {
					h.queue = append(h.queue, queued{from: m, to: r, msg: env.Message})
				}
			}
		}
		if rd.Decision != nil {
			fmt.Fprintf(&h.out, "%d: DECIDED %q with votes of %v under %v\n", m, rd.Decision.Value, voteLeaves(rd.Decision.Certificate), rd.Decision.Certificate.Ballot)
		}
		if rd.Superseded != nil {
			fmt.Fprintf(&h.out, "%d: own proposal %q superseded\n", m, rd.Superseded)
		}
		n.Advance()
	}
}

// deliver delivers (or drops) the queued messages matching the filters, in
// queue order; with count=K only the first K.
func (h *harness) deliver(t *testing.T, td *datadriven.TestData, drop bool) {
	from, to := argInt(t, td, "from", -1), argInt(t, td, "to", -1)
	typ := argString(t, td, "type", "")
	count := argInt(t, td, "count", -1)
	var picked []queued
	rest := h.queue[:0:0]
	for _, q := range h.queue {
		match := (from < 0 || q.from == uint32(from)) && (to < 0 || q.to == uint32(to)) && (typ == "" || q.msg.Type.String() == typ)
		if match && count != 0 {
			picked = append(picked, q)
			count--
		} else {
			rest = append(rest, q)
		}
	}
	h.queue = rest
	for _, q := range picked {
		if drop {
			fmt.Fprintf(&h.out, "dropped %d -> %d: %s\n", q.from, q.to, q.msg.Type)
			continue
		}
		n, ok := h.nodes[q.to]
		sf, st := h.side[q.from], h.side[q.to]
		if !ok || (sf != st && sf != 0 && st != 0) {
			fmt.Fprintf(&h.out, "lost %d -> %d: %s\n", q.from, q.to, q.msg.Type)
			continue
		}
		// Every message crosses the wire encoding, as in the node.
		data, err := q.msg.MarshalBinary()
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		m, err := DecodeMessage(data)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if err := n.Step(m); err != nil {
			fmt.Fprintf(&h.out, "%d rejects %s from %d: %v\n", q.to, m.Type, q.from, err)
		}
		h.drain()
	}
}

func describeMessage(m Message) string {
	s := fmt.Sprintf("%v %v", m.Type, m.Ballot)
	switch m.Type {
	case MsgPromise:
		s += fmt.Sprintf(" accepted=%v%s", m.AcceptedBallot, valueSuffix(m.Value))
	case MsgNack:
		s += fmt.Sprintf(" promised=%v", m.Promised)
	case MsgAccept:
		s += fmt.Sprintf(" %q", m.Value)
	case MsgDecide:
		s += fmt.Sprintf(" %q votes=%v", m.Value, voteLeaves(*m.Certificate))
	case MsgCommitted:
		s += fmt.Sprintf(" digest=%x votes=%v", m.Digest[:4], voteLeaves(*m.Certificate))
	case MsgLearn:
		s = "Learn"
	}
	return s
}

func valueSuffix(v []byte) string {
	if v == nil {
		return ""
	}
	return fmt.Sprintf(" %q", v)
}

func voteLeaves(c Certificate) []uint32 {
	var l []uint32
	for _, v := range c.Votes {
		l = append(l, v.Leaf)
	}
	return l
}

func parseLeaves(t *testing.T, s string) []uint32 {
	var out []uint32
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(f), 10, 32)
		if err != nil {
			t.Fatalf("bad leaf list %q: %v", s, err)
		}
		out = append(out, uint32(v))
	}
	return out
}

func argString(t *testing.T, td *datadriven.TestData, key, def string) string {
	if !td.HasArg(key) {
		return def
	}
	var s string
	td.ScanArgs(t, key, &s)
	return s
}

func argInt(t *testing.T, td *datadriven.TestData, key string, def int) int {
	if !td.HasArg(key) {
		return def
	}
	var v int
	td.ScanArgs(t, key, &v)
	return v
}
