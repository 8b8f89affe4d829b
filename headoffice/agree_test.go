package headoffice_test

import (
	"context"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/ledger"
)

// TestTillAndReportAgree: a till's day — sales, a redemption, a donation, a
// voided sale, a partial refund, a manager's adjustment — gives the same
// figures on the till's manager screen (agent.Stats) as in head office's
// report of the same events, on both stores: checkouts, members' spend,
// points issued net of what voids and refunds took back, redeemed,
// donated, enrollments, unique members.
func TestTillAndReportAgree(t *testing.T) { eachStore(t, tillAndReportAgree) }

func tillAndReportAgree(t *testing.T, s headoffice.Store) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a, err := agent.Open(ctx, t.TempDir(), agent.Options{Now: clock, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	step := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(7 * time.Minute)
	}
	for _, card := range []string{"2000000000015", "2000000000022"} {
		_, err := a.Enroll(ctx, agent.EnrollRequest{Card: card})
		step(err)
	}
	for i, amount := range []string{"120.00", "35.50", "80.00", "999.99"} {
		_, err := a.Earn(ctx, agent.EarnRequest{Card: []string{"2000000000015", "2000000000022"}[i%2], Amount: amount, Ref: "sale-" + amount})
		step(err)
	}
	_, err = a.Redeem(ctx, agent.RedeemRequest{Card: "2000000000015", Reward: "coffee"})
	step(err)
	_, err = a.Donate(ctx, agent.DonateRequest{Card: "2000000000022", Points: 40, Charity: "foodbank"})
	step(err)
	_, err = a.Void(ctx, agent.VoidRequest{Ref: "sale-80.00"})
	step(err)
	_, err = a.Refund(ctx, agent.RefundRequest{Ref: "sale-999.99", Amount: "300.00"})
	step(err)
	_, err = a.Adjust(agent.WithManager(ctx, "test"), agent.AdjustRequest{Card: "2000000000022", Points: 25, Reason: "goodwill"})
	step(err)

	var raws [][]byte
	if err := a.Export(func(b []byte) error { raws = append(raws, append([]byte(nil), b...)); return nil }); err != nil {
		t.Fatal(err)
	}
	o := hqtest.Office(t, s, headoffice.Options{Now: clock})
	id := a.Identity()
	if ack, err := o.Ingest(ctx, id.Terminal, "S1", id.Epoch, ledger.DecodeBatch(raws)); err != nil || ack != uint64(len(raws)) {
		t.Fatalf("ingest: %d of %d, %v", ack, len(raws), err)
	}
	day := now.Format(time.DateOnly)
	till, err := a.Stats(day)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := o.Report(ctx, day, day, "S1")
	if err != nil || len(rep.Stores) != 1 {
		t.Fatalf("report %+v %v", rep, err)
	}
	hq := rep.Stores[0]
	for _, f := range []struct {
		name     string
		till, hq int64
	}{
		{"checkouts", till.Checkouts, hq.Checkouts},
		{"members' spend / sales", till.MemberSpend, hq.Sales},
		{"points issued, net", till.PointsIssued - till.PointsReversed, hq.PointsIssued},
		{"points redeemed", till.PointsRedeemed, hq.PointsRedeemed},
		{"points donated", till.PointsDonated, hq.PointsDonated},
		{"enrollments", till.Enrollments, hq.Enrollments},
		{"unique members", till.UniqueMembers, hq.Members},
	} {
		if f.till != f.hq {
			t.Errorf("%s: till %d, head office %d", f.name, f.till, f.hq)
		}
	}
	if till.Checkouts != 3 || hq.Checkouts != 3 {
		t.Errorf("checkouts: till %d, head office %d; want 3 (four sales, one voided)", till.Checkouts, hq.Checkouts)
	}
}
