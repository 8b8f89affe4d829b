package headoffice_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/sync/syncproto"
)

// seal chains events of terminal T-1, epoch ep1, from seq 1.
func seal(events ...ledger.Event) [][]byte {
	raws := make([][]byte, len(events))
	prev := ""
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	for i := range events {
		e := &events[i]
		e.Terminal, e.Epoch, e.Seq, e.ID = "T-1", "ep1", uint64(i+1), fmt.Sprint("ep1-", i+1)
		if e.Ref == "" {
			e.Ref = fmt.Sprint("r", i+1)
		}
		e.Time = at.Add(time.Duration(i) * time.Minute)
		raws[i] = e.Seal(prev)
		prev = e.Hash
	}
	return raws
}

// TestFlows: a terminal's day as head office applies it, on both stores:
// balances, cards, flags for a resent altered event and a broken chain, the
// report's figures, the member view and a lookup.
func TestFlows(t *testing.T) { eachStore(t, flows) }

func flows(t *testing.T, s headoffice.Store) {
	o := hqtest.Office(t, s, headoffice.Options{Now: testNow})
	ctx := context.Background()
	raws := seal(
		ledger.Event{Type: ledger.Enroll, Member: "M1", Card: "C1", Name: "Ada", Email: "ada@example.com", Tier: "bronze"},
		ledger.Event{Type: ledger.Earn, Member: "M1", Card: "C1", Points: 120, Amount: 12000},
		ledger.Event{Type: ledger.Redeem, Member: "M1", Card: "C1", Points: -50, Reward: "coffee"},
		ledger.Event{Type: ledger.Donate, Member: "M1", Card: "C1", Points: -20, Charity: "foodbank"},
		ledger.Event{Type: ledger.CardReplace, Member: "M1", Card: "C1", NewCard: "C2"},
		ledger.Event{Type: ledger.Earn, Member: "M1", Card: "C2", Points: 30, Amount: 3000},
		ledger.Event{Type: ledger.Redeem, Member: "M1", Card: "C2", Points: -100},
	)
	ingest := func(raws ...[]byte) (uint64, error) {
		return o.Ingest(ctx, "T-1", "S1", "ep1", ledger.DecodeBatch(raws))
	}
	if ack, err := ingest(raws...); err != nil || ack != 7 {
		t.Fatalf("ingest: %d %v", ack, err)
	}
	// Resent with another, well-formed event in the place of seq 2: acked,
	// not applied, flagged.
	first, _ := ledger.Decode(raws[0])
	other := ledger.Event{Terminal: "T-1", Epoch: "ep1", Seq: 2, ID: "ep1-2", Type: ledger.Earn, Member: "M1", Card: "C1", Points: 999,
		Amount: 99900, Ref: "r2", Time: first.Time}
	if ack, err := ingest(raws[0], other.Seal(first.Hash)); ack != 7 || err != nil {
		t.Fatalf("resend: %d %v", ack, err)
	}
	// An event that does not follow the head: refused, flagged.
	bad := ledger.Event{Terminal: "T-1", Epoch: "ep1", Seq: 8, ID: "ep1-8", Type: ledger.Earn, Member: "M1", Points: 5, Ref: "x", Time: time.Now().UTC()}
	if ack, err := ingest(bad.Seal("not-the-head")); ack != 7 || !errors.Is(err, headoffice.ErrChain) {
		t.Fatalf("broken chain: %d %v", ack, err)
	}
	v, err := o.MemberByCard(ctx, "C2")
	if err != nil || v.Balance != -20 || v.Name != "Ada" || v.Email != "ada@example.com" || v.Lifetime != 15000 || v.Status != "active" {
		t.Fatalf("member by new card: %+v %v", v, err)
	}
	if old, err := o.MemberByCard(ctx, "C1"); err != nil || old.Status != "blocked" || old.Member.Member != "M1" {
		t.Fatalf("member by replaced card: %+v %v", old, err)
	}
	if _, err := o.MemberByCard(ctx, "4000000000000002"); !errors.Is(err, headoffice.ErrNotFound) || strings.Contains(err.Error(), "4000000000000002") {
		t.Fatalf("unknown card: %v", err)
	}
	snap, err := o.Lookup(ctx, "T-1", "ep1", "C2")
	if err != nil || snap.AsOfSeq != 7 || snap.Balance != -20 {
		t.Fatalf("lookup: %+v %v", snap, err)
	}
	rep, err := o.Report(ctx, "2026-11-24", "2026-11-24", "")
	if err != nil {
		t.Fatal(err)
	}
	want := headoffice.StoreFigures{Store: "S1", Events: 7, Checkouts: 2, Sales: 15000, PointsIssued: 150, PointsRedeemed: 150, PointsDonated: 20, Enrollments: 1, Members: 1}
	if len(rep.Stores) != 1 || rep.Stores[0] != want || rep.Liability != -20 {
		t.Fatalf("report %+v, want %+v and liability -20", rep, want)
	}
	kinds := map[string]int{}
	for _, f := range append(append(rep.NegativeBalances, rep.ChainBreaks...), rep.Other...) {
		kinds[f.Kind]++
	}
	if kinds["negative_balance"] != 1 || kinds["chain_break"] != 1 || kinds["conflicting_duplicate"] != 1 {
		t.Fatalf("flags %v", kinds)
	}
	if rep, _ := o.Report(ctx, "2026-11-25", "", ""); len(rep.Stores) != 0 {
		t.Fatalf("a day with no events: %+v", rep.Stores)
	}
	if _, err := o.Report(ctx, "24/11/2026", "", ""); !errors.Is(err, headoffice.ErrInvalid) {
		t.Fatalf("bad day: %v", err)
	}
	// The replaced card goes on every terminal's blocklist.
	var cur syncproto.Cursors
	var blocked []syncproto.Block
	deadline := time.Now().Add(10 * time.Second)
	for len(blocked) == 0 && time.Now().Before(deadline) {
		msgs, err := o.Pending(ctx, "S2-t", "S2", "e", &cur, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			blocked = append(blocked, m.Blocked...)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(blocked) != 1 || blocked[0] != (syncproto.Block{Card: "C1", Blocked: true}) {
		t.Fatalf("blocklist %v", blocked)
	}
}

// TestDistrust: what an authenticated terminal cannot make head office
// apply, on both stores: an event altered after it was sealed, one of
// another terminal, store or epoch than its session, one dated far from
// head office's clock, and points or amounts past the limits or that would
// overflow a balance. Each is refused with its code, nothing of it is
// applied, and each is flagged and listed in the report.
func TestDistrust(t *testing.T) { eachStore(t, distrust) }

func distrust(t *testing.T, s headoffice.Store) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	o := hqtest.Office(t, s, headoffice.Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	raws := seal(ledger.Event{Type: ledger.Enroll, Member: "M1", Card: "C1"}, ledger.Event{Type: ledger.Earn, Member: "M1", Card: "C1", Points: 10, Amount: 1000})
	if ack, err := o.Ingest(ctx, "T-1", "S1", "ep1", ledger.DecodeBatch(raws)); err != nil || ack != 2 {
		t.Fatalf("ingest: %d %v", ack, err)
	}
	head, _ := ledger.Decode(raws[1])
	next := func(mod func(e *ledger.Event)) []byte {
		e := ledger.Event{Terminal: "T-1", Epoch: "ep1", Seq: 3, ID: "ep1-3", Type: ledger.Adjust, Member: "M1", Points: 5, Ref: "x", Time: now}
		mod(&e)
		return e.Seal(head.Hash)
	}
	tampered := next(func(*ledger.Event) {})
	tampered = []byte(strings.Replace(string(tampered), `"points":5`, `"points":500`, 1))
	cases := []struct {
		name, code, flag string
		raw              []byte
		terminal, store  string
	}{
		{"altered after sealing", "chain", "chain_break", tampered, "T-1", "S1"},
		{"another terminal's", "chain", "chain_break", next(func(e *ledger.Event) { e.Terminal = "S2-till-9" }), "T-1", "S1"},
		{"another store's", "chain", "chain_break", next(func(e *ledger.Event) { e.Store = "S2" }), "T-1", "S1"},
		{"dated 2099", "skew", "clock_skew", next(func(e *ledger.Event) { e.Time = time.Date(2099, 6, 1, 0, 0, 0, 0, time.UTC) }), "T-1", "S1"},
		{"dated 1971", "skew", "clock_skew", next(func(e *ledger.Event) { e.Time = time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC) }), "T-1", "S1"},
		{"9e18 points", "range", "out_of_range", next(func(e *ledger.Event) { e.Points = 9_000_000_000_000_000_000 }), "T-1", "S1"},
		{"a balance past the limit", "range", "out_of_range", next(func(e *ledger.Event) { e.Points = headoffice.MaxBalance }), "T-1", "S1"},
		{"an amount past the limit", "range", "out_of_range", next(func(e *ledger.Event) { e.Type, e.Amount = ledger.Earn, 1<<62 }), "T-1", "S1"},
	}
	for _, c := range cases {
		ack, err := o.Ingest(ctx, c.terminal, c.store, "ep1", ledger.DecodeBatch([][]byte{c.raw}))
		var coded interface{ Code() string }
		if ack != 2 || !errors.As(err, &coded) || coded.Code() != c.code {
			t.Fatalf("%s: ack %d, %v; want ack 2 and code %s", c.name, ack, err, c.code)
		}
	}
	// An event written before the till joined carries its provisional id.
	joined := next(func(e *ledger.Event) { e.Terminal = "T-0a1b2c3d" })
	if ack, err := o.Ingest(ctx, "T-1", "S1", "ep1", ledger.DecodeBatch([][]byte{joined})); err != nil || ack != 3 {
		t.Fatalf("an event of before the join: %d %v", ack, err)
	}
	v, err := o.MemberByCard(ctx, "C1")
	if err != nil || v.Balance != 15 {
		t.Fatalf("balance %d %v: something refused was applied", v.Balance, err)
	}
	rep, err := o.Report(ctx, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, f := range append(rep.ChainBreaks, rep.Other...) {
		kinds[f.Kind]++
	}
	// One flag per event and kind: seq 3 refused twice for its store and
	// terminal is one chain break; an event that does not decode has none.
	if kinds["chain_break"] != 2 || kinds["clock_skew"] != 1 || kinds["out_of_range"] != 2 || rep.Liability != 15 {
		t.Fatalf("flags %v, liability %d", kinds, rep.Liability)
	}
}

// TestDuplicateEnrollment: the same card enrolled for two members (two
// tills offline): the card stays with the first, the second member keeps
// its events and balance, and the second enrollment is flagged, on both
// stores, whether the two arrive apart or in one batch.
func TestDuplicateEnrollment(t *testing.T) { eachStore(t, duplicateEnrollment) }

func duplicateEnrollment(t *testing.T, s headoffice.Store) {
	o := hqtest.Office(t, s, headoffice.Options{Now: testNow})
	ctx := context.Background()
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	chain := func(terminal string, evs ...ledger.Event) [][]byte {
		var raws [][]byte
		prev := ""
		for i := range evs {
			e := &evs[i]
			e.Terminal, e.Epoch, e.Seq, e.ID, e.Ref, e.Time = terminal, "ep", uint64(i+1), fmt.Sprint("ep-", i+1), fmt.Sprint(terminal, i), at.Add(time.Duration(i)*time.Minute)
			raws = append(raws, e.Seal(prev))
			prev = e.Hash
		}
		return raws
	}
	a := chain("S1-a", ledger.Event{Type: ledger.Enroll, Member: "MA", Card: "C1"}, ledger.Event{Type: ledger.Earn, Member: "MA", Card: "C1", Points: 10, Amount: 1000})
	b := chain("S1-b", b2events()...)
	for _, in := range []struct {
		terminal string
		raws     [][]byte
	}{{"S1-a", a}, {"S1-b", b}} {
		if ack, err := o.Ingest(ctx, in.terminal, "S1", "ep", ledger.DecodeBatch(in.raws)); err != nil || int(ack) != len(in.raws) {
			t.Fatalf("%s: %d %v", in.terminal, ack, err)
		}
	}
	for card, want := range map[string]struct {
		member  string
		balance int64
	}{"C1": {"MA", 10}, "C2": {"MC", 0}} {
		v, err := o.MemberByCard(ctx, card)
		if err != nil || v.Member.Member != want.member || v.Balance != want.balance {
			t.Fatalf("card %s: %+v %v, want member %s", card, v, err, want.member)
		}
	}
	rep, err := o.Report(ctx, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	var dups []string
	for _, f := range rep.Other {
		if f.Kind == "duplicate_enrollment" {
			dups = append(dups, f.Member)
		}
	}
	sort.Strings(dups)
	if strings.Join(dups, ",") != "MB,MD" || rep.Liability != 17 {
		t.Fatalf("duplicate enrollment flags for %v (want MB, MD), liability %d", dups, rep.Liability)
	}
	// Head office merges MB into MA: one member, one balance, both
	// histories; MB's events still to come from its till apply to MA.
	v, err := o.MergeMembers(ctx, "MA", "MB", "ops")
	if err != nil || v.Balance != 17 || v.Member.Member != "MA" {
		t.Fatalf("merge: %+v %v", v, err)
	}
	if _, err := o.MergeMembers(ctx, "MA", "MB", "ops"); err == nil {
		t.Fatal("a member merged twice")
	}
	if _, err := o.MergeMembers(ctx, "MA", "MA", "ops"); err == nil {
		t.Fatal("a member merged into itself")
	}
	later := chain("S1-b", append(b2events(), ledger.Event{Type: ledger.Earn, Member: "MB", Card: "C1", Points: 3, Amount: 300})...)
	if ack, err := o.Ingest(ctx, "S1-b", "S1", "ep", ledger.DecodeBatch(later)); err != nil || int(ack) != len(later) {
		t.Fatalf("after the merge: %d %v", ack, err)
	}
	if v, err := o.MemberByCard(ctx, "C1"); err != nil || v.Member.Member != "MA" || v.Balance != 20 {
		t.Fatalf("after the merge, card C1: %+v %v", v, err)
	}
	if rep, _ := o.Report(ctx, "", "", ""); rep.Liability != 20 {
		t.Fatalf("liability after the merge %d, want 20", rep.Liability)
	}
}

// b2events are the events of till b in TestDuplicateEnrollment, again.
func b2events() []ledger.Event {
	return []ledger.Event{{Type: ledger.Enroll, Member: "MB", Card: "C1"}, {Type: ledger.Earn, Member: "MB", Card: "C1", Points: 7, Amount: 700},
		{Type: ledger.Enroll, Member: "MC", Card: "C2"}, {Type: ledger.Enroll, Member: "MD", Card: "C2"}}
}

// TestReportNet: sales and points issued are net of voids and refunds, a
// voided sale is no checkout, and adjustments, expiry and the reversals are
// shown, on both stores.
func TestReportNet(t *testing.T) { eachStore(t, reportNet) }

func reportNet(t *testing.T, s headoffice.Store) {
	o := hqtest.Office(t, s, headoffice.Options{Now: testNow})
	ctx := context.Background()
	raws := seal(
		ledger.Event{Type: ledger.Enroll, Member: "M1", Card: "C1"},
		ledger.Event{Type: ledger.Earn, Member: "M1", Card: "C1", Points: 100, Amount: 10000},
		ledger.Event{Type: ledger.Earn, Member: "M1", Card: "C1", Points: 50, Amount: 5000},
		ledger.Event{Type: ledger.Void, Member: "M1", Card: "C1", Points: -100, Amount: 10000, Target: "ep1-2"},
		ledger.Event{Type: ledger.Refund, Member: "M1", Card: "C1", Points: -20, Amount: 2000, Target: "ep1-3"},
		ledger.Event{Type: ledger.Adjust, Member: "M1", Points: 15, Reason: "goodwill"},
		ledger.Event{Type: ledger.Expire, Member: "M1", Points: -5, Reason: "earned 2025-11"},
	)
	if ack, err := o.Ingest(ctx, "T-1", "S1", "ep1", ledger.DecodeBatch(raws)); err != nil || ack != 7 {
		t.Fatalf("ingest: %d %v", ack, err)
	}
	rep, err := o.Report(ctx, "", "", "")
	if err != nil || len(rep.Stores) != 1 {
		t.Fatalf("report %+v %v", rep, err)
	}
	got := rep.Stores[0]
	want := headoffice.StoreFigures{Store: "S1", Events: 7, Checkouts: 1, Sales: 3000, PointsIssued: 30, PointsAdjusted: 15, PointsExpired: 5,
		Reversals: 2, Enrollments: 1, Members: 1}
	if got != want || rep.Liability != 40 {
		t.Fatalf("report %+v, liability %d\nwant %+v, liability 40", got, rep.Liability, want)
	}
}
