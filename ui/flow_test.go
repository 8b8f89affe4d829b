package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/rules"
)

// clock is the fixed wall time of the flow tests, shared by the agent and
// the screens so that "today" is the same day for both.
var clock = time.Date(2025, 3, 5, 14, 30, 0, 0, time.Local) // a Wednesday: the default rules double points on Tuesdays

// fixture is the terminal over a real agent (a bbolt ledger in a temp
// directory), headless, with the bridge's results delivered on the test
// goroutine.
type fixture struct {
	t       *testing.T
	ag      *agent.Agent
	term    *terminal
	w       fyne.Window
	mu      stdsync.Mutex
	queue   []func()
	notices <-chan agent.Notice
}

const (
	adaCard = "2000000000015"
	newCard = "2000000000999"
)

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, nil) }

// newFixtureWith is newFixture with before run on the terminal before its
// screens are built (e.g. to give it a customer display).
func newFixtureWith(t *testing.T, before func(*terminal)) *fixture {
	t.Helper()
	// The till's own theme (its text and padding sizes), as Run sets it,
	// so that what is measured is what a cashier sees.
	test.NewTempApp(t).Settings().SetTheme(terminalTheme{theme.DefaultTheme()})
	ag, err := agent.Open(context.Background(), t.TempDir(), agent.Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ag.Close() })
	// The default rules without the surprise draw: its 1% chance on each
	// checkout, seeded by the screen's random ref, would make exact point
	// figures differ from run to run.
	doc := rules.Default()
	doc.Version++
	doc.Surprise = nil
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ag.ApplyRules(b); err != nil {
		t.Fatal(err)
	}
	if _, err := ag.Enroll(context.Background(), agent.EnrollRequest{Card: adaCard, Name: "Ada Lovelace"}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ag: ag}
	notices, unsub := ag.Watch()
	t.Cleanup(unsub)
	f.notices = notices
	f.w = test.NewWindow(nil)
	t.Cleanup(f.w.Close)
	f.term = newTerminal(Deps{Agent: ag, Now: func() time.Time { return clock }, ExportDir: t.TempDir()}, f.w)
	f.term.br.post = func(fn func()) {
		f.mu.Lock()
		f.queue = append(f.queue, fn)
		f.mu.Unlock()
	}
	if before != nil {
		before(f.term)
	}
	f.w.SetContent(f.term.content())
	f.w.Resize(WindowSize)
	f.settle()
	return f
}

// settle runs everything the screen started until nothing is left: agent
// calls in flight, their results, and the agent's notices they caused.
func (f *fixture) settle() {
	for {
		f.term.br.wait()
		f.mu.Lock()
		q := f.queue
		f.queue = nil
		f.mu.Unlock()
		for _, fn := range q {
			fn()
		}
		drained := false
		for !drained {
			select {
			case n := <-f.notices:
				f.term.notice(n)
				q = append(q, nil)
			default:
				drained = true
			}
		}
		if len(q) == 0 {
			return
		}
	}
}

func (f *fixture) key(e fyne.Focusable, k fyne.KeyName) {
	e.TypedKey(&fyne.KeyEvent{Name: k})
	f.settle()
}

// scan types a card into the scan prompt and presses Enter.
func (f *fixture) scan(card string) {
	test.Type(f.term.co.scan, card)
	f.key(f.term.co.scan, fyne.KeyReturn)
}

func (f *fixture) tap(b fyne.Tappable) {
	test.Tap(b)
	f.settle()
}

