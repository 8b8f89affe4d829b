// Package logging builds the programs' structured logs (log/slog): text by
// default or JSON, one line per record, with anything that looks like a card
// number masked the way screens mask it (cardnum.Mask) before it is written.
package logging

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/offline-loyalty/terminal/cardnum"
)

// Formats are the values of --log-format.
const (
	Text = "text"
	JSON = "json"
)

// ErrFormat is a --log-format that is neither text nor json.
var ErrFormat = errors.New("log format is text or json")

// New returns a logger writing records of level and above to w in format.
func New(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: mask}
	switch format {
	case Text, "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case JSON:
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w, not %q", ErrFormat, format)
}

// mask masks the card numbers in an attribute's value: a "card" attribute
// whole, and in any string or error every run of 12 to 19 digits (a card
// number inside a message a library wrote).
func mask(_ []string, a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch {
	case v.Kind() == slog.KindString && a.Key == "card":
		return slog.String(a.Key, cardnum.Mask(v.String()))
	case v.Kind() == slog.KindString:
		if s, ok := MaskDigits(v.String()); ok {
			return slog.String(a.Key, s)
		}
	case v.Kind() == slog.KindAny:
		if err, ok := v.Any().(error); ok {
			if s, ok := MaskDigits(err.Error()); ok {
				return slog.String(a.Key, s)
			}
		}
	}
	return a
}

// Card numbers are 12 to 19 digits long (ISO/IEC 7812, and the chain's own
// EAN-13 cards).
const (
	minCard = 12
	maxCard = 19
)

// MaskDigits masks every run of minCard to maxCard digits in s with
// cardnum.Mask, and reports whether it found one. Longer runs (hashes,
// nanosecond times) are left as they are.
func MaskDigits(s string) (string, bool) {
	var out []byte
	copied := 0 // s[:copied] is in out
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if n := j - i; n >= minCard && n <= maxCard {
			out = append(append(out, s[copied:i]...), cardnum.Mask(s[i:j])...)
			copied = j
		}
		i = j
	}
	if out == nil {
		return s, false
	}
	return string(append(out, s[copied:]...)), true
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
