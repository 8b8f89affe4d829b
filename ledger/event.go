// Package ledger defines the loyalty ledger's events, their canonical encoding
// and the per-terminal hash chain that links them.
//
// Both the terminal and head office use this package, so that an event hashed on
// a till verifies byte for byte at head office. It is pure: no I/O, no clock of
// its own (time is passed in), no knowledge of where events are stored or sent.
package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/offline-loyalty/terminal/money"
)

// Type is the kind of a ledger event.
type Type string

// The event types of SPEC section 2.
const (
	Enroll       Type = "enroll"        // a new member (and card)
	Earn         Type = "earn"          // points for a purchase
	Redeem       Type = "redeem"        // a catalog reward bought with points
	BurnDiscount Type = "burn_discount" // points spent as money off
	Donate       Type = "donate"        // points given to a charity partner
	Void         Type = "void"          // a checkout cancelled in full
	Refund       Type = "refund"        // goods returned: earned points clawed back pro rata
	Adjust       Type = "adjust"        // a manager's correction, with a reason
	Expire       Type = "expire"        // breakage
	TierChange   Type = "tier_change"   // a member moved to another tier
	CardReplace  Type = "card_replace"  // a card blocked and replaced; the balance moves with the member
)

var knownTypes = map[Type]bool{
	Enroll: true, Earn: true, Redeem: true, BurnDiscount: true, Donate: true, Void: true,
	Refund: true, Adjust: true, Expire: true, TierChange: true, CardReplace: true,
}

// Valid reports whether t is one of the known event types.
func (t Type) Valid() bool { return knownTypes[t] }

// Line is one line of an earn's explanation ("+60 Gold x1.5").
type Line struct {
	Label  string `json:"label"`
	Points int64  `json:"points"`
}

// Event is one entry of a terminal's ledger. Balances are derived from events:
// Points is the signed change to the member's balance. The JSON field order is
// the canonical encoding: never reorder fields, only append new optional ones.
type Event struct {
	Terminal     string    `json:"terminal"` // the terminal that wrote it
	Epoch        string    `json:"epoch"`    // random id of the terminal's database; seq restarts only with a new epoch
	Seq          uint64    `json:"seq"`      // per terminal and epoch, gapless from 1
	ID           string    `json:"id"`       // unique: epoch-seq
	Type         Type      `json:"type"`     // what happened
	Member       string    `json:"member"`   // member id
	Card         string    `json:"card,omitempty"`
	Points       int64     `json:"points"`             // signed change to the member's balance
	Amount       int64     `json:"amount"`             // minor units: purchase, refund or discount value
	Currency     string    `json:"currency,omitempty"` // ISO 4217 code of Amount
	Ref          string    `json:"ref"`                // idempotency key of the checkout the event belongs to
	Time         time.Time `json:"time"`               // terminal wall time, UTC
	HLC          uint64    `json:"hlc"`                // hybrid logical clock, see Clock
	RulesVersion int       `json:"rules_version"`      // the rules document used to decide it
	Store        string    `json:"store,omitempty"`
	Lines        []Line    `json:"lines,omitempty"`   // earn explanation
	Reward       string    `json:"reward,omitempty"`  // redeem: catalog reward id
	Charity      string    `json:"charity,omitempty"` // donate: charity partner id
	Target       string    `json:"target,omitempty"`  // void, refund: id of the event reversed
	Reason       string    `json:"reason,omitempty"`  // adjust, expire, void
	Tier         string    `json:"tier,omitempty"`    // tier_change: the new tier; enroll: the starting tier
	NewCard      string    `json:"new_card,omitempty"`
	Name         string    `json:"name,omitempty"` // enroll
	Email        string    `json:"email,omitempty"`
	Phone        string    `json:"phone,omitempty"`
	Consent      bool      `json:"consent,omitempty"`  // enroll: marketing consent
	Birthday     string    `json:"birthday,omitempty"` // enroll: MM-DD
	Approver     string    `json:"approver,omitempty"` // who approved what a cashier may not do alone ("manager PIN", "api token NAME")
	PrevHash     string    `json:"prev_hash"`          // Hash of the event with Seq-1; empty for Seq 1
	Hash         string    `json:"hash"`               // SHA-256 of the canonical encoding
}

// Limits on what an event may hold, so that a decoder never accepts a record
// that could not have been written by a terminal.
const (
	MaxEncodedSize = 64 << 10 // bytes; an event is a few hundred bytes, lines included
	maxText        = 256      // characters in any free-text field
	maxLines       = 64       // explanation lines of one earn
)

// Errors returned by Decode and Verify.
var (
	ErrMalformed = errors.New("malformed event")
	ErrChain     = errors.New("hash chain broken")
)

