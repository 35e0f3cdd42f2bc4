package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, configFileName)
	err := os.WriteFile(path, []byte(`# comment
log-format = json
log-level = "debug"
listen = /ip4/127.0.0.1/tcp/1, /ip4/127.0.0.1/udp/1/quic-v1
mdns = false
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONCLAVE_LOG_LEVEL", "warn")
	t.Setenv("CONCLAVE_MDNS", "")
	os.Unsetenv("CONCLAVE_MDNS")
	t.Setenv("CONCLAVE_LISTEN", "")
	os.Unsetenv("CONCLAVE_LISTEN")
	t.Setenv("CONCLAVE_LOG_FORMAT", "text") // the flag below wins over it

	a := &app{}
	cmd := a.daemonCommand()
	if err := cmd.Flags().Parse([]string{"--log-format", "json"}); err != nil {
		t.Fatal(err)
	}
	cf, err := readConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := applyConfig(cmd.Flags(), cf, true); err != nil {
		t.Fatal(err)
	}
	get := func(name string) string { return cmd.Flags().Lookup(name).Value.String() }
	for _, c := range []struct{ key, want string }{
		{"log-format", "json"}, // flag
		{"log-level", "warn"},  // environment over file
		{"mdns", "false"},      // file
		{"listen", "[/ip4/127.0.0.1/tcp/1,/ip4/127.0.0.1/udp/1/quic-v1]"}, // file, a list
		{"dht", "auto"}, // default
	} {
		if got := get(c.key); got != c.want {
			t.Errorf("%s = %q, want %q", c.key, got, c.want)
		}
	}
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct{ name, content, msg string }{
		{"no equals sign", "listen\n", "key = value"},
		{"duplicate", "mdns = true\nmdns = false\n", "set twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c")
			os.WriteFile(p, []byte(tc.content), 0o600)
			_, err := readConfigFile(p)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want an error with %q", err, tc.msg)
			}
		})
	}
	// Unknown keys fail the daemon but not client commands, which read
	// only api-socket.
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.String("api-socket", "", "")
	markConfigurable(fs, "api-socket")
	cf := &configFile{path: "c", values: map[string]string{"mdns": "true"}, lines: map[string]int{"mdns": 1}}
	if err := applyConfig(fs, cf, true); err == nil || !strings.Contains(err.Error(), `unknown key "mdns"`) {
		t.Fatalf("strict: %v", err)
	}
	if err := applyConfig(fs, cf, false); err != nil {
		t.Fatalf("lenient: %v", err)
	}
}
