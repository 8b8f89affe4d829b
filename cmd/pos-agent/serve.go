package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/agent/localapi"
	"github.com/offline-loyalty/terminal/internal/cli"
	"github.com/offline-loyalty/terminal/internal/logging"
)

// serveFlags are the flags of the verbs that run the agent (serve and run).
type serveFlags struct {
	hq        *string
	scanner   *string
	api       *string
	metrics   *string
	logFormat *string
}

func addServeFlags(fs interface {
	String(name, value, usage string) *string
}) serveFlags {
	return serveFlags{
		hq:        fs.String("hq", "", "head office URL (wss://host/v1/sync); default: the one saved by join"),
		scanner:   fs.String("scanner", "", "scanner serial port, or sim for the simulator"),
		api:       fs.String("api", "", "also serve the local API on this loopback TCP address"),
		metrics:   fs.String("metrics", "", "also serve /metrics (Prometheus) alone on this address, e.g. 127.0.0.1:9480"),
		logFormat: fs.String("log-format", logging.Text, "log format: text or json"),
	}
}

// startAgent parses the flags of serve or run, opens the agent on the data
// directory and listens for its local API.
func startAgent(ctx context.Context, verb string, args []string) (*cli.Common, serveFlags, *agent.Agent, *localapi.Server, *slog.Logger, error) {
	fs, c := cli.NewFlags(prog, verb)
	sf := addServeFlags(fs)
	log, err := parseServe(fs, c, sf, verb, args)
	if err != nil {
		return nil, sf, nil, nil, nil, err
	}
	a, srv, err := openAgent(ctx, c, sf, log)
	return c, sf, a, srv, log, err
}

// parseServe parses the flags of serve or run and makes the logger.
func parseServe(fs *flag.FlagSet, c *cli.Common, sf serveFlags, verb string, args []string) (*slog.Logger, error) {
	if err := cli.Parse(fs, c, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: %s: unexpected argument %q", cli.ErrUsage, verb, fs.Arg(0))
	}
	log, err := logging.New(os.Stderr, *sf.logFormat, slog.LevelInfo)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", cli.ErrUsage, verb, err)
	}
	return log, nil
}

// openAgent opens the agent on the data directory and listens for its
// local API (and its metrics, with --metrics).
func openAgent(ctx context.Context, c *cli.Common, sf serveFlags, log *slog.Logger) (*agent.Agent, *localapi.Server, error) {
	agent.TuneGC()
	a, err := agent.Open(ctx, c.Data, agent.Options{Logger: log})
	if err != nil {
		return nil, nil, err
	}
	var ml net.Listener
	if *sf.metrics != "" {
		if ml, err = net.Listen("tcp", *sf.metrics); err != nil {
			a.Close()
			return nil, nil, fmt.Errorf("--metrics: %w", err)
		}
	}
	srv, err := localapi.Listen(agent.SocketPath(c.Data), *sf.api, localapi.Handler(a, log))
	if err != nil {
		if ml != nil {
			ml.Close()
		}
		a.Close()
		return nil, nil, err
	}
	if ml != nil {
		serveMetrics(ctx, ml, a, log)
	}
	go housekeep(ctx, a, log)
	return a, srv, nil
}

// serveMetrics serves the agent's /metrics alone on ln until ctx ends.
func serveMetrics(ctx context.Context, ln net.Listener, a *agent.Agent, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", localapi.MetricsHandler(a, log))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	go func() { _ = hs.Serve(ln) }()
	go func() { <-ctx.Done(); _ = hs.Close() }()
	log.Info("pos-agent metrics", "listen", ln.Addr().String())
}

// housekeepEvery is how often a running agent writes the expiries and review
// downgrades that have come due; each run is idempotent and cheap when
// nothing is due.
const housekeepEvery = time.Hour

// housekeep runs the agent's expiry and tier review at start and then every
// housekeepEvery until ctx ends.
func housekeep(ctx context.Context, a *agent.Agent, log *slog.Logger) {
	t := time.NewTicker(housekeepEvery)
	defer t.Stop()
	for {
		h, err := a.Expire(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Error("expiry and tier review", "err", err)
		case h != (agent.Housekeeping{}):
			log.Info("expiry and tier review", "expired", h.Expired, "points", h.Points, "downgraded", h.Downgraded, "deferred", h.Deferred)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func runServe(ctx context.Context, args []string) error {
	c, sf, a, srv, log, err := startAgent(ctx, "serve", args)
	if err != nil {
		return err
	}
	defer a.Close()
	startLink(ctx, a, c.Data, *sf.hq, log)
	sc, err := startScanner(ctx, a, *sf.scanner, scanDecoder(c.Data), log)
	if err != nil {
		return err
	}
	if sc != nil {
		defer sc.stop()
		go feedScans(a, sc.scans, log)
	}
	if port := a.Settings().PrinterPort; port != "" {
		go printSlips(ctx, a, port, a.Status().Seq, log)
	}
	id := a.Identity()
	log.Info("pos-agent serving", "terminal", id.Terminal, "data", c.Data, "api", addrList(srv.Addrs()))
	return srv.Serve(ctx)
}

// addrList renders listeners' addresses for a log line.
func addrList(addrs []net.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}
