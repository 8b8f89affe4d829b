package main

import (
	"context"
	"log/slog"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/agent/demo"
	"github.com/offline-loyalty/terminal/drivers/scancode"
	"github.com/offline-loyalty/terminal/drivers/scanreader"
	"github.com/offline-loyalty/terminal/drivers/scansim"
	"github.com/offline-loyalty/terminal/drivers/serialport"
)

// tillScanner is the scanner the agent runs beside it, when one is
// configured: its decoded reads, the simulator if it is one, and how to stop.
type tillScanner struct {
	scans <-chan scanreader.Result
	sim   *scansim.Sim
	next  int // the simulator's next demo card
	stop  func()
}

// startScanner opens the scanner named by flag, or else by the saved
// settings; with neither it returns nil and the agent runs without one
// (typed and keyboard-wedge input still work). The scanner's state goes to
// the agent, for status and the UI.
func startScanner(ctx context.Context, a *agent.Agent, flag string, dec scancode.Decoder, log *slog.Logger) (*tillScanner, error) {
	set := a.Settings()
	spec, baud := flag, set.ScannerBaud
	if spec == "" {
		spec = set.ScannerPort
	}
	if spec == "" {
		return nil, nil
	}
	if baud == 0 {
		baud = serialport.DefaultBaud
	}
	r, sim, stop, err := openScanner(ctx, spec, baud, dec, a.SetScanner, log)
	if err != nil {
		return nil, err
	}
	return &tillScanner{scans: r.Scans(), sim: sim, stop: stop}, nil
}

// simulate makes the simulator scan the next demo member's card.
func (s *tillScanner) simulate() error {
	card := demo.Members[s.next%len(demo.Members)].Card
	s.next++
	return s.sim.Scan(card)
}

// feedScans gives every read of the scanner to the agent (agent.Scanned):
// under serve and run alike, a card read becomes the basket's member for
// the POS, and the app, in this process or attached, shows it from the
// agent's notice. A read that did not decode is logged.
func feedScans(a *agent.Agent, scans <-chan scanreader.Result, log *slog.Logger) {
	for res := range scans {
		s := agent.Scan{Kind: res.Kind, Symbology: res.Symbology, Card: res.Card}
		if res.Err != nil {
			log.Warn("scan did not decode", "err", res.Err)
			s.Error = res.Err.Error()
		}
		a.Scanned(s)
	}
}
