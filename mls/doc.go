// Package mls implements the Messaging Layer Security protocol (RFC 9420).
//
// The package is organised like crypto/tls: one file per concern, with each
// wire type next to its codec. codec.go holds the TLS presentation-language
// encoder and the strict decoder every wire type uses; ciphersuite.go,
// signature.go and hpke.go hold the seven cipher suites of RFC 9420 §17.1;
// treemath.go holds the array-based tree arithmetic of §4 and Appendix C.
//
// The package has no goroutines, clocks or global randomness: randomness is
// always passed in as an io.Reader so that tests are reproducible byte for
// byte. Decoders never panic on malformed input; they return errors that
// callers can inspect with errors.Is and errors.As.
package mls
