package localapi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/agent/localapi"
)

// next waits for the first notice of kind on ch, skipping others.
func next(t *testing.T, ch <-chan agent.Notice, kind agent.NoticeKind) agent.Notice {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case n := <-ch:
			if n.Kind == kind {
				return n
			}
		case <-deadline:
			t.Fatalf("no notice of kind %d", kind)
		}
	}
}

// TestRemote: the app's view of an agent another process serves, over a
// real unix socket: rules, scans and events as notices, calls, the manager
// PIN, and a watch stream that survives the agent's restart.
func TestRemote(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	a, err := agent.Open(ctx, dir, agent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	sock := agent.SocketPath(dir)
	start := func() (stop func() error) {
		srv, err := localapi.Listen(sock, "", localapi.Handler(a, nil))
		if err != nil {
			t.Fatal(err)
		}
		sctx, scancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- srv.Serve(sctx) }()
		return func() error { scancel(); return <-done }
	}
	stop := start()

	if _, err := localapi.Attach(ctx, dir+"/nothing.sock"); err == nil {
		t.Fatal("attached to a socket no agent serves")
	}
	r, err := localapi.Attach(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rules().Version != a.Rules().Version || len(r.Rules().Tiers) == 0 {
		t.Fatalf("rules %d, the agent's %d", r.Rules().Version, a.Rules().Version)
	}
	notices, unwatch := r.Watch()
	defer unwatch()

	const card = "4000000000000002"
	if _, err := r.Enroll(ctx, agent.EnrollRequest{Card: card, Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	a.Scanned(agent.Scan{Kind: "card", Symbology: "EAN-13", Card: card})
	if n := next(t, notices, agent.NoticeScan); n.Scan == nil || n.Scan.Card != card || n.Scan.Kind != "card" {
		t.Fatalf("scan notice %+v", n)
	}
	if b := r.Basket(); b.Card != card {
		t.Fatalf("the scan is not the basket's member: %+v", b)
	}
	a.Scanned(agent.Scan{Kind: "qr", Error: "the token's signature does not verify"})
	if n := next(t, notices, agent.NoticeScan); n.Scan == nil || n.Scan.Card != "" || n.Scan.Error == "" {
		t.Fatalf("failed scan notice %+v", n)
	}
	res, err := r.Earn(ctx, agent.EarnRequest{Card: card, Amount: "12.50", Ref: "R-1"})
	if err != nil {
		t.Fatal(err)
	}
	next(t, notices, agent.NoticeEvent)
	if m, err := a.Member(ctx, card); err != nil || m.Balance != res.Balance || res.Balance == 0 {
		t.Fatalf("the serving agent's member %+v %v, the earn's balance %d", m, err, res.Balance)
	}
	if s := r.Status(); s.Seq != a.Status().Seq || len(s.Problems) != len(a.Status().Problems) {
		t.Fatalf("status %+v", s)
	}

	if r.HasManagerPIN() {
		t.Fatal("a PIN on a new terminal")
	}
	cl := localapi.Dial(sock)
	if err := cl.SetManagerPIN(ctx, "2468", false); err != nil { // pos-agent manager add
		t.Fatal(err)
	}
	if !r.HasManagerPIN() || cl.SetManagerPIN(ctx, "1111", false) == nil {
		t.Fatal("a PIN set is set again without --replace")
	}
	if err := r.CheckManagerPIN("2468"); err != nil {
		t.Fatal(err)
	}
	if err := r.CheckManagerPIN("1111"); !errors.Is(err, agent.ErrBadPIN) {
		t.Fatalf("wrong PIN: %v", err)
	}

	// The agent stops (its streams end at once: shutdown is graceful, not
	// cut at its deadline) and comes back.
	if err := stop(); err != nil {
		t.Fatalf("shutdown with a watch stream open: %v", err)
	}
	next(t, notices, agent.NoticeStatus)
	if s := r.Status(); len(s.Problems) == 0 {
		t.Fatalf("status while the agent is down: %+v", s)
	}
	stop = start()
	defer func() { _ = stop() }()
	next(t, notices, agent.NoticeBasket) // the refresh after the stream reopened
	a.Scanned(agent.Scan{Kind: "card", Card: card})
	if n := next(t, notices, agent.NoticeScan); n.Scan == nil || n.Scan.Card != card {
		t.Fatalf("scan after the restart %+v", n)
	}
	if s := r.Status(); s.Seq != a.Status().Seq {
		t.Fatalf("status after the restart %+v", s)
	}
}
