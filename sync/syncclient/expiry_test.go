package syncclient_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/sync/syncclient"
	"github.com/offline-loyalty/terminal/sync/syncserver"
)

// testClock is one settable clock for head office and its terminals.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// TestExpiryOnceAcrossTerminals: two terminals of a store know the same
// member and the same lots (head office's), both expire them, and head
// office applies the expiry once.
func TestExpiryOnceAcrossTerminals(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := &testClock{t: time.Date(2025, 9, 10, 12, 0, 0, 0, time.UTC)}
	ln := listenLocal(t)
	srv := serveHQ(t, ln, syncserver.Options{Logger: quiet, Now: clk.now})
	url := "ws://" + ln.Addr().String() + "/v1/sync"

	const card = "4000000000000002"
	var tills [2]*agent.Agent
	for i := range tills {
		dir := t.TempDir()
		a, err := agent.Open(ctx, dir, agent.Options{Logger: quiet, Now: clk.now, Location: time.UTC})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		_, code, err := srv.AddTerminal(ctx, "store-1", "till-"+string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := syncclient.Join(ctx, a, dir, url, code, false); err != nil {
			t.Fatal(err)
		}
		go func() { _ = syncclient.Run(ctx, a, dir, "", quiet) }()
		tills[i] = a
	}
	a, b := tills[0], tills[1]
	enr, err := a.Enroll(ctx, agent.EnrollRequest{Card: card, Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "300.00", Ref: "september"}); err != nil {
		t.Fatal(err)
	}
	synced := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not synced", what)
			}
		}
	}
	synced("September earn", func() bool { return a.Status().Queue == 0 })

	// Fourteen months on, a purchase at till b gives both tills a fresh
	// snapshot of the member, with head office's lots.
	clk.set(time.Date(2026, 11, 5, 9, 0, 0, 0, time.UTC))
	nov, err := b.Earn(ctx, agent.EarnRequest{Card: card, Amount: "5.00", Ref: "november"}) // 5 base + 25 welcome back
	if err != nil {
		t.Fatal(err)
	}
	fresh := func(x *agent.Agent) func() bool {
		return func() bool {
			v, err := x.Member(ctx, card)
			return err == nil && v.BalanceAsOf != nil && v.BalanceAsOf.Equal(clk.now()) && v.Pending == 0 && v.Expiring == 300
		}
	}
	synced("snapshot at till a", fresh(a))
	synced("snapshot at till b", fresh(b))

	var wg sync.WaitGroup
	var runs [2]agent.Housekeeping
	var errs [2]error
	for i, x := range tills {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i], errs[i] = x.Expire(ctx)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || runs[0].Points != 300 || runs[1].Points != 300 {
		t.Fatalf("each till expires September's lot: %+v %v", runs, errs)
	}
	synced("expiries", func() bool { return a.Status().Queue == 0 && b.Status().Queue == 0 })
	var m headoffice.Member
	var dup int
	if err := srv.Store().View(ctx, func(tx headoffice.ReadTx) error {
		ms, err := tx.Members([]string{enr.Member})
		if err != nil {
			return err
		}
		m = ms[enr.Member]
		return tx.Flags(func(f headoffice.Flag) error {
			if f.Kind == "duplicate_decision" && f.Member == enr.Member {
				dup++
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if want := 300 + nov.Points - 300; m.Balance != want || dup != 1 {
		t.Fatalf("head office balance %d (want %d), %d duplicate flags (want 1)", m.Balance, want, dup)
	}
	// Both tills come back to head office's balance.
	synced("balances", func() bool {
		va, _ := a.Member(ctx, card)
		vb, _ := b.Member(ctx, card)
		return va.Balance == m.Balance && vb.Balance == m.Balance
	})
}
