// Package ui is the Fyne terminal app that cashiers and store managers use:
// the checkout screen, the manager screen behind a PIN, settings and the
// always-visible status bar.
//
// It is a thin shell over the agent. It never decides anything about points
// or money (it calls the agent and shows the answer), never touches the
// ledger file or the network itself, and never waits on the agent from the
// UI goroutine: every call runs in the background and its result comes back
// through one bridge that calls fyne.Do. Only this package imports Fyne.
package ui

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/rules"
	"github.com/offline-loyalty/terminal/ui/i18n"
)

// AppID is the Fyne application id; it names the app's preferences folder.
const AppID = "com.offline-loyalty.terminal"

// Size is a window's size in pixels.
type Size struct{ Width, Height int }

// customerSize is the customer display's window: a small second screen
// (move it there, or make it full screen, as the system allows).
var customerSize = fyne.NewSize(800, 480)

// WindowSize is the smallest screen the terminal is laid out for.
var WindowSize = fyne.NewSize(1024, 768)

// Agent is what the app needs of the terminal's agent (*agent.Agent
// satisfies it). Every method may block on disk, so the app calls them only
// off the UI goroutine.
type Agent interface {
	Earn(ctx context.Context, r agent.EarnRequest) (agent.EarnResult, error)
	Redeem(ctx context.Context, r agent.RedeemRequest) (agent.Result, error)
	Donate(ctx context.Context, r agent.DonateRequest) (agent.Result, error)
	Void(ctx context.Context, r agent.VoidRequest) (agent.Result, error)
	Refund(ctx context.Context, r agent.RefundRequest) (agent.Result, error)
	Enroll(ctx context.Context, r agent.EnrollRequest) (agent.Result, error)
	Member(ctx context.Context, card string) (agent.MemberView, error)
	Checkout(ctx context.Context, ref string) (agent.CheckoutView, error)
	Status() agent.Status
	Stats(day string) (agent.Stats, error)
	Rules() *rules.Document
	Watch() (<-chan agent.Notice, func())
	Basket() agent.Basket
	HasManagerPIN() bool
	CheckManagerPIN(pin string) error
}

// Scan is one read of a scanner, already decoded: Kind is "card", "qr" or
// "magstripe" (the checkout treats them alike), Card the member card number
// it carries. A read that did not decode has Err set. The serial scanner's
// reads come as the agent's notices (agent.Scan); what is typed into the
// scan prompt is decoded by Deps.Wedge.
type Scan struct {
	Kind      string
	Symbology string
	Card      string
	Err       error
}

// scanOf is the app's view of a scan the agent reported.
func scanOf(s agent.Scan) Scan {
	out := Scan{Kind: s.Kind, Symbology: s.Symbology, Card: s.Card}
	if s.Error != "" {
		out.Err = errors.New(s.Error)
	}
	return out
}

// Config is what the settings screen edits.
type Config struct {
	HQURL       string
	ScannerPort string // a port from Settings.Ports, "sim", or "" for none
	PrinterPort string // "" for none
	Language    string // one of i18n.Languages; "" follows the system
	// Shown, not edited: the currency of head office's rules, and whether
	// the terminal has joined head office (its URL is then the one joined).
	Currency string
	Joined   bool
}

// Settings is the backend of the settings screen. Methods may block; the app
// calls them off the UI goroutine.
type Settings interface {
	// Current returns the saved configuration.
	Current() Config
	// Ports lists the serial ports discovered on this machine.
	Ports(ctx context.Context) ([]string, error)
	// Join registers the terminal with head office using a one-time code.
	Join(ctx context.Context, hqURL, code string) error
	// Save validates and stores the configuration; components that use it
	// pick it up as they restart. A refusal is a one-line error.
	Save(ctx context.Context, c Config) error
}

// Deps are what Run needs.
type Deps struct {
	Agent    Agent
	Settings Settings
	// Wedge decodes what a keyboard-wedge scanner (or the cashier) typed into
	// the scan prompt, e.g. a phone's QR token. Nil takes the text as a card
	// number.
	Wedge func(raw string) Scan
	// SimulateScan, set when the scanner is the simulator, makes it scan the
	// next demo card through the real serial path; F11 and a button call it.
	SimulateScan func() error
	// ExportDir is where the manager's CSV exports are written.
	ExportDir string
	Logger    *slog.Logger
	// Now is the wall clock; nil is time.Now.
	Now func() time.Time
	// Window is the window's size; zero opens the terminal full screen, as
	// a till runs it.
	Window Size
	// CustomerDisplay opens a second window facing the customer: their
	// points, what the sale earned and their progress.
	CustomerDisplay bool

	// ready, when set, is called on its own goroutine once the window is
	// built; the screenshot test drives the real app through it.
	ready func(*terminal)
}

// Run opens the terminal full screen (or in a window of d.Window) and blocks until it is closed
// or ctx is cancelled. It is the only place the app object is created.
func Run(ctx context.Context, d Deps) error {
	language := ""
	if d.Settings != nil {
		language = d.Settings.Current().Language
	}
	if err := i18n.Use(language); err != nil {
		return err
	}
	a := app.NewWithID(AppID)
	a.Settings().SetTheme(terminalTheme{theme.DefaultTheme()})
	w := a.NewWindow(lang.L("Loyalty terminal"))
	t := newTerminal(d, w)
	if d.CustomerDisplay {
		cw := a.NewWindow(lang.L("Customer display"))
		t.cust = newCustomerDisplay(cw)
		cw.Resize(customerSize)
		cw.Show()
	}
	w.SetContent(t.content())
	if d.Window == (Size{}) {
		w.Resize(WindowSize) // when it leaves full screen
		w.SetFullScreen(true)
	} else {
		w.Resize(fyne.NewSize(float32(d.Window.Width), float32(d.Window.Height)))
	}
	w.SetMaster()
	stop := t.start(ctx)
	closed := make(chan struct{})
	defer func() {
		close(closed)
		stop()
	}()
	go func() {
		select {
		case <-ctx.Done():
			fyne.Do(a.Quit)
		case <-closed:
		}
	}()
	if d.ready != nil {
		go d.ready(t)
	}
	w.ShowAndRun()
	return nil
}
