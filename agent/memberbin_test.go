package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/agent/store"
	"github.com/offline-loyalty/terminal/rules"
)

// jsonOf is a record as JSON shows it (encoding/json ignores the binary
// methods): what the binary form must keep.
func jsonOf(t testing.TB, rec any) string {
	t.Helper()
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// binaryRecord is a record type with a binary form: *memberRecord,
// *checkoutRecord.
type binaryRecord[T any] interface {
	*T
	MarshalBinary() ([]byte, error)
	UnmarshalBinary([]byte) error
}

// roundTrip encodes rec and decodes it into a new record.
func roundTrip[T any, P binaryRecord[T]](t testing.TB, rec P) P {
	t.Helper()
	b, err := rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back := P(new(T))
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatalf("decode %x: %v", b, err)
	}
	return back
}

// openAgent opens an agent on a new directory, closed when the test ends.
func openAgent(t *testing.T) *Agent {
	t.Helper()
	a, err := Open(context.Background(), t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// TestMemberBinaryKeepsEveryField: every field set survives, so a field added
// to memberRecord and forgotten in the codec fails here.
func TestMemberBinaryKeepsEveryField(t *testing.T) { keepsEveryField[memberRecord](t) }

// keepsEveryField: a record of type T with every field set to a value that
// is not its zero value reads back the same from its binary form.
func keepsEveryField[T any, P binaryRecord[T]](t *testing.T) {
	t.Helper()
	rec := fullRecord[T, P](t, -1)
	back := reflect.ValueOf(roundTrip(t, rec)).Elem()
	for i := range back.NumField() {
		if back.Field(i).IsZero() {
			t.Errorf("field %s is lost", back.Type().Field(i).Name)
		}
	}
	if got, want := jsonOf(t, back.Addr().Interface()), jsonOf(t, rec); got != want {
		t.Fatalf("round trip:\n got %s\nwant %s", got, want)
	}
}

// fullRecord is a record of type T with field only (every field when only is
// -1) set to a value that is not its zero value, the same on every call.
func fullRecord[T any, P binaryRecord[T]](t *testing.T, only int) P {
	t.Helper()
	rec := P(new(T))
	v := reflect.ValueOf(rec).Elem()
	when := time.Date(2026, 12, 2, 8, 30, 15, 123456789, time.FixedZone("", 3600))
	for i := range v.NumField() {
		if only >= 0 && i != only {
			continue
		}
		f := v.Field(i)
		switch f.Interface().(type) {
		case string:
			f.SetString("s" + v.Type().Field(i).Name)
		case bool:
			f.SetBool(true)
		case int64:
			f.SetInt(-int64(i + 1))
		case uint64:
			f.SetUint(uint64(i + 1))
		case time.Time:
			f.Set(reflect.ValueOf(when.Add(time.Duration(i) * time.Hour)))
		case []string:
			f.Set(reflect.ValueOf([]string{"a", "b"}))
		case rules.Lots:
			f.Set(reflect.ValueOf(rules.Lots{"2026-11": 5, "2026-12": 7}))
		case map[string]int64:
			f.Set(reflect.ValueOf(map[string]int64{"2026-12": 9}))
		case map[string]json.RawMessage:
			f.Set(reflect.ValueOf(map[string]json.RawMessage{"earn": json.RawMessage(`{"points":5}`), "void": json.RawMessage(`{"points":-5}`)}))
		default:
			t.Fatalf("field %s of type %s: teach the codec and this test", v.Type().Field(i).Name, f.Type())
		}
	}
	return rec
}

// refusesCuts fails if decode accepts the record b cut short anywhere or with
// a byte past its end.
func refusesCuts(t *testing.T, b []byte, decode func([]byte) error) {
	t.Helper()
	for n := range len(b) {
		if err := decode(b[:n]); err == nil {
			t.Fatalf("record cut to %d of %d bytes was accepted", n, len(b))
		}
	}
	if err := decode(append(bytes.Clone(b), 0)); err == nil {
		t.Fatal("a record with a byte past its end was accepted")
	}
}

// randomMember draws a record with every kind of value: empty and unicode
// text, nil and empty lists, zero and zoned times, large and negative
// numbers.
func randomMember(r *rand.Rand) *memberRecord {
	text := func() string {
		return []string{"", "M-1", "Zoë Åström", "a\x00b", strings.Repeat("x", 300), "2026-12-02"}[r.IntN(6)]
	}
	num := func() int64 {
		return []int64{0, 1, -1, 1 << 62, -(1 << 63), r.Int64()}[r.IntN(6)]
	}
	when := func() time.Time {
		switch r.IntN(4) {
		case 0:
			return time.Time{}
		case 1:
			return time.Unix(r.Int64N(4e9), r.Int64N(1e9)).UTC()
		case 2:
			return time.Unix(r.Int64N(4e9), 0).In(time.FixedZone("", 60*(r.IntN(1500)-720)))
		}
		return time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(time.Local)
	}
	counts := func() map[string]int64 {
		if r.IntN(3) == 0 {
			return nil
		}
		m := map[string]int64{}
		for range r.IntN(5) {
			m[text()] = num()
		}
		return m
	}
	m := &memberRecord{ID: text(), Name: text(), Email: text(), Phone: text(), Consent: r.IntN(2) == 0, Tier: text(), Status: text(),
		Base: num(), BaseAt: when(), AsOfSeq: r.Uint64(), Pending: num(), Balance: num(), Spend12m: num(), Lifetime: num(),
		LastVisit: when(), Enrolled: when(), Checkouts: num(), LastDay: text(), BurnDay: text(), BurnedDay: num(),
		RedeemOpen: when(), Birthday: text(), Lots: counts(), Months: counts(), TierSince: when()}
	switch r.IntN(3) {
	case 0:
		m.Cards = []string{}
	case 1:
		for range r.IntN(4) + 1 {
			m.Cards = append(m.Cards, text())
		}
	}
	return m
}

// encodeRandom is the binary form of a random record.
func encodeRandom(tb testing.TB, r *rand.Rand) []byte {
	tb.Helper()
	b, err := randomMember(r).MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestMemberBinaryProperty: random records read back as JSON showed them,
// from the binary form and from the JSON of earlier versions alike.
func TestMemberBinaryProperty(t *testing.T) { binaryProperty(t, 11, randomMember) }

// binaryProperty: 2,000 records drawn by random read back as JSON showed
// them, from the binary form and from the JSON of earlier versions alike.
func binaryProperty[T any, P binaryRecord[T]](t *testing.T, seed uint64, random func(*rand.Rand) P) {
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), seed))
	for range 2000 {
		rec := random(r)
		want := jsonOf(t, rec)
		if got := jsonOf(t, roundTrip(t, rec)); got != want {
			t.Fatalf("binary round trip:\n got %s\nwant %s", got, want)
		}
		legacy := P(new(T))
		if err := legacy.UnmarshalBinary([]byte(want)); err != nil {
			t.Fatalf("JSON record: %v", err)
		}
		if got := jsonOf(t, legacy); got != want {
			t.Fatalf("JSON record:\n got %s\nwant %s", got, want)
		}
	}
}

