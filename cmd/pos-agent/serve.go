package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/agent/localapi"
	"github.com/offline-loyalty/terminal/internal/cli"
)

// serveFlags are the flags of the verbs that run the agent (serve and run).
type serveFlags struct {
	hq      *string
	scanner *string
	api     *string
}

func addServeFlags(fs interface {
	String(name, value, usage string) *string
}) serveFlags {
	return serveFlags{
		hq:      fs.String("hq", "", "head office URL (wss://host/v1/sync); default: the one saved by join"),
		scanner: fs.String("scanner", "", "scanner serial port, or sim for the simulator"),
		api:     fs.String("api", "", "also serve the local API on this loopback TCP address"),
	}
}

// startAgent parses the flags of serve or run, opens the agent on the data
// directory and listens for its local API.
func startAgent(ctx context.Context, verb string, args []string) (*cli.Common, serveFlags, *agent.Agent, *localapi.Server, *slog.Logger, error) {
	fs, c := cli.NewFlags(prog, verb)
	sf := addServeFlags(fs)
	if err := cli.Parse(fs, c, args); err != nil {
		return nil, sf, nil, nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, sf, nil, nil, nil, fmt.Errorf("%w: %s: unexpected argument %q", cli.ErrUsage, verb, fs.Arg(0))
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	agent.TuneGC()
	a, err := agent.Open(ctx, c.Data, agent.Options{Logger: log})
	if err != nil {
		return nil, sf, nil, nil, nil, err
	}
	srv, err := localapi.Listen(agent.SocketPath(c.Data), *sf.api, localapi.Handler(a, log))
	if err != nil {
		a.Close()
		return nil, sf, nil, nil, nil, err
	}
	go housekeep(ctx, a, log)
	return c, sf, a, srv, log, nil
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
		go feedBasket(a, sc.scans, log)
	}
	if port := a.Settings().PrinterPort; port != "" {
		go printSlips(ctx, a, port, a.Status().Seq, log)
	}
	id := a.Identity()
	log.Info("pos-agent serving", "terminal", id.Terminal, "data", c.Data, "api", srv.Addrs())
	return srv.Serve(ctx)
}
