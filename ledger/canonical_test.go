package ledger

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/money"
)

// shapes are events of every type and field a terminal writes, sealed.
func shapes() []Event {
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	evs := []Event{
		{Type: Enroll, Member: "m1", Card: "4000000000000002", Tier: "bronze", Name: "Zoë Łukasiewicz", Email: "zoe@example.com",
			Phone: "+48 600 000 000", Consent: true, Birthday: "03-14", Store: "store-1"},
		{Type: Earn, Member: "m1", Card: "4000000000000002", Points: 1234, Amount: 123456, Currency: "EUR",
			Lines: []Line{{Label: "base", Points: 1000}, {Label: "Gold x1.5", Points: 234}}},
		{Type: Redeem, Member: "m1", Points: -150, Reward: "coffee"},
		{Type: BurnDiscount, Member: "m1", Points: -100, Amount: 100, Currency: "EUR"},
		{Type: Donate, Member: "m1", Points: -50, Charity: "foodbank"},
		{Type: Void, Member: "m1", Points: -1234, Target: "ep-2", Reason: "cashier"},
		{Type: Refund, Member: "m1", Points: -MaxPoints, Amount: money.MaxAmount, Target: "ep-2"},
		{Type: Adjust, Member: "m1", Points: 0, Reason: "goodwill", Approver: "api token back-office"},
		{Type: Expire, Member: "m1", Points: -300, Reason: "earned 2025-09"},
		{Type: TierChange, Member: "m1", Tier: "silver"},
		{Type: CardReplace, Member: "m1", Card: "4000000000000002", NewCard: "4000000000000010"},
	}
	prev := ""
	for i := range evs {
		e := &evs[i]
		e.Terminal, e.Epoch, e.Seq = "till-1", "ep", uint64(i+1)
		e.ID, e.Ref, e.HLC, e.RulesVersion = "ep-"+string(rune('a'+i)), "ref", 18446744073709551615-uint64(i), 3
		e.Time = at.Add(time.Duration(i) * 1234567 * time.Nanosecond)
		e.Seal(prev)
		prev = e.Hash
	}
	return evs
}

// TestCanonicalPath: the events terminals write take the canonical path,
// and it gives what the general decoder gives.
func TestCanonicalPath(t *testing.T) {
	for _, e := range shapes() {
		enc := e.Encode()
		fast, _, ok := decodeCanonical(enc)
		if !ok {
			t.Fatalf("%s: not read as canonical: %s", e.Type, enc)
		}
		slow, err := decodeJSON(enc)
		if err != nil || !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s: canonical %+v, general %+v (%v)", e.Type, fast, slow, err)
		}
		if got, err := Decode(enc); err != nil || got.Hash != e.Hash {
			t.Fatalf("%s: Decode = %v", e.Type, err)
		}
	}
}

// TestNonCanonicalStillDecodes: valid events in another form (spaces,
// escapes, an offset) take the general path, and a changed byte is caught
// on either path.
func TestNonCanonicalStillDecodes(t *testing.T) {
	e := shapes()[1]
	enc := string(e.Encode())
	for name, in := range map[string]string{
		"spaces":  strings.Replace(enc, `,"member":`, `, "member" : `, 1),
		"escape":  strings.Replace(enc, `"ref":"ref"`, `"ref":"\u0072ef"`, 1),
		"newline": enc + "\n",
	} {
		if _, _, ok := decodeCanonical([]byte(in)); ok {
			t.Errorf("%s: read as canonical", name)
		}
		if got, err := Decode([]byte(in)); err != nil || got.Hash != e.Hash {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, in := range map[string]string{
		"canonical": strings.Replace(enc, `"points":1234`, `"points":1235`, 1),
		"general":   strings.Replace(enc, `"points":1234`, `"points": 1235`, 1),
	} {
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrChain) {
			t.Errorf("%s path, altered points: %v", name, err)
		}
	}
	// Names with characters encoding/json escapes are kept exactly.
	odd := shapes()[0]
	odd.Name = "A&B <Ltd>\u2028"
	odd.Seal("")
	if _, _, ok := decodeCanonical(odd.Encode()); ok {
		t.Error("an escaped name was read as canonical")
	}
	if got, err := Decode(odd.Encode()); err != nil || got.Name != odd.Name {
		t.Errorf("escaped name: %q, %v", got.Name, err)
	}
}

// FuzzDecodeCanonical: whatever the canonical reader accepts, the general
// decoder reads the same, and it re-encodes to the very bytes, so hashing
// the bytes is hashing the canonical form.
func FuzzDecodeCanonical(f *testing.F) {
	for _, e := range shapes() {
		f.Add(e.Encode())
	}
	f.Add([]byte(`{"terminal":"t","epoch":"e","seq":01,"id":"x"}`))
	f.Add([]byte(`{"terminal":"t","epoch":"e","seq":1,"id":"x","type":"earn","member":"m","points":-0,"amount":0,"ref":"","time":"2026-01-01T00:00:00.000Z","hlc":0,"rules_version":1,"prev_hash":"","hash":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, hashAt, ok := decodeCanonical(b)
		if !ok {
			return
		}
		slow, err := decodeJSON(b)
		if err != nil {
			t.Fatalf("canonical reader accepted what encoding/json refuses: %v", err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("canonical %+v, general %+v", fast, slow)
		}
		if enc := fast.Encode(); string(enc) != string(b) {
			t.Fatalf("accepted bytes are not canonical:\n%s\n%s", b, enc)
		}
		if canon := fast.Canonical(); string(canon) != string(b[:hashAt])+`"}` {
			t.Fatalf("hash position %d wrong:\n%s", hashAt, canon)
		}
	})
}

// BenchmarkDecode compares the canonical path with the general decoder on a
// typical earn, and prints the ratio.
func BenchmarkDecode(b *testing.B) {
	enc := shapes()[1].Encode()
	var fast, general time.Duration
	b.Run("canonical", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			if _, err := Decode(enc); err != nil {
				b.Fatal(err)
			}
		}
		fast = time.Since(start) / time.Duration(b.N)
	})
	b.Run("general", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			e, err := decodeJSON(enc)
			if err != nil || e.ComputeHash() != e.Hash {
				b.Fatal(err)
			}
		}
		general = time.Since(start) / time.Duration(b.N)
	})
	if fast > 0 {
		b.Logf("decode an earn: canonical path %v, encoding/json and re-encoding %v: %.1fx faster", fast, general, float64(general)/float64(fast))
	}
}

// TestOutOfRange: an event whose amount or points (or a line's) are past the
// limits does not decode, with ErrRange, whichever path reads it.
func TestOutOfRange(t *testing.T) {
	for _, e := range []Event{
		{Type: Earn, Member: "m1", Points: MaxPoints + 1},
		{Type: Adjust, Member: "m1", Points: -MaxPoints - 1},
		{Type: Earn, Member: "m1", Points: 5, Amount: money.MaxAmount + 1},
		{Type: Earn, Member: "m1", Points: 5, Lines: []Line{{Label: "base", Points: 9_000_000_000_000_000_000}}},
	} {
		e.Terminal, e.Epoch, e.Seq, e.ID = "till-1", "ep", 1, "ep-1"
		e.Time = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
		e.Seal("")
		if _, err := Decode(e.Encode()); !errors.Is(err, ErrRange) {
			t.Fatalf("%+v: %v, want ErrRange", e, err)
		}
	}
}
