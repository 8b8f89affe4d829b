package ledger

import (
	"errors"
	"testing"
	"time"
)

func sample(seq uint64, prev string) Event {
	e := Event{
		Terminal: "T1", Epoch: "ep", Seq: seq, ID: "ep-1", Type: Earn, Member: "m1",
		Card: "4000000000000002", Points: 12, Amount: 1250, Currency: "EUR", Ref: "r1",
		Time: time.Date(2026, 11, 24, 10, 0, 0, 123, time.FixedZone("x", 3600)), HLC: 42, RulesVersion: 1,
		Lines: []Line{{Label: "base", Points: 12}},
	}
	e.Seal(prev)
	return e
}

func TestRoundTrip(t *testing.T) {
	e := sample(1, "")
	got, err := Decode(e.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != e.Hash || !got.Time.Equal(e.Time) || got.Time.Location() != time.UTC {
		t.Fatalf("round trip changed the event: %+v vs %+v", got, e)
	}
	if string(got.Encode()) != string(e.Encode()) {
		t.Fatalf("re-encoding differs:\n%s\n%s", got.Encode(), e.Encode())
	}
}

func TestSealEncodes(t *testing.T) {
	e := sample(1, "")
	enc := e.Seal("")
	if string(enc) != string(e.Encode()) {
		t.Fatalf("Seal's encoding differs from Encode:\n%s\n%s", enc, e.Encode())
	}
	hash, hlc, ok := Head(enc)
	if !ok || hash != e.Hash || hlc != e.HLC {
		t.Fatalf("Head = %q %d %v, want %q %d", hash, hlc, ok, e.Hash, e.HLC)
	}
	if _, _, ok := Head([]byte(`{"seq":1}`)); ok {
		t.Fatal("Head accepted an event without a hash")
	}
}

func TestMemberPoints(t *testing.T) {
	for _, pts := range []int64{0, 12, -150} {
		e := sample(1, "")
		e.Points = pts
		enc := e.Seal("")
		m, p, ok := MemberPoints(enc)
		if !ok || m != e.Member || p != pts {
			t.Fatalf("MemberPoints = %q %d %v, want %q %d", m, p, ok, e.Member, pts)
		}
	}
	if _, _, ok := MemberPoints([]byte(`{"seq":1}`)); ok {
		t.Fatal("read an event without member")
	}
}

func TestChain(t *testing.T) {
	a := sample(1, "")
	b := sample(2, a.Hash)
	if err := Verify(a, 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := Verify(b, 1, a.Hash); err != nil {
		t.Fatal(err)
	}
	if err := Verify(b, 1, "beef"); !errors.Is(err, ErrChain) {
		t.Fatalf("wrong prev hash: %v", err)
	}
	if err := Verify(b, 2, a.Hash); !errors.Is(err, ErrChain) {
		t.Fatalf("gap: %v", err)
	}
	altered := b
	altered.Points = 1200
	if err := Verify(altered, 1, a.Hash); !errors.Is(err, ErrChain) {
		t.Fatalf("altered content: %v", err)
	}
	if _, err := Decode(altered.Encode()); !errors.Is(err, ErrChain) {
		t.Fatalf("Decode of altered event: %v", err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	good := sample(1, "")
	unknownType := good
	unknownType.Type = "steal"
	unknownType.Seal("")
	noMember := good
	noMember.Member = ""
	noMember.Seal("")
	for name, in := range map[string]string{
		"empty":         "",
		"not json":      "hello",
		"trailing":      string(good.Encode()) + "{}",
		"unknown field": `{"seq":1,"evil":true}`,
		"unknown type":  string(unknownType.Encode()),
		"no member":     string(noMember.Encode()),
		"seq zero":      `{"terminal":"T","epoch":"e","id":"x","type":"earn","member":"m","time":"2026-01-01T00:00:00Z","prev_hash":"","hash":""}`,
	} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestHLC(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	a := NextHLC(0, now)
	b := NextHLC(a, now)
	c := NextHLC(b, now.Add(-time.Hour)) // wall clock ran back
	if !(a < b && b < c) {
		t.Fatalf("not increasing: %d %d %d", a, b, c)
	}
	if !HLCTime(a).Equal(now) {
		t.Fatalf("HLCTime = %v", HLCTime(a))
	}
	if ObserveHLC(c, c+100) != c+100 || ObserveHLC(c, 1) != c {
		t.Fatal("ObserveHLC does not take the maximum")
	}
}

// FuzzDecode checks that Decode never panics and that whatever it accepts
// re-encodes to an event that decodes to the same hash.
func FuzzDecode(f *testing.F) {
	a := sample(1, "")
	f.Add(a.Encode())
	f.Add(sample(2, a.Hash).Encode())
	f.Add([]byte(`{"seq":1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"type":"earn","seq":18446744073709551615}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Decode(e.Encode())
		if err != nil || again.Hash != e.Hash {
			t.Fatalf("accepted event does not round-trip: %v", err)
		}
	})
}
