// Package api is the local API of a Conclave daemon: JSON over HTTP with
// versioned paths (/v1/...), served on a Unix socket that only the daemon's
// owner can open and, when enabled, on loopback TCP behind a bearer token.
// The CLI, the chat TUI and any other front end use it through Client.
//
// docs/api.md lists every endpoint with curl examples.
package api
