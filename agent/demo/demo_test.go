package demo

import (
	"context"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/agent"
)

func TestSeed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC)
	n, err := Seed(ctx, dir, now, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("only %d events", n)
	}
	again, err := Seed(ctx, dir, now.Add(time.Hour), time.UTC)
	if err != nil || again != 0 {
		t.Fatalf("second seed wrote %d events, %v", again, err)
	}
	a, err := agent.Open(ctx, dir, agent.Options{Now: func() time.Time { return now }, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	days := 0
	for d := 0; d < Days; d++ {
		s, err := a.Stats(now.AddDate(0, 0, -d).Format(time.DateOnly))
		if err != nil {
			t.Fatal(err)
		}
		if s.Checkouts > 0 {
			days++
		}
	}
	if days < Days-1 {
		t.Fatalf("history on only %d of %d days", days, Days)
	}
	// The member panel has something to show: points about to expire and a
	// welcome back for the lapsed member, a birthday this month for Grace.
	lapsed, err := a.Member(ctx, Lapsed.Card)
	if err != nil || lapsed.Expiring <= 0 || !lapsed.WelcomeBack {
		t.Fatalf("lapsed member: expiring %d, welcome back %v, %v", lapsed.Expiring, lapsed.WelcomeBack, err)
	}
	if grace, err := a.Member(ctx, Members[1].Card); err != nil || !grace.BirthdayMonth {
		t.Fatalf("Grace's birthday month: %v %v", grace.BirthdayMonth, err)
	}
	// A real till's ledger is refused.
	if _, err := a.Enroll(ctx, agent.EnrollRequest{Card: "123456", Ref: "till-1"}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := Seed(ctx, dir, now, time.UTC); err == nil {
		t.Fatal("seeded a ledger with foreign events")
	}
}