// Canonical returns the bytes the event's hash is computed over: its JSON
// encoding in field order with Hash empty.
func (e Event) Canonical() []byte {
	e.Hash = ""
	b, err := json.Marshal(e)
	if err != nil {
		// Event has only strings, integers, a time and a slice of lines: Marshal
		// cannot fail unless the type itself is changed to hold something that can.
		panic(fmt.Sprintf("ledger: encode event: %v", err))
	}
	return b
}

// ComputeHash returns the hex SHA-256 of the event's canonical encoding.
func (e Event) ComputeHash() string {
	sum := sha256.Sum256(e.Canonical())
	return hex.EncodeToString(sum[:])
}

// Seal links e after prev (the hash of the previous event, "" for the first),
// sets its hash and returns its encoding (what Encode would return). Time is
// normalised to UTC without a monotonic reading so that the encoding
// round-trips exactly.
func (e *Event) Seal(prevHash string) []byte {
	e.Time = e.Time.UTC().Round(0)
	e.PrevHash = prevHash
	e.Hash = ""
	canon := e.Canonical()
	sum := sha256.Sum256(canon)
	e.Hash = hex.EncodeToString(sum[:])
	// Hash is the last field, so the encoding is the canonical form with the
	// empty hash filled in: one JSON encoding per event instead of two.
	enc := make([]byte, 0, len(canon)+len(e.Hash))
	enc = append(enc, canon[:len(canon)-len(emptyHashTail)]...)
	enc = append(enc, '"')
	enc = append(enc, e.Hash...)
	return append(enc, `"}`...)
}

// emptyHashTail ends every canonical encoding.
const emptyHashTail = `""}`

// MemberPoints reads the member and points of an encoded event without
// decoding it all, for scans over the ledger this program wrote itself. It
// reports false for anything it cannot read simply; use Decode then.
func MemberPoints(encoded []byte) (member string, points int64, ok bool) {
	m := fieldValue(encoded, `"member":"`)
	if m == nil || bytes.IndexByte(m, '\\') >= 0 {
		return "", 0, false
	}
	i := bytes.IndexByte(m, '"')
	if i < 0 {
		return "", 0, false
	}
	p := fieldValue(encoded, `"points":`)
	if p == nil {
		return "", 0, false
	}
	neg := len(p) > 0 && p[0] == '-'
	if neg {
		p = p[1:]
	}
	n := 0
	for n < len(p) && p[n] >= '0' && p[n] <= '9' {
		points = points*10 + int64(p[n]-'0')
		n++
	}
	if n == 0 || n > 18 {
		return "", 0, false
	}
	if neg {
		points = -points
	}
	return string(m[:i]), points, true
}

// fieldValue returns what follows the first occurrence of key in a
// top-level position of an encoded event. Keys are unique and come before
// any nested object ("lines" follows "member" and "points"), so the first
// occurrence is the field.
func fieldValue(encoded []byte, key string) []byte {
	i := bytes.Index(encoded, []byte(key))
	if i < 0 {
		return nil
	}
	return encoded[i+len(key):]
}

// Head reads the sequence, hash and clock of an encoded event without
// decoding it all, for the writer that appends the next event. It trusts the
// encoding (the caller wrote it); use Decode for anything received.
func Head(encoded []byte) (hash string, hlc uint64, ok bool) {
	const hashField = `,"hash":"`
	n := len(encoded)
	if n < len(hashField)+64+2 || string(encoded[n-2:]) != `"}` {
		return "", 0, false
	}
	h := encoded[n-2-64 : n-2]
	if string(encoded[n-2-64-len(hashField):n-2-64]) != hashField {
		return "", 0, false
	}
	i := bytes.Index(encoded, []byte(`"hlc":`))
	if i < 0 {
		return "", 0, false
	}
	for j := i + len(`"hlc":`); j < n && encoded[j] >= '0' && encoded[j] <= '9'; j++ {
		hlc = hlc*10 + uint64(encoded[j]-'0')
	}
	return string(h), hlc, true
}

// Encode returns the stored and transmitted form of a sealed event.
func (e Event) Encode() []byte {
	b, err := json.Marshal(e)
	if err != nil {
		panic(fmt.Sprintf("ledger: encode event: %v", err))
	}
	return b
}

// Decode parses one encoded event and checks that it is well formed and that
// its hash matches its content. It does not check the link to the previous
// event: that is Verify's job, given the chain.
func Decode(b []byte) (Event, error) {
	if len(b) > MaxEncodedSize {
		return Event{}, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(b), MaxEncodedSize)
	}
	e, hashAt, canonical := decodeCanonical(b)
	if !canonical {
		var err error
		if e, err = decodeJSON(b); err != nil {
			return Event{}, err
		}
	}
	if err := e.check(); err != nil {
		return Event{}, err
	}
	var got string
	if canonical {
		// The bytes are the canonical form with the hash filled in.
		h := sha256.New()
		h.Write(b[:hashAt])
		h.Write([]byte(`"}`))
		var sum [sha256.Size]byte
		got = hex.EncodeToString(h.Sum(sum[:0]))
	} else {
		got = e.ComputeHash()
	}
	if got != e.Hash {
		return Event{}, fmt.Errorf("%w: seq %d: hash %s does not match content %s", ErrChain, e.Seq, short(e.Hash), short(got))
	}
	return e, nil
}

