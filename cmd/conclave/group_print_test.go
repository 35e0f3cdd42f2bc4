package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/conclave-im/conclave/api"
)

// TestPrintGroup: group info shows the settings without control
// characters and every pending change with why it waits.
func TestPrintGroup(t *testing.T) {
	g := api.Group{
		ID: "ab12", Epoch: 3, Active: true, Name: "book\x1b[31m club", Topic: "tuesdays",
		Members: []api.Member{{PeerID: "12D3KooWself", Self: true}},
		Pending: []api.PendingChange{{Desc: "invite 12D3KooWcarol", Since: time.Now(), Waiting: "waiting for a majority of members to be online (1 of 3 reachable, 2 needed)"}},
	}
	var b bytes.Buffer
	printGroup(&b, g, false)
	out := b.String()
	for _, want := range []string{"topic:               tuesdays", "12D3KooWself (you)", "pending:             invite 12D3KooWcarol: waiting for a majority of members to be online (1 of 3 reachable, 2 needed)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("output carries an escape sequence:\n%q", out)
	}
}
