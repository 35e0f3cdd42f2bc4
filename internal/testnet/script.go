package testnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/conclave-im/conclave/api"
)

// A rehearsal script is a text file of steps, one per line, run in order
// against a running testnet; `#` starts a comment line. Groups are named
// by a word the script chooses (the create step binds it); nodes are
// node1, node2, ... Text with spaces goes in double quotes (Go syntax).
//
//	partition 1,2 3,4,5          cut the network (as `conclave testnet partition`)
//	heal                         end the partition
//	stop 3 / start 3             stop or start a node
//	wait G                       until the running nodes holding G agree on it
//	node1 create G               create a group, name it G in the script
//	node1 invite G node2         invite, until the Add is decided
//	node2 accept G               until the invitation arrives, then accept it
//	node1 send G "text"          send a message
//	node2 expect G "text"        until the message is in node2's history
//	node1 remove G node4         remove, until the removal is decided
//	node2 leave G                leave, until the removal is decided
//	await                        until every step started with & is done
//
// invite, remove, leave and send may end in `&` to run in the background
// (a minority's change waits until the partition heals); the script awaits
// them at its end as well. Every step that waits is bounded by the step
// timeout.

// scriptStep is one parsed line.
type scriptStep struct {
	line  int
	text  string   // the line as written, for the transcript
	node  int      // 0 for testnet steps
	verb  string   // "partition", "create", ...
	args  []string // after the verb
	bg    bool     // ends in &
	sides [][]int  // partition
	num   int      // stop/start: the node; invite/remove: the other node
}

// Script is a parsed rehearsal script.
type Script struct {
	name  string
	steps []scriptStep
}

// ScriptError is a script that does not parse, or a step that failed, with
// its place.
type ScriptError struct {
	File string
	Line int
	Step string // the line, when a step failed while running
	Err  error
}

func (e *ScriptError) Error() string {
	if e.Step != "" {
		return fmt.Sprintf("%s:%d: %s: %v", e.File, e.Line, e.Step, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *ScriptError) Unwrap() error { return e.Err }

// maxScriptLine bounds one line of a script.
const maxScriptLine = 64 << 10

// ParseScript reads a script; name appears in errors. It checks every
// line before anything runs: the verbs, their arguments, node names, and
// that each group name is created before it is used.
func ParseScript(name string, r io.Reader) (*Script, error) {
	s := &Script{name: name}
	created := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxScriptLine)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		st, err := parseStep(line, created)
		if err != nil {
			return nil, &ScriptError{File: name, Line: n, Err: err}
		}
		st.line, st.text = n, line
		s.steps = append(s.steps, st)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("testnet: script %s: %w", name, err)
	}
	return s, nil
}

