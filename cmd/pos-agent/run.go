package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/agent/localapi"
	"github.com/offline-loyalty/terminal/drivers/portlist"
	"github.com/offline-loyalty/terminal/drivers/scancode"
	"github.com/offline-loyalty/terminal/internal/cli"
	"github.com/offline-loyalty/terminal/sync/syncclient"
	"github.com/offline-loyalty/terminal/ui"
)

// runRun is the Fyne terminal app with the agent in-process: the same agent,
// local API and scanner as serve, and the window on top, calling the agent
// through its local API. With --attach the app is a client of the agent
// pos-agent serve runs on the data directory.
func runRun(ctx context.Context, args []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fs, c := cli.NewFlags(prog, "run")
	sf := addServeFlags(fs)
	attach := fs.Bool("attach", false, "show the app over the agent pos-agent serve runs on the data directory")
	window := fs.String("window", "", "open in a window of this size, e.g. 1024x768, instead of full screen")
	customer := fs.Bool("customer-display", false, "also open a window facing the customer (their points, the sale's lines, their progress)")
	log, err := parseServe(fs, c, sf, "run", args)
	if err != nil {
		return err
	}
	size, err := parseWindow(*window)
	if err != nil {
		return err
	}
	if *attach {
		for name, v := range map[string]string{"hq": *sf.hq, "scanner": *sf.scanner, "api": *sf.api, "metrics": *sf.metrics} {
			if v != "" {
				return fmt.Errorf("%w: run --attach: --%s belongs to the pos-agent serve the app attaches to", cli.ErrUsage, name)
			}
		}
		return runAttached(ctx, c.Data, ui.Deps{Window: size, CustomerDisplay: *customer}, log)
	}
	a, srv, err := openAgent(ctx, c, sf, log)
	if err != nil {
		return err
	}
	defer a.Close()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	startLink(ctx, a, c.Data, *sf.hq, log)
	// The app is a client of the local API like every other, here as
	// under --attach; only its settings screen works on the agent itself.
	r, err := localapi.Attach(ctx, agent.SocketPath(c.Data))
	if err != nil {
		return err
	}
	dec := scanDecoder(c.Data)
	deps := ui.Deps{
		Agent:     r,
		Settings:  &settingsBackend{a: a, dir: c.Data, log: log, ctx: ctx},
		Wedge:     wedge(dec),
		ExportDir: c.Data,
		Logger:    log,
		Window:    size,

		CustomerDisplay: *customer,
	}
	sc, err := startScanner(ctx, a, *sf.scanner, dec, log)
	if err != nil {
		return err
	}
	if sc != nil {
		defer sc.stop()
		go feedScans(a, sc.scans, log)
		if sc.sim != nil {
			deps.SimulateScan = sc.simulate
		}
	}
	if port := a.Settings().PrinterPort; port != "" {
		go printSlips(ctx, a, port, a.Status().Seq, log)
	}
	err = ui.Run(ctx, deps)
	cancel()
	if serr := <-served; err == nil && serr != nil && !errors.Is(serr, context.Canceled) {
		err = serr
	}
	return err
}

// runAttached runs the app as a client of the agent serving dir: its scans
// arrive as the agent's notices; the settings, the scanner and the printer
// belong to the serving process.
func runAttached(ctx context.Context, dir string, look ui.Deps, log *slog.Logger) error {
	sock := agent.SocketPath(dir)
	if !serving(sock) {
		return fmt.Errorf("run --attach: no agent is serving %s: start pos-agent serve --data %s", dir, dir)
	}
	r, err := localapi.Attach(ctx, sock)
	if err != nil {
		return fmt.Errorf("run --attach: %w", err)
	}
	log.Info("pos-agent app attached", "data", dir)
	d := look // the window's size and the customer display
	d.Agent, d.Wedge, d.ExportDir, d.Logger = r, wedge(scanDecoder(dir)), dir, log
	return ui.Run(ctx, d)
}

// parseWindow reads --window WIDTHxHEIGHT (640x480 to 7680x4320); "" is
// full screen (the zero size).
func parseWindow(s string) (ui.Size, error) {
	if s == "" {
		return ui.Size{}, nil
	}
	ws, hs, ok := strings.Cut(s, "x")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if !ok || err1 != nil || err2 != nil || w < 640 || h < 480 || w > 7680 || h > 4320 {
		return ui.Size{}, fmt.Errorf("%w: --window %q: WIDTHxHEIGHT, e.g. 1024x768 (640x480 at least)", cli.ErrUsage, s)
	}
	return ui.Size{Width: w, Height: h}, nil
}

// wedge decodes what a keyboard-wedge scanner (or the cashier) typed.
func wedge(dec scancode.Decoder) func(string) ui.Scan {
	return func(raw string) ui.Scan {
		s, err := dec.Wedge(raw, time.Now())
		return ui.Scan{Kind: s.Kind, Symbology: s.Symbology, Card: s.Card, Err: err}
	}
}

// settingsBackend is the settings screen's backend: the agent's saved
// settings and the machine's serial ports.
type settingsBackend struct {
	a   *agent.Agent
	dir string
	log *slog.Logger
	ctx context.Context // the app's: the link started by a join lives as long as it
}

func (s *settingsBackend) Current() ui.Config {
	set := s.a.Settings()
	return ui.Config{HQURL: set.HQURL, ScannerPort: set.ScannerPort, PrinterPort: set.PrinterPort,
		Language: set.Language, Currency: s.a.Rules().Currency, Joined: s.a.Identity().Joined()}
}

func (s *settingsBackend) Ports(context.Context) ([]string, error) {
	ports, err := portlist.List()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = p.Path
	}
	return out, nil
}

// Join registers the terminal with head office and starts the link.
func (s *settingsBackend) Join(ctx context.Context, hq, code string) error {
	if _, joined, err := syncclient.LoadLink(s.dir); err != nil {
		return err
	} else if joined {
		return errors.New("this terminal has joined head office already")
	}
	link, err := syncclient.Join(ctx, s.a, s.dir, hq, code, false)
	if err != nil {
		return err
	}
	if err := s.a.JoinedHQ(link.HQ); err != nil {
		return err
	}
	startLink(s.ctx, s.a, s.dir, "", s.log)
	return nil
}

func (s *settingsBackend) Save(_ context.Context, c ui.Config) error {
	set := s.a.Settings()
	set.HQURL, set.ScannerPort, set.PrinterPort, set.Language = c.HQURL, c.ScannerPort, c.PrinterPort, c.Language
	return s.a.SaveSettings(set)
}
