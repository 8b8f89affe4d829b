package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/internal/buildstamp"
	"github.com/offline-loyalty/terminal/internal/cli"
)

// ops answers the operators' probes: /healthz (the process is alive),
// /readyz (head office is open and its store answers) and /metrics.
type ops struct {
	office atomic.Pointer[headoffice.Office] // nil until the store is open
	reg    *prometheus.Registry
	log    *slog.Logger
}

func newOps(log *slog.Logger) *ops {
	reg := prometheus.NewRegistry()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "headoffice_build_info",
		Help: "The running build: 1, labelled with its version and commit.",
	}, []string{"version", "commit"})
	v := buildstamp.Get()
	build.WithLabelValues(v.Version, v.Commit).Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), build)
	return &ops{reg: reg, log: log}
}

// handle adds the probes to mux, and /metrics when metrics is set.
func (o *ops) handle(mux *http.ServeMux, metrics bool) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		office := o.office.Load()
		if office == nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready: opening the store")
			return
		}
		if err := office.Ready(r.Context()); err != nil {
			o.log.Warn("not ready", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %s\n", cli.OneLine(err.Error()))
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if metrics {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(o.log.Handler(), slog.LevelWarn)}))
	}
}
