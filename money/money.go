// Package money parses and formats amounts of money as integer minor units.
//
// Money never touches a float here: text is parsed digit by digit into an int64
// count of minor units (cents, kuruş, ...) for a currency whose exponent is known.
// The package does no I/O and must never round: an amount that does not fit the
// currency's exponent is an error, not a guess.
package money

import (
	"errors"
	"fmt"
	"strings"
)

// MaxAmount is the largest amount, in minor units, that Parse accepts. It is far
// above any real checkout and far below the int64 limit, so that points arithmetic
// on an amount (rate × multiplier × amount) cannot overflow.
const MaxAmount int64 = 1_000_000_000_000_00 // 1e14 minor units: a trillion currency units at exponent 2

// Sentinel errors callers can branch on.
var (
	ErrEmpty     = errors.New("amount is empty")
	ErrMalformed = errors.New("amount is not a number like 12.50")
	ErrNegative  = errors.New("amount must not be negative")
	ErrZero      = errors.New("amount must be greater than zero")
	ErrPrecision = errors.New("amount has more decimals than the currency allows")
	ErrTooLarge  = errors.New("amount is too large")
	ErrCurrency  = errors.New("unknown currency")
)

// exponents lists ISO 4217 minor-unit exponents that differ from 2, plus the
// common two-decimal currencies, so that an unknown code is refused rather than
// silently treated as two decimals.
var exponents = map[string]int{
	"EUR": 2, "USD": 2, "GBP": 2, "TRY": 2, "CHF": 2, "PLN": 2, "SEK": 2, "NOK": 2,
	"DKK": 2, "CZK": 2, "HUF": 2, "RON": 2, "CAD": 2, "AUD": 2, "NZD": 2, "MXN": 2,
	"BRL": 2, "ZAR": 2, "INR": 2, "CNY": 2, "SGD": 2, "HKD": 2, "AED": 2, "SAR": 2,
	"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0,
	"KWD": 3, "BHD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}

// Exponent returns the number of minor-unit decimals of an ISO 4217 currency code.
func Exponent(currency string) (int, error) {
	e, ok := exponents[strings.ToUpper(currency)]
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrCurrency, currency)
	}
	return e, nil
}

// Parse reads a positive amount such as "12.50", "12,50", "12.5" or "12" in the
// given currency and returns it in minor units. Either '.' or ',' may separate
// the decimals; thousands separators, signs, exponents and spaces inside the
// number are refused. Zero is refused: use ParseNonNegative where zero means
// something.
func Parse(s, currency string) (int64, error) {
	v, err := ParseNonNegative(s, currency)
	if err != nil {
		return 0, err
	}
	if v == 0 {
		return 0, ErrZero
	}
	return v, nil
}

// ParseNonNegative is Parse that accepts zero.
func ParseNonNegative(s, currency string) (int64, error) {
	exp, err := Exponent(currency)
	if err != nil {
		return 0, err
	}
	return parse(strings.TrimSpace(s), exp)
}

func parse(s string, exp int) (int64, error) {
	if s == "" {
		return 0, ErrEmpty
	}
	if s[0] == '-' {
		return 0, ErrNegative
	}
	whole, frac, hasSep := s, "", false
	if i := strings.IndexAny(s, ".,"); i >= 0 {
		whole, frac, hasSep = s[:i], s[i+1:], true
	}
	if whole == "" || !digits(whole) || (hasSep && (frac == "" || !digits(frac))) {
		return 0, ErrMalformed
	}
	if len(frac) > exp {
		// "12.50" at exponent 2 is fine, "12.500" is not: trailing zeros past the
		// exponent would still be a claim of precision the currency does not have.
		return 0, ErrPrecision
	}
	var v int64
	for _, c := range whole + frac + strings.Repeat("0", exp-len(frac)) {
		d := int64(c - '0')
		if v > (MaxAmount-d)/10 {
			return 0, ErrTooLarge
		}
		v = v*10 + d
	}
	return v, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Format writes minor units as a decimal string with the currency's exponent,
// e.g. Format(1250, "EUR") == "12.50". It returns "" for an unknown currency.
func Format(v int64, currency string) string {
	exp, err := Exponent(currency)
	if err != nil {
		return ""
	}
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	if exp == 0 {
		return fmt.Sprintf("%s%d", sign, v)
	}
	p := int64(1)
	for i := 0; i < exp; i++ {
		p *= 10
	}
	return fmt.Sprintf("%s%d.%0*d", sign, v/p, exp, v%p)
}

// currencySymbols are the signs Local writes for the currencies it knows;
// any other currency is written with its code.
var currencySymbols = map[string]string{"EUR": "€", "TRY": "₺", "USD": "$", "GBP": "£"}

// Local writes v minor units of cur as the language lang ("en", "tr")
// writes money: "€1,234.50" in English, "1.234,50 ₺" in Turkish; a
// currency with no symbol here keeps its code ("1,234.50 CHF"). The digits
// are Format's, exact: only separators and the sign are placed here.
func Local(v int64, cur, lang string) string {
	plain := Format(v, cur)
	sign := ""
	if rest, ok := strings.CutPrefix(plain, "-"); ok {
		sign, plain = "-", rest
	}
	units, frac, hasFrac := strings.Cut(plain, ".")
	group, point := ",", "."
	turkish := lang == "tr"
	if turkish {
		group, point = ".", ","
	}
	var b strings.Builder
	for i, r := range units {
		if i > 0 && (len(units)-i)%3 == 0 {
			b.WriteString(group)
		}
		b.WriteRune(r)
	}
	num := b.String()
	if hasFrac {
		num += point + frac
	}
	sym, known := currencySymbols[cur]
	switch {
	case !known:
		return sign + num + " " + cur
	case turkish:
		return sign + num + " " + sym
	default:
		return sign + sym + num
	}
}
