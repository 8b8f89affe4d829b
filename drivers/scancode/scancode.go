// Package scancode decodes what a scanner or card reader sends into a member
// card number: AIM symbology identifiers, EAN-13/EAN-8/UPC-A check digits,
// Code 128 and plain card numbers against the configured pattern, magstripe
// tracks 1 and 2, and member QR codes (a static card number or a signed
// rotating token, see qrtoken).
//
// Decoding is pure: no I/O, no clock of its own (the caller passes now), and
// every malformed input gets an error value, never a panic. The package never
// frames bytes off a wire (that is scanframe) and knows nothing of members.
package scancode

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/drivers/qrtoken"
)

// Kinds of scan, as the checkout sees them.
const (
	KindCard      = "card"
	KindQR        = "qr"
	KindMagstripe = "magstripe"
)

// MaxRawLen is the longest read decoded, the framer's line limit.
const MaxRawLen = 4096

// DefaultCardPattern is used when a Decoder has no CardPattern: letters,
// digits and dashes, up to the agent's 64-character limit on a card number.
var DefaultCardPattern = regexp.MustCompile(`^[0-9A-Za-z-]{4,64}$`)

// Errors a read is refused with; Decode wraps them with details.
var (
	ErrEmpty       = errors.New("empty scan")
	ErrInvalidText = errors.New("scan has control characters or invalid UTF-8")
	ErrTooLong     = errors.New("scan too long")
	ErrSymbology   = errors.New("malformed AIM symbology identifier")
	ErrCheckDigit  = errors.New("wrong check digit")
	ErrNotCard     = errors.New("not a card number")
	ErrMagstripe   = errors.New("malformed magstripe track")
	ErrToken       = errors.New("member QR token refused")
)

// Scan is one decoded read.
type Scan struct {
	Kind      string `json:"kind"`      // KindCard, KindQR or KindMagstripe
	Symbology string `json:"symbology"` // "ean-13", "code-128", "qr", "track2", ... or the AIM id when unknown; "" when the scanner sent none
	Card      string `json:"card"`      // the member card number
	Raw       string `json:"raw"`       // what was read, AIM prefix included
}

// Decoder holds the terminal's configuration for decoding. The zero value
// accepts cards matching DefaultCardPattern and refuses every QR token.
type Decoder struct {
	CardPattern *regexp.Regexp      // plain and Code 128 card numbers; nil for DefaultCardPattern
	Keys        []ed25519.PublicKey // head office keys for rotating QR tokens
}

// aimNames names the AIM symbology identifiers we meet on tills.
var aimNames = map[string]string{
	"]E0": "ean-13", // also UPC-A, sent as a 13-digit EAN with a leading 0
	"]E3": "ean-13+addon",
	"]E4": "ean-8",
	"]C0": "code-128",
	"]C1": "gs1-128",
	"]A0": "code-39",
	"]Q0": "qr", "]Q1": "qr", "]Q2": "qr", "]Q3": "qr", "]Q4": "qr", "]Q5": "qr", "]Q6": "qr",
	"]d0": "datamatrix", "]d1": "datamatrix", "]d2": "datamatrix",
	"]I0": "itf",
}

// Decode decodes one read taken at now.
func (d Decoder) Decode(raw string, now time.Time) (Scan, error) {
	s := Scan{Raw: raw}
	if raw == "" {
		return s, ErrEmpty
	}
	if len(raw) > MaxRawLen {
		return s, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, len(raw), MaxRawLen)
	}
	if err := CheckText(raw); err != nil {
		return s, err
	}
	body := raw
	aim := ""
	if strings.HasPrefix(raw, "]") {
		if len(raw) < 3 || !isAlnum(raw[1]) || !isAlnum(raw[2]) {
			return s, fmt.Errorf("%w: %q", ErrSymbology, raw[:min(3, len(raw))])
		}
		aim, body = raw[:3], raw[3:]
		s.Symbology = aim
		if n, ok := aimNames[aim]; ok {
			s.Symbology = n
		}
		if body == "" {
			return s, fmt.Errorf("%w: nothing after %s", ErrEmpty, aim)
		}
	}
	switch {
	case body[0] == '%' || body[0] == ';':
		return d.magstripe(s, body)
	case qrtoken.IsToken(body):
		c, err := qrtoken.Verify(d.Keys, body, now)
		if err != nil {
			return s, fmt.Errorf("%w: %w", ErrToken, err)
		}
		s.Kind, s.Card = KindQR, c.Card
		if s.Symbology == "" {
			s.Symbology = "qr"
		}
		return s, nil
	case aim == "]E0" || aim == "]E4" || (aim == "" && allDigits(body) && (len(body) == 8 || len(body) == 12 || len(body) == 13)):
		return eanUPC(s, body)
	}
	if !d.pattern().MatchString(body) {
		return s, fmt.Errorf("%w: does not match the card number pattern", ErrNotCard)
	}
	s.Kind, s.Card = KindCard, body
	if strings.HasPrefix(aim, "]Q") {
		s.Kind = KindQR
	}
	return s, nil
}

