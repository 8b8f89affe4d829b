package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/offline-loyalty/terminal/agent"
)

// terminal is the app's window content and its state. Its fields are read
// and written only on the UI goroutine.
type terminal struct {
	d   Deps
	ag  Agent
	w   fyne.Window
	br  *bridge
	log *slog.Logger
	now func() time.Time

	screens *fyne.Container // one screen visible at a time
	msg     *widget.Label   // the last outcome, one line
	status  *statusBar
	co      *checkout
	mgr     *manager
	set     *settingsScreen
	cust    *customerDisplay // nil without one
}

func newTerminal(d Deps, w fyne.Window) *terminal {
	t := &terminal{d: d, ag: d.Agent, w: w, log: d.Logger, now: d.Now}
	if t.log == nil {
		t.log = slog.Default()
	}
	if t.now == nil {
		t.now = time.Now
	}
	t.br = newBridge(fyne.Do)
	return t
}

// content builds the window's content: the screens above the message line
// and the status bar.
func (t *terminal) content() fyne.CanvasObject {
	t.msg = widget.NewLabel(lang.L("Ready: scan a card or type its number"))
	t.msg.TextStyle.Bold = true
	t.msg.Truncation = fyne.TextTruncateEllipsis
	t.status = newStatusBar()
	t.co = newCheckout(t)
	t.mgr = newManager(t)
	t.set = newSettingsScreen(t)
	t.screens = container.NewStack(t.co.root, t.mgr.root, t.set.root)
	t.show(t.co.root)
	nav := container.NewHBox(
		t.newButton(lang.L("Checkout")+" (F1)", theme.HomeIcon(), t.showCheckout),
		t.newButton(lang.L("Manager")+" (F9)", theme.AccountIcon(), t.showManager),
		t.newButton(lang.L("Settings")+" (F10)", theme.SettingsIcon(), t.showSettings),
	)
	if t.d.SimulateScan != nil {
		nav.Add(t.newButton(lang.L("Simulate scan")+" (F11)", theme.MediaPlayIcon(), t.simulateScan))
	}
	bottom := container.NewVBox(widget.NewSeparator(), t.msg, t.status.root)
	root := container.NewBorder(container.NewBorder(nil, nil, nil, nav, t.co.scanBar), bottom, nil, nil, t.screens)
	t.w.Canvas().SetOnTypedKey(func(k *fyne.KeyEvent) { t.hotkey(k) })
	t.w.Canvas().SetOnTypedRune(t.strayRune)
	return root
}

// relocalize rebuilds the screens in the language now in use (after the
// settings changed it), keeping the member on the sale and showing the
// settings again, and then says msg: no restart.
func (t *terminal) relocalize(msg string) {
	card, unlocked := t.co.card, t.mgr.unlocked
	if t.cust != nil {
		t.cust = newCustomerDisplay(t.cust.w)
	}
	t.w.SetContent(t.content())
	t.mgr.unlocked = unlocked
	t.refreshStatus()
	t.co.refreshBasket()
	t.showSettings()
	if card != "" {
		t.co.lookupSaying(card, msg)
		return
	}
	t.say(msg)
}

// strayRune takes what is typed while no field has the focus (after a
// click on the screen's background or a button): on the checkout screen it
// goes to the field the sale is at — the amount with a member on screen,
// else the scan prompt — instead of nowhere.
func (t *terminal) strayRune(r rune) {
	if !t.visible(t.co.root) || t.co.form != nil {
		return
	}
	e := t.co.scan
	if t.co.member != nil {
		e = t.co.amount
	}
	t.w.Canvas().Focus(e)
	e.TypedRune(r)
}

// TypedRune gives what is typed on a focused button to the sale's field.
func (b *keyButton) TypedRune(r rune) {
	if b.stray != nil {
		b.stray(r)
	}
}

// start refreshes the status once and follows the agent's notices (the
// scanner's reads among them) until ctx ends or the returned stop is
// called.
func (t *terminal) start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	t.br.ctx = ctx
	notices, unsub := t.ag.Watch()
	go func() {
		for {
			select {
			case n := <-notices:
				t.br.post(func() { t.notice(n) })
			case <-ctx.Done():
				return
			}
		}
	}()
	t.refreshStatus()
	t.co.refreshBasket()
	return func() { unsub(); cancel() }
}

// notice reacts to a change the agent reports.
func (t *terminal) notice(n agent.Notice) {
	switch n.Kind {
	case agent.NoticeBasket:
		t.co.refreshBasket()
	case agent.NoticeScan:
		if n.Scan != nil {
			t.co.scanned(scanOf(*n.Scan))
		}
	case agent.NoticeEvent:
		t.co.refreshMember()
		t.refreshStatus()
		if t.mgr.unlocked && t.visible(t.mgr.root) {
			t.mgr.refresh()
		}
	default:
		t.refreshStatus()
	}
}

