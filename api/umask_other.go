//go:build !unix

package api

// withUmask runs f; systems without a umask rely on the chmod that follows.
func withUmask(_ int, f func() error) error { return f() }
