package ui

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
)

// TestCustomerDisplay: the customer's window invites a scan with nobody on
// the sale, then greets the member with their tier, points and the way to
// the next tier, shows what the sale earned line by line, and goes back to
// the invitation when the cashier clears the sale. No card number is shown.
func TestCustomerDisplay(t *testing.T) {
	var cd *customerDisplay
	f := newFixtureWith(t, func(term *terminal) {
		w := test.NewWindow(nil)
		t.Cleanup(w.Close)
		cd = newCustomerDisplay(w)
		term.cust = cd
	})
	if !cd.idle.Visible() || cd.member.Visible() {
		t.Fatal("with nobody on the sale the display does not invite a scan")
	}
	f.scan(adaCard)
	if cd.idle.Visible() || cd.greeting.Text != "Hello, Ada Lovelace!" || cd.balance.Text != "0 pts" || cd.tier.text.Text != "Bronze" {
		t.Fatalf("the member: greeting %q, balance %q, tier %q", cd.greeting.Text, cd.balance.Text, cd.tier.text.Text)
	}
	if cd.progress.Hidden || cd.progress.text != "€500.00 more to Silver" {
		t.Fatalf("the way to the next tier: %q (hidden %v)", cd.progress.text, cd.progress.Hidden)
	}
	f.earn("12.50")
	if cd.balance.Text != "12 pts" || !strings.Contains(cd.lines.Text, "+12") {
		t.Fatalf("after the sale: balance %q, lines %q", cd.balance.Text, cd.lines.Text)
	}
	if os.Getenv(updateEnv) == "1" {
		// The software renderer's picture of the window, for the docs.
		cd.w.Resize(customerSize)
		f.settle()
		out, err := os.Create(filepath.Join("..", "docs", "screenshots", "customer.png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(out, cd.w.Canvas().Capture()); err != nil {
			t.Fatal(err)
		}
		out.Close()
	}
	for _, s := range []string{cd.greeting.Text, cd.balance.Text, cd.lines.Text, cd.progress.text} {
		if strings.Contains(s, "0015") || strings.Contains(s, adaCard) {
			t.Fatalf("the customer display shows the card: %q", s)
		}
	}
	f.key(f.term.co.amount, "Escape")
	if !cd.idle.Visible() || cd.member.Visible() {
		t.Fatal("after the sale is cleared the display still shows the member")
	}
}
