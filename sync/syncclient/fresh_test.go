package syncclient_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/sync/syncclient"
	"github.com/offline-loyalty/terminal/sync/syncserver"
)

// TestFreshWhileConnected: a member whose last change is days old is still
// current at a till whose link is up and caught up: no offline limit holds
// back a reward. With the link down, the same till applies the limit.
func TestFreshWhileConnected(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := &testClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	ln := listenLocal(t)
	hq := serveHQ(t, ln, syncserver.Options{Logger: quiet, Now: clk.now})
	url := "ws://" + ln.Addr().String() + "/v1/sync"
	a, dir, _ := joinedTill(t, hq, url, agent.Options{Now: clk.now, Location: time.UTC})
	const card = "4000000000000002"
	if _, err := a.Enroll(ctx, agent.EnrollRequest{Card: card, Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "9000.00", Ref: "big"}); err != nil {
		t.Fatal(err)
	}
	linkCtx, stopLink := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = syncclient.Run(linkCtx, a, dir, "", quiet) }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: never", what)
			}
		}
	}
	waitFor("the snapshot of the member", func() bool {
		m, err := a.Member(ctx, card)
		return err == nil && m.BalanceAsOf != nil && a.Status().Queue == 0
	})
	// Two days on, the member has not changed: its snapshot is two days old.
	clk.set(clk.now().Add(48 * time.Hour))
	waitFor("caught up", func() bool { return a.Status().Current })
	for _, reward := range []string{"voucher20", "tote"} {
		if _, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Reward: reward}); err != nil {
			t.Fatalf("%s at a till caught up with head office: %v", reward, err)
		}
	}
	stopLink()
	<-done
	if a.Status().Current {
		t.Fatal("still current with the link down")
	}
	clk.set(clk.now().Add(24 * time.Hour))
	if _, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Reward: "voucher20"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Reward: "tote"}); !errors.Is(err, agent.ErrOfflineLimit) {
		t.Fatalf("offline, past the limit: %v", err)
	}
}