// TestMemberBinaryRefusesDamage: a cut, lengthened or unknown record is an
// error, never a member with wrong figures.
func TestMemberBinaryRefusesDamage(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 50 {
		refusesCuts(t, encodeRandom(t, r), func(b []byte) error { var m memberRecord; return m.UnmarshalBinary(b) })
	}
	var m memberRecord
	if err := m.UnmarshalBinary([]byte{9, 0, 0}); err == nil {
		t.Fatal("a record of an unknown version was accepted")
	}
	// A year JSON could not show is neither written nor read.
	far := memberRecord{ID: "M-1", LastVisit: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := far.MarshalBinary(); err == nil {
		t.Fatal("a record with a time in the year 10000 was encoded")
	}
	last := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	edge, err := (&memberRecord{ID: "M-1", LastVisit: last}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.UnmarshalBinary(edge); err != nil || !m.LastVisit.Equal(last) {
		t.Fatalf("the last second of 9999: %v, %v", m.LastVisit, err)
	}
	// The same record one second later, as damage might make it.
	sec := binary.AppendVarint(nil, last.Unix())
	if bytes.Count(edge, sec) != 1 {
		t.Fatalf("cannot find the time in %x", edge)
	}
	bad := bytes.Replace(edge, sec, binary.AppendVarint(nil, last.Unix()+1), 1)
	if err := m.UnmarshalBinary(bad); err == nil {
		t.Fatal("a record with a time in the year 10000 was decoded")
	}
}

// TestMemberBinaryCountsInOrder: month counts are written in key order, each
// once; a record that repeats or reorders them is damaged.
func TestMemberBinaryCountsInOrder(t *testing.T) {
	for _, keys := range [][]string{{"2026-11", "2026-12"}, {"2026-12", "2026-11"}, {"2026-11", "2026-11"}} {
		var e recEncoder
		e.uint(uint64(len(keys)))
		for _, k := range keys {
			e.str(k)
			e.int(5)
		}
		d := recDecoder{b: e.b}
		got := d.counts()
		if ordered := keys[0] < keys[1]; ordered != (d.err == nil) {
			t.Errorf("counts %v: %v, err %v", keys, got, d.err)
		}
	}
}

// TestMemberJSONRecordsStillWork: a member stored as JSON by an earlier
// version earns as before and is stored in binary from then on.
func TestMemberJSONRecordsStillWork(t *testing.T) {
	ctx := context.Background()
	a := openAgent(t)
	const card = "4000000000000101"
	res, err := a.Enroll(ctx, EnrollRequest{Card: card})
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite the member as an earlier version stored it.
	err = a.st.Write(ctx, func(tx *store.Tx) error {
		var m memberRecord
		if _, err := tx.Get(store.Members, res.Member, &m); err != nil {
			return err
		}
		return tx.PutBytes(store.Members, res.Member, []byte(jsonOf(t, &m)))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Earn(ctx, EarnRequest{Card: card, Amount: "10.00"}); err != nil {
		t.Fatal(err)
	}
	_ = a.st.View(func(tx *store.Tx) error {
		if b := tx.GetBytes(store.Members, res.Member); len(b) == 0 || b[0] != memberBinV1 {
			t.Errorf("member record after an earn: %.20q, want the binary form", b)
		}
		return nil
	})
	m, err := a.Member(ctx, card)
	if err != nil {
		t.Fatal(err)
	}
	if m.Balance <= 0 {
		t.Fatalf("balance %d after an earn", m.Balance)
	}
}

// FuzzMemberRecord: any bytes decode to an error or to a record that
// encodes and decodes to itself; never a panic.
func FuzzMemberRecord(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		f.Add(encodeRandom(f, r))
	}
	f.Add([]byte(`{"id":"M-1","cards":["4000"],"balance":5}`))
	f.Add([]byte{memberBinV1})
	f.Fuzz(fuzzRecord[memberRecord])
}

// fuzzRecord decodes b as a record: an error, or a record that encodes and
// decodes to itself.
func fuzzRecord[T any, P binaryRecord[T]](t *testing.T, b []byte) {
	rec := P(new(T))
	if err := rec.UnmarshalBinary(b); err != nil {
		return
	}
	if got, want := jsonOf(t, roundTrip(t, rec)), jsonOf(t, rec); got != want {
		t.Fatalf("re-encoded record differs:\n got %s\nwant %s", got, want)
	}
}