func parseStep(line string, created map[string]bool) (scriptStep, error) {
	words, err := splitWords(line)
	if err != nil {
		return scriptStep{}, err
	}
	var st scriptStep
	if len(words) > 0 && words[len(words)-1] == "&" {
		st.bg = true
		words = words[:len(words)-1]
	}
	if len(words) == 0 {
		return scriptStep{}, errors.New("a lone &")
	}
	if i, ok := nodeName(words[0]); ok {
		st.node = i
		words = words[1:]
		if len(words) == 0 {
			return scriptStep{}, fmt.Errorf("node%d what? (create, invite, accept, send, expect, remove, leave)", i)
		}
	}
	st.verb, st.args = words[0], words[1:]
	want := func(n int, usage string) error {
		if len(st.args) != n {
			return fmt.Errorf("usage: %s", usage)
		}
		return nil
	}
	group := func(usage string) error {
		if len(st.args) == 0 || !created[st.args[0]] {
			if len(st.args) > 0 {
				return fmt.Errorf("group %q is not created by an earlier line (nodeN create %s)", st.args[0], st.args[0])
			}
			return fmt.Errorf("usage: %s", usage)
		}
		return nil
	}
	if st.node == 0 {
		switch st.verb {
		case "partition":
			st.sides, err = ParseSides(st.args)
		case "heal", "await":
			err = want(0, st.verb)
		case "stop", "start":
			if err = want(1, st.verb+" N"); err == nil {
				var ok bool
				if st.num, ok = nodeName(st.args[0]); !ok {
					if st.num, err = strconv.Atoi(st.args[0]); err != nil || st.num < 1 {
						err = fmt.Errorf("%q is not a node", st.args[0])
					}
				}
			}
		case "wait":
			if err = want(1, "wait G"); err == nil {
				err = group("wait G")
			}
		default:
			err = fmt.Errorf("unknown step %q (partition, heal, stop, start, wait, await, or nodeN followed by create, invite, accept, send, expect, remove, leave)", st.verb)
		}
		if err == nil && st.bg {
			err = fmt.Errorf("%s cannot run in the background", st.verb)
		}
		return st, err
	}
	switch st.verb {
	case "create":
		if err = want(1, "nodeN create G"); err == nil {
			created[st.args[0]] = true
		}
	case "invite", "remove":
		usage := "nodeN " + st.verb + " G nodeM"
		if err = want(2, usage); err == nil {
			if err = group(usage); err == nil {
				var ok bool
				if st.num, ok = nodeName(st.args[1]); !ok {
					err = fmt.Errorf("%q is not a node (node1, node2, ...)", st.args[1])
				}
			}
		}
	case "accept", "leave":
		if err = want(1, "nodeN "+st.verb+" G"); err == nil {
			err = group("nodeN " + st.verb + " G")
		}
	case "send", "expect":
		if err = want(2, "nodeN "+st.verb+" G TEXT"); err == nil {
			err = group("nodeN " + st.verb + " G TEXT")
		}
	default:
		err = fmt.Errorf("unknown step %q for a node (create, invite, accept, send, expect, remove, leave)", st.verb)
	}
	if err == nil && st.bg && !slices.Contains([]string{"invite", "remove", "leave", "send"}, st.verb) {
		err = fmt.Errorf("%s cannot run in the background (invite, remove, leave and send can)", st.verb)
	}
	return st, err
}

// nodeName parses "node3".
func nodeName(w string) (int, bool) {
	rest, ok := strings.CutPrefix(w, "node")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	return i, err == nil && i >= 1 && i <= MaxNodes
}

