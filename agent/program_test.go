package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/rules"
)

// applyRules puts a changed copy of the default rules in force.
func applyRules(t testing.TB, a *agent.Agent, change func(d *rules.Document)) {
	t.Helper()
	d := rules.Default()
	d.Version = a.Rules().Version + 1
	change(d)
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ApplyRules(b); err != nil {
		t.Fatal(err)
	}
}

func earnAt(t *testing.T, a *agent.Agent, c *clock, at time.Time, ref, amount string) agent.EarnResult {
	t.Helper()
	c.mu.Lock()
	c.t = at
	c.mu.Unlock()
	r, err := a.Earn(context.Background(), agent.EarnRequest{Card: card, Amount: amount, Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func lines(ls []ledger.Line) string {
	var out []string
	for _, l := range ls {
		out = append(out, rules.Line{Label: l.Label, Points: l.Points}.String())
	}
	return strings.Join(out, ", ")
}

// TestExpiryLots: points expire by lot, oldest spent first; the run is
// idempotent, also across a restart; the member view warns 30 days ahead.
func TestExpiryLots(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2025, 10, 15, 12, 0, 0, 0, time.UTC)}
	a := open(t, dir, c)
	enroll(t, a, card)
	earnAt(t, a, c, time.Date(2025, 10, 15, 12, 0, 0, 0, time.UTC), "oct", "300.00") // lot 2025-10: 300
	earnAt(t, a, c, time.Date(2025, 11, 12, 12, 0, 0, 0, time.UTC), "nov", "200.00") // lot 2025-11: 200
	earnAt(t, a, c, time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC), "june", "100.00") // lot 2026-06: 100 (x1.25 silver from here on: 125)
	if _, err := a.Redeem(context.Background(), agent.RedeemRequest{Card: card, Reward: "coffee", Ref: "r1"}); err != nil {
		t.Fatal(err) // 150 points from the October lot
	}
	c.mu.Lock()
	c.t = time.Date(2026, 11, 5, 9, 0, 0, 0, time.UTC)
	c.mu.Unlock()
	v, err := a.Member(context.Background(), card)
	if err != nil {
		t.Fatal(err)
	}
	// Due now: the rest of October (150); by 5 December also November (200).
	if v.Expiring != 350 || v.ExpiresOn == nil || !v.ExpiresOn.Equal(time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC).AddDate(1, 0, 0)) {
		t.Fatalf("expiring %d on %v, want 350 from 2026-11-01", v.Expiring, v.ExpiresOn)
	}
	before := v.Balance
	h, err := a.Expire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.Expired != 1 || h.Points != 150 {
		t.Fatalf("first run: %+v, want 1 event of 150 points", h)
	}
	evs := events(t, a)
	last := evs[len(evs)-1]
	if last.Type != ledger.Expire || last.Points != -150 || last.Ref != "expire:"+v.Member+":2025-10" {
		t.Fatalf("expire event %+v", last)
	}
	seq := last.Seq
	if h, err := a.Expire(context.Background()); err != nil || h != (agent.Housekeeping{}) {
		t.Fatalf("second run: %+v %v", h, err)
	}
	a.Close()
	a = open(t, dir, c)
	c.mu.Lock()
	c.t = time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC)
	c.mu.Unlock()
	h, err = a.Expire(context.Background())
	if err != nil || h.Expired != 1 || h.Points != 200 {
		t.Fatalf("after restart, in December: %+v %v", h, err)
	}
	if h, _ := a.Expire(context.Background()); h.Expired != 0 {
		t.Fatalf("December again: %+v", h)
	}
	if got := events(t, a); got[len(got)-1].Seq != seq+1 {
		t.Fatalf("%d events after seq %d, want 1", got[len(got)-1].Seq-seq, seq)
	}
	v, _ = a.Member(context.Background(), card)
	if v.Balance != before-350 {
		t.Fatalf("balance %d, want %d", v.Balance, before-350)
	}
	if s, _ := a.Stats("2026-12-01"); s.PointsExpired != 200 {
		t.Fatalf("expired points in the day's figures: %d", s.PointsExpired)
	}
}

