package gossip

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Drop reasons, the values of the "reason" label of
// conclave_gossip_drops_total.
const (
	DropOversized       = "oversized"             // larger than the protocol's limit
	DropMalformed       = "malformed"             // did not parse
	DropBadVersion      = "bad_version"           // unknown envelope version
	DropUnknownKind     = "unknown_kind"          // kind unknown or not allowed here
	DropRateLimited     = "rate_limited"          // neighbour above its gossip rate
	DropValidateQueue   = "validation_queue_full" // pubsub's validate queue overflowed
	DropThrottled       = "validation_throttled"  // pubsub's validation throttle
	DropOutbound        = "outbound_dropped"      // a peer's outbound RPC queue was full or not open yet
	DropSubscriberSlow  = "subscriber_slow"       // the node did not read a subscription fast enough
	DropPeerThrottled   = "peer_throttled"        // pubsub's peer gater throttled a peer
	DropSignature       = "signature_policy"      // message signed (or unsigned) against policy
	DropBlacklisted     = "blacklisted"           // from a blacklisted peer
	DropGraylisted      = "graylisted"            // from a peer whose score fell below the graylist threshold
	DropPayloadFetch    = "payload_fetch_failed"  // a large payload could not be fetched
	DropStreamTimeout   = "stream_timeout"        // a stream did not finish before its deadline
	DropStreamBusy      = "stream_busy"           // too many concurrent streams for a protocol
	DropHandlerRejected = "handler_rejected"      // the node's handler refused the request
	DropOther           = "other"
)

// metrics are the package's Prometheus collectors.
type metrics struct {
	messages    *prometheus.CounterVec // direction, protocol
	gossipIn    prometheus.Counter     // messages{in, gossip}, resolved once: it is on the hot path
	gossipOut   prometheus.Counter
	drops       *prometheus.CounterVec   // reason
	peers       prometheus.Gauge         // connected peers
	publishWait prometheus.Histogram     // time Publish waited for backpressure
	publishTime prometheus.Histogram     // total time of Publish
	streamTime  *prometheus.HistogramVec // protocol
	inflight    *prometheus.GaugeVec     // protocol
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "conclave", Subsystem: "gossip", Name: "messages_total",
			Help: "Messages sent and received, by direction (in, out) and protocol (gossip or a stream protocol).",
		}, []string{"direction", "protocol"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "conclave", Subsystem: "gossip", Name: "drops_total",
			Help: "Messages, RPCs and streams dropped, by reason.",
		}, []string{"reason"}),
		peers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "conclave", Subsystem: "gossip", Name: "peers",
			Help: "Peers with at least one open connection.",
		}),
		publishWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "conclave", Subsystem: "gossip", Name: "publish_backpressure_seconds",
			Help:    "Time Publish waited for congested peer queues to drain.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		publishTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "conclave", Subsystem: "gossip", Name: "publish_seconds",
			Help:    "Time from Publish being called to the message being queued to every mesh peer.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 10),
		}),
		streamTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "conclave", Subsystem: "gossip", Name: "stream_seconds",
			Help:    "Duration of served direct-protocol exchanges, by protocol.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}, []string{"protocol"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "conclave", Subsystem: "gossip", Name: "streams_inflight",
			Help: "Inbound direct-protocol streams being served, by protocol.",
		}, []string{"protocol"}),
	}
	m.gossipIn = m.messages.WithLabelValues("in", gossipProtocol)
	m.gossipOut = m.messages.WithLabelValues("out", gossipProtocol)
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.messages, m.drops, m.peers, m.publishWait, m.publishTime, m.streamTime, m.inflight} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("gossip: registering metrics"), err)
		}
	}
	return m, nil
}

func (m *metrics) drop(reason string)             { m.drops.WithLabelValues(reason).Inc() }
func (m *metrics) in(protocol string)             { m.messages.WithLabelValues("in", protocol).Inc() }
func (m *metrics) out(protocol string)            { m.messages.WithLabelValues("out", protocol).Inc() }
func (m *metrics) dropN(reason string, n float64) { m.drops.WithLabelValues(reason).Add(n) }

// dropReason maps a codec error to a drop reason.
func dropReason(err error) string {
	switch {
	case errors.Is(err, ErrTooLarge):
		return DropOversized
	case errors.Is(err, ErrBadVersion):
		return DropBadVersion
	case errors.Is(err, ErrUnknownKind):
		return DropUnknownKind
	case errors.Is(err, ErrMalformed):
		return DropMalformed
	default:
		return DropOther
	}
}
