package ui

import (
	"testing"

	"github.com/offline-loyalty/terminal/ui/i18n"
)

// TestLocalMoney: money on screen is written as each language writes it,
// with the exact digits of the minor units.
func TestLocalMoney(t *testing.T) {
	t.Setenv("LANGUAGE", "")
	t.Setenv("LC_ALL", "")
	cases := map[string][]struct {
		v    int64
		cur  string
		want string
	}{
		"en": {{123450, "EUR", "€1,234.50"}, {5, "EUR", "€0.05"}, {-123456789, "USD", "-$1,234,567.89"}, {123450, "CHF", "1,234.50 CHF"}, {1234, "JPY", "1,234 JPY"}},
		"tr": {{123450, "TRY", "1.234,50 ₺"}, {123450, "EUR", "1.234,50 €"}, {99, "TRY", "0,99 ₺"}, {100000000, "TRY", "1.000.000,00 ₺"}},
	}
	defer func() { _ = i18n.Use("en") }()
	for code, cs := range cases {
		if err := i18n.Use(code); err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if got := localMoney(c.v, c.cur); got != c.want {
				t.Errorf("%s: %d %s = %q, want %q", code, c.v, c.cur, got, c.want)
			}
		}
	}
}
