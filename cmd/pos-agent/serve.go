package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

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
	a, err := agent.Open(ctx, c.Data, agent.Options{Logger: log})
	if err != nil {
		return nil, sf, nil, nil, nil, err
	}
	srv, err := localapi.Listen(agent.SocketPath(c.Data), *sf.api, localapi.Handler(a, log))
	if err != nil {
		a.Close()
		return nil, sf, nil, nil, nil, err
	}
	return c, sf, a, srv, log, nil
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
