package ui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/offline-loyalty/terminal/agent"
)

// formLabels is the text of every label of the open form, one per line.
func formLabels(f *fixture) string {
	var out []string
	var walk func(o fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		switch w := o.(type) {
		case *widget.Label:
			out = append(out, w.Text)
		case *canvas.Text:
			out = append(out, w.Text)
		case *widget.Form:
			for _, it := range w.Items {
				out = append(out, it.Text)
				walk(it.Widget)
			}
		case *fyne.Container:
			for _, c := range w.Objects {
				walk(c)
			}
		}
	}
	walk(f.term.co.form.root)
	return strings.Join(out, "\n")
}

// TestVoidNamesTheCheckout: F6 names what it would void (kind, member,
// amount, points) and takes the keyboard focus, so that Enter voids it —
// not a digit left in the amount field earned as a new sale.
func TestVoidNamesTheCheckout(t *testing.T) {
	f := newFixture(t)
	c := f.term.co
	f.scan(adaCard)
	f.earn("300")
	ref := c.lastRef
	balance := f.member(adaCard).Balance
	f.term.w.Canvas().Focus(c.amount)
	c.amount.SetText("5") // typed before the cashier pressed F6
	f.key(c.amount, fyne.KeyF6)
	if c.form == nil {
		t.Fatal("F6 opened no form")
	}
	text := formLabels(f)
	for _, want := range []string{"Void this checkout?", "Sale", "Ada Lovelace", "€300.00", "+300 earned", ref} {
		if !strings.Contains(text, want) {
			t.Errorf("the void form lacks %q:\n%s", want, text)
		}
	}
	focused, ok := f.w.Canvas().Focused().(*keyButton)
	if !ok || focused != c.form.submit {
		t.Fatalf("the void form's focus is %T, not its Void button", f.w.Canvas().Focused())
	}
	f.key(focused, fyne.KeyReturn)
	f.wantMsg("Checkout "+ref+" voided: -300 pts", widget.SuccessImportance)
	if got := f.member(adaCard).Balance; got != balance-300 {
		t.Fatalf("balance %d after the void, want %d (Enter earned instead?)", got, balance-300)
	}

	// A donation is named as one.
	c.amount.SetText("")
	f.earn("100")
	f.key(c.amount, fyne.KeyF5)
	pts := f.w.Canvas().Focused().(*keyEntry)
	pts.SetText("40")
	f.key(pts, fyne.KeyReturn)
	f.key(c.amount, fyne.KeyF6)
	text = formLabels(f)
	for _, want := range []string{"Donation", "40 spent"} {
		if !strings.Contains(text, want) {
			t.Errorf("the void form of a donation lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Sale") {
		t.Errorf("a donation is named a sale:\n%s", text)
	}
}

// TestRefundNamesTheCheckout: the refund form names the checkout of the
// receipt typed, and says when there is none.
func TestRefundNamesTheCheckout(t *testing.T) {
	f := newFixture(t)
	c := f.term.co
	f.scan(adaCard)
	f.earn("200")
	f.key(c.amount, fyne.KeyF7)
	text := formLabels(f)
	for _, want := range []string{"Sale", "Ada Lovelace", "€200.00", "+200 earned"} {
		if !strings.Contains(text, want) {
			t.Errorf("the refund form lacks %q:\n%s", want, text)
		}
	}
	amt := f.w.Canvas().Focused().(*keyEntry)
	amt.SetText("50")
	f.key(amt, fyne.KeyReturn)
	f.key(c.amount, fyne.KeyF7)
	if text := formLabels(f); !strings.Contains(text, "€50.00 returned already") {
		t.Errorf("the refund form does not say what was returned:\n%s", text)
	}
	refE := c.form.root.(*fyne.Container).Objects[1].(*widget.Form).Items[0].Widget.(*keyEntry)
	refE.SetText("no-such-receipt")
	f.settle()
	if text := formLabels(f); !strings.Contains(text, "No checkout with this receipt number") || strings.Contains(text, "Ada Lovelace") {
		t.Errorf("an unknown receipt:\n%s", text)
	}
}

// TestTypingWithoutFocus: digits typed while a button or nothing has the
// focus go to the sale's field (the amount with a member on screen, else
// the scan prompt) instead of nowhere.
func TestTypingWithoutFocus(t *testing.T) {
	f := newFixture(t)
	c := f.term.co
	f.w.Canvas().Unfocus()
	test.TypeOnCanvas(f.w.Canvas(), adaCard)
	if c.scan.Text != adaCard {
		t.Fatalf("typed with no focus: the scan prompt holds %q", c.scan.Text)
	}
	f.key(c.scan, fyne.KeyReturn)
	if c.member == nil {
		t.Fatal("the typed card did not scan")
	}
	btn := c.actions[fyne.KeyF2]
	f.w.Canvas().Focus(btn)
	test.TypeOnCanvas(f.w.Canvas(), "12")
	if c.amount.Text != "12" || f.w.Canvas().Focused() != c.amount {
		t.Fatalf("typed on a focused button: the amount holds %q", c.amount.Text)
	}
}

// TestTierUpgradeAnnounced: a sale that raises the member's tier says so
// and the tier on screen changes with it.
func TestTierUpgradeAnnounced(t *testing.T) {
	f := newFixture(t)
	c := f.term.co
	f.scan(adaCard)
	f.earn("100")
	if strings.Contains(f.term.msg.Text, "tier!") {
		t.Fatalf("no tier change announced one: %q", f.term.msg.Text)
	}
	f.earn("450") // 550.00 of spend: silver starts at 500.00
	f.wantMsg("Now Silver tier!", widget.SuccessImportance)
	if c.tier.text.Text != "Silver" {
		t.Fatalf("the tier on screen is %q, want Silver", c.tier.text.Text)
	}
}

// TestWedgeBurstInAmount: a keyboard-wedge scanner's burst of the next
// member's card, typed while the focus was in the amount, looks the member
// up instead of earning a sale of that many units; the same digits typed at
// a cashier's pace stay an amount.
func TestWedgeBurstInAmount(t *testing.T) {
	f := newFixture(t)
	c := f.term.co
	if _, err := f.ag.Enroll(context.Background(), agent.EnrollRequest{Card: newCard, Name: "Grace Hopper"}); err != nil {
		t.Fatal(err)
	}
	f.scan(adaCard)
	at := clock
	c.amount.clock = func() time.Time { at = at.Add(4 * time.Millisecond); return at }
	test.Type(c.amount, newCard)
	f.key(c.amount, fyne.KeyReturn)
	if c.name.Text != "Grace Hopper" {
		t.Fatalf("after a burst of %s in the amount the screen shows %q, want Grace Hopper", newCard, c.name.Text)
	}
	if c.amount.Text != "" {
		t.Fatalf("the burst was left in the amount: %q", c.amount.Text)
	}
	if b := f.member(adaCard).Balance; b != 0 {
		t.Fatalf("Ada earned %d pts from a card number", b)
	}

	// Typed by hand: 300 ms a key.
	c.amount.clock = func() time.Time { at = at.Add(300 * time.Millisecond); return at }
	test.Type(c.amount, "10000001")
	f.key(c.amount, fyne.KeyReturn)
	if c.form == nil || !strings.Contains(formLabels(f), "over the largest sale") {
		t.Fatal("typed digits over the largest sale did not ask for a manager's approval")
	}
	if c.name.Text != "Grace Hopper" || f.member(newCard).Balance != 0 {
		t.Fatalf("typed digits: screen %q, balance %d", c.name.Text, f.member(newCard).Balance)
	}
}

// TestManagerApproval: a sale over the rules' largest opens a manager's
// approval naming why; a wrong PIN leaves it open and earns nothing; the
// right one earns the sale. A void over the limit goes the same way.
func TestManagerApproval(t *testing.T) {
	f := newFixture(t)
	c := f.term.co
	if err := f.ag.SetManagerPIN("2468"); err != nil {
		t.Fatal(err)
	}
	f.scan(adaCard)
	f.earn("12000.00")
	if c.form == nil || !strings.Contains(formLabels(f), "over the largest sale a cashier takes alone") {
		t.Fatalf("no approval form naming why (form open: %v)", c.form != nil)
	}
	pin, ok := f.w.Canvas().Focused().(*keyEntry)
	if !ok || !pin.Password {
		t.Fatalf("the approval's focus is %T, not the PIN", f.w.Canvas().Focused())
	}
	test.Type(pin, "1111")
	f.key(pin, fyne.KeyReturn)
	f.wantMsg("Wrong PIN", widget.DangerImportance)
	if c.form == nil || f.member(adaCard).Balance != 0 {
		t.Fatalf("a wrong PIN: form open %v, balance %d", c.form != nil, f.member(adaCard).Balance)
	}
	test.Type(pin, "2468")
	f.key(pin, fyne.KeyReturn)
	f.wantMsg("Earned ", widget.SuccessImportance)
	earned := f.member(adaCard).Balance
	if c.form != nil || earned < 12000 || c.amount.Text != "" {
		t.Fatalf("after approval: form open %v, balance %d, amount %q", c.form != nil, f.member(adaCard).Balance, c.amount.Text)
	}

	// Voiding it takes the points back: over the 5000 a cashier voids alone.
	f.key(c.amount, fyne.KeyF6)
	f.key(c.form.submit, fyne.KeyReturn)
	if !strings.Contains(formLabels(f), "over the 5000 a cashier voids alone") {
		t.Fatalf("no approval for the big void:\n%s", formLabels(f))
	}
	pin = f.w.Canvas().Focused().(*keyEntry)
	test.Type(pin, "2468")
	f.key(pin, fyne.KeyReturn)
	f.wantMsg(fmt.Sprintf("voided: -%d pts", earned), widget.SuccessImportance)
	if f.member(adaCard).Balance != 0 {
		t.Fatalf("balance %d after the approved void", f.member(adaCard).Balance)
	}
}

// TestTierProgressReadsTrue: at 0 % the tier bar shows no fill (its track
// is not the fill's colour), half way it is half filled, and it says what
// the next tier takes.
func TestTierProgressReadsTrue(t *testing.T) {
	f := newFixture(t)
	c := f.term.co
	f.scan(adaCard)
	r := test.WidgetRenderer(c.progress).(*meterRenderer)
	if c.progress.value != 0 || r.fill.Visible() || c.progress.text != "€500.00 more to Silver" {
		t.Fatalf("at 0 %%: value %v, fill shown %v, text %q", c.progress.value, r.fill.Visible(), c.progress.text)
	}
	if r.track.FillColor == r.fill.FillColor {
		t.Fatal("the empty track is drawn in the fill's colour")
	}
	f.earn("250")
	if c.progress.value != 0.5 || !r.fill.Visible() || r.fill.Size().Width*2 != r.track.Size().Width {
		t.Fatalf("half way: value %v, fill %v of %v", c.progress.value, r.fill.Size(), r.track.Size())
	}
}