// splitWords splits a line at spaces, keeping double-quoted text (Go
// string syntax) as one word.
func splitWords(line string) ([]string, error) {
	var words []string
	for {
		line = strings.TrimLeft(line, " \t")
		if line == "" {
			return words, nil
		}
		if line[0] != '"' {
			end := strings.IndexAny(line, " \t")
			if end < 0 {
				end = len(line)
			}
			w := line[:end]
			if strings.Contains(w, `"`) {
				return nil, fmt.Errorf("a quote inside %q: quote whole words", w)
			}
			words = append(words, w)
			line = line[end:]
			continue
		}
		end := 1
		for end < len(line) && line[end] != '"' {
			if line[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(line) {
			return nil, errors.New("unterminated quote")
		}
		w, err := strconv.Unquote(line[:end+1])
		if err != nil {
			return nil, fmt.Errorf("quoted text %s: %w", line[:end+1], err)
		}
		words = append(words, w)
		line = line[end+1:]
		if line != "" && line[0] != ' ' && line[0] != '\t' {
			return nil, fmt.Errorf("text right after the closing quote of %s", line[:min(len(line), 20)])
		}
	}
}

// ScriptOptions configure a run.
type ScriptOptions struct {
	// Dir is the running testnet's directory.
	Dir string
	// Out receives the transcript: each step and its outcome.
	Out io.Writer
	// StepTimeout bounds every step that waits; default two minutes.
	StepTimeout time.Duration
}

// scriptRun is the state of one run.
type scriptRun struct {
	s      *Script
	opts   ScriptOptions
	ctl    *Client
	nodes  int
	ids    map[int]string // peer IDs by node
	groups map[string]string

	mu  sync.Mutex // guards out and groups against background steps
	bg  sync.WaitGroup
	bgE []error
}

// Run runs the script against the testnet in opts.Dir, stopping at the
// first step that fails (after waiting for background steps).
func (s *Script) Run(ctx context.Context, opts ScriptOptions) error {
	if opts.StepTimeout <= 0 {
		opts.StepTimeout = opTimeout
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	r := &scriptRun{s: s, opts: opts, ctl: NewClient(opts.Dir), ids: map[int]string{}, groups: map[string]string{}}
	defer r.ctl.Close()
	st, err := r.ctl.Status(ctx)
	if err != nil {
		return err
	}
	r.nodes = len(st.Nodes)
	for _, n := range st.Nodes {
		r.ids[n.Index] = n.PeerID
	}
	for _, step := range s.steps {
		if err := r.checkNodes(step); err != nil {
			return &ScriptError{File: s.name, Line: step.line, Err: err}
		}
	}
	// Background steps stop waiting when a later step fails.
	bgCtx, stopBg := context.WithCancel(ctx)
	defer stopBg()
	fail := func(err error) error {
		stopBg()
		return errors.Join(err, r.await())
	}
	for _, step := range s.steps {
		if step.bg {
			r.print("%s:%d: %s (in the background)\n", s.name, step.line, step.text)
			r.bg.Add(1)
			go func() {
				defer r.bg.Done()
				res, err := r.run(bgCtx, step)
				r.mu.Lock()
				defer r.mu.Unlock()
				if err != nil && bgCtx.Err() != nil && errors.Is(err, context.Canceled) {
					return // stopped because another step failed
				}
				if err != nil {
					r.bgE = append(r.bgE, &ScriptError{File: s.name, Line: step.line, Step: step.text, Err: err})
					return
				}
				fmt.Fprintf(r.opts.Out, "%s:%d: %s: %s\n", s.name, step.line, step.text, res)
			}()
			continue
		}
		var res string
		var err error
		if step.verb == "await" {
			err = r.await()
			res = "done"
		} else {
			res, err = r.run(ctx, step)
		}
		if err != nil {
			var se *ScriptError
			if errors.As(err, &se) {
				return fail(err)
			}
			return fail(&ScriptError{File: s.name, Line: step.line, Step: step.text, Err: err})
		}
		r.print("%s:%d: %s: %s\n", s.name, step.line, step.text, res)
	}
	return r.await()
}

func (r *scriptRun) print(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.opts.Out, format, args...)
}

// await waits for the background steps and reports their failures.
func (r *scriptRun) await() error {
	r.bg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	err := errors.Join(r.bgE...)
	r.bgE = nil
	return err
}

// checkNodes refuses node numbers the testnet does not have, before
// anything runs.
func (r *scriptRun) checkNodes(st scriptStep) error {
	for _, i := range []int{st.node, st.num} {
		if i > r.nodes {
			return fmt.Errorf("there is no node %d: the testnet has nodes 1 to %d", i, r.nodes)
		}
	}
	for _, side := range st.sides {
		for _, i := range side {
			if i < 1 || i > r.nodes {
				return fmt.Errorf("there is no node %d: the testnet has nodes 1 to %d", i, r.nodes)
			}
		}
	}
	return nil
}

func (r *scriptRun) group(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.groups[name]
}

// run runs one step and describes its outcome.
func (r *scriptRun) run(ctx context.Context, st scriptStep) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.StepTimeout)
	defer cancel()
	switch st.verb {
	case "partition":
		s, err := r.ctl.Partition(ctx, st.sides)
		if err != nil {
			return "", err
		}
		return "partitioned " + formatSides(s.Partition), nil
	case "heal":
		_, err := r.ctl.Heal(ctx)
		return "healed", err
	case "stop":
		_, err := r.ctl.StopNode(ctx, st.num)
		return "stopped", err
	case "start":
		_, err := r.ctl.StartNode(ctx, st.num)
		return "started", err
	case "wait":
		a, err := r.ctl.WaitAgree(ctx, r.group(st.args[0]), r.opts.StepTimeout)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("node %s agree: epoch %d, %d members", joinNums(a.Nodes), a.Group.Epoch, a.Group.Members), nil
	}

	c := api.NewUnixClient(filepath.Join(r.opts.Dir, "node"+strconv.Itoa(st.node), NodeSocket))
	defer c.Close()
	if st.verb == "create" {
		id, err := c.CreateGroup(ctx)
		if err != nil {
			return "", err
		}
		r.mu.Lock()
		r.groups[st.args[0]] = id
		r.mu.Unlock()
		return st.args[0] + " is " + id, nil
	}
	gid := r.group(st.args[0])
	switch st.verb {
	case "invite":
		g, err := c.Invite(ctx, gid, r.ids[st.num])
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("added in epoch %d", g.Epoch), nil
	case "remove":
		g, err := c.Remove(ctx, gid, r.ids[st.num])
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("removed in epoch %d", g.Epoch), nil
	case "leave":
		return "left", c.Leave(ctx, gid)
	case "send":
		m, err := c.Send(ctx, gid, st.args[1], "")
		if err != nil {
			return "", err
		}
		return "sent " + m.ID, nil
	case "accept":
		return r.accept(ctx, c, gid)
	case "expect":
		return r.expect(ctx, c, gid, st.args[1])
	}
	return "", fmt.Errorf("testnet: step %q", st.verb)
}

