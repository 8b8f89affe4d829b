// Package demo fills a terminal's ledger with a plausible fortnight of store
// activity — enrollments, checkouts through the day, rewards, donations, a
// void and a return — so that `make run` shows a working store with history
// for its charts. Everything goes through the agent's own operations with a
// clock set in the past; nothing is written around them.
//
// It is for demonstrations only and must never run against a real till's
// data: it refuses a ledger that has events it did not write.
package demo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/agent"
)

// Days of history written before today.
const Days = 14

// refPrefix marks every ref the demo writes, so a second run recognises its
// own ledger and writes nothing new (every operation is idempotent by ref).
const refPrefix = "demo-"

// Member is one demo member with a card.
type Member struct {
	Card  string
	Name  string
	Email string
	// Big is the size of the member's usual basket in whole currency units:
	// a few spend enough in a fortnight to reach the higher tiers.
	Big int
	// Birthday is MM-DD; "now" is the month the demo is seeded in, so that
	// a birthday-month member is always there.
	Birthday string
}

// Lapsed is a member who last shopped a year ago: their points from then
// are about to expire and their next purchase earns the welcome-back bonus.
var Lapsed = Member{Card: "2000000000138", Name: "Claude Shannon", Email: "claude@example.com", Big: 80}

// Members are the demo's members. Their cards are EAN-13 numbers with valid
// check digits, like printed loyalty cards.
var Members = []Member{
	{"2000000000015", "Ada Lovelace", "ada@example.com", 900, "12-10"},
	{"2000000000022", "Grace Hopper", "grace@example.com", 300, "now"},
	{"2000000000039", "Alan Turing", "", 90, "06-23"},
	{"2000000000046", "Katherine Johnson", "kj@example.com", 60, ""},
	{"2000000000053", "Edsger Dijkstra", "", 35, ""},
	{"2000000000060", "Barbara Liskov", "barbara@example.com", 48, ""},
	{"2000000000077", "Dennis Ritchie", "", 22, ""},
	{"2000000000084", "Frances Allen", "fran@example.com", 75, ""},
	{"2000000000091", "John Backus", "", 18, ""},
	{"2000000000107", "Margaret Hamilton", "mh@example.com", 120, ""},
	{"2000000000114", "Ken Thompson", "", 27, ""},
	{"2000000000121", "Radia Perlman", "radia@example.com", 55, ""},
}

// Seed writes the demo history into the agent in dir, ending at now, and
// returns how many events it wrote. A ledger seeded before is left as it is
// (0 events); a ledger with events that are not the demo's is refused.
func Seed(ctx context.Context, dir string, now time.Time, loc *time.Location) (int, error) {
	clock := now.Add(-Days * 24 * time.Hour)
	a, err := agent.Open(ctx, dir, agent.Options{Now: func() time.Time { return clock }, Location: loc})
	if err != nil {
		return 0, err
	}
	defer a.Close()
	if a.Status().Seq > 0 {
		foreign := false
		if err := a.Export(func(b []byte) error {
			if !strings.Contains(string(b), `"ref":"`+refPrefix) {
				foreign = true
				return errStop
			}
			return nil
		}); err != nil && !errors.Is(err, errStop) {
			return 0, err
		}
		if foreign {
			return 0, fmt.Errorf("%s has events the demo did not write: the demo only seeds its own ledger", dir)
		}
		return 0, nil // seeded before
	}
	rng := rand.New(rand.NewPCG(2026, 11))
	n := 0
	ref := func() string { n++; return fmt.Sprintf("%s%d", refPrefix, n) }
	// A year ago, the lapsed member's only visit.
	clock = now.AddDate(-1, 0, 0)
	if _, err := a.Enroll(ctx, agent.EnrollRequest{Card: Lapsed.Card, Name: Lapsed.Name, Email: Lapsed.Email, Consent: true, Ref: ref()}); err != nil {
		return 0, fmt.Errorf("demo enroll: %w", err)
	}
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: Lapsed.Card, Amount: fmt.Sprintf("%d.00", Lapsed.Big), Ref: ref()}); err != nil {
		return 0, fmt.Errorf("demo earn: %w", err)
	}
	clock = now.Add(-Days * 24 * time.Hour)
	start := time.Date(clock.Year(), clock.Month(), clock.Day(), 0, 0, 0, 0, loc)
	for d := 0; d <= Days; d++ {
		day := start.AddDate(0, 0, d)
		// Enroll members over the first days.
		for i, m := range Members {
			if i%3 == d {
				clock = day.Add(9 * time.Hour)
				birthday := m.Birthday
				if birthday == "now" {
					birthday = now.In(loc).Format("01") + "-01"
				}
				if _, err := a.Enroll(ctx, agent.EnrollRequest{Card: m.Card, Name: m.Name, Email: m.Email, Consent: m.Email != "",
					Birthday: birthday, Ref: ref()}); err != nil &&
					!errors.Is(err, agent.ErrCardExists) {
					return 0, fmt.Errorf("demo enroll: %w", err)
				}
			}
		}
		checkouts := 8 + rng.IntN(10)
		if day.Weekday() == time.Saturday {
			checkouts += 8
		}
		for c := 0; c < checkouts; c++ {
			// Mornings and late afternoons are busy.
			hour := []int{9, 10, 10, 11, 12, 12, 13, 15, 16, 17, 17, 18, 18, 19}[rng.IntN(14)]
			clock = day.Add(time.Duration(hour)*time.Hour + time.Duration(rng.IntN(3600))*time.Second)
			if d == Days && clock.After(now) {
				continue
			}
			m := Members[rng.IntN(len(Members))]
			whole := 5 + rng.IntN(m.Big)
			r := ref()
			if _, err := a.Earn(ctx, agent.EarnRequest{Card: m.Card, Amount: fmt.Sprintf("%d.%02d", whole, rng.IntN(100)), Ref: r}); err != nil {
				if errors.Is(err, agent.ErrUnknownCard) {
					continue // not enrolled yet
				}
				return 0, fmt.Errorf("demo earn: %w", err)
			}
			switch rng.IntN(12) {
			case 0, 1:
				rw := a.Rules().Catalog[rng.IntN(3)] // the everyday rewards
				_, err = a.Redeem(ctx, agent.RedeemRequest{Card: m.Card, Reward: rw.ID, Ref: r})
			case 2:
				_, err = a.Donate(ctx, agent.DonateRequest{Card: m.Card, Points: 10 * int64(1+rng.IntN(5)), Charity: a.Rules().Charities[rng.IntN(len(a.Rules().Charities))].ID, Ref: r})
			case 3:
				if rng.IntN(4) == 0 {
					_, err = a.Refund(ctx, agent.RefundRequest{Ref: r, Amount: "3.00"})
				}
			case 4:
				if rng.IntN(6) == 0 {
					_, err = a.Void(ctx, agent.VoidRequest{Ref: r})
				}
			}
			if err != nil && !errors.Is(err, agent.ErrInsufficientPoints) && !errors.Is(err, agent.ErrOfflineLimit) &&
				!errors.Is(err, agent.ErrTierRequired) && !errors.Is(err, agent.ErrRefund) {
				return 0, fmt.Errorf("demo: %w", err)
			}
		}
	}
	return int(a.Status().Seq), nil
}

var errStop = errors.New("stop")