func (t *terminal) refreshStatus() {
	run(t.br, func(context.Context) (agent.Status, error) { return t.ag.Status(), nil },
		func(s agent.Status, _ error) {
			t.status.set(s)
			t.mgr.setStatus(s)
		})
}

func (t *terminal) show(screen fyne.CanvasObject) {
	for _, o := range t.screens.Objects {
		if o == screen {
			o.Show()
		} else {
			o.Hide()
		}
	}
}

func (t *terminal) visible(screen fyne.CanvasObject) bool { return screen.Visible() }

func (t *terminal) showCheckout() {
	t.mgr.lock()
	t.show(t.co.root)
	t.co.back()
}

func (t *terminal) showManager() {
	t.show(t.mgr.root)
	t.mgr.open()
}

// simulateScan asks the simulated scanner for its next demo card; the scan
// then arrives like any other, through the serial reader.
func (t *terminal) simulateScan() {
	run(t.br, func(context.Context) (struct{}, error) { return struct{}{}, t.d.SimulateScan() }, func(_ struct{}, err error) {
		if err != nil {
			t.fail(err)
		}
	})
}

func (t *terminal) showSettings() {
	if t.d.Settings == nil {
		t.fail(errors.New(lang.L("Settings cannot be changed on this terminal")))
		return
	}
	// Settings are a manager's: the manager PIN opens them, and leaving
	// them locks the manager screen again.
	if !t.mgr.unlocked {
		t.show(t.mgr.root)
	}
	t.mgr.openThen(func() {
		t.show(t.set.root)
		t.set.open()
	})
}

// hotkey handles the function keys and Escape wherever the focus is; it
// reports whether it used the key.
func (t *terminal) hotkey(k *fyne.KeyEvent) bool {
	switch k.Name {
	case fyne.KeyF1:
		t.showCheckout()
	case fyne.KeyF9:
		t.showManager()
	case fyne.KeyF10:
		t.showSettings()
	case fyne.KeyF11:
		if t.d.SimulateScan == nil {
			return false
		}
		t.simulateScan()
	case fyne.KeyEscape:
		if !t.visible(t.co.root) {
			t.showCheckout()
		} else {
			t.co.escape()
		}
	default:
		if !t.visible(t.co.root) {
			return false
		}
		return t.co.action(k.Name)
	}
	return true
}

// say shows a one-line outcome.
func (t *terminal) say(text string) {
	t.msg.Importance = widget.SuccessImportance
	t.msg.SetText(text)
}

// clearFailure takes a refusal off the message line once the cashier has
// acted on it; a success message stays.
func (t *terminal) clearFailure() {
	if t.msg.Importance == widget.DangerImportance {
		t.msg.Importance = widget.MediumImportance
		t.msg.SetText("")
	}
}

// fail shows a refusal or fault as one line; it never shows a card number.
func (t *terminal) fail(err error) {
	t.msg.Importance = widget.DangerImportance
	t.msg.SetText(describe(err))
}

// refusals are the agent's errors a cashier meets, each with what the screen
// says about it; the agent's detail follows in brackets.
var refusals = []struct {
	err  error
	text string
}{
	{agent.ErrUnknownCard, "Unknown card"},
	{agent.ErrBlockedCard, "This card is blocked"},
	{agent.ErrInsufficientPoints, "Not enough points"},
	{agent.ErrOfflineLimit, "Over today's offline redemption limit"},
	{agent.ErrUnknownReward, "Unknown reward"},
	{agent.ErrUnknownCharity, "Unknown charity"},
	{agent.ErrUnknownCheckout, "No checkout with this receipt number"},
	{agent.ErrCardExists, "This card is already enrolled"},
	{agent.ErrTierRequired, "This reward needs a higher tier"},
	{agent.ErrVoid, "Cannot void"},
	{agent.ErrRefund, "Cannot refund"},
	{agent.ErrBadPIN, "Wrong PIN"},
	{agent.ErrPINWait, "Too many wrong PINs: wait a moment and try again"},
	{agent.ErrPINLocked, "The manager PIN is locked after too many wrong attempts"},
	{agent.ErrApproval, "A manager must approve this"},
	{agent.ErrInvalid, "Please check the input"},
	{context.DeadlineExceeded, "The terminal did not answer in time; please try again"},
}

