package syncclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/rules"
	"github.com/offline-loyalty/terminal/sync/syncclient"
	"github.com/offline-loyalty/terminal/sync/syncserver"
)

// TestSurpriseDrawsAudited: a joined till draws its surprises with the key
// head office gave it, from its ledger's sequence: whatever refs the cashier
// types, a checkout wins exactly when head office's draw of it does, and
// head office's audit of the day finds every surprise paid was won.
func TestSurpriseDrawsAudited(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln := listenLocal(t)
	hq := serveHQ(t, ln, syncserver.Options{Logger: quiet})
	url := "ws://" + ln.Addr().String() + "/v1/sync"
	a, dir, id := joinedTill(t, hq, url, agent.Options{Location: time.UTC})
	d := rules.Default()
	d.Version, d.Surprise.ProbabilityBP, d.Surprise.DailyBudget, d.Surprise.MinSpend = 41, 5000, 1_000_000, 0
	d.Campaigns = nil
	doc, _ := json.Marshal(d)
	if _, err := hq.SetRules(ctx, doc); err != nil {
		t.Fatal(err)
	}
	go func() { _ = syncclient.Run(ctx, a, dir, "", quiet) }()
	for deadline := time.Now().Add(10 * time.Second); a.Rules().Version != 41; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the rules never arrived")
		}
	}
	if _, err := a.Enroll(ctx, agent.EnrollRequest{Card: "4000000000000002", Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	key, epoch := hq.DrawKey(id), a.Identity().Epoch
	won := 0
	for i := range 30 {
		// The same ref shape a cashier hunting for a winner would try.
		r, err := a.Earn(ctx, agent.EarnRequest{Card: "4000000000000002", Amount: "10.00", Ref: fmt.Sprint("winner-", i)})
		if err != nil {
			t.Fatal(err)
		}
		got := false
		for _, l := range r.Lines {
			got = got || l.Label == "surprise"
		}
		if want := rules.Draw(key, epoch, r.Seq) < 5000; got != want {
			t.Fatalf("earn seq %d: surprise %v, head office's draw says %v", r.Seq, got, want)
		}
		if got {
			won++
		}
	}
	q, err := a.Quote(ctx, agent.EarnRequest{Card: "4000000000000002", Amount: "10.00"})
	if err != nil || strings.Contains(fmt.Sprint(q.Lines), "surprise") {
		t.Fatalf("a quote tells the next draw: %+v %v", q.Lines, err)
	}
	for deadline := time.Now().Add(10 * time.Second); a.Status().Queue != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the earns never reached head office")
		}
	}
	audit, err := hq.AuditSurprise(ctx, time.Now().UTC().Format(time.DateOnly))
	if err != nil || audit.Checkouts != 30 || audit.Won != won || len(audit.Mismatches) != 0 || won == 0 {
		t.Fatalf("audit %+v %v; want 30 checkouts, %d won, no mismatch", audit, err, won)
	}
}
