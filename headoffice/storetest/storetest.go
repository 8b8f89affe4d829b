// Package storetest is the behaviour every head office Store must have,
// as tests that each store's package runs against itself (hqbolt on a
// file, hqpg on a real PostgreSQL). It is imported by tests only.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/headoffice"
)

// feedWait bounds how long a change may take to appear on a feed (a store
// may position feed entries after their commit).
const feedWait = 10 * time.Second

// Run runs every test on stores made by open (a new, empty store each).
func Run(t *testing.T, open func(t *testing.T) headoffice.Store) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, headoffice.Store)
	}{
		{"MemberFeedByStore", memberFeedByStore},
		{"BlockFeed", blockFeed},
		{"PutEvents", putEvents},
		{"PutEventsLarge", putEventsLarge},
		{"UpdateRollsBack", updateRollsBack},
		{"ConcurrentUpdates", concurrentUpdates},
		{"Rules", rulesHistory},
		{"Figures", figures},
		{"FiguresHeld", figuresHeld},
		{"Registry", registry},
		{"Flags", flags},
		{"Changes", changes},
		{"Restored", restored},
		{"MetaRange", metaRange},
		{"FindMembers", findMembers},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

func update(t *testing.T, s headoffice.Store, fn func(headoffice.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func view(t *testing.T, s headoffice.Store, fn func(headoffice.ReadTx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// eventually retries check until it returns "" or feedWait passes.
func eventually(t *testing.T, check func() string) {
	t.Helper()
	deadline := time.Now().Add(feedWait)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func page(t *testing.T, s headoffice.Store, store string, cursor uint64, max int) ([]string, uint64) {
	t.Helper()
	p, err := s.FeedPage(context.Background(), headoffice.FeedQuery{Terminals: []headoffice.ChainKey{{Terminal: "T", Epoch: "e"}}, Store: store, MemberCursor: cursor, Max: max})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(p.Members))
	for i, m := range p.Members {
		ids[i] = m.ID
	}
	return ids, p.MemberCursor
}

// memberFeedByStore: a terminal reads its store's member changes and those
// of members no store has seen, each member once, in change order.
func memberFeedByStore(t *testing.T, s headoffice.Store) {
	put := func(id string, stores ...string) {
		t.Helper()
		update(t, s, func(tx headoffice.Tx) error {
			ms, err := tx.LockMembers([]string{id})
			if err != nil {
				return err
			}
			m := ms[id]
			m.ID, m.Stores = id, stores
			return tx.PutMember(m)
		})
	}
	settled := func(store string, want []string) {
		t.Helper()
		eventually(t, func() string {
			if ids, _ := page(t, s, store, 0, 100); !slices.Equal(ids, want) {
				return fmt.Sprintf("store %s from 0: %v, want %v", store, ids, want)
			}
			return ""
		})
	}
	put("imported")
	settled("A", []string{"imported"})
	put("a1", "A")
	settled("A", []string{"imported", "a1"})
	put("b1", "B")
	settled("B", []string{"imported", "b1"})
	put("ab", "A", "B")
	settled("A", []string{"imported", "a1", "ab"})
	put("imported", "B") // seen at store B now: no longer for everyone
	settled("B", []string{"b1", "ab", "imported"})
	put("a1", "A") // changed again: once, at its new place
	settled("A", []string{"ab", "a1"})
	ids, next := page(t, s, "A", 0, 100)
	if again, c := page(t, s, "A", next, 100); len(again) != 0 || c != next {
		t.Fatalf("store A past its cursor %d: %v (cursor %d)", next, again, c)
	}
	_ = ids
	if ids, _ := page(t, s, "C", 0, 100); len(ids) != 0 {
		t.Fatalf("store C: %v", ids)
	}
	// Pages: the cursor moves to the last entry returned.
	first, c := page(t, s, "B", 0, 2)
	rest, _ := page(t, s, "B", c, 2)
	if !slices.Equal(append(first, rest...), []string{"b1", "ab", "imported"}) {
		t.Fatalf("paged: %v then %v", first, rest)
	}
	// The snapshot says how far the terminal's own events are included.
	update(t, s, func(tx headoffice.Tx) error {
		if _, err := tx.Chain("T", "e"); err != nil {
			return err
		}
		return tx.PutChain("T", "e", headoffice.Chain{LastSeq: 42, LastHash: "h"})
	})
	p, err := s.FeedPage(context.Background(), headoffice.FeedQuery{Terminals: []headoffice.ChainKey{{Terminal: "T", Epoch: "e"}}, Store: "A", Max: 10})
	if err != nil || p.AsOf[headoffice.ChainKey{Terminal: "T", Epoch: "e"}] != 42 {
		t.Fatalf("as of %v (%v), want 42", p.AsOf, err)
	}
	// Every terminal asked for gets its head, unknown ones 0.
	p, err = s.FeedPage(context.Background(), headoffice.FeedQuery{Store: "A", Max: 10,
		Terminals: []headoffice.ChainKey{{Terminal: "T", Epoch: "e"}, {Terminal: "T", Epoch: "old"}, {Terminal: "U", Epoch: "e"}}})
	if err != nil || len(p.AsOf) != 3 || p.AsOf[headoffice.ChainKey{Terminal: "T", Epoch: "e"}] != 42 || p.AsOf[headoffice.ChainKey{Terminal: "U", Epoch: "e"}] != 0 {
		t.Fatalf("as of %v (%v)", p.AsOf, err)
	}
}

// blockFeed: every terminal reads the cards whose blocked state changed, in
// change order, a card once at its latest change.
func blockFeed(t *testing.T, s headoffice.Store) {
	put := func(card string, blocked, changed bool) {
		update(t, s, func(tx headoffice.Tx) error {
			return tx.PutCard(card, headoffice.Card{Member: "m", Blocked: blocked}, changed)
		})
	}
	put("c1", true, true)
	put("c2", false, false) // not a change of its blocked state
	put("c3", true, true)
	put("c1", false, true) // unblocked later: once, last
	var got []headoffice.Block
	eventually(t, func() string {
		p, err := s.FeedPage(context.Background(), headoffice.FeedQuery{Terminals: []headoffice.ChainKey{{Terminal: "T", Epoch: "e"}}, Store: "A", Max: 10})
		if err != nil {
			return err.Error()
		}
		got = p.Blocks
		want := []headoffice.Block{{Card: "c3", Blocked: true}, {Card: "c1", Blocked: false}}
		if !slices.Equal(got, want) {
			return fmt.Sprintf("blocklist %v, want %v", got, want)
		}
		p2, err := s.FeedPage(context.Background(), headoffice.FeedQuery{Terminals: []headoffice.ChainKey{{Terminal: "T", Epoch: "e"}}, Store: "A", BlockCursor: p.BlockCursor, Max: 10})
		if err != nil || len(p2.Blocks) != 0 {
			return fmt.Sprintf("past the cursor: %v %v", p2.Blocks, err)
		}
		return ""
	})
	view(t, s, func(tx headoffice.ReadTx) error {
		c, ok, err := tx.Card("c2")
		if err != nil || !ok || c.Member != "m" || c.Blocked {
			t.Errorf("card c2: %+v %v %v", c, ok, err)
		}
		return nil
	})
}

func events(seqs ...uint64) []headoffice.StoredEvent {
	out := make([]headoffice.StoredEvent, len(seqs))
	for i, s := range seqs {
		out[i] = headoffice.StoredEvent{Seq: s, Raw: []byte(fmt.Sprintf(`{"seq":%d}`, s))}
	}
	return out
}

// putEvents: an event is stored once per (terminal, epoch, seq): a fresh
// one stored already fails the transaction, a resent one is not stored
// again and is reported when its bytes differ.
func putEvents(t *testing.T, s headoffice.Store) {
	var conflicts []uint64
	update(t, s, func(tx headoffice.Tx) (err error) {
		conflicts, err = tx.PutEvents("T1", "e1", events(1, 2, 3), nil)
		return
	})
	if len(conflicts) != 0 {
		t.Fatalf("first: conflicts %v", conflicts)
	}
	resent := events(2, 3)
	resent[1].Raw = []byte(`{"seq":3,"altered":true}`)
	update(t, s, func(tx headoffice.Tx) (err error) {
		conflicts, err = tx.PutEvents("T1", "e1", events(4), resent)
		return
	})
	if !slices.Equal(conflicts, []uint64{3}) {
		t.Fatalf("resent: conflicts %v; want [3]", conflicts)
	}
	// A fresh event stored already: the unique key refuses it, and the
	// transaction leaves nothing behind.
	err := s.Update(context.Background(), func(tx headoffice.Tx) error {
		if err := tx.SetMeta("after-duplicate", []byte("x")); err != nil {
			return err
		}
		_, err := tx.PutEvents("T1", "e1", events(5, 2), nil)
		return err
	})
	if err == nil {
		t.Fatal("a fresh event stored already was accepted")
	}
	// Another epoch and another terminal are other keys.
	update(t, s, func(tx headoffice.Tx) (err error) { _, err = tx.PutEvents("T1", "e2", events(1), nil); return })
	update(t, s, func(tx headoffice.Tx) (err error) { _, err = tx.PutEvents("T0", "e1", events(1), nil); return })
	var all, t1 []string
	view(t, s, func(tx headoffice.ReadTx) error {
		if v, err := tx.Meta("after-duplicate"); v != nil || err != nil {
			t.Errorf("the refused transaction wrote %q (%v)", v, err)
		}
		if err := tx.Events("", func(raw []byte) error { all = append(all, string(raw)); return nil }); err != nil {
			return err
		}
		return tx.Events("T1", func(raw []byte) error { t1 = append(t1, string(raw)); return nil })
	})
	want := []string{`{"seq":1}`, `{"seq":1}`, `{"seq":2}`, `{"seq":3}`, `{"seq":4}`, `{"seq":1}`}
	if !slices.Equal(all, want) || !slices.Equal(t1, want[1:]) {
		t.Fatalf("events in order of terminal, epoch, seq: %v; T1: %v", all, t1)
	}
}

// putEventsLarge: batches as large as a catch-up's go in whole, and a
// resent large batch conflicts where it differs, twice in one transaction.
func putEventsLarge(t *testing.T, s headoffice.Store) {
	seqs := make([]uint64, 1000)
	for i := range seqs {
		seqs[i] = uint64(i + 1)
	}
	var conflicts []uint64
	update(t, s, func(tx headoffice.Tx) (err error) {
		conflicts, err = tx.PutEvents("T", "e", events(seqs...), nil)
		return
	})
	if len(conflicts) != 0 {
		t.Fatalf("conflicts %v", conflicts)
	}
	again := events(seqs[900:]...)
	again[50].Raw = []byte("other")
	update(t, s, func(tx headoffice.Tx) (err error) {
		if conflicts, err = tx.PutEvents("T", "e", events(1001, 1002), again); err != nil {
			return err
		}
		more := events(seqs[:400]...)
		more[7].Raw = []byte("other too")
		c2, err := tx.PutEvents("T", "e", nil, more)
		conflicts = append(conflicts, c2...)
		return err
	})
	if !slices.Equal(conflicts, []uint64{951, 8}) {
		t.Fatalf("resent: conflicts %v", conflicts)
	}
	n := 0
	view(t, s, func(tx headoffice.ReadTx) error { return tx.Events("T", func([]byte) error { n++; return nil }) })
	if n != 1002 {
		t.Fatalf("%d events stored, want 1002", n)
	}
}

// findMembers: a part of a name or email finds its members, in either
// column and any case of ASCII letters, with '%' and '_' taken as
// themselves; max bounds the answer.
func findMembers(t *testing.T, s headoffice.Store) {
	update(t, s, func(tx headoffice.Tx) error {
		for _, m := range []headoffice.Member{
			{ID: "m1", Name: "Ada Lovelace", Email: "ada@example.com"},
			{ID: "m2", Name: "Alan Turing", Email: "alan_t@example.org"},
			{ID: "m3", Name: "Grace Hopper", Email: "100%grace@example.net"},
		} {
			if err := tx.PutMember(m); err != nil {
				return err
			}
		}
		return nil
	})
	for _, c := range []struct {
		text string
		max  int
		want []string
	}{
		{"lovelace", 10, []string{"m1"}}, {"example", 10, []string{"m1", "m2", "m3"}}, {"example", 2, nil},
		{"n_t", 10, []string{"m2"}}, {"0%g", 10, []string{"m3"}}, {"a%e", 10, []string{}}, {"turing", 10, []string{"m2"}},
		{"nobody", 10, []string{}},
	} {
		var got []string
		view(t, s, func(tx headoffice.ReadTx) error {
			ms, err := tx.FindMembers(c.text, c.max)
			for _, m := range ms {
				got = append(got, m.ID)
			}
			return err
		})
		sort.Strings(got)
		if c.want == nil {
			if len(got) != c.max {
				t.Errorf("FindMembers(%q, %d): %v, want %d", c.text, c.max, got, c.max)
			}
			continue
		}
		if !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("FindMembers(%q): %v, want %v", c.text, got, c.want)
		}
	}
}

// metaRange: a prefix reads its keys only, in order or reversed, stops on
// ErrStop, and a deleted key is gone.
func metaRange(t *testing.T, s headoffice.Store) {
	update(t, s, func(tx headoffice.Tx) error {
		for _, k := range []string{"a", "audit.", "audit/1", "audit/2", "audit/3", "audit0", "b", "zé1", "zéa", "~~"} {
			if err := tx.SetMeta(k, []byte("v"+k)); err != nil {
				return err
			}
		}
		return tx.DeleteMeta("audit/2")
	})
	read := func(prefix string, reverse bool, max int) []string {
		var keys []string
		view(t, s, func(tx headoffice.ReadTx) error {
			return tx.MetaRange(prefix, reverse, func(k string, v []byte) error {
				if string(v) != "v"+k {
					t.Errorf("%s = %q", k, v)
				}
				keys = append(keys, k)
				if len(keys) == max {
					return headoffice.ErrStop
				}
				return nil
			})
		})
		return keys
	}
	for _, c := range []struct {
		prefix  string
		reverse bool
		max     int
		want    []string
	}{
		{"audit/", false, 0, []string{"audit/1", "audit/3"}},
		{"audit/", true, 0, []string{"audit/3", "audit/1"}},
		{"audit/", true, 1, []string{"audit/3"}},
		{"audit", false, 0, []string{"audit.", "audit/1", "audit/3", "audit0"}},
		{"zé", true, 0, []string{"zéa", "zé1"}},
		{"~", false, 0, []string{"~~"}},
		{"c", false, 0, nil},
	} {
		if got := read(c.prefix, c.reverse, c.max); !slices.Equal(got, c.want) {
			t.Errorf("MetaRange(%q, reverse %v): %q, want %q", c.prefix, c.reverse, got, c.want)
		}
	}
}

// updateRollsBack: an error from fn leaves nothing written.
func updateRollsBack(t *testing.T, s headoffice.Store) {
	boom := errors.New("boom")
	err := s.Update(context.Background(), func(tx headoffice.Tx) error {
		if err := tx.SetMeta("k", []byte("v")); err != nil {
			return err
		}
		if err := tx.PutMember(headoffice.Member{ID: "m", Balance: 5}); err != nil {
			return err
		}
		if _, err := tx.PutEvents("T", "e", events(1), nil); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update: %v, want boom", err)
	}
	view(t, s, func(tx headoffice.ReadTx) error {
		v, err := tx.Meta("k")
		ms, _ := tx.Members([]string{"m"})
		n := 0
		_ = tx.Events("", func([]byte) error { n++; return nil })
		if v != nil || len(ms) != 0 || n != 0 || err != nil {
			t.Errorf("after a failed update: meta %q, members %v, %d events, %v", v, ms, n, err)
		}
		return nil
	})
}

// concurrentUpdates: concurrent read-modify-writes of one member lose
// nothing (the lock of LockMembers), and each call is durable on return.
func concurrentUpdates(t *testing.T, s headoffice.Store) {
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(context.Background(), func(tx headoffice.Tx) error {
				ms, err := tx.LockMembers([]string{"shared", fmt.Sprint("own", i)})
				if err != nil {
					return err
				}
				m := ms["shared"]
				m.ID = "shared"
				m.Balance += 10
				if err := tx.PutMember(m); err != nil {
					return err
				}
				return tx.PutMember(headoffice.Member{ID: fmt.Sprint("own", i), Balance: int64(i)})
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	view(t, s, func(tx headoffice.ReadTx) error {
		ms, err := tx.Members([]string{"shared", "own0", "nobody"})
		if err != nil || ms["shared"].Balance != 10*n || len(ms) != 2 {
			t.Errorf("members %+v %v: want shared at %d", ms, err, 10*n)
		}
		sum, err := tx.Liability()
		if want := int64(10*n + n*(n-1)/2); sum != want || err != nil {
			t.Errorf("liability %d %v, want %d", sum, err, want)
		}
		count := 0
		if err := tx.EachMember(func(headoffice.Member) error { count++; return nil }); err != nil || count != n+1 {
			t.Errorf("%d members %v, want %d", count, err, n+1)
		}
		return nil
	})
}

// rulesHistory: every published version is kept; the newest is the rules.
func rulesHistory(t *testing.T, s headoffice.Store) {
	view(t, s, func(tx headoffice.ReadTx) error {
		doc, v, err := tx.Rules()
		if doc != nil || v != 0 || err != nil {
			t.Errorf("no rules yet: %q %d %v", doc, v, err)
		}
		return nil
	})
	update(t, s, func(tx headoffice.Tx) error { return tx.PutRules(3, []byte(`{"version":3}`)) })
	update(t, s, func(tx headoffice.Tx) error { return tx.PutRules(5, []byte(`{"version":5}`)) })
	view(t, s, func(tx headoffice.ReadTx) error {
		doc, v, err := tx.Rules()
		if string(doc) != `{"version":5}` || v != 5 || err != nil {
			t.Errorf("newest: %q %d %v", doc, v, err)
		}
		var vs []int
		if err := tx.EachRules(func(v int, _ []byte) error { vs = append(vs, v); return nil }); err != nil || !slices.Equal(vs, []int{3, 5}) {
			t.Errorf("history %v %v", vs, err)
		}
		return nil
	})
}

// figures: daily figures add up per terminal and day; members are counted
// once per store over a period.
func figures(t *testing.T, s headoffice.Store) {
	f := func(term, store, day string, checkouts int64) headoffice.Figures {
		return headoffice.Figures{Terminal: term, Store: store, Day: day, Events: checkouts + 1, Checkouts: checkouts, Sales: 100 * checkouts,
			Issued: 10 * checkouts, Redeemed: 1, Donated: 2, Enrollments: 1, Adjusted: -checkouts, Expired: 3, Reversals: 1}
	}
	md := func(store, day, member string) headoffice.MemberDay {
		return headoffice.MemberDay{Store: store, Day: day, Member: member}
	}
	update(t, s, func(tx headoffice.Tx) error {
		return tx.AddFigures([]headoffice.Figures{f("A-1", "A", "2026-11-01", 2), f("A-2", "A", "2026-11-01", 1)},
			[]headoffice.MemberDay{md("A", "2026-11-01", "m1"), md("A", "2026-11-01", "m2")})
	})
	update(t, s, func(tx headoffice.Tx) error {
		return tx.AddFigures([]headoffice.Figures{f("A-1", "A", "2026-11-01", 3), f("B-1", "B", "2026-11-03", 1)},
			[]headoffice.MemberDay{md("A", "2026-11-01", "m1"), md("A", "2026-11-02", "m1"), md("B", "2026-11-03", "m1")})
	})
	view(t, s, func(tx headoffice.ReadTx) error {
		var got []headoffice.Figures
		if err := tx.Figures("", "", func(f headoffice.Figures) error { got = append(got, f); return nil }); err != nil {
			return err
		}
		sort.Slice(got, func(i, j int) bool { return got[i].Day+got[i].Terminal < got[j].Day+got[j].Terminal })
		want := []headoffice.Figures{f("A-1", "A", "2026-11-01", 5), f("A-2", "A", "2026-11-01", 1), f("B-1", "B", "2026-11-03", 1)}
		want[0].Events, want[0].Redeemed, want[0].Donated, want[0].Enrollments, want[0].Expired, want[0].Reversals = 7, 2, 4, 2, 6, 2
		if !slices.Equal(got, want) {
			t.Errorf("figures %+v\nwant %+v", got, want)
		}
		got = nil
		if err := tx.Figures("2026-11-02", "2026-11-03", func(f headoffice.Figures) error { got = append(got, f); return nil }); err != nil || len(got) != 1 || got[0].Terminal != "B-1" {
			t.Errorf("figures of 2-3 Nov: %+v %v", got, err)
		}
		u, err := tx.UniqueMembers("", "")
		if err != nil || u["A"] != 2 || u["B"] != 1 {
			t.Errorf("unique members %v %v", u, err)
		}
		u, err = tx.UniqueMembers("2026-11-02", "2026-11-02")
		if err != nil || u["A"] != 1 || len(u) != 1 {
			t.Errorf("unique members on 2 Nov %v %v", u, err)
		}
		return nil
	})
}

// figuresHeld: sums at the end of int64 stay there instead of wrapping (or,
// on PostgreSQL, failing the transaction).
func figuresHeld(t *testing.T, s headoffice.Store) {
	big := headoffice.Figures{Terminal: "A-1", Store: "A", Day: "2026-11-01", Sales: math.MaxInt64 - 5, Redeemed: math.MinInt64 + 5, Events: 1}
	for range 2 {
		update(t, s, func(tx headoffice.Tx) error { return tx.AddFigures([]headoffice.Figures{big}, nil) })
	}
	view(t, s, func(tx headoffice.ReadTx) error {
		return tx.Figures("", "", func(f headoffice.Figures) error {
			if f.Sales != math.MaxInt64 || f.Redeemed != math.MinInt64 || f.Events != 2 {
				t.Errorf("figures past the end of int64: %+v", f)
			}
			return nil
		})
	})
}

// registry: terminals, join codes and chain heads.
func registry(t *testing.T, s headoffice.Store) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	term := headoffice.Terminal{ID: "S-1", Store: "S", Name: "1", CodeHash: []byte{1, 2}, CodeExpires: at.Add(time.Hour), Created: at}
	update(t, s, func(tx headoffice.Tx) error {
		if err := tx.PutTerminal(term); err != nil {
			return err
		}
		if err := tx.SetCode([]byte{1, 2}, "S-1"); err != nil {
			return err
		}
		if _, err := tx.Chain("S-1", "e"); err != nil {
			return err
		}
		return tx.PutChain("S-1", "e", headoffice.Chain{LastSeq: 9, LastHash: "abc"})
	})
	view(t, s, func(tx headoffice.ReadTx) error {
		got, ok, err := tx.Terminal("S-1")
		if err != nil || !ok || got.Store != "S" || !got.CodeExpires.Equal(term.CodeExpires) {
			t.Errorf("terminal %+v %v %v", got, ok, err)
		}
		if _, ok, err := tx.Terminal("S-2"); ok || err != nil {
			t.Errorf("unknown terminal: %v %v", ok, err)
		}
		c, err := tx.Chain("S-1", "e")
		if err != nil || c != (headoffice.Chain{LastSeq: 9, LastHash: "abc"}) {
			t.Errorf("chain %+v %v", c, err)
		}
		if c, err := tx.Chain("S-1", "other"); err != nil || c != (headoffice.Chain{}) {
			t.Errorf("unknown chain %+v %v", c, err)
		}
		n := 0
		if err := tx.Chains(func(string, string, headoffice.Chain) error { n++; return nil }); err != nil || n != 1 {
			t.Errorf("%d chains %v", n, err)
		}
		return nil
	})
	update(t, s, func(tx headoffice.Tx) error {
		id, err := tx.CodeTerminal([]byte{1, 2})
		if err != nil || id != "S-1" {
			return fmt.Errorf("code: %q %v", id, err)
		}
		return tx.SetCode([]byte{1, 2}, "")
	})
	update(t, s, func(tx headoffice.Tx) error {
		if id, err := tx.CodeTerminal([]byte{1, 2}); id != "" || err != nil {
			return fmt.Errorf("retired code: %q %v", id, err)
		}
		return nil
	})
}

// flags: one flag per kind and subject, however often it is raised.
func flags(t *testing.T, s headoffice.Store) {
	f := headoffice.Flag{Time: time.Now().UTC(), Kind: "negative_balance", Terminal: "T", Epoch: "e", Seq: 3, Member: "m", Balance: -5, Detail: "x"}
	update(t, s, func(tx headoffice.Tx) error {
		if err := tx.AddFlag(f); err != nil {
			return err
		}
		return tx.AddFlag(f)
	})
	g := f
	g.Seq = 4
	update(t, s, func(tx headoffice.Tx) error {
		if err := tx.AddFlag(f); err != nil {
			return err
		}
		return tx.AddFlag(g)
	})
	view(t, s, func(tx headoffice.ReadTx) error {
		var seqs []uint64
		if err := tx.Flags(func(f headoffice.Flag) error { seqs = append(seqs, f.Seq); return nil }); err != nil || !slices.Equal(seqs, []uint64{3, 4}) {
			t.Errorf("flags %v %v", seqs, err)
		}
		return nil
	})
}

// changes: a member written for a store signals that store; a blocklist
// change or rules signal every store.
func changes(t *testing.T, s headoffice.Store) {
	wait := func(want string, write func(headoffice.Tx) error) {
		t.Helper()
		update(t, s, write)
		deadline := time.After(feedWait)
		for {
			select {
			case stores := <-s.Changes():
				if slices.Contains(stores, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no change signalled for %q", want)
			}
		}
	}
	wait("S7", func(tx headoffice.Tx) error { return tx.PutMember(headoffice.Member{ID: "m", Stores: []string{"S7"}}) })
	wait(headoffice.AllStores, func(tx headoffice.Tx) error {
		return tx.PutCard("c", headoffice.Card{Member: "m", Blocked: true}, true)
	})
	wait(headoffice.AllStores, func(tx headoffice.Tx) error { return tx.PutRules(1, []byte(`{"version":1}`)) })
}

// restored: a store marked restored gives feed positions past every cursor
// a terminal may hold from before (up to RestoreGap past the copy's head).
func restored(t *testing.T, s headoffice.Store) {
	put := func(id string) {
		t.Helper()
		update(t, s, func(tx headoffice.Tx) error {
			ms, err := tx.LockMembers([]string{id})
			if err != nil {
				return err
			}
			m := ms[id]
			m.ID = id
			return tx.PutMember(m)
		})
	}
	put("before")
	var head uint64
	eventually(t, func() string {
		ids, c := page(t, s, "A", 0, 10)
		if len(ids) != 1 {
			return fmt.Sprintf("before the restore: %v", ids)
		}
		head = c
		return ""
	})
	r, err := headoffice.MarkRestored(context.Background(), s)
	if err != nil || r.FeedHead < head || r.RaisedTo != r.FeedHead+headoffice.RestoreGap {
		t.Fatalf("restored %+v (%v), head %d", r, err, head)
	}
	put("after")
	// A terminal whose cursor stood anywhere below RaisedTo gets the member
	// changed after the restore.
	eventually(t, func() string {
		if ids, c := page(t, s, "A", r.RaisedTo-1, 10); !slices.Equal(ids, []string{"after"}) || c <= r.RaisedTo {
			return fmt.Sprintf("past %d: %v (cursor %d)", r.RaisedTo-1, ids, c)
		}
		return ""
	})
}
