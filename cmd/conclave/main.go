// Command conclave runs a Conclave node (conclave daemon) and talks to a
// running one through its local API (every other subcommand).
//
// docs/config.md lists the daemon's settings; docs/api.md the API the
// subcommands use.
package main

import (
	"fmt"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit codes, documented in docs/config.md.
const (
	exitOK          = 0
	exitFailure     = 1 // anything not listed below
	exitUsage       = 2 // bad flag, argument, config key or value
	exitDataDir     = 3 // data directory locked, unreadable or wrong passphrase
	exitAddrInUse   = 4 // a listen address or the API socket is taken
	exitNotRunning  = 5 // no daemon answers at the API address
	exitNotFound    = 6 // no such group, invitation or member
	exitUnavailable = 7 // the network did not let the operation complete (or --timeout passed first)
)

// exitError carries the exit code of a failed command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}
