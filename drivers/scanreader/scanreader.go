// Package scanreader runs a serial scanner: it opens the port (serialport),
// cuts the byte stream into scans (scanframe), decodes them (scancode) and
// delivers them on a channel. When the device disappears it reports the
// scanner disconnected and reopens it with backoff, forever, until closed.
//
// It never records anything and knows nothing of members: the agent decides
// what a card number means.
package scanreader

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/drivers/scancode"
	"github.com/offline-loyalty/terminal/drivers/scanframe"
	"github.com/offline-loyalty/terminal/drivers/serialport"
)

// States reported to Config.OnState.
const (
	StateConnected    = "connected"
	StateDisconnected = "disconnected"
)

// Timing of the reader.
const (
	// InterCharTimeout ends a scan from a scanner that sends no terminator:
	// barcode scanners send a scan in one burst, so this much silence after
	// bytes means the scan is complete. Checked after each quiet read, so
	// it is effectively at least serialport.ReadTimeout.
	InterCharTimeout = 100 * time.Millisecond
	// Reopen backoff: start quickly (a replug is often a reflex), cap at
	// 2 s so a scanner plugged back in works almost at once, never give up.
	reopenFirst = 100 * time.Millisecond
	reopenMax   = 2 * time.Second
	// scanBuffer lets a burst of scans wait while the UI is busy.
	scanBuffer = 16
	// readBuffer is one read's worth: more than a scan at 9600 baud in 100 ms.
	readBuffer = 512
)

// Result is one scan: decoded, or refused with Err set (Raw then holds what
// was read).
type Result struct {
	scancode.Scan
	Err error
}

// Config configures a Reader.
type Config struct {
	Port    serialport.Config
	Decoder scancode.Decoder
	// OnState is called with StateConnected or StateDisconnected each time
	// the state changes, from the reader's goroutine. It may be nil.
	OnState func(state string)
	Logger  *slog.Logger // nil discards
}

// Reader is a running scanner.
type Reader struct {
	cfg    Config
	scans  chan Result
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Start validates cfg and starts reading in the background; a device that is
// not there yet is retried, not an error. The reader stops when ctx is done
// or Close is called.
func Start(ctx context.Context, cfg Config) (*Reader, error) {
	if err := cfg.Port.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Reader{cfg: cfg, scans: make(chan Result, scanBuffer), cancel: cancel, done: make(chan struct{})}
	go r.run(ctx)
	return r, nil
}

// Scans delivers the scans; it is closed once the reader has stopped.
func (r *Reader) Scans() <-chan Result { return r.scans }

// Close stops the reader, closes the port and waits for both.
func (r *Reader) Close() {
	r.once.Do(r.cancel)
	<-r.done
}

func (r *Reader) run(ctx context.Context) {
	defer close(r.done)
	defer close(r.scans)
	log := r.cfg.Logger.With("port", r.cfg.Port.Path)
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = reopenFirst, reopenMax, 0
	state := ""
	set := func(s string) {
		if s != state && r.cfg.OnState != nil {
			r.cfg.OnState(s)
		}
		state = s
	}
	for ctx.Err() == nil {
		p, err := serialport.Open(r.cfg.Port)
		if err != nil {
			if state != StateDisconnected {
				log.Warn("scanner disconnected", "err", err)
			}
			set(StateDisconnected)
			t := time.NewTimer(b.NextBackOff())
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
			continue
		}
		b.Reset()
		log.Info("scanner connected")
		set(StateConnected)
		err = r.read(ctx, p, log)
		p.Close()
		if ctx.Err() != nil {
			return
		}
		log.Warn("scanner disconnected", "err", err)
		set(StateDisconnected)
	}
}

// read runs one connection until the device goes or ctx is done.
func (r *Reader) read(ctx context.Context, p serialport.Port, log *slog.Logger) error {
	var f scanframe.Framer
	buf := make([]byte, readBuffer)
	last := time.Now()
	for ctx.Err() == nil {
		n, err := p.Read(buf)
		if err != nil {
			return err // the device is gone: reopen
		}
		if n > 0 {
			last = time.Now()
			for _, fr := range f.Feed(buf[:n]) {
				r.deliver(ctx, fr, log)
			}
			continue
		}
		if f.Pending() && time.Since(last) >= InterCharTimeout {
			if fr, ok := f.Flush(); ok {
				r.deliver(ctx, fr, log)
			}
		}
	}
	return ctx.Err()
}

func (r *Reader) deliver(ctx context.Context, fr scanframe.Frame, log *slog.Logger) {
	res := Result{Scan: scancode.Scan{Raw: fr.Raw}, Err: fr.Err}
	if res.Err == nil {
		res.Scan, res.Err = r.cfg.Decoder.Decode(fr.Raw, time.Now())
	}
	if res.Err != nil {
		log.Info("scan refused", "err", res.Err, "bytes", len(fr.Raw))
	} else {
		log.Info("scan", "kind", res.Kind, "symbology", res.Symbology, "card", cardnum.Mask(res.Card))
	}
	select {
	case r.scans <- res:
	case <-ctx.Done():
	}
}
