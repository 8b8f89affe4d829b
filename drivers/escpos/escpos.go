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
	// ESC t 13: code page 857 (Latin with Turkish), whose lower half is
	// ASCII, so English prints the same.
	cmdCodePage857 = []byte{0x1b, 't', 13}
)

// Words are the slip's own words, in the language it is printed in; the
// %s and %d are filled in as in English.
type Words struct {
	Title    string // "LOYALTY SLIP"
	Member   string // "Member: %s"
	Card     string // "Card: %s"
	Earned   string // "Points earned"
	Balance  string // "New balance"
	NewTier  string // "Welcome to %s tier!"
	Expire   string // "%d pts expire %s"
	NextTier string // "Spend %s more for %s"
}

// English are the slip's words in English, the default.
var English = Words{Title: "LOYALTY SLIP", Member: "Member: %s", Card: "Card: %s", Earned: "Points earned",
	Balance: "New balance", NewTier: "Welcome to %s tier!", Expire: "%d pts expire %s", NextTier: "Spend %s more for %s"}

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
	Words          *Words    // nil prints English
}

// Render turns s into the bytes to send to the printer.
func Render(s Slip) []byte {
	w := English
	if s.Words != nil {
		w = *s.Words
	}
	var b []byte
	text := func(str string) { b = append(b, printable(str)...); b = append(b, '\n') }
	// columns' line is printable already: it is not encoded twice.
	row := func(left string, n int64) {
		b = append(b, columns(left, strconv.FormatInt(n, 10))...)
		b = append(b, '\n')
	}
	b = append(b, cmdInit...)
	b = append(b, cmdCodePage857...)
	b = append(b, cmdCenter...)
	b = append(b, cmdBoldOn...)
	text(s.Store)
	b = append(b, cmdBoldOff...)
	text(w.Title)
	if !s.Time.IsZero() {
		text(s.Time.Format("2006-01-02 15:04"))
	}
	b = append(b, cmdLeft...)
	text(strings.Repeat("-", Width))
	if s.Member != "" {
		text(fmt.Sprintf(w.Member, s.Member))
	}
	text(fmt.Sprintf(w.Card, cardnum.Mask(s.Card)))
	text(strings.Repeat("-", Width))
	for _, l := range s.Lines {
		row(l.Text, l.Points)
	}
	b = append(b, cmdBoldOn...)
	row(w.Earned, s.Earned)
	row(w.Balance, s.Balance)
	if s.NewTier != "" {
		text(fmt.Sprintf(w.NewTier, s.NewTier))
	}
	b = append(b, cmdBoldOff...)
	if s.Expiring > 0 {
		text(fmt.Sprintf(w.Expire, s.Expiring, s.ExpiresOn.Format("2006-01-02")))
	}
	if s.NextTier != "" {
		text(fmt.Sprintf(w.NextTier, s.ToNext, s.NextTier))
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
		c, ok := cp857[r]
		switch {
		case ok:
		case r >= 0x20 && r <= 0x7e:
			c = byte(r)
		case r == '€':
			// Not in code page 857.
			if len(out)+3 > Width {
				return string(out)
			}
			out = append(out, 'E', 'U', 'R')
			continue
		default:
			c = '?'
		}
		out = append(out, c)
	}
	return string(out)
}

// cp857 are the letters code page 857 adds to ASCII that the slip's
// languages use: Turkish, and the accents of names.
var cp857 = map[rune]byte{
	'ç': 0x87, 'Ç': 0x80, 'ğ': 0xa7, 'Ğ': 0xa6, 'ı': 0x8d, 'İ': 0x98, 'ö': 0x94, 'Ö': 0x99,
	'ş': 0x9f, 'Ş': 0x9e, 'ü': 0x81, 'Ü': 0x9a, 'é': 0x82, 'â': 0x83, 'ä': 0x84, 'à': 0x85,
	'ê': 0x88, 'ë': 0x89, 'è': 0x8a, 'ï': 0x8b, 'î': 0x8c, 'Ä': 0x8e, 'É': 0x90, 'ô': 0x93,
	'û': 0x96, 'ù': 0x97, 'á': 0xa0, 'í': 0xa1, 'ó': 0xa2, 'ú': 0xa3, 'ñ': 0xa4, 'Ñ': 0xa5,
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