// accept waits for the invitation to gid, then accepts it. The event
// stream opens before the look at pending invitations, so an invitation
// arriving in between is not missed.
func (r *scriptRun) accept(ctx context.Context, c *api.Client, gid string) (string, error) {
	es, err := c.Events(ctx, "")
	if err != nil {
		return "", err
	}
	defer es.Close()
	invs, err := c.Invitations(ctx)
	if err != nil {
		return "", err
	}
	if !slices.ContainsFunc(invs, func(i api.Invitation) bool { return i.GroupID == gid }) {
		if err := waitEvent(ctx, es, func(ev api.Event) bool { return ev.Type == api.EventInvitation && ev.GroupID == gid }); err != nil {
			return "", fmt.Errorf("no invitation: %w", err)
		}
	}
	g, err := c.Accept(ctx, gid)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("joined in epoch %d", g.Epoch), nil
}

// expectHistory is how far back expect looks in the history.
const expectHistory = 10000

// expect waits until a text message reads text in the group's history.
func (r *scriptRun) expect(ctx context.Context, c *api.Client, gid, text string) (string, error) {
	es, err := c.Events(ctx, gid)
	if err != nil {
		return "", err
	}
	defer es.Close()
	hist, err := c.History(ctx, gid, expectHistory)
	if err != nil {
		return "", err
	}
	if slices.ContainsFunc(hist, func(m api.Message) bool { return m.Kind == api.KindText && m.Text == text }) {
		return "there", nil
	}
	err = waitEvent(ctx, es, func(ev api.Event) bool {
		return ev.Type == api.EventMessage && ev.Message != nil && ev.Message.Kind == api.KindText && ev.Message.Text == text
	})
	if err != nil {
		return "", fmt.Errorf("not there: %w", err)
	}
	return "arrived", nil
}

// waitEvent reads the stream until match or ctx ends.
func waitEvent(ctx context.Context, es *api.EventStream, match func(api.Event) bool) error {
	found := make(chan error, 1)
	go func() {
		for {
			ev, err := es.Next()
			if err != nil {
				found <- err
				return
			}
			if match(ev) {
				found <- nil
				return
			}
		}
	}()
	select {
	case err := <-found:
		return err
	case <-ctx.Done():
		es.Close() // ends the reader
		<-found
		return ctx.Err()
	}
}

func joinNums(is []int) string {
	s := make([]string, len(is))
	for k, i := range is {
		s[k] = strconv.Itoa(i)
	}
	return strings.Join(s, ",")
}
