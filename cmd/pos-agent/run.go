package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/drivers/portlist"
	"github.com/offline-loyalty/terminal/drivers/scancode"
	"github.com/offline-loyalty/terminal/sync/syncclient"
	"github.com/offline-loyalty/terminal/ui"
)

// runRun is the Fyne terminal app with the agent in-process: the same agent,
// local API and scanner as serve, and the window on top.
func runRun(ctx context.Context, args []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, sf, a, srv, log, err := startAgent(ctx, "run", args)
	if err != nil {
		return err
	}
	defer a.Close()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	startLink(ctx, a, c.Data, *sf.hq, log)
	dec := scanDecoder(c.Data)
	deps := ui.Deps{
		Agent:     a,
		Settings:  &settingsBackend{a: a, dir: c.Data, log: log, ctx: ctx},
		Wedge:     func(raw string) ui.Scan { return uiScan(dec.Wedge(raw, time.Now())) },
		ExportDir: c.Data,
		Logger:    log,
	}
	sc, err := startScanner(ctx, a, *sf.scanner, dec, log)
	if err != nil {
		return err
	}
	if sc != nil {
		defer sc.stop()
		scans := make(chan ui.Scan)
		go func() {
			defer close(scans)
			for res := range sc.scans {
				// The basket's member, for a POS reading the local API
				// while the app runs, as under serve.
				if res.Err == nil {
					if err := a.ScanCard(res.Card); err != nil {
						log.Warn("scan", "card", cardnum.Mask(res.Card), "err", err)
					}
				}
				s := uiScan(res.Scan, res.Err)
				select {
				case scans <- s:
				case <-ctx.Done():
					return
				}
			}
		}()
		deps.Scans = scans
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

// uiScan turns a decoded scan into the UI's scan.
func uiScan(s scancode.Scan, err error) ui.Scan {
	return ui.Scan{Kind: s.Kind, Symbology: s.Symbology, Card: s.Card, Raw: s.Raw, Err: err}
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