// TestExpiryInactivityAndDeferral: all points expire after N months without a
// purchase; a terminal that reports to head office waits for a fresh balance.
func TestExpiryInactivityAndDeferral(t *testing.T) {
	c := &clock{t: time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)}
	a := open(t, t.TempDir(), c)
	applyRules(t, a, func(d *rules.Document) { d.Expiry = &rules.Expiry{Policy: rules.ExpireInactive, Months: 18} })
	enroll(t, a, card)
	earnAt(t, a, c, c.now(), "jan", "80.00")
	earnAt(t, a, c, time.Date(2025, 5, 20, 12, 0, 0, 0, time.UTC), "may", "40.00")
	c.mu.Lock()
	c.t = time.Date(2026, 11, 19, 12, 0, 0, 0, time.UTC)
	c.mu.Unlock()
	if h, _ := a.Expire(context.Background()); h.Expired != 0 {
		t.Fatalf("expired a day early: %+v", h)
	}
	if v, _ := a.Member(context.Background(), card); v.Expiring != v.Balance || v.Balance < 120 {
		t.Fatalf("expiring %d, want the whole balance %d", v.Expiring, v.Balance)
	}
	c.add(24 * time.Hour)
	if err := a.SetIdentity("T1", "S1"); err != nil { // now it reports to head office
		t.Fatal(err)
	}
	if h, _ := a.Expire(context.Background()); h.Deferred != 1 || h.Expired != 0 {
		t.Fatalf("stale view: %+v, want deferred", h)
	}
	v, _ := a.Member(context.Background(), card)
	if err := a.ApplyMembers([]agent.MemberSnapshot{{Member: v.Member, Cards: []string{card}, Tier: v.Tier, Balance: v.Balance,
		LastVisit: time.Date(2025, 5, 20, 12, 0, 0, 0, time.UTC), Taken: c.now(), AsOfSeq: 99}}, 1); err != nil {
		t.Fatal(err)
	}
	h, err := a.Expire(context.Background())
	if err != nil || h.Expired != 1 || h.Points != v.Balance {
		t.Fatalf("fresh view: %+v %v", h, err)
	}
	if evs := events(t, a); evs[len(evs)-1].Ref != "expire:"+v.Member+":idle:2025-05-20" {
		t.Fatalf("ref %s", evs[len(evs)-1].Ref)
	}
}

// TestTierReview: tiers go down only at the review, on the 12 months before
// it, and not for a tier reached after it.
func TestTierReview(t *testing.T) {
	c := &clock{t: time.Date(2024, 12, 5, 12, 0, 0, 0, time.UTC)}
	a := open(t, t.TempDir(), c)
	enroll(t, a, card)
	earnAt(t, a, c, c.now(), "big", "1600.00") // gold in December 2024
	earnAt(t, a, c, time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), "small", "600.00")
	c.mu.Lock()
	c.t = time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC)
	c.mu.Unlock()
	if h, _ := a.Expire(context.Background()); h.Downgraded != 0 {
		t.Fatalf("downgraded before the review: %+v", h)
	}
	if v, _ := a.Member(context.Background(), card); v.Tier != "gold" {
		t.Fatalf("tier %s", v.Tier)
	}
	c.add(2 * time.Hour) // 2026-01-01: 2025's spend (600) is Silver
	h, err := a.Expire(context.Background())
	if err != nil || h.Downgraded != 1 {
		t.Fatalf("review: %+v %v", h, err)
	}
	v, _ := a.Member(context.Background(), card)
	evs := events(t, a)
	if e := evs[len(evs)-1]; v.Tier != "silver" || e.Type != ledger.TierChange || e.Tier != "silver" || e.Ref != "review:"+v.Member+":2026-01-01" {
		t.Fatalf("tier %s, event %+v", v.Tier, e)
	}
	if h, _ := a.Expire(context.Background()); h.Downgraded != 0 {
		t.Fatalf("reviewed twice: %+v", h)
	}
	// Back to gold in February by spending: the review of 2026 is done and
	// does not take it again.
	earnAt(t, a, c, time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC), "feb", "1000.00")
	if v, _ := a.Member(context.Background(), card); v.Tier != "gold" || v.Spend12m != 160000 {
		t.Fatalf("after February: %s, spend %d", v.Tier, v.Spend12m)
	}
	if h, _ := a.Expire(context.Background()); h.Downgraded != 0 {
		t.Fatalf("a tier reached after the review went down: %+v", h)
	}
}

