package node

import (
	"io"
	"log/slog"
	"time"

	"github.com/conclave-im/conclave/datastore"
	"github.com/conclave-im/conclave/gossip"
	"github.com/conclave-im/conclave/profile"
)

// Options configure a Node. The zero value of every field means the
// documented default; Store or Datastore must say where state lives.
type Options struct {
	// Store is an open datastore the node uses and does not close. When nil,
	// the node opens one from Datastore and closes it on Close.
	Store     *datastore.Store
	Datastore datastore.Options

	// Profile holds every operational parameter (docs/profile.md). A zero
	// Profile (empty Name) means profile.Default().
	Profile profile.Profile

	// Network configures the libp2p host. Its Identity and Handlers are
	// always set by the node (the node identity and the node itself).
	Network gossip.Config

	// AutoAccept joins groups as soon as a Welcome arrives. Without it a
	// Welcome becomes a pending invitation until AcceptInvitation.
	AutoAccept bool

	// Clock supplies the time and the consensus tick; nil means the system
	// clock.
	Clock Clock
	// Rand supplies all randomness; nil means crypto/rand.
	Rand io.Reader
	// Logger receives the node's logs; nil means slog.Default().
	Logger *slog.Logger

	// EventBuffer is the capacity of each subscription's channel; default
	// 1024. A subscriber that falls further behind loses events (logged).
	EventBuffer int
}

// Clock is the node's source of time, injected so that tests control it.
type Clock interface {
	Now() time.Time
	// NewTicker returns a ticker firing every d.
	NewTicker(d time.Duration) Ticker
}

// Ticker is a running periodic timer.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTicker returns a time.Ticker.
func (SystemClock) NewTicker(d time.Duration) Ticker { return sysTicker{time.NewTicker(d)} }

type sysTicker struct{ t *time.Ticker }

func (s sysTicker) C() <-chan time.Time { return s.t.C }
func (s sysTicker) Stop()               { s.t.Stop() }
