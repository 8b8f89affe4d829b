// Package cardnum is what every part of the system needs to know about a
// card number shown to people: how it is masked in logs, errors, screens and
// receipts. Drivers, the terminal and head office all use it, so that a card
// number is masked the same way wherever it appears.
//
// It is pure: no I/O, no knowledge of members or the ledger.
package cardnum

import "strings"

// Mask hides all but the last four characters of a card number.
func Mask(card string) string {
	if len(card) <= 4 {
		return strings.Repeat("*", len(card))
	}
	return strings.Repeat("*", len(card)-4) + card[len(card)-4:]
}
