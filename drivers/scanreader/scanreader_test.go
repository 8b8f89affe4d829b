package scanreader

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/drivers/scancode"
	"github.com/offline-loyalty/terminal/drivers/scanframe"
	"github.com/offline-loyalty/terminal/drivers/scansim"
	"github.com/offline-loyalty/terminal/drivers/serialport"
)

// waitLimit bounds every wait in these tests so a broken reader fails the
// test instead of hanging it; it is not a timing assertion.
const waitLimit = 10 * time.Second

type harness struct {
	t      *testing.T
	sim    *scansim.Sim
	r      *Reader
	states chan string
}

func start(t *testing.T) *harness {
	t.Helper()
	sim, err := scansim.New(t.TempDir())
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	h := &harness{t: t, sim: sim, states: make(chan string, 16)}
	h.r, err = Start(context.Background(), Config{Port: serialport.Config{Path: sim.Path()}, OnState: func(s string) { h.states <- s }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.r.Close)
	h.wantState(StateConnected)
	return h
}

func (h *harness) wantState(want string) {
	h.t.Helper()
	select {
	case s := <-h.states:
		if s != want {
			h.t.Fatalf("state %q, want %q", s, want)
		}
	case <-time.After(waitLimit):
		h.t.Fatalf("no state change to %q", want)
	}
}

func (h *harness) next() Result {
	h.t.Helper()
	select {
	case r, ok := <-h.r.Scans():
		if !ok {
			h.t.Fatal("scans closed")
		}
		return r
	case <-time.After(waitLimit):
		h.t.Fatal("no scan")
	}
	return Result{}
}

func (h *harness) write(s string) {
	h.t.Helper()
	if err := h.sim.Write([]byte(s)); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) wantCard(card string) {
	h.t.Helper()
	r := h.next()
	if r.Err != nil || r.Card != card {
		h.t.Fatalf("got %+v, want card %s", r, card)
	}
}

func TestSplitBurstGarbageOverlong(t *testing.T) {
	h := start(t)
	// a scan split across writes is one scan
	h.write("20000")
	h.write("00000")
	h.write("015\r\n")
	h.wantCard("2000000000015")
	// two scans in one write are two
	h.write("2000000000022\r\n]E02000000000039\r")
	h.wantCard("2000000000022")
	h.wantCard("2000000000039")
	// garbage is refused and the next scan still reads
	h.write("\x00\x01\xff\xfe\r\n")
	if r := h.next(); !errors.Is(r.Err, scancode.ErrInvalidText) {
		t.Fatalf("garbage: %+v", r)
	}
	h.write("2000000000016\r") // wrong check digit
	if r := h.next(); !errors.Is(r.Err, scancode.ErrCheckDigit) || r.Raw != "2000000000016" {
		t.Fatalf("wrong check digit: %+v", r)
	}
	// an over-long line is refused once; the reader resynchronises
	h.write(strings.Repeat("7", scanframe.MaxLine+10) + "\r\n2000000000015\r\n")
	if r := h.next(); !errors.Is(r.Err, scanframe.ErrTooLong) {
		t.Fatalf("over-long: %v", r.Err)
	}
	h.wantCard("2000000000015")
}

func TestNoTerminator(t *testing.T) {
	h := start(t)
	h.write("2000000000022")
	h.wantCard("2000000000022")
}

func TestUnplugReplug(t *testing.T) {
	h := start(t)
	if err := h.sim.Scan("2000000000015"); err != nil {
		t.Fatal(err)
	}
	h.wantCard("2000000000015")
	if err := h.sim.Unplug(); err != nil {
		t.Fatal(err)
	}
	h.wantState(StateDisconnected)
	if err := h.sim.Replug(); err != nil {
		t.Fatal(err)
	}
	h.wantState(StateConnected)
	if err := h.sim.Scan("2000000000039"); err != nil {
		t.Fatal(err)
	}
	h.wantCard("2000000000039")
}

func TestAbsentAtStart(t *testing.T) {
	sim, err := scansim.New(t.TempDir())
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer sim.Close()
	sim.Unplug()
	states := make(chan string, 16)
	r, err := Start(context.Background(), Config{Port: serialport.Config{Path: sim.Path()}, OnState: func(s string) { states <- s }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if s := <-states; s != StateDisconnected {
		t.Fatalf("first state %q", s)
	}
	sim.Replug()
	select {
	case s := <-states:
		if s != StateConnected {
			t.Fatalf("state %q after plugging in", s)
		}
	case <-time.After(waitLimit):
		t.Fatal("not connected after plugging in")
	}
}

func TestCloseEndsScans(t *testing.T) {
	h := start(t)
	h.r.Close()
	select {
	case _, ok := <-h.r.Scans():
		if ok {
			t.Fatal("scan after close")
		}
	case <-time.After(waitLimit):
		t.Fatal("scans not closed")
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := Start(context.Background(), Config{Port: serialport.Config{Path: "/dev/x", Parity: "maybe"}}); err == nil {
		t.Fatal("bad parity accepted")
	}
}
