package headoffice

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are head office's own figures (the sync endpoint keeps those of
// its connections): the ingest's transactions and the flags they raise.
type metrics struct {
	commit      prometheus.Histogram
	groupEvents prometheus.Histogram
	failed      prometheus.Counter
	flags       *prometheus.CounterVec
	signIns     *prometheus.CounterVec
}

// latencyBuckets are for a commit or an ack: 0.5 ms to 10 s.
var latencyBuckets = prometheus.ExponentialBucketsRange(0.0005, 10, 16)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "headoffice_store_commit_seconds",
			Help:    "Time to apply and commit one group of terminals' batches to the store, fsync (or PostgreSQL's commit) included.",
			Buckets: latencyBuckets,
		}),
		groupEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "headoffice_store_commit_events",
			Help:    "Events in one committed group of batches.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "headoffice_store_commits_failed_total",
			Help: "Ingest transactions the store failed (each batch of a failed group is then tried alone).",
		}),
		flags: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headoffice_flags_raised_total",
			Help: "Flags raised by ingesting terminals' events, by kind (a subject flagged again, a conflicting event resent twice, counts each time).",
		}, []string{"kind"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headoffice_console_signins_failed_total",
			Help: "Console sign-ins refused, by reason: password (a wrong name or password) or locked (too many of them).",
		}, []string{"reason"}),
	}
	m.signIns.WithLabelValues("password")
	m.signIns.WithLabelValues("locked")
	// The kinds the ingest raises appear from the start, at 0, so that
	// rate() sees the first one.
	for _, kind := range []string{"chain_break", "clock_skew", "conflicting_duplicate", "duplicate_decision",
		"duplicate_enrollment", "negative_balance", "out_of_range"} {
		m.flags.WithLabelValues(kind)
	}
	if reg != nil {
		reg.MustRegister(m.commit, m.groupEvents, m.failed, m.flags, m.signIns)
	}
	return m
}

// Ready reports whether head office can serve: its store is open and
// answers, and (on PostgreSQL) the database is reachable with this
// program's schema.
func (o *Office) Ready(ctx context.Context) error {
	select {
	case <-o.stop:
		return errStopped
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, readyWait)
	defer cancel()
	return o.store.Ready(ctx)
}

// readyWait bounds a readiness check: a store slower than this is not ready.
const readyWait = 2 * time.Second

// Backuper is a store that copies itself whole while head office runs (the
// embedded store; PostgreSQL is backed up with its own tools).
type Backuper interface {
	Backup(w io.Writer) (int64, error)
}

// Backup writes a consistent copy of the store to w.
func (o *Office) Backup(w io.Writer) (int64, error) {
	b, ok := o.store.(Backuper)
	if !ok {
		return 0, fmt.Errorf("%w: this store is backed up with its own tools (PostgreSQL: pg_dump or WAL archiving)", ErrInvalid)
	}
	return b.Backup(w)
}
