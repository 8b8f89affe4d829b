package agent

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/agent/store"
)

// TestCheckoutBinaryKeepsEveryField: every field set survives, so a field
// added to checkoutRecord and forgotten in the codec fails here.
func TestCheckoutBinaryKeepsEveryField(t *testing.T) { keepsEveryField[checkoutRecord](t) }

// randomCheckout draws a record with every kind of value, its results
// included: none, empty, several.
func randomCheckout(r *rand.Rand) *checkoutRecord {
	text := func() string {
		return []string{"", "R-1", "Zoë Åström", "a\x00b", strings.Repeat("x", 300), "2026-12-02"}[r.IntN(6)]
	}
	num := func() int64 {
		return []int64{0, 1, -1, 1 << 62, -(1 << 63), r.Int64()}[r.IntN(6)]
	}
	c := &checkoutRecord{Ref: text(), Member: text(), Card: text(), EarnEvent: text(), Day: text(),
		Time:   time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(time.FixedZone("", 60*(r.IntN(1500)-720))),
		Amount: num(), Earned: num(), Burned: num(), Refunded: num(), Clawed: num(), Voided: r.IntN(2) == 0}
	if r.IntN(4) == 0 {
		c.Time = time.Time{}
	}
	switch r.IntN(3) {
	case 0:
		c.Results = map[string]json.RawMessage{}
	case 1:
		c.Results = map[string]json.RawMessage{}
		for range r.IntN(4) + 1 {
			c.Results[text()] = json.RawMessage([]string{`{}`, `{"ref":"R-1","points":12,"lines":[{"label":"base","points":12}]}`, `"x"`, `-3`}[r.IntN(4)])
		}
	}
	return c
}

// TestCheckoutBinaryProperty: random records read back as JSON showed them,
// from the binary form and from the JSON of earlier versions alike.
func TestCheckoutBinaryProperty(t *testing.T) { binaryProperty(t, 12, randomCheckout) }

// TestCheckoutBinaryRefusesDamage: a cut, lengthened or unknown record, or
// results out of order, repeated or not JSON, is an error, never a checkout
// with wrong figures or a retry answered with garbage.
func TestCheckoutBinaryRefusesDamage(t *testing.T) {
	decode := func(b []byte) error { var c checkoutRecord; return c.UnmarshalBinary(b) }
	r := rand.New(rand.NewPCG(7, 8))
	for range 50 {
		b, err := randomCheckout(r).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		refusesCuts(t, b, decode)
	}
	if err := decode([]byte{9, 0, 0}); err == nil {
		t.Fatal("a record of an unknown version was accepted")
	}
	withResults := func(kv ...string) []byte {
		e := recEncoder{b: []byte{checkoutBinV1}}
		for range 5 {
			e.str("")
		}
		e.time(time.Time{})
		for range 5 {
			e.int(0)
		}
		e.bool(false)
		e.uint(uint64(len(kv) / 2))
		for i := 0; i < len(kv); i += 2 {
			e.str(kv[i])
			e.str(kv[i+1])
		}
		return e.b
	}
	if err := decode(withResults("earn", `{}`, "void", `{}`)); err != nil {
		t.Fatalf("results in order: %v", err)
	}
	for _, kv := range [][]string{{"void", `{}`, "earn", `{}`}, {"earn", `{}`, "earn", `{}`}, {"earn", `{"points":`}, {"earn", ``}} {
		if err := decode(withResults(kv...)); err == nil {
			t.Errorf("results %q were accepted", kv)
		}
	}
}

// TestCheckoutJSONRecordsStillWork: a checkout stored as JSON by an earlier
// version answers a retry with its first result, can be voided, and is
// stored in binary from then on.
func TestCheckoutJSONRecordsStillWork(t *testing.T) {
	ctx := context.Background()
	a := openAgent(t)
	const card = "4000000000000102"
	if _, err := a.Enroll(ctx, EnrollRequest{Card: card}); err != nil {
		t.Fatal(err)
	}
	first, err := a.Earn(ctx, EarnRequest{Card: card, Amount: "10.00", Ref: "R-old"})
	if err != nil {
		t.Fatal(err)
	}
	stored := func() []byte {
		var b []byte
		_ = a.st.View(func(tx *store.Tx) error { b = tx.GetBytes(store.Checkouts, "R-old"); return nil })
		return b
	}
	if b := stored(); len(b) == 0 || b[0] != checkoutBinV1 {
		t.Fatalf("checkout record: %.20q, want the binary form", b)
	}
	// Rewrite the checkout as an earlier version stored it.
	err = a.st.Write(ctx, func(tx *store.Tx) error {
		var c checkoutRecord
		if _, err := tx.Get(store.Checkouts, "R-old", &c); err != nil {
			return err
		}
		return tx.PutBytes(store.Checkouts, "R-old", []byte(jsonOf(t, &c)))
	})
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.Earn(ctx, EarnRequest{Card: card, Amount: "10.00", Ref: "R-old"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(mustJSON(t, again)), string(mustJSON(t, first)); got != want {
		t.Fatalf("retry of a JSON checkout:\n got %s\nwant %s", got, want)
	}
	if _, err := a.Void(ctx, VoidRequest{Ref: "R-old"}); err != nil {
		t.Fatal(err)
	}
	if b := stored(); len(b) == 0 || b[0] != checkoutBinV1 {
		t.Fatalf("checkout record after a void: %.20q, want the binary form", b)
	}
	m, err := a.Member(ctx, card)
	if err != nil {
		t.Fatal(err)
	}
	if m.Balance != 0 {
		t.Fatalf("balance %d after earning and voiding, want 0", m.Balance)
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzCheckoutRecord: any bytes decode to an error or to a record that
// encodes and decodes to itself; never a panic.
func FuzzCheckoutRecord(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 8 {
		b, err := randomCheckout(r).MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"ref":"R-1","member":"M-1","amount":1250,"results":{"earn":{"points":12}}}`))
	f.Add([]byte{checkoutBinV1})
	f.Fuzz(fuzzRecord[checkoutRecord])
}
