package hqstore

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// TestMemberFeedByStore: a terminal reads its store's member changes and
// those of members no store has seen, each member once, in change order.
func TestMemberFeedByStore(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	put := func(id string, stores ...string) {
		t.Helper()
		if err := db.Update(func(tx *Tx) error {
			m, _, err := tx.Member(id)
			if err != nil {
				return err
			}
			m.ID, m.Stores = id, stores
			return tx.PutMember(m)
		}); err != nil {
			t.Fatal(err)
		}
	}
	put("imported")
	put("a1", "A")
	put("b1", "B")
	put("ab", "A", "B")
	put("imported", "B") // seen at store B now: no longer for everyone
	put("a1", "A")       // changed again: once, at its new place
	feed := func(store string, cursor uint64, max int) ([]string, uint64) {
		var ids []string
		var next uint64
		_ = db.View(func(tx *Tx) error { ids, next = tx.MemberFeed(store, cursor, max); return nil })
		return ids, next
	}
	ids, next := feed("A", 0, 100)
	if !slices.Equal(ids, []string{"ab", "a1"}) {
		t.Fatalf("store A from 0: %v", ids)
	}
	if again, _ := feed("A", next, 100); len(again) != 0 {
		t.Fatalf("store A past its cursor: %v", again)
	}
	if ids, _ := feed("B", 0, 100); !slices.Equal(ids, []string{"b1", "ab", "imported"}) {
		t.Fatalf("store B: %v", ids)
	}
	if ids, _ := feed("C", 0, 100); len(ids) != 0 {
		t.Fatalf("store C: %v", ids)
	}
	// Pages: the cursor moves to the last entry returned.
	first, c := feed("B", 0, 2)
	rest, _ := feed("B", c, 2)
	if !slices.Equal(append(first, rest...), []string{"b1", "ab", "imported"}) {
		t.Fatalf("paged: %v then %v", first, rest)
	}
}

// TestBatch: concurrent calls share commits; a call that fails fails alone
// and writes nothing, the others are durable when Batch returns; after Close
// a call is ErrClosed.
func TestBatch(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	errOdd := errors.New("odd call")
	errs := make([]error, 200)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Batch(func(tx *Tx) error {
				if err := tx.SetMeta(fmt.Sprint("k", i), []byte("v")); err != nil {
					return err
				}
				if i%7 == 3 {
					return errOdd
				}
				return nil
			})
		}()
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Batch(func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("batch after close: %v", err)
	}
	db, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *Tx) error {
		for i, err := range errs {
			fails := i%7 == 3
			if fails != errors.Is(err, errOdd) || !fails && err != nil {
				t.Errorf("call %d: %v", i, err)
			}
			if got := tx.Meta(fmt.Sprint("k", i)); (got != nil) == fails {
				t.Errorf("call %d (error %v) left %q", i, err, got)
			}
		}
		return nil
	})
}

// TestSharedMember: a member is decoded once while its stored bytes stay the
// same, and a write is seen at once; the cache stays within its bound.
func TestSharedMember(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	put := func(m Member) {
		t.Helper()
		if err := db.Update(func(tx *Tx) error { return tx.PutMember(m) }); err != nil {
			t.Fatal(err)
		}
	}
	shared := func(id string) *Member {
		t.Helper()
		var m *Member
		if err := db.View(func(tx *Tx) error {
			var ok bool
			var err error
			m, ok, err = tx.SharedMember(id)
			if err == nil && !ok {
				err = ErrNotFound
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	put(Member{ID: "m1", Balance: 10, Cards: []string{"c1"}, Stores: []string{"s1"}})
	a, b := shared("m1"), shared("m1")
	if a != b || a.Balance != 10 {
		t.Fatalf("two reads of an unchanged member: %p %p, balance %d", a, b, a.Balance)
	}
	put(Member{ID: "m1", Balance: 25, Cards: []string{"c1"}, Stores: []string{"s1"}})
	if c := shared("m1"); c == a || c.Balance != 25 || a.Balance != 10 {
		t.Fatalf("after a write: balance %d (shared one %d)", c.Balance, a.Balance)
	}
	if err := db.View(func(tx *Tx) error {
		if _, ok, err := tx.SharedMember("nobody"); ok || err != nil {
			t.Errorf("unknown member: %v %v", ok, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range sharedMembers + 10 {
		id := fmt.Sprint("x", i)
		db.shared.put(id, []byte(id), &Member{ID: id})
	}
	if n := len(db.shared.m); n > sharedMembers {
		t.Fatalf("%d decoded members kept, bound %d", n, sharedMembers)
	}
}
