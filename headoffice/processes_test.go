package headoffice_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqpg"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/sync/syncproto"
)

// twoOffices are two head offices on one PostgreSQL database, as two
// processes would be (each its own pool, pump and listener).
func twoOffices(t *testing.T) (a, b *headoffice.Office) {
	t.Helper()
	dbA, url := hqtest.PostgresStore(t, hqpg.Options{Serve: true})
	dbB, err := hqpg.Open(context.Background(), url, hqpg.Options{Serve: true, Logger: hqtest.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dbB.Close() })
	return hqtest.Office(t, dbA, headoffice.Options{Now: testNow}), hqtest.Office(t, dbB, headoffice.Options{Now: testNow})
}

// TestJoinOnceAcrossProcesses: a join code works once, whichever of the
// processes the joins reach and however many arrive together.
func TestJoinOnceAcrossProcesses(t *testing.T) {
	a, b := twoOffices(t)
	ctx := context.Background()
	_, code, err := a.AddTerminal(ctx, "S1", "till")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pub, _, _ := ed25519.GenerateKey(nil)
			o := a
			if i%2 == 1 {
				o = b
			}
			_, errs[i] = o.Join(ctx, syncproto.JoinRequest{Code: code, Key: pub})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, headoffice.ErrJoinCode):
			t.Errorf("join: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d joins succeeded with one code: %v", ok, errs)
	}
}

// waitFor polls a terminal's downstream on o until want accepts a message.
func waitFor(t *testing.T, o *headoffice.Office, terminal, store string, cur *syncproto.Cursors, want func(syncproto.Message) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		all, mine, since := o.Changes(store)
		msgs, err := o.Pending(context.Background(), terminal, store, "ep", cur, since)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if want(m) {
				return
			}
		}
		select {
		case <-all:
		case <-mine:
		case <-time.After(time.Second):
		}
	}
	t.Fatal("the change never reached the other process")
}

// TestChangesReachOtherProcess: what one process changes (a member
// imported, rules published, a balance moved by a terminal's events, a card
// blocked) reaches the terminals connected to the other, woken by its
// change signals.
func TestChangesReachOtherProcess(t *testing.T) {
	a, b := twoOffices(t)
	ctx := context.Background()
	var cur syncproto.Cursors
	if _, err := a.ImportMembers(ctx, strings.NewReader("card,member,name,email,tier,balance\n4000000000000002,M1,Ada,ada@example.com,gold,150\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, "S1-t2", "S1", &cur, func(m syncproto.Message) bool {
		return m.Type == syncproto.TypeMembers && len(m.Members) == 1 && m.Members[0].Member == "M1" && m.Members[0].Balance == 150
	})
	doc := []byte(`{"version":7,"currency":"EUR","earn":{"points_per_unit":1},"tiers":[{"id":"bronze","name":"Bronze","min_spend":0,"multiplier_bp":10000}]}`)
	if _, err := a.SetRules(ctx, doc); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, "S1-t2", "S1", &cur, func(m syncproto.Message) bool { return m.Type == syncproto.TypeRules && m.RulesVersion == 7 })
	// A terminal of store S1 earns through a: the member's new balance goes
	// to the other terminal of S1, connected to b.
	e := ledger.Event{Terminal: "S1-t1", Epoch: "ep", Seq: 1, ID: "ep-1", Type: ledger.Earn, Member: "M1", Card: "4000000000000002",
		Points: 25, Amount: 2500, Ref: "r1", Time: testNow()}
	raw := e.Seal("")
	if ack, err := a.Ingest(ctx, "S1-t1", "S1", "ep", ledger.DecodeBatch([][]byte{raw})); err != nil || ack != 1 {
		t.Fatalf("ingest: %d %v", ack, err)
	}
	waitFor(t, b, "S1-t2", "S1", &cur, func(m syncproto.Message) bool {
		return m.Type == syncproto.TypeMembers && len(m.Members) == 1 && m.Members[0].Balance == 175
	})
}

// TestIngestOnceAcrossProcesses: the same terminal's batches, resent and
// overlapping, arriving at both processes at once (a terminal reconnecting
// through a load balancer while its old connection still commits) are
// applied exactly once.
func TestIngestOnceAcrossProcesses(t *testing.T) {
	a, b := twoOffices(t)
	ctx := context.Background()
	raws := chainOf(60)
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := a
			if i%2 == 1 {
				o = b
			}
			for end := 5; end <= len(raws); end += 5 {
				start := max(0, end-10-i%3)
				if _, err := o.Ingest(ctx, "T-1", "store1", "ep1", ledger.DecodeBatch(raws[start:end])); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var events int
	var balance int64
	if err := a.Store().View(ctx, func(tx headoffice.ReadTx) error {
		if err := tx.Events("T-1", func([]byte) error { events++; return nil }); err != nil {
			return err
		}
		ms, err := tx.Members([]string{"M-1"})
		balance = ms["M-1"].Balance
		return err
	}); err != nil {
		t.Fatal(err)
	}
	rep, err := b.Report(ctx, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if events != 60 || balance != 600 || len(rep.Stores) != 1 || rep.Stores[0].Checkouts != 60 || len(rep.Other) != 0 {
		t.Fatalf("%d events, balance %d, report %+v; want 60 events, balance 600, 60 checkouts, no flags", events, balance, rep)
	}
}