func (f *fixture) member(card string) agent.MemberView {
	m, err := f.ag.Member(context.Background(), card)
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func (f *fixture) wantMsg(sub string, imp widget.Importance) {
	f.t.Helper()
	if !strings.Contains(f.term.msg.Text, sub) || f.term.msg.Importance != imp {
		f.t.Fatalf("message %q (importance %v), want it to contain %q (importance %v)", f.term.msg.Text, f.term.msg.Importance, sub, imp)
	}
}

// earn types amount at a cashier's pace (not a scanner's burst) and
// presses Earn.
func (f *fixture) earn(amount string) {
	at := clock
	f.term.co.amount.clock = func() time.Time { at = at.Add(200 * time.Millisecond); return at }
	test.Type(f.term.co.amount, amount)
	f.tap(f.term.co.earnBtn)
}

func TestScanEarnShowsNewBalance(t *testing.T) {
	f := newFixture(t)
	c := f.term.co
	f.scan(adaCard)
	if c.name.Text != "Ada Lovelace" || c.balance.Text != "0 pts" {
		t.Fatalf("member panel shows %q with %q, want Ada Lovelace with 0 pts", c.name.Text, c.balance.Text)
	}
	if strings.Contains(c.cardLabel.Text, adaCard) || !strings.HasSuffix(c.cardLabel.Text, "0015") {
		t.Fatalf("card label %q must show only the last 4 digits", c.cardLabel.Text)
	}
	if f.w.Canvas().Focused() != c.amount {
		t.Fatal("after a scan the focus must be on the amount")
	}
	f.earn("12.50")
	want := f.member(adaCard).Balance
	if want != 12 || c.balance.Text != strconv.FormatInt(want, 10)+" pts" {
		t.Fatalf("balance shows %q, agent has %d, want 12", c.balance.Text, want)
	}
	f.wantMsg("Earned 12 pts", widget.SuccessImportance)
	if !strings.Contains(c.lines.Text, "+12") {
		t.Fatalf("explanation lines %q, want the +12 line", c.lines.Text)
	}
	if c.pending.Text == "" {
		t.Fatal("the pending offline change is not shown")
	}
	// Enter in the amount earns too.
	test.Type(c.amount, "3")
	f.key(c.amount, fyne.KeyReturn)
	if got := f.member(adaCard).Balance; got != 15 || c.balance.Text != "15 pts" {
		t.Fatalf("after Enter: agent %d, screen %q, want 15", got, c.balance.Text)
	}
}

func TestBadInputIsAClearMessage(t *testing.T) {
	f := newFixture(t)
	c := f.term.co
	f.tap(c.earnBtn)
	f.wantMsg("Scan a member card first", widget.DangerImportance)
	f.scan(adaCard)
	f.earn("12.5.0")
	f.wantMsg("Please check the input (amount", widget.DangerImportance)
	c.amount.SetText("")
	f.tap(c.earnBtn)
	f.wantMsg("Type the amount", widget.DangerImportance)
	if got := f.member(adaCard).Balance; got != 0 {
		t.Fatalf("a refused earn changed the balance to %d", got)
	}
	f.scan(newCard)
	f.wantMsg("Unknown card *********0999", widget.DangerImportance)
	if strings.Contains(f.term.msg.Text, newCard) || c.member != nil {
		t.Fatalf("unknown card: message %q shows the full card, or a member is still shown", f.term.msg.Text)
	}
}

func TestRedeemOverBalanceShowsError(t *testing.T) {
	f := newFixture(t)
	c := f.term.co
	f.scan(adaCard)
	f.earn("200")
	f.key(c.amount, fyne.KeyF3) // F3 reaches the hotkeys from the focused entry
	p := c.rewards
	if c.work.Objects[0] != p.root {
		t.Fatal("F3 did not open the rewards")
	}
	// Affordable first: coffee (150) is the only one within 200 points.
	if p.list[0].ID != "coffee" || !p.list[0].affordable || p.list[1].affordable {
		t.Fatalf("rewards order %+v, want the affordable coffee first", p.list[:2])
	}
	last := p.list[len(p.list)-1]
	if !last.locked || last.ID != "weekend" {
		t.Fatalf("last reward %+v, want the tier-locked platinum weekend", last)
	}
	tote := 1 // 400 points: over the balance
	p.grid.Select(tote)
	f.tap(p.confirm)
	f.wantMsg("Not enough points (balance 200, needs 400)", widget.DangerImportance)
	if got := f.member(adaCard).Balance; got != 200 || c.balance.Text != "200 pts" {
		t.Fatalf("a refused redeem changed the balance: agent %d, screen %q", got, c.balance.Text)
	}
	p.grid.Select(0)
	if f.term.msg.Text != "" {
		t.Fatalf("the refusal stays after another reward is chosen: %q", f.term.msg.Text)
	}
	// Reopened, the first reward the member can take is chosen: Enter
	// alone redeems it.
	f.key(p.grid, fyne.KeyEscape)
	f.key(c.amount, fyne.KeyF3)
	if p.chosen == nil || p.chosen.ID != "coffee" {
		t.Fatalf("the rewards open with %+v chosen, want the coffee", p.chosen)
	}
	f.key(p.grid, fyne.KeyReturn)
	f.wantMsg("Redeemed Free coffee for 150 pts. New balance 50 pts", widget.SuccessImportance)
	if got := f.member(adaCard).Balance; got != 50 || c.balance.Text != "50 pts" || c.work.Objects[0] != c.sale {
		t.Fatalf("after the redeem: agent %d, screen %q, sale shown %v", got, c.balance.Text, c.work.Objects[0] == c.sale)
	}
}

func TestEnrollVoidRefundDonateDiscount(t *testing.T) {
	f := newFixture(t)
	c := f.term.co
	f.scan(newCard)
	f.key(c.scan, fyne.KeyF8)
	fm := c.form
	if fm == nil {
		t.Fatal("F8 did not open the enroll form")
	}
	name := f.w.Canvas().Focused().(*keyEntry)
	test.Type(name, "Grace Hopper")
	f.tap(fm.submit)
	f.wantMsg("New member enrolled: Grace Hopper", widget.SuccessImportance)
	if c.member == nil || c.member.Name != "Grace Hopper" {
		t.Fatal("the new member is not on screen")
	}

	f.earn("300")
	ref := c.lastRef
	f.key(c.amount, fyne.KeyF6)
	f.tap(c.form.submit)
	f.wantMsg("Checkout "+ref+" voided: -300 pts", widget.SuccessImportance)
	f.key(c.amount, fyne.KeyF6)
	f.wantMsg("Nothing to void", widget.DangerImportance)

	f.earn("500")
	f.key(c.amount, fyne.KeyF7)
	amt := f.w.Canvas().Focused().(*keyEntry)
	test.Type(amt, "100")
	f.key(amt, fyne.KeyReturn)
	f.wantMsg("Refund on "+c.lastRef+": -100 pts. New balance 400 pts", widget.SuccessImportance)

	f.key(c.amount, fyne.KeyF5)
	pts := f.w.Canvas().Focused().(*keyEntry)
	test.Type(pts, "lots")
	f.tap(c.form.submit)
	f.wantMsg("Points must be a positive whole number", widget.DangerImportance)
	pts.SetText("50")
	f.tap(c.form.submit)
	f.wantMsg("Donated 50 pts to City Food Bank. New balance 350 pts", widget.SuccessImportance)

	f.key(c.amount, fyne.KeyF4)
	pts = f.w.Canvas().Focused().(*keyEntry)
	test.Type(pts, "150")
	f.tap(c.form.submit)
	f.wantMsg("Please check the input (points as discount goes in steps of 100 points)", widget.DangerImportance)
	pts.SetText("200")
	f.key(pts, fyne.KeyReturn)
	f.wantMsg("Discount of €2.00 for 200 pts. New balance 150 pts", widget.SuccessImportance)
	if got := f.member(newCard).Balance; got != 150 || c.balance.Text != "150 pts" {
		t.Fatalf("agent %d, screen %q, want 150", got, c.balance.Text)
	}
	f.key(c.amount, fyne.KeyEscape)
	if c.member != nil {
		t.Fatal("Esc on the sale did not clear the member")
	}
}

func TestBasketShownLive(t *testing.T) {
	f := newFixture(t)
	c := f.term.co
	items := []rules.Item{{SKU: "milk", Quantity: 2, Amount: 300}, {SKU: "bread", Quantity: 1, Amount: 450}}
	if err := f.ag.SetBasket(agent.Basket{Ref: "POS-1", Card: adaCard, Amount: "7.50", Items: items}); err != nil {
		t.Fatal(err)
	}
	f.settle()
	if !strings.Contains(c.basketBy.Text, "POS-1") || c.items.Length() != 2 || c.member == nil {
		t.Fatalf("basket %q with %d items, member %v: the pushed basket is not shown", c.basketBy.Text, c.items.Length(), c.member)
	}
	f.tap(c.earnBtn)
	f.wantMsg("Earned 7 pts", widget.SuccessImportance)
	if c.lastRef != "POS-1" || strings.Contains(c.basketBy.Text, "POS-1") {
		t.Fatalf("earned ref %q, basket line %q: the basket was not used once", c.lastRef, c.basketBy.Text)
	}
}

func TestManagerPIN(t *testing.T) {
	f := newFixture(t)
	m := f.term.mgr
	// Nobody chooses the PIN at the till: without one, the gate says how
	// a manager sets it on the machine and offers nothing to type.
	f.key(f.term.co.scan, fyne.KeyF9)
	if m.board.Visible() || m.pin.Visible() || !strings.Contains(m.gateTitle.Text, "pos-agent manager add") {
		t.Fatalf("without a PIN: board %v, PIN field %v, gate %q", m.board.Visible(), m.pin.Visible(), m.gateTitle.Text)
	}
	f.key(f.term.mgr.pinBtn, fyne.KeyEscape)
	if err := f.ag.SetManagerPIN("2468"); err != nil { // pos-agent manager add
		t.Fatal(err)
	}
	f.key(f.term.co.scan, fyne.KeyF9)
	if !m.pin.Visible() || m.gateTitle.Text != "Manager PIN" || f.w.Canvas().Focused() != m.pin {
		t.Fatal("with a PIN set the gate must ask for it, focused")
	}
	test.Type(m.pin, "1111")
	f.key(m.pin, fyne.KeyReturn)
	f.wantMsg("Wrong PIN", widget.DangerImportance)
	if m.unlocked || m.board.Visible() {
		t.Fatal("a wrong PIN unlocked the figures")
	}
	test.Type(m.pin, "2468")
	f.key(m.pin, fyne.KeyReturn)
	if !m.unlocked || !m.board.Visible() {
		t.Fatal("the right PIN did not unlock")
	}
	f.key(m.pin, fyne.KeyEscape) // back to the checkout locks it
	if m.unlocked || !f.term.co.root.Visible() {
		t.Fatal("Esc did not lock the manager screen")
	}
}

func TestStatsCardsMatchAgent(t *testing.T) {
	f := newFixture(t)
	c := f.term.co
	f.scan(adaCard)
	f.earn("42.00")
	f.earn("1000")
	c.openRewards()
	c.rewards.grid.Select(0)
	f.tap(c.rewards.confirm)
	if err := f.ag.SetManagerPIN("2468"); err != nil {
		t.Fatal(err)
	}
	f.key(c.scan, fyne.KeyF9)
	test.Type(f.term.mgr.pin, "2468")
	f.key(f.term.mgr.pin, fyne.KeyReturn)
	s, err := f.ag.Stats("")
	if err != nil {
		t.Fatal(err)
	}
	m := f.term.mgr
	want := map[string]string{
		"Checkouts": strconv.FormatInt(s.Checkouts, 10), "Points issued": strconv.FormatInt(s.PointsIssued, 10),
		"Points redeemed": strconv.FormatInt(s.PointsRedeemed, 10), "Enrollments": strconv.FormatInt(s.Enrollments, 10),
	}
	if s.PointsIssued != 1042 || s.PointsRedeemed != 150 {
		t.Fatalf("agent stats issued %d redeemed %d, want 1042 and 150", s.PointsIssued, s.PointsRedeemed)
	}
	for name, v := range want {
		if got := m.figures[name].Text; got != v {
			t.Errorf("card %q shows %q, agent says %q", name, got, v)
		}
	}
	for i, v := range figureValues(s) {
		if got := m.figures[figureNames[i]].Text; got != v {
			t.Errorf("card %q shows %q, want %q", figureNames[i], got, v)
		}
	}
	if !strings.Contains(m.top.Text, "Free coffee") {
		t.Errorf("top rewards %q, want Free coffee", m.top.Text)
	}
	if m.dayHistory[len(m.dayHistory)-1].Day != clock.Format(time.DateOnly) || len(m.dayHistory) != historyDays {
		t.Errorf("history covers %d days ending %s", len(m.dayHistory), m.dayHistory[len(m.dayHistory)-1].Day)
	}
	// A new earn while the manager screen is open refreshes the cards.
	if _, err := f.ag.Earn(context.Background(), agent.EarnRequest{Card: adaCard, Amount: "8"}); err != nil {
		t.Fatal(err)
	}
	f.settle()
	after, err := f.ag.Stats("")
	if err != nil {
		t.Fatal(err)
	}
	if after.PointsIssued <= s.PointsIssued {
		t.Fatalf("the earn issued no points: %d then %d", s.PointsIssued, after.PointsIssued)
	}
	if got, want := m.figures["Points issued"].Text, fmt.Sprint(after.PointsIssued); got != want {
		t.Errorf("after an earn the card shows %q, want %s", got, want)
	}
	f.tap(m.exportBtn)
	f.wantMsg("Exported to", widget.SuccessImportance)
}

// TestMemberFlags: the member panel shows the agent's birthday-month and
// welcome-back facts for the member scanned, and hides them for another.
func TestMemberFlags(t *testing.T) {
	f := newFixture(t)
	const bob = "2000000000022"
	r, err := f.ag.Enroll(context.Background(), agent.EnrollRequest{Card: bob, Name: "Bob", Birthday: clock.Format("01") + "-28"})
	if err != nil {
		t.Fatal(err)
	}
	// Head office says Bob last shopped 90 days ago.
	if err := f.ag.ApplyMembers([]agent.MemberSnapshot{{Member: r.Member, Name: "Bob", Cards: []string{bob}, Tier: "bronze",
		LastVisit: clock.AddDate(0, 0, -90), Taken: clock, AsOfSeq: 2}}, 1); err != nil {
		t.Fatal(err)
	}
	f.scan(bob)
	if f.term.co.birthday.Hidden || f.term.co.welcome.Hidden {
		t.Fatalf("Bob: birthday shown %v, welcome back shown %v", !f.term.co.birthday.Hidden, !f.term.co.welcome.Hidden)
	}
	f.scan(adaCard)
	if !f.term.co.birthday.Hidden || !f.term.co.welcome.Hidden {
		t.Fatal("Ada has neither her birthday this month nor a long absence, and the panel shows them")
	}
}

// TestHotkeysFromFocusedButton: after Tab puts the focus on a button, the
// function keys and Escape still work.
func TestHotkeysFromFocusedButton(t *testing.T) {
	f := newFixture(t)
	btn := f.term.co.actions[fyne.KeyF3]
	f.w.Canvas().Focus(btn)
	f.key(btn, fyne.KeyF9)
	if !f.term.visible(f.term.mgr.root) {
		t.Fatal("F9 on a focused button did not open the manager screen")
	}
	f.key(btn, fyne.KeyEscape)
	if !f.term.visible(f.term.co.root) {
		t.Fatal("Esc on a focused button did not go back to checkout")
	}
	// A dropdown with the focus (the donate form's charity) lets F1 through.
	f.scan(adaCard)
	f.key(f.term.co.amount, fyne.KeyF5)
	var sel *keySelect
	for _, it := range f.term.co.form.root.(*fyne.Container).Objects[1].(*widget.Form).Items {
		if s, ok := it.Widget.(*keySelect); ok {
			sel = s
		}
	}
	if sel == nil {
		t.Fatal("the donate form has no charity dropdown")
	}
	f.w.Canvas().Focus(sel)
	f.key(sel, fyne.KeyF9)
	if !f.term.visible(f.term.mgr.root) {
		t.Fatal("F9 on a focused dropdown did not open the manager screen")
	}
}
