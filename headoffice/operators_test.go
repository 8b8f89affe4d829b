package headoffice_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqpg"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/internal/testclock"
)

// TestOperators: accounts are checked when added, listed without their
// hashes, and every change is in the audit log with who made it, newest
// first; on both stores.
func TestOperators(t *testing.T) { eachStore(t, operators) }

func operators(t *testing.T, s headoffice.Store) {
	ctx := context.Background()
	o := hqtest.Office(t, s, headoffice.Options{SignInDelay: time.Millisecond})
	for _, c := range []struct{ name, role, password, want string }{
		{"A", "admin", "long enough pw", "lower-case"},
		{"bob", "root", "long enough pw", `role "root"`},
		{"bob", "admin", "short", "10 to 128"},
		{"bob", "admin", strings.Repeat("x", 129), "10 to 128"},
	} {
		err := o.AddOperator(ctx, c.name, c.role, c.password, "test")
		if !errors.Is(err, headoffice.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("AddOperator(%q, %q): %v, want %q", c.name, c.role, err, c.want)
		}
	}
	if err := o.AddOperator(ctx, "bob", "support", "long enough pw", "cli"); err != nil {
		t.Fatal(err)
	}
	if err := o.AddOperator(ctx, "bob", "admin", "long enough pw", "cli"); err == nil {
		t.Error("the same name added twice")
	}
	ops, err := o.Operators(ctx)
	if err != nil || len(ops) != 1 || ops[0].Name != "bob" || ops[0].Role != "support" || ops[0].Hash != "" {
		t.Fatalf("operators %+v %v", ops, err)
	}
	if _, _, err := o.SignIn(ctx, "bob", "long enough pw", "10.0.0.1"); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if _, _, err := o.SignIn(ctx, "bob", "long enough pW", "10.0.0.1"); !errors.Is(err, headoffice.ErrSignIn) {
		t.Fatalf("a wrong password: %v", err)
	}
	if err := o.DisableOperator(ctx, "bob", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.SignIn(ctx, "bob", "long enough pw", "10.0.0.2"); !errors.Is(err, headoffice.ErrSignIn) {
		t.Fatalf("a disabled operator signs in: %v", err)
	}
	log, err := o.AuditLog(ctx, "", 10)
	if err != nil || len(log) != 2 {
		t.Fatalf("audit log %+v %v", log, err)
	}
	if log[0].Action != "operator.disable" || log[0].Operator != "alice" || !strings.Contains(log[0].After, "1 sessions ended") ||
		log[1].Action != "operator.add" || log[1].Operator != "cli" {
		t.Errorf("audit log %+v", log)
	}
}

// TestAddressLockout: wrong passwords from one address lock it for every
// name, and a right password from it does not unlock it.
func TestAddressLockout(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	o := hqtest.Office(t, hqtest.Bolt(t), headoffice.Options{SignInDelay: time.Millisecond, Metrics: reg})
	for _, n := range []string{"ann", "bea"} {
		if err := o.AddOperator(ctx, n, "analyst", "long enough pw", "test"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		name := []string{"ann", "bea", "cid", "dan", "eve"}[i]
		_, _, err := o.SignIn(ctx, name, "guess", "10.0.0.9")
		if want := map[bool]error{true: headoffice.ErrLocked, false: headoffice.ErrSignIn}[i == 4]; !errors.Is(err, want) {
			t.Fatalf("guess %d: %v, want %v", i+1, err, want)
		}
	}
	if _, _, err := o.SignIn(ctx, "ann", "long enough pw", "10.0.0.9"); !errors.Is(err, headoffice.ErrLocked) {
		t.Fatalf("the right password from a locked address: %v", err)
	}
	if _, _, err := o.SignIn(ctx, "ann", "long enough pw", "10.0.0.10"); err != nil {
		t.Fatalf("from another address: %v", err)
	}
	// Four wrong passwords, the fifth that locked, and the right one while
	// locked.
	const want = `
# HELP headoffice_console_signins_failed_total Console sign-ins refused, by reason: password (a wrong name or password) or locked (too many of them).
# TYPE headoffice_console_signins_failed_total counter
headoffice_console_signins_failed_total{reason="locked"} 2
headoffice_console_signins_failed_total{reason="password"} 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "headoffice_console_signins_failed_total"); err != nil {
		t.Error(err)
	}
}

// TestAdjustMember: a correction needs a reason, stays in bounds, never
// takes a balance below zero, moves the lots and the figures, and is in
// the audit log.
func TestAdjustMember(t *testing.T) { eachStore(t, adjustMember) }

func adjustMember(t *testing.T, s headoffice.Store) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	o := hqtest.Office(t, s, headoffice.Options{Now: func() time.Time { return now }})
	if _, err := o.ImportMembers(ctx, strings.NewReader("card,member,name,email,tier,balance\nC1,M1,A,a@x,bronze,100\n")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		points int64
		reason string
		want   string
	}{
		{0, "x", "1 to 1000000"}, {1_000_001, "x", "1 to 1000000"}, {5, " ", "needs a reason"}, {-101, "typo", "would make it negative"},
	} {
		if _, err := o.AdjustMember(ctx, "M1", c.points, c.reason, "sam"); !errors.Is(err, headoffice.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("adjust %d %q: %v, want %q", c.points, c.reason, err, c.want)
		}
	}
	if _, err := o.AdjustMember(ctx, "M9", 5, "x", "sam"); !errors.Is(err, headoffice.ErrNotFound) {
		t.Errorf("adjust of nobody: %v", err)
	}
	m, err := o.AdjustMember(ctx, "M1", 50, "missed earn", "sam")
	if err != nil || m.Balance != 150 || m.Lots["2026-12"] != 50 {
		t.Fatalf("adjust +50: %+v %v", m, err)
	}
	if m, err = o.AdjustMember(ctx, "M1", -30, "double earn", "sam"); err != nil || m.Balance != 120 || m.Lots["2026-12"] != 20 {
		t.Fatalf("adjust -30: %+v %v", m, err)
	}
	rep, err := o.Report(ctx, "2026-12-04", "2026-12-04", "")
	if err != nil || len(rep.Stores) != 1 || rep.Stores[0].Store != headoffice.ConsoleTerminal || rep.Stores[0].PointsAdjusted != 20 {
		t.Errorf("report %+v %v, want head office's +20", rep.Stores, err)
	}
	d, err := o.Member(ctx, "M1")
	if err != nil || len(d.Changes) != 2 || d.Changes[0].Reason != "double earn" || d.Changes[0].Before != "balance 150" || d.Changes[1].Operator != "sam" {
		t.Errorf("member's changes %+v %v", d.Changes, err)
	}
}

// TestReplaceCard: the new card is the member's, the old one blocked on
// every terminal's blocklist; a card in use or not the member's is
// refused; on both stores.
func TestReplaceCard(t *testing.T) { eachStore(t, replaceCard) }

func replaceCard(t *testing.T, s headoffice.Store) {
	ctx := context.Background()
	o := hqtest.Office(t, s, headoffice.Options{})
	if _, err := o.ImportMembers(ctx, strings.NewReader("card,member,name,email,tier,balance\nC1,M1,A,a@x,bronze,100\nC2,M2,B,b@x,bronze,5\n")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ old, card, reason, want string }{
		{"C1", "C2", "lost", "in use already"}, {"C2", "C9", "lost", "not member M1's"}, {"C1", "C1", "lost", "the old one"},
		{"C1", "C 9", "lost", "no space"}, {"C1", "C9", "", "needs a reason"},
	} {
		if err := o.ReplaceCard(ctx, "M1", c.old, c.card, c.reason, "sam"); !errors.Is(err, headoffice.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("replace %s by %s: %v, want %q", c.old, c.card, err, c.want)
		}
	}
	if err := o.ReplaceCard(ctx, "M1", "C1", "C9", "lost", "sam"); err != nil {
		t.Fatal(err)
	}
	d, err := o.Member(ctx, "M1")
	if err != nil || len(d.CardStates) != 2 || !d.CardStates[0].Blocked || d.CardStates[1].Number != "C9" || d.CardStates[1].Blocked || d.Balance != 100 {
		t.Fatalf("after the replacement: %+v %v", d, err)
	}
	if m, err := o.MemberByCard(ctx, "C9"); err != nil || m.Member.Member != "M1" {
		t.Errorf("the new card: %+v %v", m, err)
	}
	if err := o.SetCardBlocked(ctx, "M2", "C9", true, "lost", "sam"); !errors.Is(err, headoffice.ErrInvalid) {
		t.Errorf("blocking another member's card: %v", err)
	}
}

// TestPresence: a terminal's link as every process of a database sees it:
// online while one holds it; a reconnection to another process is not
// undone by the old connection's end; offline once none holds it.
func TestPresence(t *testing.T) {
	ctx := context.Background()
	db1, url := hqtest.PostgresStore(t, hqpg.Options{Serve: true})
	db2, err := hqpg.Open(ctx, url, hqpg.Options{Logger: hqtest.Quiet(), Serve: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db2.Close() })
	o1 := hqtest.Office(t, db1, headoffice.Options{})
	o2 := hqtest.Office(t, db2, headoffice.Options{})
	id, _, err := o1.AddTerminal(ctx, "S1", "t1")
	if err != nil {
		t.Fatal(err)
	}
	eventually := func(what string, ok func(headoffice.TerminalState) bool) {
		t.Helper()
		var st headoffice.TerminalState
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			list, err := o2.TerminalList(ctx)
			if err != nil || len(list) != 1 {
				t.Fatalf("terminals %+v %v", list, err)
			}
			if st = list[0]; ok(st) {
				return
			}
		}
		t.Fatalf("the terminal is not %s: %+v", what, st)
	}
	done1 := o1.Connected(id, "e1", func() {})
	eventually("online at process 1", func(s headoffice.TerminalState) bool { return s.Online && s.Presence.Epoch == "e1" })
	done2 := o2.Connected(id, "e2", func() {})
	eventually("online at process 2", func(s headoffice.TerminalState) bool { return s.Online && s.Presence.Epoch == "e2" })
	done1()
	time.Sleep(5 * time.Second) // two flushes of process 1
	eventually("still online at process 2", func(s headoffice.TerminalState) bool { return s.Online && s.Presence.Epoch == "e2" })
	done2()
	eventually("offline", func(s headoffice.TerminalState) bool { return !s.Online })
}

// TestRevokeTerminal: a revoked terminal is not trusted, its connection
// here is dropped, its unused code retired, its name not registered again;
// on both stores.
func TestRevokeTerminal(t *testing.T) { eachStore(t, revokeTerminal) }

func revokeTerminal(t *testing.T, s headoffice.Store) {
	ctx := context.Background()
	o := hqtest.Office(t, s, headoffice.Options{})
	id, _, err := o.AddTerminal(ctx, "S1", "t1")
	if err != nil {
		t.Fatal(err)
	}
	dropped := make(chan struct{})
	done := o.Connected(id, "e", func() { close(dropped) })
	defer done()
	if err := o.RevokeTerminal(ctx, id, " ", "ana"); !errors.Is(err, headoffice.ErrInvalid) {
		t.Errorf("revoke without a reason: %v", err)
	}
	if err := o.RevokeTerminal(ctx, id, "stolen", "ana"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-dropped:
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked terminal's connection was not dropped")
	}
	if _, _, ok, err := o.Terminal(ctx, id); ok || err != nil {
		t.Errorf("a revoked terminal is trusted: %v %v", ok, err)
	}
	if _, _, err := o.AddTerminal(ctx, "S1", "t1"); !errors.Is(err, headoffice.ErrInvalid) {
		t.Errorf("a revoked terminal registered again: %v", err)
	}
	if err := o.RevokeTerminal(ctx, "S1-nope", "x", "ana"); !errors.Is(err, headoffice.ErrNotFound) {
		t.Errorf("revoke of nothing: %v", err)
	}
	if log, _ := o.AuditLog(ctx, "terminal "+id, 1); len(log) != 1 || log[0].Action != "terminal.revoke" || log[0].Reason != "stolen" {
		t.Errorf("audit %+v", log)
	}
}

// TestSweep: ended sessions and passed sign-in failures are deleted by the
// sweep; a live session and a running lock stay.
func TestSweep(t *testing.T) { eachStore(t, sweep) }

func sweep(t *testing.T, s headoffice.Store) {
	ctx := context.Background()
	clk := testclock.New(time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC))
	o := hqtest.Office(t, s, headoffice.Options{Now: clk.Now, SignInDelay: time.Millisecond})
	if err := o.AddOperator(ctx, "ann", "analyst", "long enough pw", "test"); err != nil {
		t.Fatal(err)
	}
	old, _, err := o.SignIn(ctx, "ann", "long enough pw", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, _, _ = o.SignIn(ctx, "ann", "wrong", "10.0.0.2") // a failure of 10.0.0.2 and of ann
	clk.Add(31 * time.Minute)
	live, _, err := o.SignIn(ctx, "ann", "long enough pw", "10.0.0.3")
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		_, _, _ = o.SignIn(ctx, "bob", "guess", "10.0.0.4") // locks bob and 10.0.0.4
	}
	if err := headoffice.SweepConsole(o, ctx); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	if err := s.View(ctx, func(tx headoffice.ReadTx) error {
		return tx.EachMeta(func(k string, _ []byte) error {
			if strings.HasPrefix(k, "session/") || strings.HasPrefix(k, "signin/") {
				keys[k] = true
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"signin/addr/10.0.0.4", "signin/name/bob"}
	for _, k := range want {
		if !keys[k] {
			t.Errorf("the sweep deleted %s (a running lock)", k)
		}
	}
	if keys["signin/addr/10.0.0.2"] {
		t.Error("a failure past its window survived the sweep")
	}
	sessions := 0
	for k := range keys {
		if strings.HasPrefix(k, "session/") {
			sessions++
		}
	}
	if sessions != 1 {
		t.Errorf("%d sessions after the sweep, want the live one only (%v)", sessions, keys)
	}
	if _, err := o.Session(ctx, live); err != nil {
		t.Errorf("the live session: %v", err)
	}
	if _, err := o.Session(ctx, old); !errors.Is(err, headoffice.ErrSession) {
		t.Errorf("the ended session: %v", err)
	}
}
