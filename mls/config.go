package mls

import (
	"crypto/rand"
	"io"
	"time"
)

// Defaults used when the corresponding Config field is zero. They are the
// values of Conclave's operational profile (RFC 9750 §7): generous enough for
// a gossip network that reorders and delays messages, small enough that a
// hostile member cannot make a receiver derive or store keys without bound.
const (
	// DefaultMaxForwardDistance is how many generations a receiver moves a
	// sender's ratchet forward to decrypt one message (RFC 9420 §15.3).
	DefaultMaxForwardDistance = 1024

	// DefaultMaxRetainedKeys is how many skipped (not yet used) keys a receiver
	// keeps per sender and ratchet for messages that arrive out of order.
	DefaultMaxRetainedKeys = 128

	// DefaultPaddingBlock pads every PrivateMessage plaintext to a multiple of
	// this many bytes (RFC 9420 §15.1), hiding the exact length of short texts.
	DefaultPaddingBlock = 32
)

// Config carries everything the protocol code takes from its environment. The
// zero value (and a nil *Config) is usable and means the documented defaults;
// tests set Rand and Time for byte-for-byte reproducible runs.
type Config struct {
	// Rand supplies all randomness (reuse guards, key generation, HPKE). If
	// nil, crypto/rand.Reader is used.
	Rand io.Reader

	// Time returns the current time (KeyPackage lifetimes). If nil, time.Now
	// is used.
	Time func() time.Time

	// MaxForwardDistance bounds how far ahead of a sender's ratchet a received
	// generation may be. Zero means DefaultMaxForwardDistance.
	MaxForwardDistance uint32

	// MaxRetainedKeys bounds the skipped keys kept per sender and ratchet;
	// when full, the oldest generation is discarded. Zero means
	// DefaultMaxRetainedKeys; a negative value keeps none (strict in-order
	// delivery).
	MaxRetainedKeys int

	// PaddingBlock pads each PrivateMessage plaintext with zero bytes to a
	// multiple of this many bytes. Zero means DefaultPaddingBlock; 1 disables
	// padding.
	PaddingBlock int
}

// Random returns the configured source of randomness.
func (c *Config) Random() io.Reader {
	if c == nil || c.Rand == nil {
		return rand.Reader
	}
	return c.Rand
}

// Now returns the configured current time.
func (c *Config) Now() time.Time {
	if c == nil || c.Time == nil {
		return time.Now()
	}
	return c.Time()
}

func (c *Config) maxForwardDistance() uint32 {
	if c == nil || c.MaxForwardDistance == 0 {
		return DefaultMaxForwardDistance
	}
	return c.MaxForwardDistance
}

func (c *Config) maxRetainedKeys() int {
	switch {
	case c == nil || c.MaxRetainedKeys == 0:
		return DefaultMaxRetainedKeys
	case c.MaxRetainedKeys < 0:
		return 0
	default:
		return c.MaxRetainedKeys
	}
}

func (c *Config) paddingBlock() int {
	if c == nil || c.PaddingBlock <= 0 {
		return DefaultPaddingBlock
	}
	return c.PaddingBlock
}
