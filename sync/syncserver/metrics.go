package syncserver

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the sync endpoint's figures: its terminals, their batches and
// acks, and what it refused.
type metrics struct {
	connected   prometheus.Gauge
	handshakes  *prometheus.CounterVec // by result: ok, or the refusal's code
	events      prometheus.Counter
	batchEvents prometheus.Histogram
	ack         prometheus.Histogram
	refused     *prometheus.CounterVec // batches, by code
	joins       *prometheus.CounterVec // by result
}

func newMetrics(reg prometheus.Registerer, conns ConnCounter) *metrics {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "headoffice_terminals_connected",
			Help: "Terminals connected with a proven key.",
		}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headoffice_handshakes_total",
			Help: "Sync handshakes, by result: ok, or the code of the refusal (auth, internal).",
		}, []string{"result"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "headoffice_events_ingested_total",
			Help: "Events in batches head office committed and acked (a resent event counts again).",
		}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "headoffice_batch_events",
			Help:    "Events in one batch a terminal sent.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		ack: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "headoffice_ack_seconds",
			Help:    "Time from reading a terminal's batch to queueing its ack: waiting behind the connection's earlier batches, the group commit and its fsync.",
			Buckets: prometheus.ExponentialBucketsRange(0.0005, 10, 16),
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headoffice_batches_refused_total",
			Help: "Batches refused, by reason: chain, protocol, range, skew (the terminal is told and stops), internal (a store failure; it retries).",
		}, []string{"reason"}),
		joins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headoffice_joins_total",
			Help: "Join requests, by result: ok, throttled, or the code of the refusal.",
		}, []string{"result"}),
	}
	// Every reason appears from the start, at 0, so that rate() sees the
	// first refusal.
	for _, code := range []string{"chain", "protocol", "range", "skew", "internal"} {
		m.refused.WithLabelValues(code)
	}
	for _, r := range []string{"ok", "auth", "internal"} {
		m.handshakes.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "throttled", "invalid", "too_large", "join_code", "internal"} {
		m.joins.WithLabelValues(r)
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.connected, m.handshakes, m.events, m.batchEvents, m.ack, m.refused, m.joins)
	if conns != nil {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "headoffice_open_connections",
				Help: "TCP connections the sync listener holds open, authenticated or not.",
			}, func() float64 { return float64(conns.Open()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "headoffice_connections_refused_total",
				Help: "TCP connections refused at accept: over the limit of unauthenticated connections of one address or in all.",
			}, func() float64 { return float64(conns.Refused()) }),
		)
	}
	return m
}