// TestEarnProgram: welcome back, campaign budgets, birthday month and the
// surprise draw through the agent, counted in the day's figures.
func TestEarnProgram(t *testing.T) {
	c := newClock() // Wednesday 2026-11-25
	a := open(t, t.TempDir(), c)
	applyRules(t, a, func(d *rules.Document) {
		d.Campaigns = append(d.Campaigns,
			rules.Campaign{ID: "bday", Name: "Birthday month", BirthdayMonth: true, Bonus: 30, Stackable: true},
			rules.Campaign{ID: "launch", Name: "Launch", Bonus: 40, Budget: 100, Stackable: true})
		d.Surprise.ProbabilityBP = 10000
		d.Surprise.DailyBudget = 150
	})
	if _, err := a.Enroll(context.Background(), agent.EnrollRequest{Card: card, Name: "Ada", Birthday: "1990-11-30"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Enroll(context.Background(), agent.EnrollRequest{Card: "4000000000000010", Birthday: "13-01"}); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("bad birthday: %v", err)
	}
	at := c.now()
	want := []string{
		"+20 base, +30 Birthday month, +40 Launch, +100 surprise",
		"+20 base, +30 Birthday month, +40 Launch, +50 surprise", // the day's surprise budget runs out
		"+20 base, +30 Birthday month, +20 Launch",               // and the campaign's
	}
	for i, w := range want {
		r := earnAt(t, a, c, at.Add(time.Duration(i)*time.Minute), "b"+string(rune('0'+i)), "20.00")
		if got := lines(r.Lines); got != w {
			t.Errorf("earn %d: %q, want %q", i, got, w)
		}
	}
	v, _ := a.Member(context.Background(), card)
	if !v.BirthdayMonth || v.Birthday != "11-30" || v.WelcomeBack {
		t.Fatalf("flags: birthday %v %q, welcome back %v", v.BirthdayMonth, v.Birthday, v.WelcomeBack)
	}
	// 61 days later: welcome back, shown before the purchase and earned with it.
	c.add(61 * 24 * time.Hour)
	if v, _ := a.Member(context.Background(), card); !v.WelcomeBack {
		t.Fatal("no welcome back flag after 61 days")
	}
	r := earnAt(t, a, c, c.now(), "back", "20.00")
	if !strings.Contains(lines(r.Lines), "+25 welcome back") {
		t.Fatalf("lines %q", lines(r.Lines))
	}
	if s, _ := a.Stats(""); s.WelcomeBack != 1 {
		t.Fatalf("welcome-back members today: %d", s.WelcomeBack)
	}
	// A quote says the same and writes nothing.
	q, err := a.Quote(context.Background(), agent.EarnRequest{Card: card, Amount: "20.00", Ref: "q"})
	if err != nil || strings.Contains(lines(q.Lines), "welcome back") {
		t.Fatalf("quote %q %v", lines(q.Lines), err)
	}
}

func TestRewardWindowAndRollingSpend(t *testing.T) {
	c := newClock()
	a := open(t, t.TempDir(), c)
	applyRules(t, a, func(d *rules.Document) {
		d.Catalog = append(d.Catalog, rules.Reward{ID: "xmas", Name: "Christmas hamper", Points: 100, From: "2026-12-01", To: "2026-12-24"})
	})
	enroll(t, a, card)
	earnAt(t, a, c, c.now(), "a", "600.00") // silver
	if _, err := a.Redeem(context.Background(), agent.RedeemRequest{Card: card, Reward: "xmas", Ref: "x1"}); !errors.Is(err, agent.ErrRewardUnavailable) {
		t.Fatalf("redeem before its window: %v", err)
	}
	c.add(7 * 24 * time.Hour)
	if _, err := a.Redeem(context.Background(), agent.RedeemRequest{Card: card, Reward: "xmas", Ref: "x2"}); err != nil {
		t.Fatalf("redeem in its window: %v", err)
	}
	// A year on, November 2026's spend has left the rolling window.
	c.add(365 * 24 * time.Hour)
	if v, _ := a.Member(context.Background(), card); v.Spend12m != 0 || v.Tier != "silver" {
		t.Fatalf("a year on: spend %d, tier %s (tiers go down only at the review)", v.Spend12m, v.Tier)
	}
}
