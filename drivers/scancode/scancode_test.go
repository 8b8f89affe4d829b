package scancode

import (
	"crypto/ed25519"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/drivers/qrtoken"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testDecoder() (Decoder, ed25519.PrivateKey) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	return Decoder{Keys: []ed25519.PublicKey{priv.Public().(ed25519.PublicKey)}}, priv
}

func TestDecode(t *testing.T) {
	d, priv := testDecoder()
	tok := qrtoken.Sign(priv, qrtoken.Claims{Member: "m-1", Card: "2000000000022", Expires: t0.Add(time.Minute)})
	cases := []struct {
		raw  string
		want Scan
	}{
		{"2000000000015", Scan{KindCard, "ean-13", "2000000000015", ""}},
		{"]E02000000000015", Scan{KindCard, "ean-13", "2000000000015", ""}},
		{"]E496385074", Scan{KindCard, "ean-8", "96385074", ""}},
		{"036000291452", Scan{KindCard, "upc-a", "036000291452", ""}},
		{"]C0ABC-12345", Scan{KindCard, "code-128", "ABC-12345", ""}},
		{"MEMBER77", Scan{KindCard, "", "MEMBER77", ""}},
		{"]Q1MEMBER77", Scan{KindQR, "qr", "MEMBER77", ""}},
		{"]d2CARD9999", Scan{KindCard, "datamatrix", "CARD9999", ""}},
		{"]Z9CARD9999", Scan{KindCard, "]Z9", "CARD9999", ""}},
		{"]Q1" + tok, Scan{KindQR, "qr", "2000000000022", ""}},
		{tok, Scan{KindQR, "qr", "2000000000022", ""}},
		{"%B6009123456789012^DOE/JANE^2812101?", Scan{KindMagstripe, "track1", "6009123456789012", ""}},
		{";6009123456789012=2812101?", Scan{KindMagstripe, "track2", "6009123456789012", ""}},
		{"%B6009123456789012^DOE/JANE^2812101?;6009123456789012=2812101?", Scan{KindMagstripe, "track1", "6009123456789012", ""}},
	}
	for _, c := range cases {
		got, err := d.Decode(c.raw, t0)
		c.want.Raw = c.raw
		if err != nil || got != c.want {
			t.Errorf("Decode(%q) = %+v, %v; want %+v", c.raw, got, err, c.want)
		}
	}
}

func TestRefused(t *testing.T) {
	d, priv := testDecoder()
	expired := qrtoken.Sign(priv, qrtoken.Claims{Member: "m", Card: "c", Expires: t0})
	forger := ed25519.NewKeyFromSeed([]byte(strings.Repeat("f", ed25519.SeedSize)))
	forged := qrtoken.Sign(forger, qrtoken.Claims{Member: "m", Card: "c", Expires: t0.Add(time.Hour)})
	cases := []struct {
		raw  string
		want error
	}{
		{"", ErrEmpty},
		{"]E0", ErrEmpty},
		{"]", ErrSymbology},
		{"]E", ErrSymbology},
		{"]!0123", ErrSymbology},
		{"2000000000016", ErrCheckDigit},
		{"]E02000000000016", ErrCheckDigit},
		{"]E012345", ErrNotCard},
		{"96385075", ErrCheckDigit},
		{"036000291453", ErrCheckDigit},
		{"has space", ErrNotCard},
		{"AB", ErrNotCard},
		{"tab\there", ErrInvalidText},
		{"nul\x00", ErrInvalidText},
		{"c1\u0085", ErrInvalidText},
		{"bad\xffutf8", ErrInvalidText},
		{strings.Repeat("9", MaxRawLen+1), ErrTooLong},
		{"%B6009123456789012^DOE/JANE^2812101", ErrMagstripe},
		{"%A6009123456789012^DOE/JANE^2812101?", ErrMagstripe},
		{"%B6009123456789012?", ErrMagstripe},
		{";6009123456789012?", ErrMagstripe},
		{";12=?", ErrMagstripe},
		{"%", ErrMagstripe},
		{"%B6009123456789012^DOE/JANE^2812101?;6009123456789013=2812101?", ErrMagstripe},
		{";6009123456789012=2812101?junk", ErrMagstripe},
		{expired, qrtoken.ErrExpired},
		{forged, qrtoken.ErrSignature},
		{"LT1.garbage", qrtoken.ErrMalformed},
	}
	for _, c := range cases {
		got, err := d.Decode(c.raw, t0)
		if !errors.Is(err, c.want) {
			t.Errorf("Decode(%q) = %+v, %v; want %v", c.raw, got, err, c.want)
		}
		if got.Raw != c.raw {
			t.Errorf("Decode(%q): Raw %q", c.raw, got.Raw)
		}
	}
	if _, err := (Decoder{}).Decode(forged, t0); !errors.Is(err, qrtoken.ErrNoKeys) || !errors.Is(err, ErrToken) {
		t.Errorf("token without keys: %v", err)
	}
}

func TestCardPattern(t *testing.T) {
	d := Decoder{CardPattern: regexp.MustCompile(`^LC[0-9]{6}$`)}
	if s, err := d.Decode("]C0LC123456", t0); err != nil || s.Card != "LC123456" {
		t.Errorf("matching card: %+v, %v", s, err)
	}
	if _, err := d.Decode("]C0XX123456", t0); !errors.Is(err, ErrNotCard) {
		t.Errorf("non-matching card: %v", err)
	}
}

func TestWedge(t *testing.T) {
	var d Decoder
	for _, in := range []string{"2000000000039\r\n", "2000000000039\n", "2000000000039\r", "2000000000039"} {
		if s, err := d.Wedge(in, t0); err != nil || s.Card != "2000000000039" {
			t.Errorf("Wedge(%q) = %+v, %v", in, s, err)
		}
	}
	if _, err := d.Wedge("\r\n", t0); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty wedge input: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	d, priv := testDecoder()
	for _, s := range []string{
		"2000000000015", "]E02000000000015", "]E496385074", "036000291452", "]C0ABC-12345", "]Q1MEMBER77",
		"%B6009123456789012^DOE/JANE^2812101?;6009123456789012=2812101?", ";6009123456789012=2812101?",
		qrtoken.Sign(priv, qrtoken.Claims{Member: "m", Card: "2000000000015", Expires: t0.Add(time.Hour)}),
		"]", "%", ";", "LT1.", "\xff", "]E0", "]Q1LT1.x.y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := d.Decode(raw, t0)
		if s.Raw != raw {
			t.Fatalf("Raw %q, want %q", s.Raw, raw)
		}
		if err != nil {
			return
		}
		if s.Card == "" || (s.Kind != KindCard && s.Kind != KindQR && s.Kind != KindMagstripe) {
			t.Fatalf("decoded %q to %+v", raw, s)
		}
		if CheckText(s.Card) != nil {
			t.Fatalf("card %q has control characters", s.Card)
		}
	})
}

func FuzzCheckDigit(f *testing.F) {
	for _, s := range []string{"2000000000015", "96385074", "036000291452", "", "0", "x1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, digits string) {
		if !CheckDigitOK(digits) {
			return
		}
		// changing the check digit must make it wrong
		last := digits[len(digits)-1]
		alt := digits[:len(digits)-1] + string('0'+(last-'0'+1)%10)
		if CheckDigitOK(alt) {
			t.Fatalf("both %s and %s pass", digits, alt)
		}
	})
}