// Wedge decodes input typed by a keyboard-wedge scanner into the UI: the
// trailing CR or LF the scanner sends as Enter is dropped first.
func (d Decoder) Wedge(input string, now time.Time) (Scan, error) {
	return d.Decode(strings.TrimRight(input, "\r\n"), now)
}

func (d Decoder) pattern() *regexp.Regexp {
	if d.CardPattern != nil {
		return d.CardPattern
	}
	return DefaultCardPattern
}

// CheckText refuses control characters (C0, DEL, C1) and invalid UTF-8.
func CheckText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: invalid UTF-8", ErrInvalidText)
	}
	for i, r := range s {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return fmt.Errorf("%w: control character %U at byte %d", ErrInvalidText, r, i)
		}
	}
	return nil
}

// eanUPC validates an EAN-13, EAN-8 or UPC-A number by its check digit.
func eanUPC(s Scan, digits string) (Scan, error) {
	name := map[int]string{8: "ean-8", 12: "upc-a", 13: "ean-13"}[len(digits)]
	if name == "" || !allDigits(digits) {
		return s, fmt.Errorf("%w: EAN/UPC must be 8, 12 or 13 digits", ErrNotCard)
	}
	if !CheckDigitOK(digits) {
		return s, fmt.Errorf("%w: %s %s", ErrCheckDigit, name, cardnum.Mask(digits))
	}
	if s.Symbology == "" || s.Symbology == "ean-13" && len(digits) != 13 {
		s.Symbology = name
	}
	s.Kind, s.Card = KindCard, digits
	return s, nil
}

// CheckDigitOK reports whether the last digit of an EAN/UPC number (any
// length of the GS1 family) is its mod-10 check digit.
func CheckDigitOK(digits string) bool {
	if len(digits) < 2 || !allDigits(digits) {
		return false
	}
	sum := 0
	body := digits[:len(digits)-1]
	for i := range len(body) {
		n := int(body[len(body)-1-i] - '0')
		if i%2 == 0 {
			n *= 3
		}
		sum += n
	}
	return (10-sum%10)%10 == int(digits[len(digits)-1]-'0')
}

// magstripe decodes track 1 (%B<PAN>^NAME^...?) or track 2 (;<PAN>=...?),
// optionally followed by track 2 after track 1 as card readers send both.
func (d Decoder) magstripe(s Scan, body string) (Scan, error) {
	s.Kind = KindMagstripe
	end := strings.IndexByte(body, '?')
	if end < 0 {
		return s, fmt.Errorf("%w: no end sentinel", ErrMagstripe)
	}
	track, rest := body[:end], body[end+1:]
	var pan string
	if track[0] == '%' {
		s.Symbology = "track1"
		if len(track) < 2 || track[1] != 'B' {
			return s, fmt.Errorf("%w: track 1 format code is not B", ErrMagstripe)
		}
		fields := strings.Split(track[2:], "^")
		if len(fields) < 3 {
			return s, fmt.Errorf("%w: track 1 needs PAN^NAME^DATA", ErrMagstripe)
		}
		pan = fields[0]
	} else {
		s.Symbology = "track2"
		i := strings.IndexByte(track, '=')
		if i < 0 {
			return s, fmt.Errorf("%w: track 2 has no separator", ErrMagstripe)
		}
		pan = track[1:i]
	}
	if len(pan) < minPAN || len(pan) > maxPAN || !allDigits(pan) {
		return s, fmt.Errorf("%w: card number must be %d to %d digits", ErrMagstripe, minPAN, maxPAN)
	}
	if rest != "" {
		if s.Symbology != "track1" || rest[0] != ';' {
			return s, fmt.Errorf("%w: unexpected data after the end sentinel", ErrMagstripe)
		}
		t2, err := d.magstripe(Scan{}, rest)
		if err != nil {
			return s, err
		}
		if t2.Card != pan {
			return s, fmt.Errorf("%w: tracks 1 and 2 carry different card numbers", ErrMagstripe)
		}
	}
	s.Card = pan
	return s, nil
}

// Card number lengths on a magstripe (ISO/IEC 7813 primary account number).
const (
	minPAN = 8
	maxPAN = 19
)

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isAlnum(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z'
}