// describe turns an error into the one line the screen shows.
func describe(err error) string {
	msg := firstLine(err.Error())
	for _, r := range refusals {
		if !errors.Is(err, r.err) {
			continue
		}
		detail := strings.TrimPrefix(strings.TrimPrefix(msg, r.err.Error()), ":")
		detail = strings.TrimSpace(detail)
		if detail == "" || detail == r.err.Error() {
			return lang.L(r.text)
		}
		return fmt.Sprintf("%s (%s)", lang.L(r.text), detail)
	}
	return msg
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// keyButton is a button that lets the function keys and Escape reach the
// terminal's hotkeys while it has the focus (after Tab), like keyEntry.
type keyButton struct {
	widget.Button
	hotkey func(*fyne.KeyEvent) bool
	stray  func(rune)
}

func (t *terminal) newButton(label string, icon fyne.Resource, tapped func()) *keyButton {
	b := &keyButton{hotkey: t.hotkey, stray: t.strayRune}
	b.Text, b.Icon, b.OnTapped = label, icon, tapped
	b.ExtendBaseWidget(b)
	return b
}

// TypedKey gives the function keys and Escape to the terminal first; Enter
// presses the button, as Space does.
func (b *keyButton) TypedKey(k *fyne.KeyEvent) {
	if isHotkey(k.Name) && b.hotkey(k) {
		return
	}
	if (k.Name == fyne.KeyReturn || k.Name == fyne.KeyEnter) && !b.Disabled() {
		b.Tapped(nil)
		return
	}
	b.Button.TypedKey(k)
}

// keySelect is a dropdown that lets the function keys and Escape reach the
// terminal's hotkeys while it has the focus, like keyEntry.
type keySelect struct {
	widget.Select
	hotkey func(*fyne.KeyEvent) bool
}

func (t *terminal) newSelect(options []string) *keySelect {
	s := &keySelect{hotkey: t.hotkey}
	s.Options = options
	s.ExtendBaseWidget(s)
	return s
}

// TypedKey gives the function keys and Escape to the terminal first.
func (s *keySelect) TypedKey(k *fyne.KeyEvent) {
	if isHotkey(k.Name) && s.hotkey(k) {
		return
	}
	s.Select.TypedKey(k)
}

// keyEntry is an entry that lets the function keys and Escape reach the
// terminal's hotkeys even while it has the focus.
type keyEntry struct {
	widget.Entry
	hotkey func(*fyne.KeyEvent) bool
	// stamps are when each character of the text was typed, while the text
	// is only what was typed since it was last set (for telling a
	// keyboard-wedge scanner's burst from a cashier's typing).
	stamps []time.Time
	clock  func() time.Time
}

// wedgeGap is the longest pause between two characters of a
// keyboard-wedge scanner's burst (they come a few milliseconds apart; a
// cashier types ten times slower), and wedgeMin the fewest characters of a
// burst taken for a scan (a card number; an amount is shorter).
const (
	wedgeGap = 30 * time.Millisecond
	wedgeMin = 8
)

func (t *terminal) newEntry(placeholder string) *keyEntry {
	e := &keyEntry{hotkey: t.hotkey, clock: time.Now}
	e.ExtendBaseWidget(e)
	e.SetPlaceHolder(placeholder)
	return e
}

// TypedRune notes when each character came, then types it.
func (e *keyEntry) TypedRune(r rune) {
	e.stamps = append(e.stamps, e.clock())
	e.Entry.TypedRune(r)
}

// SetText replaces the text; what was typed before no longer counts.
func (e *keyEntry) SetText(s string) {
	e.stamps = nil
	e.Entry.SetText(s)
}

// burst reports whether the whole text came as a keyboard-wedge scanner
// types: at least wedgeMin characters, each within wedgeGap of the last.
func (e *keyEntry) burst() bool {
	if len(e.stamps) < wedgeMin || len(e.stamps) != utf8.RuneCountInString(e.Text) {
		return false
	}
	for i := 1; i < len(e.stamps); i++ {
		if e.stamps[i].Sub(e.stamps[i-1]) > wedgeGap {
			return false
		}
	}
	return true
}

// TypedKey gives the function keys and Escape to the terminal first.
func (e *keyEntry) TypedKey(k *fyne.KeyEvent) {
	if isHotkey(k.Name) && e.hotkey(k) {
		return
	}
	e.Entry.TypedKey(k)
}

func isHotkey(n fyne.KeyName) bool {
	switch n {
	case fyne.KeyEscape, fyne.KeyF1, fyne.KeyF2, fyne.KeyF3, fyne.KeyF4, fyne.KeyF5, fyne.KeyF6,
		fyne.KeyF7, fyne.KeyF8, fyne.KeyF9, fyne.KeyF10, fyne.KeyF11, fyne.KeyF12:
		return true
	}
	return false
}
