package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/offline-loyalty/terminal/internal/buildstamp"
)

// Operation kinds, as the metrics and the refusal log name them.
const (
	opEarn        = "earn"
	opRedeem      = "redeem"
	opDonate      = "donate"
	opVoid        = "void"
	opRefund      = "refund"
	opEnroll      = "enroll"
	opAdjust      = "adjust"
	opReplaceCard = "replace_card"
)

var opKinds = []string{opEarn, opRedeem, opDonate, opVoid, opRefund, opEnroll, opAdjust, opReplaceCard}

// metrics are the terminal's figures, served on the local API's /metrics
// (and pos-agent's --metrics address): what the cashiers did and what was
// refused, how long the ledger took to make it durable, and, read at each
// scrape from Status, the queue to head office, the link and the scanner.
type metrics struct {
	reg      *prometheus.Registry
	ops      *prometheus.CounterVec
	replayed prometheus.Counter
	commit   prometheus.Histogram
	connects prometheus.Counter
	scans    prometheus.Counter
}

func newMetrics(a *Agent) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pos_agent_operations_total",
			Help: "Operations asked of the terminal (earn, redeem, donate, void, refund, enroll, adjust, replace_card), by result: ok, or the reason it was refused (insufficient_points, offline_limit, ...).",
		}, []string{"kind", "result"}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pos_agent_operations_replayed_total",
			Help: "Operations retried on a checkout that had done them: answered with the first result, nothing written.",
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pos_agent_commit_seconds",
			Help:    "Time to make one operation durable in the ledger (its write-ahead log record and fdatasync, sharing a commit with others).",
			Buckets: prometheus.ExponentialBucketsRange(0.00005, 5, 16),
		}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pos_agent_link_connects_total",
			Help: "Times the link to head office came up (a reconnect counts again).",
		}),
		scans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pos_agent_scans_total",
			Help: "Member cards scanned at the till (a card or a QR code).",
		}),
	}
	for _, kind := range opKinds {
		m.ops.WithLabelValues(kind, "ok")
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pos_agent_build_info",
		Help: "The running build: 1, labelled with its version and commit.",
	}, []string{"version", "commit"})
	v := buildstamp.Get()
	build.WithLabelValues(v.Version, v.Commit).Set(1)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build, m.ops, m.replayed, m.commit, m.connects, m.scans, statusCollector{a})
	return m
}

// Metrics is the terminal's metrics registry, for an HTTP handler to serve.
func (a *Agent) Metrics() prometheus.Gatherer { return a.metrics.reg }

// done counts an operation of kind that returned err, and logs a refusal
// in one line with its reason.
func (a *Agent) done(kind string, err error) {
	if err == nil {
		a.metrics.ops.WithLabelValues(kind, "ok").Inc()
		return
	}
	reason := Reason(err)
	a.metrics.ops.WithLabelValues(kind, reason).Inc()
	a.log.Info("operation refused", "kind", kind, "reason", reason, "err", err)
}

// statusCollector reads Status once per scrape.
type statusCollector struct{ a *Agent }

var (
	descQueue     = prometheus.NewDesc("pos_agent_queue_events", "Events head office has not acked.", nil, nil)
	descOldest    = prometheus.NewDesc("pos_agent_oldest_unsent_age_seconds", "Age of the oldest event head office has not acked (0 when none waits).", nil, nil)
	descOnline    = prometheus.NewDesc("pos_agent_link_up", "1 while the terminal is connected to head office.", nil, nil)
	descCurrent   = prometheus.NewDesc("pos_agent_link_current", "1 while connected with head office's feeds caught up (no offline limit applies).", nil, nil)
	descLastSync  = prometheus.NewDesc("pos_agent_last_sync_timestamp_seconds", "When head office last acked or sent something (absent before the first time).", nil, nil)
	descScanner   = prometheus.NewDesc("pos_agent_scanner", "The scanner's state: 1 for the current one (none, connected, disconnected, ...).", []string{"state"}, nil)
	descRules     = prometheus.NewDesc("pos_agent_rules_version", "Version of the rules the terminal applies.", nil, nil)
	descSeq       = prometheus.NewDesc("pos_agent_ledger_seq", "Sequence of the last event written to the ledger.", nil, nil)
	descLogBytes  = prometheus.NewDesc("pos_agent_log_bytes", "Size on disk of the ledger's write-ahead log segments.", nil, nil)
	descLogLag    = prometheus.NewDesc("pos_agent_log_apply_lag_seconds", "How long the oldest log record the ledger file has not applied has waited.", nil, nil)
	descLogFailed = prometheus.NewDesc("pos_agent_log_failed", "1 when a write to the ledger's log has failed (pos-agent status says why).", nil, nil)
)

func (statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueue, descOldest, descOnline, descCurrent, descLastSync, descScanner, descRules, descSeq, descLogBytes, descLogLag, descLogFailed} {
		ch <- d
	}
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.a.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	bit := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	gauge(descQueue, float64(s.Queue))
	var oldest float64
	if s.OldestUnsent != nil {
		oldest = max(0, c.a.now().Sub(*s.OldestUnsent).Seconds())
	}
	gauge(descOldest, oldest)
	gauge(descOnline, bit(s.Online))
	gauge(descCurrent, bit(s.Current))
	if s.LastSync != nil {
		gauge(descLastSync, float64(s.LastSync.UnixNano())/float64(time.Second))
	}
	gauge(descScanner, 1, s.Scanner)
	gauge(descRules, float64(s.RulesVersion))
	gauge(descSeq, float64(s.Seq))
	gauge(descLogBytes, float64(s.Log.Bytes))
	gauge(descLogLag, float64(s.Log.LagMS)/1000)
	gauge(descLogFailed, bit(s.Log.Failed != ""))
}
