package testnet

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestScript runs testdata/partition.tn, the rehearsal of docs/testnet.md,
// on five nodes.
func TestScript(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tn := startTestnet(t, ctx, 5)
	f, err := os.Open("testdata/partition.tn")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := ParseScript("partition.tn", f)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := s.Run(ctx, ScriptOptions{Dir: tn.Dir(), Out: &out, StepTimeout: time.Minute}); err != nil {
		t.Fatalf("%v\ntranscript:\n%s", err, &out)
	}
	for _, want := range []string{
		`partition 1,2 3,4,5: partitioned 1,2 | 3,4,5`,
		`node1 remove g node4 & (in the background)`,
		`node3 remove g node5: removed in epoch 5`,
		`node1 remove g node4 &: removed in epoch 6`,
		`wait g: node 1,2,3 agree: epoch 6, 3 members`,
		`node3 expect g "while node3 was away": `,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("transcript lacks %q:\n%s", want, &out)
		}
	}
}

func TestScriptStepFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tn := startTestnet(t, ctx, 2)
	s, err := ParseScript("fail.tn", strings.NewReader("node1 create g\n\nnode1 send g hi\nnode1 expect g \"never sent\"\nheal\n"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = s.Run(ctx, ScriptOptions{Dir: tn.Dir(), Out: &out, StepTimeout: 100 * time.Millisecond})
	var se *ScriptError
	if !errors.As(err, &se) || se.Line != 4 || !errors.Is(err, context.DeadlineExceeded) || strings.Contains(out.String(), "heal") {
		t.Fatalf("run: %v (%#v)\ntranscript:\n%s", err, se, &out)
	}

	big, err := ParseScript("big.tn", strings.NewReader("node3 create g\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Run(ctx, ScriptOptions{Dir: tn.Dir()}); !errors.As(err, &se) || se.Line != 1 || !strings.Contains(err.Error(), "there is no node 3") {
		t.Fatalf("a script for more nodes: %v", err)
	}
	if err := big.Run(ctx, ScriptOptions{Dir: t.TempDir()}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("a script without a testnet: %v", err)
	}
}

func TestParseScript(t *testing.T) {
	for _, tc := range []struct {
		script string
		line   int
		err    string
	}{
		{"node1 send g hi", 1, `group "g" is not created by an earlier line`},
		{"# comment\nnode1 create g\nnode1 sned g hi", 3, `unknown step "sned" for a node`},
		{"node1 create g\nnode1 send g \"hi", 2, "unterminated quote"},
		{"node1 create g\nnode1 send g \"a\"b", 2, "text right after the closing quote"},
		{"node1 create g\nnode1 send g a\"b", 2, "a quote inside"},
		{"node1 create g\nnode1 send g", 2, "usage: nodeN send G TEXT"},
		{"node1 create g\nnode1 invite g 2", 2, `"2" is not a node`},
		{"node1 create g\nnode2 accept g &", 2, "accept cannot run in the background"},
		{"partition 1,x", 1, `"x" is not a node number`},
		{"heal now", 1, "usage: heal"},
		{"stop x", 1, `"x" is not a node`},
		{"node1", 1, "node1 what?"},
		{"&", 1, "a lone &"},
		{"dance", 1, `unknown step "dance"`},
		{"node1 create g\nwait g &", 2, "wait cannot run in the background"},
	} {
		_, err := ParseScript("t.tn", strings.NewReader(tc.script))
		var se *ScriptError
		if !errors.As(err, &se) || se.Line != tc.line || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ParseScript(%q) = %v; want line %d and %q", tc.script, err, tc.line, tc.err)
		}
	}
	s, err := ParseScript("ok.tn", strings.NewReader("node1 create g\nnode1 send g \"two words\\n\" &\nstop node2\nstart 2\nawait\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.steps) != 5 || s.steps[1].args[1] != "two words\n" || !s.steps[1].bg || s.steps[2].num != 2 || s.steps[3].num != 2 {
		t.Fatalf("parsed %+v", s.steps)
	}
}

// FuzzParseScript: a script either parses or is refused with a
// ScriptError naming a line; it never panics.
func FuzzParseScript(f *testing.F) {
	b, err := os.ReadFile("testdata/partition.tn")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Add("node1 create g\nnode1 send g \"a \\\"quoted\\\" word\" &\n")
	f.Add("partition 1,2 3\nstop node7\n")
	f.Fuzz(func(t *testing.T, in string) {
		_, err := ParseScript("fuzz.tn", strings.NewReader(in))
		var se *ScriptError
		if err != nil && !errors.As(err, &se) && !strings.Contains(err.Error(), "token too long") {
			t.Fatalf("ParseScript: %v is not a ScriptError", err)
		}
	})
}
