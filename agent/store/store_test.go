package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestGroupCommitIsolation: a write that fails after writing aborts the shared
// transaction, and every other write of the batch is then committed on its
// own; a write that fails before writing fails alone.
func TestGroupCommitIsolation(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	errLate := errors.New("late failure")
	errEarly := errors.New("early failure")
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Write(ctx, func(tx *Tx) error {
				switch i % 10 {
				case 3:
					return errEarly
				case 7:
					if err := tx.SetMeta(fmt.Sprint("k", i), "v"); err != nil {
						return err
					}
					return errLate
				}
				return tx.SetMeta(fmt.Sprint("k", i), "v")
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		want := error(nil)
		switch i % 10 {
		case 3:
			want = errEarly
		case 7:
			want = errLate
		}
		if !errors.Is(err, want) {
			t.Errorf("write %d: %v, want %v", i, err, want)
		}
	}
	_ = s.View(func(tx *Tx) error {
		for i := range errs {
			got := tx.Meta(fmt.Sprint("k", i))
			if ok := i%10 != 3 && i%10 != 7; ok != (got == "v") {
				t.Errorf("key %d = %q after write error %v", i, got, errs[i])
			}
		}
		return nil
	})
}

// TestCommitHookBeforeReturn: the commit hook has run when a write that
// wrote returns (the UI relies on it: an agent's notice is out before its
// call answers), and does not run for a write that wrote nothing.
func TestCommitHookBeforeReturn(t *testing.T) {
	var hooks atomic.Int64
	// The hook lingers before it counts, so a write released before it
	// would see the old count.
	s, err := Open(t.TempDir(), func() { time.Sleep(time.Millisecond); hooks.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := range 50 {
		before := hooks.Load()
		if err := s.Write(ctx, func(tx *Tx) error { return tx.SetMeta("k", fmt.Sprint(i)) }); err != nil {
			t.Fatal(err)
		}
		if hooks.Load() == before {
			t.Fatalf("write %d returned before the commit hook ran", i)
		}
	}
	before := hooks.Load()
	if err := s.Write(ctx, func(*Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if hooks.Load() != before {
		t.Fatal("the hook ran for a write that wrote nothing")
	}
}

// TestNothingWrittenNoCommit: writes that write nothing leave the file's
// transaction id alone (no commit, no fsync); the next real write commits.
func TestNothingWrittenNoCommit(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	txid := func() int {
		var id int
		_ = s.db.View(func(btx *bolt.Tx) error { id = btx.ID(); return nil })
		return id
	}
	if err := s.Write(ctx, func(tx *Tx) error { return tx.SetMeta("k", "1") }); err != nil {
		t.Fatal(err)
	}
	before := txid()
	for range 5 {
		if err := s.Write(ctx, func(tx *Tx) error { _ = tx.Meta("k"); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if got := txid(); got != before {
		t.Fatalf("transaction id %d after writes of nothing, was %d", got, before)
	}
	if err := s.Write(ctx, func(tx *Tx) error { return tx.SetMeta("k", "2") }); err != nil {
		t.Fatal(err)
	}
	if got := txid(); got != before+1 {
		t.Fatalf("transaction id %d after a write, want %d", got, before+1)
	}
}

func TestWriteAfterClose(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Write(context.Background(), func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

func TestCompact(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 4096)
	for i := range 300 {
		if err := s.Write(context.Background(), func(tx *Tx) error { return tx.PutBytes(Days, fmt.Sprint(i), big) }); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 {
		if err := s.Write(context.Background(), func(tx *Tx) error { return tx.PutBytes(Days, fmt.Sprint(i), nil) }); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := Compact(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("compacting an open ledger: %v", err)
	}
	s.Close()
	before, after, err := Compact(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after >= before {
		t.Fatalf("compaction did not shrink the file: %d → %d", before, after)
	}
	s, err = Open(dir, nil)
	if err != nil {
		t.Fatalf("reopen after compaction: %v", err)
	}
	defer s.Close()
	_ = s.View(func(tx *Tx) error {
		if tx.Meta("epoch") == "" {
			t.Error("compaction lost the metadata")
		}
		return nil
	})
}
