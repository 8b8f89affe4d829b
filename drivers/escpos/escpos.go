// Package escpos prints the loyalty slip on an ESC/POS receipt printer over
// a serial port: the member, the points earned with their lines, the new
// balance, points expiring soon and progress to the next tier. Render is
// pure (a Slip to printer bytes); Print sends them through serialport.
//
// It never decides points or tiers (the agent does) and prints card numbers
// masked only. A terminal without a printer simply never calls it.
package escpos

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/drivers/serialport"
)

// Width is the characters per line: font A on a 58 mm roll, which also fits
// an 80 mm printer, so one layout works on every till.
const Width = 32

// ESC/POS commands used.
var (
	cmdInit      = []byte{0x1b, '@'}       // ESC @: reset to defaults
	cmdBoldOn    = []byte{0x1b, 'E', 1}    // ESC E 1
	cmdBoldOff   = []byte{0x1b, 'E', 0}    // ESC E 0
	cmdCenter    = []byte{0x1b, 'a', 1}    // ESC a 1
	cmdLeft      = []byte{0x1b, 'a', 0}    // ESC a 0
	cmdFeedLines = []byte{0x1b, 'd', 4}    // ESC d 4: feed past the cutter
	cmdCut       = []byte{0x1d, 'V', 0x01} // GS V 1: partial cut
)

// Line is one basket line and the points it earned.
type Line struct {
	Text   string
	Points int64
}

// Slip is what a loyalty slip shows after a checkout.
type Slip struct {
	Store          string
	Time           time.Time
	Member         string // the member's name; may be empty
	Card           string // printed masked
	Lines          []Line
	Earned         int64
	Balance        int64
	Expiring       int64     // points expiring soon; 0 prints nothing
	ExpiresOn      time.Time // when they expire
	NextTier       string    // "" when the member is at the top tier
	ToNext         string    // what is still to spend for NextTier, formatted ("12.50 EUR")
	TierProgressPc int       // 0 to 100, shown as a bar
	NewTier        string    // the tier this checkout raised the member to; "" prints nothing
}

// Render turns s into the bytes to send to the printer.
func Render(s Slip) []byte {
	var b []byte
	text := func(str string) { b = append(b, printable(str)...); b = append(b, '\n') }
	row := func(left string, n int64) { text(columns(left, strconv.FormatInt(n, 10))) }
	b = append(b, cmdInit...)
	b = append(b, cmdCenter...)
	b = append(b, cmdBoldOn...)
	text(s.Store)
	b = append(b, cmdBoldOff...)
	text("LOYALTY SLIP")
	if !s.Time.IsZero() {
		text(s.Time.Format("2006-01-02 15:04"))
	}
	b = append(b, cmdLeft...)
	text(strings.Repeat("-", Width))
	if s.Member != "" {
		text("Member: " + s.Member)
	}
	text("Card: " + cardnum.Mask(s.Card))
	text(strings.Repeat("-", Width))
	for _, l := range s.Lines {
		row(l.Text, l.Points)
	}
	b = append(b, cmdBoldOn...)
	row("Points earned", s.Earned)
	row("New balance", s.Balance)
	if s.NewTier != "" {
		text("Welcome to " + s.NewTier + " tier!")
	}
	b = append(b, cmdBoldOff...)
	if s.Expiring > 0 {
		text(fmt.Sprintf("%d pts expire %s", s.Expiring, s.ExpiresOn.Format("2006-01-02")))
	}
	if s.NextTier != "" {
		text(fmt.Sprintf("Spend %s more for %s", s.ToNext, s.NextTier))
		text(bar(s.TierProgressPc))
	}
	b = append(b, cmdFeedLines...)
	b = append(b, cmdCut...)
	return b
}

// Print sends the slip to the printer on port.
func Print(port serialport.Config, s Slip) error {
	p, err := serialport.Open(port)
	if err != nil {
		return fmt.Errorf("printer: %w", err)
	}
	_, werr := p.Write(Render(s))
	cerr := p.Close()
	if werr != nil {
		return fmt.Errorf("printer: %w", werr)
	}
	if cerr != nil {
		return fmt.Errorf("printer: close: %w", cerr)
	}
	return nil
}

// printable keeps a line to Width printable ASCII characters: the printer's
// default code page, and no byte of the text can be taken for a command.
func printable(s string) string {
	out := make([]byte, 0, Width)
	for _, r := range s {
		if len(out) == Width {
			break
		}
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		out = append(out, byte(r))
	}
	return string(out)
}

// columns puts left and right on one line of Width, cutting left if needed.
func columns(left, right string) string {
	room := Width - len(right) - 1
	left = printable(left)
	if len(left) > room {
		left = left[:max(room, 0)]
	}
	return left + strings.Repeat(" ", max(Width-len(left)-len(right), 1)) + right
}

// bar draws progress as [#####.....] across the line.
func bar(pc int) string {
	pc = min(max(pc, 0), 100)
	inner := Width - 2
	n := inner * pc / 100
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", inner-n) + "]"
}
