package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/pflag"
)

// configFileName is the config file in the data directory.
const configFileName = "conclave.conf"

// configurable marks flags that the config file and the environment may
// also set.
const configurable = "conclave-config"

// defaultHome is the data directory when neither --home nor CONCLAVE_HOME
// names one: the platform's per-user data directory.
func defaultHome() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && runtime.GOOS != "windows" && runtime.GOOS != "darwin" {
		return filepath.Join(d, "conclave"), nil
	}
	switch runtime.GOOS {
	case "windows":
		if d := os.Getenv("LocalAppData"); d != "" {
			return filepath.Join(d, "Conclave"), nil
		}
	case "darwin":
		h, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(h, "Library", "Application Support", "Conclave"), nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no data directory: set --home or CONCLAVE_HOME (%w)", err)
	}
	return filepath.Join(h, ".local", "share", "conclave"), nil
}

// envName is the environment variable for a config key:
// "api-socket" -> "CONCLAVE_API_SOCKET".
func envName(key string) string {
	return "CONCLAVE_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

// configFile is a parsed config file: "key = value" lines, '#' comments.
type configFile struct {
	path   string
	values map[string]string
	lines  map[string]int
}

// readConfigFile reads path; a missing file is an empty config.
func readConfigFile(path string) (*configFile, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &configFile{path: path, values: map[string]string{}, lines: map[string]int{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return parseConfig(f, path)
}

// maxConfigLine bounds one line of the config file.
const maxConfigLine = 64 << 10

// parseConfig reads "key = value" lines; path names the source in errors.
func parseConfig(r io.Reader, path string) (*configFile, error) {
	cf := &configFile{path: path, values: map[string]string{}, lines: map[string]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxConfigLine)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("config %s:%d: want key = value", path, n)
		}
		k = strings.TrimSpace(k)
		v = strings.TrimSpace(v)
		if k == "" {
			return nil, fmt.Errorf("config %s:%d: empty key", path, n)
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if _, dup := cf.values[k]; dup {
			return nil, fmt.Errorf("config %s:%d: %q set twice (first on line %d)", path, n, k, cf.lines[k])
		}
		cf.values[k] = v
		cf.lines[k] = n
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cf, nil
}

// markConfigurable lets the config file and environment set the named
// flags.
func markConfigurable(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		if err := fs.SetAnnotation(n, configurable, []string{"true"}); err != nil {
			panic(err) // a programming error: the flag is not defined
		}
	}
}

// applyConfig fills every configurable flag the command line left unset:
// first from the environment, then from the config file. A key in the file
// that is no configurable flag is an error when strict (the daemon, which
// owns every key), so typos do not pass silently.
func applyConfig(fs *pflag.FlagSet, cf *configFile, strict bool) error {
	for k := range cf.values {
		f := fs.Lookup(k)
		if f == nil || f.Annotations[configurable] == nil {
			if strict {
				return fmt.Errorf("config %s:%d: unknown key %q (see docs/config.md)", cf.path, cf.lines[k], k)
			}
		}
	}
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Annotations[configurable] == nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := f.Value.Set(listValue(f, v)); e != nil {
				err = fmt.Errorf("environment %s=%q: %w", envName(f.Name), v, e)
			}
			return
		}
		if v, ok := cf.values[f.Name]; ok {
			if e := f.Value.Set(listValue(f, v)); e != nil {
				err = fmt.Errorf("config %s:%d: %s: %w", cf.path, cf.lines[f.Name], f.Name, e)
			}
		}
	})
	return err
}

// listValue lets list settings have spaces after their commas
// ("a, b"), which pflag's CSV parsing would keep inside the items.
func listValue(f *pflag.Flag, v string) string {
	if f.Value.Type() != "stringSlice" {
		return v
	}
	items := strings.Split(v, ",")
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	return strings.Join(items, ",")
}
