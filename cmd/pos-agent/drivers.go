package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/offline-loyalty/terminal/drivers/portlist"
	"github.com/offline-loyalty/terminal/drivers/scancode"
	"github.com/offline-loyalty/terminal/drivers/scanreader"
	"github.com/offline-loyalty/terminal/drivers/scansim"
	"github.com/offline-loyalty/terminal/drivers/serialport"
	"github.com/offline-loyalty/terminal/internal/cli"
)

// simScanner is the --scanner value that runs the pty scanner simulator.
const simScanner = "sim"

var portsVerb = cli.Verb{Usage: "ports", Short: "list the serial ports a scanner or printer may be on", Run: runPorts}

var scanVerb = cli.Verb{Usage: "scan --scanner PORT|sim [--baud N]", Short: "print each scan as it is read; runs until interrupted", Run: runScan}

func runPorts(_ context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "ports")
	if err := cli.Parse(fs, c, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: ports: unexpected argument %q", cli.ErrUsage, fs.Arg(0))
	}
	ports, err := portlist.List()
	if err != nil {
		return err
	}
	if ports == nil {
		ports = []portlist.Port{}
	}
	return c.Print(ports, func(w io.Writer) {
		if len(ports) == 0 {
			fmt.Fprintln(w, "no serial ports found")
		}
		for _, p := range ports {
			if p.Target != "" {
				fmt.Fprintf(w, "%s -> %s\n", p.Path, p.Target)
				continue
			}
			fmt.Fprintln(w, p.Path)
		}
	})
}

// scanLine is one line of `scan --json`.
type scanLine struct {
	Kind      string `json:"kind,omitempty"`
	Symbology string `json:"symbology,omitempty"`
	Card      string `json:"card,omitempty"`
	Error     string `json:"error,omitempty"`
	Raw       string `json:"raw"`
}

func runScan(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "scan")
	port := fs.String("scanner", "", "scanner serial port, or sim for the simulator")
	baud := fs.Int("baud", serialport.DefaultBaud, "baud rate")
	if err := cli.Parse(fs, c, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: scan: unexpected argument %q", cli.ErrUsage, fs.Arg(0))
	}
	if err := cli.Require("scan", map[string]string{"scanner": *port}); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	r, sim, done, err := openScanner(ctx, *port, *baud, scanDecoder(c.Data), func(s string) {
		fmt.Fprintln(os.Stderr, "scanner", s)
	}, log)
	if err != nil {
		return fmt.Errorf("%w: scan: %w", cli.ErrUsage, err)
	}
	defer done()
	if sim != nil {
		go sim.Demo(ctx, scansim.DemoInterval)
	}
	for res := range r.Scans() {
		l := scanLine{Kind: res.Kind, Symbology: res.Symbology, Card: res.Card, Raw: res.Raw}
		if res.Err != nil {
			l = scanLine{Error: res.Err.Error(), Raw: res.Raw}
		}
		if c.JSON {
			if err := cli.PrintJSON(l); err != nil {
				return err
			}
			continue
		}
		if res.Err != nil {
			fmt.Printf("error: %s (%q)\n", l.Error, l.Raw)
			continue
		}
		fmt.Printf("%s %s %s\n", l.Kind, l.Symbology, l.Card)
	}
	return nil
}

// openScanner starts the scanner spec names: a serial port path, or "sim"
// for the pty simulator, which it also returns so the caller can make it
// scan (nil otherwise). onState receives scanreader.StateConnected /
// StateDisconnected. The returned func stops the reader (closing Scans) and
// the simulator; the reader also stops with ctx.
func openScanner(ctx context.Context, spec string, baud int, dec scancode.Decoder,
	onState func(string), log *slog.Logger) (*scanreader.Reader, *scansim.Sim, func(), error) {
	path, stopSim := spec, func() {}
	var sim *scansim.Sim
	if spec == simScanner {
		var err error
		if sim, err = scansim.New(""); err != nil {
			return nil, nil, nil, err
		}
		path, stopSim = sim.Path(), func() { sim.Close() }
	}
	r, err := scanreader.Start(ctx, scanreader.Config{
		Port:    serialport.Config{Path: path, Baud: baud},
		Decoder: dec,
		OnState: onState,
		Logger:  log,
	})
	if err != nil {
		stopSim()
		return nil, nil, nil, err
	}
	return r, sim, func() { r.Close(); stopSim() }, nil
}
