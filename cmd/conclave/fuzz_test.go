package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// FuzzConfig checks that any accepted config file means the same after
// being written back in the canonical form: parse, format, parse gives the
// same keys and values.
func FuzzConfig(f *testing.F) {
	f.Add("# c\nlisten = /ip4/127.0.0.1/tcp/1, /ip4/127.0.0.1/udp/1/quic-v1\nmdns=false\n")
	f.Add("log-level = \"debug\"\n\n  dht =   off  \n")
	f.Add("a = \"\"\"\nb = = =\n")
	f.Fuzz(func(t *testing.T, in string) {
		cf, err := parseConfig(strings.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		var sb strings.Builder
		for _, k := range slices.Sorted(maps.Keys(cf.values)) {
			// Quoting keeps the value exactly, spaces and quotes included.
			fmt.Fprintf(&sb, "%s = \"%s\"\n", k, cf.values[k])
		}
		again, err := parseConfig(strings.NewReader(sb.String()), "fuzz")
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, sb.String())
		}
		if !maps.Equal(cf.values, again.values) {
			t.Fatalf("values changed:\n%q\n%q", cf.values, again.values)
		}
	})
}
