package hqstore

import (
	"slices"
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