// decodeJSON is the general decoder, for events not in canonical form.
func decodeJSON(b []byte) (Event, error) {
	var e Event
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return Event{}, fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	return e, nil
}

// Check reports what makes e not an event Decode would accept, leaving its
// hash aside: a writer checks an event before it seals and stores it.
func (e Event) Check() error { return e.check() }

func (e Event) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	switch {
	case !e.Type.Valid():
		return bad("unknown type %q", e.Type)
	case e.Seq == 0:
		return bad("seq must start at 1")
	case e.Terminal == "" || e.Epoch == "" || e.ID == "":
		return bad("seq %d: terminal, epoch and id are required", e.Seq)
	case e.Member == "":
		return bad("seq %d: member is required", e.Seq)
	case e.Time.IsZero():
		return bad("seq %d: time is required", e.Seq)
	case len(e.Lines) > maxLines:
		return bad("seq %d: %d lines, limit %d", e.Seq, len(e.Lines), maxLines)
	case e.Amount < 0:
		return bad("seq %d: negative amount", e.Seq)
	case e.Amount > money.MaxAmount:
		return fmt.Errorf("%w: seq %d: amount %d is over the limit of %d", ErrRange, e.Seq, e.Amount, money.MaxAmount)
	case e.Points > MaxPoints || e.Points < -MaxPoints:
		return fmt.Errorf("%w: seq %d: %d points, limit ±%d", ErrRange, e.Seq, e.Points, MaxPoints)
	case (e.Seq == 1) != (e.PrevHash == ""):
		return bad("seq %d: prev_hash must be empty exactly for seq 1", e.Seq)
	}
	for _, l := range e.Lines {
		if l.Points > MaxPoints || l.Points < -MaxPoints {
			return fmt.Errorf("%w: seq %d: a line of %d points, limit ±%d", ErrRange, e.Seq, l.Points, MaxPoints)
		}
	}
	for _, s := range []string{e.Terminal, e.Epoch, e.ID, e.Member, e.Card, e.Ref, e.Store, e.Reward,
		e.Charity, e.Target, e.Reason, e.Tier, e.NewCard, e.Name, e.Email, e.Phone, e.Currency, e.Birthday, e.Approver} {
		if len(s) > maxText {
			return bad("seq %d: a text field is longer than %d bytes", e.Seq, maxText)
		}
		if !utf8.ValidString(s) {
			return bad("seq %d: a text field is not valid UTF-8", e.Seq)
		}
	}
	return nil
}

// MaxPoints bounds the points of one event (and of each of its lines): far
// above any real checkout, and far below what adding up events could
// overflow. Amounts are bounded by money.MaxAmount.
const MaxPoints int64 = 1_000_000_000_000_000

// Provisional reports whether id is the terminal id a ledger is created
// with ("T-" and eight hex digits), which its events carry until the
// terminal joins head office and gets its own.
func Provisional(id string) bool {
	if len(id) != 10 || id[:2] != "T-" {
		return false
	}
	_, err := hex.DecodeString(id[2:])
	return err == nil
}

// ErrRange is an event whose amount or points are out of range.
var ErrRange = errors.New("out of range")

// Follows checks that a decoded event (whose own hash Decode has verified)
// comes right after the event with sequence prevSeq and hash prevHash.
func Follows(e Event, prevSeq uint64, prevHash string) error {
	if e.Seq != prevSeq+1 {
		return fmt.Errorf("%w: seq %d follows %d", ErrChain, e.Seq, prevSeq)
	}
	if e.PrevHash != prevHash {
		return fmt.Errorf("%w: seq %d: prev_hash %s, want %s", ErrChain, e.Seq, short(e.PrevHash), short(prevHash))
	}
	return nil
}

// Verify checks that e follows an event with sequence prevSeq and hash prevHash
// in the same terminal's chain (prevSeq 0 and prevHash "" for the first event).
func Verify(e Event, prevSeq uint64, prevHash string) error {
	if err := Follows(e, prevSeq, prevHash); err != nil {
		return err
	}
	if got := e.ComputeHash(); got != e.Hash {
		return fmt.Errorf("%w: seq %d: hash does not match content", ErrChain, e.Seq)
	}
	return nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return `""`
	}
	return h
}
