package agent_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/rules"
)

// TestPropertyBalances runs random sequences of operations, valid and not,
// and checks after each that every balance equals the sum of the member's
// events, that nothing failed wrote anything, and that no balance is negative
// unless the rules allow clawbacks below zero.
func TestPropertyBalances(t *testing.T) {
	seeds := 6
	steps := 250
	if testing.Short() {
		seeds, steps = 2, 100
	}
	for seed := range seeds {
		for _, allowNegative := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed%d/negative=%v", seed, allowNegative), func(t *testing.T) {
				runProperty(t, uint64(seed), steps, allowNegative)
			})
		}
	}
}

func runProperty(t *testing.T, seed uint64, steps int, allowNegative bool) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 99))
	c := newClock()
	a := open(t, t.TempDir(), c)
	doc := rules.Default()
	doc.Version = a.Rules().Version + 1
	doc.Refund.AllowNegative = allowNegative
	doc.OfflineLimit.PointsPerDay = 0 // the limit is tested on its own; here it would hide burns
	b, err := jsonOf(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ApplyRules(b); err != nil {
		t.Fatal(err)
	}
	cards := []string{"1001", "1002", "1003", "1004"}
	var refs []string
	sums := map[string]int64{}
	seen := uint64(0)
	for step := range steps {
		card := cards[rng.IntN(len(cards))]
		ref := fmt.Sprintf("r%d", rng.IntN(steps)) // reuse refs now and then
		var err error
		switch k := rng.IntN(9); k {
		case 0:
			_, err = a.Enroll(ctx, agent.EnrollRequest{Card: card})
		case 1, 2:
			amount := fmt.Sprintf("%d.%02d", rng.IntN(400), rng.IntN(100))
			_, err = a.Earn(ctx, agent.EarnRequest{Card: card, Amount: amount, Ref: ref})
			refs = append(refs, ref)
		case 3:
			rw := doc.Catalog[rng.IntN(len(doc.Catalog))]
			_, err = a.Redeem(ctx, agent.RedeemRequest{Card: card, Reward: rw.ID, Ref: ref})
		case 4:
			_, err = a.Redeem(ctx, agent.RedeemRequest{Card: card, Points: int64(rng.IntN(5)) * 100, Ref: ref})
		case 5:
			_, err = a.Donate(ctx, agent.DonateRequest{Card: card, Points: int64(rng.IntN(300)) - 10, Charity: "foodbank", Ref: ref})
		case 6:
			if len(refs) > 0 {
				_, err = a.Void(ctx, agent.VoidRequest{Ref: refs[rng.IntN(len(refs))]})
			}
		case 7:
			if len(refs) > 0 {
				_, err = a.Refund(ctx, agent.RefundRequest{Ref: refs[rng.IntN(len(refs))], Amount: fmt.Sprintf("%d", 1+rng.IntN(150))})
			}
		case 8:
			c.add(time.Duration(rng.IntN(6)) * time.Hour)
		}
		fresh, rerr := a.OutboxAfter(seen, 1<<20)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil && len(fresh) != 0 {
			t.Fatalf("step %d: failed operation (%v) wrote %d events", step, err, len(fresh))
		}
		for _, b := range fresh {
			e, derr := ledger.Decode(b)
			if derr != nil {
				t.Fatal(derr)
			}
			sums[e.Member] += e.Points
			seen = e.Seq
		}
		if err != nil && !errors.Is(err, agent.ErrInvalid) && !errors.Is(err, agent.ErrUnknownCard) &&
			!errors.Is(err, agent.ErrInsufficientPoints) && !errors.Is(err, agent.ErrCardExists) &&
			!errors.Is(err, agent.ErrVoid) && !errors.Is(err, agent.ErrRefund) && !errors.Is(err, agent.ErrUnknownCheckout) && !errors.Is(err, agent.ErrTierRequired) {
			t.Fatalf("step %d: unexpected error %v", step, err)
		}
		for _, card := range cards {
			m, err := a.Member(ctx, card)
			if errors.Is(err, agent.ErrUnknownCard) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Balance != sums[m.Member] {
				t.Fatalf("step %d: %s balance %d, sum of events %d", step, card, m.Balance, sums[m.Member])
			}
			if m.Balance < 0 && !allowNegative {
				t.Fatalf("step %d: %s balance %d below zero", step, card, m.Balance)
			}
		}
	}
	events(t, a) // the whole chain verifies
}
