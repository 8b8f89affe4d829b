package money

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in       string
		currency string
		want     int64
		err      error
	}{
		{"12.50", "EUR", 1250, nil},
		{"12,50", "EUR", 1250, nil},
		{"12.5", "EUR", 1250, nil},
		{"12", "EUR", 1200, nil},
		{" 7.05 ", "EUR", 705, nil},
		{"0.01", "EUR", 1, nil},
		{"1500", "JPY", 1500, nil},
		{"1.5", "JPY", 0, ErrPrecision},
		{"1.234", "KWD", 1234, nil},
		{"-5", "EUR", 0, ErrNegative},
		{"abc", "EUR", 0, ErrMalformed},
		{"1e3", "EUR", 0, ErrMalformed},
		{"12.345", "EUR", 0, ErrPrecision},
		{"12.500", "EUR", 0, ErrPrecision},
		{"99999999999999999999", "EUR", 0, ErrTooLarge},
		{"", "EUR", 0, ErrEmpty},
		{"0", "EUR", 0, ErrZero},
		{"0.00", "EUR", 0, ErrZero},
		{"1,234.50", "EUR", 0, ErrMalformed},
		{"+5", "EUR", 0, ErrMalformed},
		{".5", "EUR", 0, ErrMalformed},
		{"5.", "EUR", 0, ErrMalformed},
		{"1 000", "EUR", 0, ErrMalformed},
		{"٣", "EUR", 0, ErrMalformed},
		{"12.50", "XXX", 0, ErrCurrency},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in, tt.currency)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("Parse(%q, %s) = %d, %v; want %d, %v", tt.in, tt.currency, got, err, tt.want, tt.err)
		}
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		v        int64
		currency string
		want     string
	}{
		{1250, "EUR", "12.50"},
		{5, "EUR", "0.05"},
		{-1250, "EUR", "-12.50"},
		{1500, "JPY", "1500"},
		{1234, "KWD", "1.234"},
		{1, "XXX", ""},
	}
	for _, tt := range tests {
		if got := Format(tt.v, tt.currency); got != tt.want {
			t.Errorf("Format(%d, %s) = %q, want %q", tt.v, tt.currency, got, tt.want)
		}
	}
}

// FuzzParse checks that Parse never panics, never returns a negative or
// oversized amount, and that every accepted amount formats back to a string
// that parses to the same value.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"12.50", "12,50", "-5", "abc", "1e3", "12.345", "99999999999999999999", "", "0.01", "1.", ".1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s, "EUR")
		if err != nil {
			if v != 0 {
				t.Fatalf("Parse(%q) returned %d with error %v", s, v, err)
			}
			return
		}
		if v <= 0 || v > MaxAmount {
			t.Fatalf("Parse(%q) = %d out of range", s, v)
		}
		back, err := Parse(Format(v, "EUR"), "EUR")
		if err != nil || back != v {
			t.Fatalf("round trip of %q: %d -> %q -> %d, %v", s, v, Format(v, "EUR"), back, err)
		}
	})
}

// TestLocal: money is written as each language writes it, with the exact
// digits of the minor units.
func TestLocal(t *testing.T) {
	cases := map[string][]struct {
		v    int64
		cur  string
		want string
	}{
		"en": {{123450, "EUR", "€1,234.50"}, {5, "EUR", "€0.05"}, {-123456789, "USD", "-$1,234,567.89"}, {123450, "CHF", "1,234.50 CHF"}, {1234, "JPY", "1,234 JPY"}},
		"tr": {{123450, "TRY", "1.234,50 ₺"}, {123450, "EUR", "1.234,50 €"}, {99, "TRY", "0,99 ₺"}, {100000000, "TRY", "1.000.000,00 ₺"}},
	}
	for lang, cs := range cases {
		for _, c := range cs {
			if got := Local(c.v, c.cur, lang); got != c.want {
				t.Errorf("%s: %d %s = %q, want %q", lang, c.v, c.cur, got, c.want)
			}
		}
	}
}
