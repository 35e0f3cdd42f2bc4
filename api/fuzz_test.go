package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

func streamOf(s string) *EventStream {
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 4096), 2*MaxBodyBytes)
	return &EventStream{body: io.NopCloser(nil), sc: sc}
}

// FuzzEventStream feeds the client's SSE reader arbitrary bytes: it never
// panics, and every event it returns, written back the way the server
// writes events, reads back equal.
func FuzzEventStream(f *testing.F) {
	f.Add("event: message\ndata: {\"type\":\"message\",\"group_id\":\"ab\",\"message\":{\"text\":\"hi\"}}\n\n")
	f.Add(": keepalive\n\nevent: group_joined\ndata: {\"type\":\"group_joined\",\"group_id\":\"cd\",\"epoch\":3}\n\n")
	f.Add("data: {\"type\":\ndata: \"x\"}\n\n")
	f.Add("data: [1,2]\n\n")
	f.Add("event: message_state\ndata: {\"type\":\"message_state\",\"group_id\":\"ab\",\"message_id\":\"01\",\"state\":\"pending\",\"waiting\":\"no member of the group is online\"}\n\n")
	f.Add("event: pending_changed\ndata: {\"type\":\"pending_changed\",\"group_id\":\"ab\",\"pending\":[{\"desc\":\"invite x\",\"since\":\"2026-11-25T21:00:00Z\",\"waiting\":\"w\"}]}\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		es := streamOf(in)
		for range 100 {
			ev, err := es.Next()
			if err != nil {
				return
			}
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", ev, err)
			}
			again, err := streamOf(fmt.Sprintf("event: %s\ndata: %s\n\n", ev.Type, b)).Next()
			if err != nil {
				t.Fatalf("re-read %s: %v", b, err)
			}
			if !reflect.DeepEqual(normalise(ev), normalise(again)) {
				t.Fatalf("event changed:\n%+v\n%+v", ev, again)
			}
		}
	})
}

// normalise compares events by their JSON form (time zones and empty
// versus nil slices are not differences a client can see).
func normalise(ev Event) string {
	b, _ := json.Marshal(ev)
	return string(b)
}
