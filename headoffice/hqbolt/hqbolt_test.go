package hqbolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/ledger"
)

func open(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestUpdate: concurrent calls share commits; a call that fails fails alone
// and writes nothing, the others are durable when Update returns; after
// Close a call is ErrClosed.
func TestUpdate(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	errOdd := errors.New("odd call")
	errs := make([]error, 200)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Update(ctx, func(tx headoffice.Tx) error {
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
	if err := db.Update(ctx, func(headoffice.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("update after close: %v", err)
	}
	db = open(t, dir)
	_ = db.View(ctx, func(tx headoffice.ReadTx) error {
		for i, err := range errs {
			fails := i%7 == 3
			if fails != errors.Is(err, errOdd) || !fails && err != nil {
				t.Errorf("call %d: %v", i, err)
			}
			if got, _ := tx.Meta(fmt.Sprint("k", i)); (got != nil) == fails {
				t.Errorf("call %d (error %v) left %q", i, err, got)
			}
		}
		return nil
	})
}

// TestSharedMember: a member is decoded once while its stored bytes stay the
// same, and a write is seen at once; the cache stays within its bound.
func TestSharedMember(t *testing.T) {
	db := open(t, t.TempDir())
	ctx := context.Background()
	put := func(m headoffice.Member) {
		t.Helper()
		if err := db.Update(ctx, func(tx headoffice.Tx) error { return tx.PutMember(m) }); err != nil {
			t.Fatal(err)
		}
	}
	shared := func(id string) *headoffice.Member {
		t.Helper()
		var m *headoffice.Member
		if err := db.View(ctx, func(rt headoffice.ReadTx) error {
			var ok bool
			var err error
			m, ok, err = rt.(*Tx).sharedMember(id)
			if err == nil && !ok {
				err = headoffice.ErrNotFound
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	put(headoffice.Member{ID: "m1", Balance: 10, Cards: []string{"c1"}, Stores: []string{"s1"}})
	a, b := shared("m1"), shared("m1")
	if a != b || a.Balance != 10 {
		t.Fatalf("two reads of an unchanged member: %p %p, balance %d", a, b, a.Balance)
	}
	put(headoffice.Member{ID: "m1", Balance: 25, Cards: []string{"c1"}, Stores: []string{"s1"}})
	if c := shared("m1"); c == a || c.Balance != 25 || a.Balance != 10 {
		t.Fatalf("after a write: balance %d (shared one %d)", c.Balance, a.Balance)
	}
	for i := range sharedMembers + 10 {
		id := fmt.Sprint("x", i)
		db.shared.put(id, []byte(id), &headoffice.Member{ID: id})
	}
	if n := len(db.shared.m); n > sharedMembers {
		t.Fatalf("%d decoded members kept, bound %d", n, sharedMembers)
	}
}

// TestUpgradeFromSchema1: a file written before the daily figures and the
// rules history (no schema number, the rules in meta) opens with its rules
// kept as their version and figures built from its events, once.
func TestUpgradeFromSchema1(t *testing.T) {
	dir := t.TempDir()
	old, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	if err := old.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bMeta, bTerminals, bCodes, bChains, bEvents, bMembers, bCards, bMemberFd, bBlockFd, bFlags} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bMeta).Put([]byte("rules"), []byte(`{"version":7,"currency":"EUR"}`)); err != nil {
			return err
		}
		term, _ := json.Marshal(headoffice.Terminal{ID: "S1-t1", Store: "S1"})
		if err := tx.Bucket(bTerminals).Put([]byte("S1-t1"), term); err != nil {
			return err
		}
		prev := ""
		for i, typ := range []ledger.Type{ledger.Enroll, ledger.Earn, ledger.Earn, ledger.Redeem} {
			e := ledger.Event{Terminal: "S1-t1", Epoch: "ep", Seq: uint64(i + 1), ID: fmt.Sprint("ep-", i+1), Type: typ, Member: "M1",
				Ref: fmt.Sprint("r", i), Time: at.Add(time.Duration(i) * time.Hour), Points: []int64{0, 100, 50, -30}[i], Amount: []int64{0, 1000, 500, 0}[i]}
			raw := e.Seal(prev)
			prev = e.Hash
			if err := tx.Bucket(bEvents).Put(eventKey("S1-t1", "ep", e.Seq), raw); err != nil {
				return err
			}
		}
		head, _ := json.Marshal(headoffice.Chain{LastSeq: 4, LastHash: prev})
		return tx.Bucket(bChains).Put([]byte(chainKey("S1-t1", "ep")), head)
	}); err != nil {
		t.Fatal(err)
	}
	old.Close()

	for range 2 { // the second open finds schema 2 and builds nothing again
		db, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.View(context.Background(), func(tx headoffice.ReadTx) error {
			doc, v, err := tx.Rules()
			if err != nil || v != 7 || string(doc) != `{"version":7,"currency":"EUR"}` {
				t.Errorf("rules after upgrade: %d %s %v", v, doc, err)
			}
			var figs []headoffice.Figures
			if err := tx.Figures("", "", func(f headoffice.Figures) error { figs = append(figs, f); return nil }); err != nil {
				return err
			}
			want := []headoffice.Figures{{Terminal: "S1-t1", Store: "S1", Day: "2026-11-24", Events: 4, Checkouts: 2, Sales: 1500, Issued: 150, Redeemed: 30, Enrollments: 1}}
			if !slices.Equal(figs, want) {
				t.Errorf("figures %+v, want %+v", figs, want)
			}
			n, err := tx.UniqueMembers("", "")
			if err != nil || n["S1"] != 1 {
				t.Errorf("unique members %v %v", n, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}

// TestNewerSchemaRefused: a file of a later schema is not opened.
func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	if err := db.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put([]byte("schema"), []byte("9")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(dir); err == nil {
		t.Fatal("a schema-9 file opened")
	}
}

// TestModesSetOnEveryOpen: head office's directory and file left with
// looser modes are made private when opened.
func TestModesSetOnEveryOpen(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	db.Close()
	path := filepath.Join(dir, FileName)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	open(t, dir).Close()
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, fi.Mode().Perm(), err, want)
		}
	}
}
