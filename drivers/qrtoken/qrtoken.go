// Package qrtoken signs and verifies the rotating member QR token that the
// loyalty app shows on a phone: a member id, a card number and an expiry,
// signed by head office's ed25519 key and verified offline by the terminal.
//
// The format is
//
//	LT1.<payload>.<signature>
//
// where payload is the unpadded base64url encoding of the JSON object
// {"m":MEMBER,"c":CARD,"e":EXPIRY_UNIX_SECONDS} and signature is the unpadded
// base64url encoding of the ed25519 signature of the ASCII bytes
// "LT1.<payload>". The package never talks to the network and never holds a
// private key beyond a Sign call; it has no notion of members beyond the claims.
package qrtoken

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Prefix starts every token; it names the format version.
const Prefix = "LT1."

// MaxTokenLen bounds a token: a QR code a phone shows holds a few hundred
// characters at most, and anything longer is refused before decoding.
const MaxTokenLen = 512

// maxClaimLen bounds the member id and the card number inside a token, the
// agent's own limit on a card number.
const maxClaimLen = 64

// Errors a token is refused with; Verify wraps them with details.
var (
	ErrMalformed = errors.New("malformed member QR token")
	ErrSignature = errors.New("member QR token signature is not head office's")
	ErrExpired   = errors.New("member QR token has expired")
	ErrNoKeys    = errors.New("no head office key configured to verify member QR tokens")
)

// Claims is what a token carries.
type Claims struct {
	Member  string    // head office's member id
	Card    string    // the member's card number the checkout records
	Expires time.Time // the token is refused at and after this instant
}

type payload struct {
	M string `json:"m"`
	C string `json:"c"`
	E int64  `json:"e"`
}

var b64 = base64.RawURLEncoding

// Sign returns the token for c signed with priv. Expires is truncated to the
// second.
func Sign(priv ed25519.PrivateKey, c Claims) string {
	body, _ := json.Marshal(payload{M: c.Member, C: c.Card, E: c.Expires.Unix()}) // a struct of strings and an int always marshals
	signed := Prefix + b64.EncodeToString(body)
	return signed + "." + b64.EncodeToString(ed25519.Sign(priv, []byte(signed)))
}

// IsToken reports whether s looks like a token (has the format prefix), so a
// decoder can tell a token that fails verification from a plain card number.
func IsToken(s string) bool { return strings.HasPrefix(s, Prefix) }

// Verify checks token against the head office keys and the time now and
// returns its claims. A forged token fails with ErrSignature, an expired one
// with ErrExpired, anything unreadable with ErrMalformed.
func Verify(keys []ed25519.PublicKey, token string, now time.Time) (Claims, error) {
	if len(keys) == 0 {
		return Claims{}, ErrNoKeys
	}
	if len(token) > MaxTokenLen {
		return Claims{}, fmt.Errorf("%w: longer than %d characters", ErrMalformed, MaxTokenLen)
	}
	if !IsToken(token) {
		return Claims{}, fmt.Errorf("%w: does not start with %q", ErrMalformed, Prefix)
	}
	i := strings.LastIndexByte(token, '.')
	if i < len(Prefix) {
		return Claims{}, fmt.Errorf("%w: no signature", ErrMalformed)
	}
	signed, sigText := token[:i], token[i+1:]
	sig, err := b64.DecodeString(sigText)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return Claims{}, fmt.Errorf("%w: unreadable signature", ErrMalformed)
	}
	body, err := b64.DecodeString(signed[len(Prefix):])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: unreadable payload: %w", ErrMalformed, err)
	}
	ok := false
	for _, k := range keys {
		if len(k) == ed25519.PublicKeySize && ed25519.Verify(k, []byte(signed), sig) {
			ok = true
			break
		}
	}
	if !ok {
		return Claims{}, ErrSignature
	}
	var p payload
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Claims{}, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	if p.M == "" || p.C == "" || len(p.M) > maxClaimLen || len(p.C) > maxClaimLen || p.E <= 0 {
		return Claims{}, fmt.Errorf("%w: missing or over-long claims", ErrMalformed)
	}
	c := Claims{Member: p.M, Card: p.C, Expires: time.Unix(p.E, 0)}
	if !now.Before(c.Expires) {
		return Claims{}, fmt.Errorf("%w: expired at %s", ErrExpired, c.Expires.UTC().Format(time.RFC3339))
	}
	return c, nil
}
