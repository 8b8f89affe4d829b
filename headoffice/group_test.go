package headoffice_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/sync/syncproto"
)

// terminalChain seals n earns of terminal id (epoch e), for member m.
func terminalChain(id, m string, n int) [][]byte {
	raws := make([][]byte, n)
	prev := ""
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	for i := range raws {
		e := ledger.Event{Terminal: id, Epoch: "e", Seq: uint64(i + 1), ID: fmt.Sprint("e-", i+1), Type: ledger.Earn,
			Member: m, Points: 1, Amount: 100, Ref: fmt.Sprint(id, i), Time: at.Add(time.Duration(i) * time.Second)}
		raws[i] = e.Seal(prev)
		prev = e.Hash
	}
	return raws
}

// TestGroupCommit: many terminals ingesting at once, some sharing members,
// share transactions and every event is applied once; a batch the store
// refuses (its chain damaged) fails alone, the others of its group are
// stored.
func TestGroupCommit(t *testing.T) { eachStore(t, groupCommit) }

func groupCommit(t *testing.T, s headoffice.Store) {
	o := hqtest.Office(t, s, headoffice.Options{Now: testNow})
	ctx := context.Background()
	const terminals, events = 24, 20
	// The damaged terminal's event 3 is in the store already, beyond what
	// its chain head says.
	bad := terminalChain("bad", "M-bad", 5)
	if err := s.Update(ctx, func(tx headoffice.Tx) error {
		_, err := tx.PutEvents("bad", "e", []headoffice.StoredEvent{{Seq: 3, Raw: bad[2]}}, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, terminals)
	for i := range terminals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("T", i)
			raws := terminalChain(id, fmt.Sprint("M", i%4), events)
			for j := 0; j < events; j += 2 {
				ack, err := o.Ingest(ctx, id, "S", "e", ledger.DecodeBatch(raws[j:j+2]))
				if err != nil || ack != uint64(j+2) {
					errs[i] = fmt.Errorf("%s at %d: ack %d, %v", id, j, ack, err)
					return
				}
			}
		}()
	}
	var badErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, badErr = o.Ingest(ctx, "bad", "S", "e", ledger.DecodeBatch(bad))
	}()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !errors.Is(badErr, headoffice.ErrCorrupt) {
		t.Fatalf("the damaged chain's batch: %v, want ErrCorrupt", badErr)
	}
	if err := s.View(ctx, func(tx headoffice.ReadTx) error {
		ms, err := tx.Members([]string{"M0", "M1", "M2", "M3", "M-bad"})
		if err != nil {
			return err
		}
		for i := range 4 {
			if m := ms[fmt.Sprint("M", i)]; m.Balance != terminals/4*events {
				t.Errorf("M%d balance %d, want %d", i, m.Balance, terminals/4*events)
			}
		}
		if _, ok := ms["M-bad"]; ok {
			t.Error("the refused batch created its member")
		}
		n := 0
		if err := tx.Events("", func([]byte) error { n++; return nil }); err != nil {
			return err
		}
		if n != terminals*events+1 {
			t.Errorf("%d events stored, want %d", n, terminals*events+1)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// countingStore counts a real store's feed page reads.
type countingStore struct {
	headoffice.Store
	pages atomic.Int64
}

func (c *countingStore) FeedPage(ctx context.Context, q headoffice.FeedQuery) (headoffice.FeedPage, error) {
	c.pages.Add(1)
	return c.Store.FeedPage(ctx, q)
}

// TestSharedPages: the terminals of a store woken by the same change share
// one read of their page, each with its own AsOf; a terminal that took its
// signals after a later change does not get the earlier page.
func TestSharedPages(t *testing.T) { eachStore(t, sharedPages) }

func sharedPages(t *testing.T, s headoffice.Store) {
	cs := &countingStore{Store: s}
	o := hqtest.Office(t, cs, headoffice.Options{Now: testNow})
	ctx := context.Background()
	const tills = 8
	// Each till has sent a different number of events for its own member.
	for i := range tills {
		id := fmt.Sprint("S-t", i)
		if _, err := o.Ingest(ctx, id, "S", "e", ledger.DecodeBatch(terminalChain(id, fmt.Sprint("M", i), i+1))); err != nil {
			t.Fatal(err)
		}
	}
	pending := func(i int, cur *syncproto.Cursors, since time.Time) []syncproto.Message {
		t.Helper()
		msgs, err := o.Pending(ctx, fmt.Sprint("S-t", i), "S", "e", cur, since)
		if err != nil {
			t.Fatal(err)
		}
		return msgs
	}
	// Every till registers as a reader of the store's feed and catches up.
	curs := make([]syncproto.Cursors, tills)
	deadline := time.Now().Add(10 * time.Second)
	for i := range tills {
		seen := map[string]bool{}
		for len(seen) < tills {
			for _, m := range pending(i, &curs[i], time.Now()) {
				for _, mm := range m.Members {
					seen[mm.Member] = true
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("till %d saw %d of the %d members", i, len(seen), tills)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// A change: till 0 earns again. Once it is on the feed, every till
	// asks with signals taken after it.
	raws := terminalChain("S-t0", "M0", 2)
	if _, err := o.Ingest(ctx, "S-t0", "S", "e", ledger.DecodeBatch(raws[1:])); err != nil {
		t.Fatal(err)
	}
	for {
		probe := curs[0]
		if msgs := pending(0, &probe, time.Now()); len(msgs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the change never reached the feed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, _, since := o.Changes("S")
	before := cs.pages.Load()
	for i := range tills {
		msgs := pending(i, &curs[i], since)
		if len(msgs) != 1 || len(msgs[0].Members) != 1 || msgs[0].Members[0].Member != "M0" {
			t.Fatalf("till %d after the change: %+v", i, msgs)
		}
		if want := uint64(1 + i); i > 0 && msgs[0].Members[0].AsOfSeq != want {
			t.Fatalf("till %d: as of %d, want its own head %d", i, msgs[0].Members[0].AsOfSeq, want)
		}
		if i == 0 && msgs[0].Members[0].AsOfSeq != 2 {
			t.Fatalf("till 0: as of %d, want 2", msgs[0].Members[0].AsOfSeq)
		}
	}
	if reads := cs.pages.Load() - before; reads > 1 {
		t.Fatalf("%d tills at one position read %d pages, want 1 shared", tills, reads)
	}
	// A page read before a caller took its signals is not served to it.
	later := time.Now()
	before = cs.pages.Load()
	pending(1, &syncproto.Cursors{Members: curs[1].Members}, later)
	if cs.pages.Load() == before {
		t.Fatal("a page read before the caller's signals was served to it")
	}
}
