package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openStore opens a store in a fresh directory, closed when the test ends.
func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestGroupCommitIsolation: a write that fails after writing aborts the shared
// transaction, and every other write of the batch is then committed on its
// own; a write that fails before writing fails alone.
func TestGroupCommitIsolation(t *testing.T) {
	s := openStore(t)
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
	s := openStore(t)
	ctx := context.Background()
	if err := s.Write(ctx, func(tx *Tx) error { return tx.SetMeta("k", "1") }); err != nil {
		t.Fatal(err)
	}
	before := txID(s)
	for range 5 {
		if err := s.Write(ctx, func(tx *Tx) error { _ = tx.Meta("k"); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if got := txID(s); got != before {
		t.Fatalf("transaction id %d after writes of nothing, was %d", got, before)
	}
	if err := s.Write(ctx, func(tx *Tx) error { return tx.SetMeta("k", "2") }); err != nil {
		t.Fatal(err)
	}
	if got := txID(s); got != before+1 {
		t.Fatalf("transaction id %d after a write, want %d", got, before+1)
	}
}

func TestWriteAfterClose(t *testing.T) {
	s := openStore(t)
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

// txID is the file's last committed transaction id.
// txID counts the commits: the records of the log.
func txID(s *Store) int { return int(s.LogStatus().Logged) }

// holdWrite starts a write that sets key and stays inside its transaction
// until release is called; its outcome comes on the channel.
func holdWrite(s *Store, key string) (chan error, func()) {
	inCommit, release := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- s.Write(context.Background(), func(tx *Tx) error {
			close(inCommit)
			<-release
			return tx.SetMeta(key, "v")
		})
	}()
	<-inCommit
	return errc, func() { close(release) }
}

// waitQueued waits until n writes are queued (the one committing included).
func waitQueued(s *Store, n int) {
	for {
		s.mu.Lock()
		queued := len(s.queue)
		s.mu.Unlock()
		if queued == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// queueWrites starts n writes of keys k0..k<n-1>, the one of k3 refused
// before it writes, and waits until they are queued behind the n0 already
// there. Their outcomes come on the channel.
func queueWrites(t *testing.T, s *Store, n0, n int) chan error {
	t.Helper()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- s.Write(context.Background(), func(tx *Tx) error {
				if i == 3 {
					return errors.New("refused")
				}
				return tx.SetMeta(fmt.Sprint("k", i), "v")
			})
		}()
	}
	waitQueued(s, n0+n)
	return errs
}

// checkOutcomes reads n outcomes and fails unless exactly the refused one
// failed.
func checkOutcomes(t *testing.T, errs chan error, n int) {
	t.Helper()
	failed := 0
	for range n {
		if err := <-errs; err != nil {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d queued writes failed, want 1", failed)
	}
}

// holdAfterCommit starts a write that sets key and holds its commit after
// the fsync, in the commit hook, before the write returns, until release is
// called; its outcome comes on the channel. It takes the store's hook.
func holdAfterCommit(s *Store, key string) (chan error, func()) {
	committed, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.onCommit = func() {
		once.Do(func() {
			close(committed)
			<-release
		})
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Write(context.Background(), func(tx *Tx) error { return tx.SetMeta(key, "v") }) }()
	<-committed
	return errc, func() { close(release) }
}

// TestQueuedWrites: writes that queue while the leader's transaction is
// still running writes join it; writes that queue while a commit is being
// synced share the next commit. Each gets its own outcome either way.
func TestQueuedWrites(t *testing.T) {
	for _, c := range []struct {
		name    string
		hold    func(*Store, string) (chan error, func())
		commits int
	}{
		{"while the transaction runs", holdWrite, 1},
		{"while the commit syncs", holdAfterCommit, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t)
			before := txID(s)
			first, release := c.hold(s, "first")
			const queued = 10
			errs := queueWrites(t, s, 1, queued)
			release()
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			checkOutcomes(t, errs, queued)
			if got := txID(s); got != before+c.commits {
				t.Fatalf("%d commits for a write and %d queued behind it, want %d", got-before, queued, c.commits)
			}
		})
	}
}

// TestPanickingWrite: a write that panics (bbolt on a damaged page) fails
// with ErrCorrupt, rolls back, and leaves the store working.
func TestPanickingWrite(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	err := s.Write(ctx, func(tx *Tx) error {
		if err := tx.SetMeta("k", "half"); err != nil {
			return err
		}
		panic("bad page")
	})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "bad page") {
		t.Fatalf("panicking write: %v, want ErrCorrupt with its cause", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Write(ctx, func(tx *Tx) error { return tx.SetMeta("k", "after") }) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the store is wedged after a panicking write")
	}
	_ = s.View(func(tx *Tx) error {
		if v := tx.Meta("k"); v != "after" {
			t.Errorf("k = %q, want after (the panicking write rolled back)", v)
		}
		return nil
	})
}

// TestPanicInRetries: when a shared transaction is aborted and its writes are
// retried one by one, a panic in a retry fails that write with ErrCorrupt and
// the writes not yet retried; those already committed alone report success.
func TestPanicInRetries(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	inTx, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	leader := make(chan any, 1)
	go func() {
		leader <- s.Write(ctx, func(tx *Tx) error {
			once.Do(func() { close(inTx) })
			<-release
			return tx.SetMeta("lead", "v")
		})
	}()
	<-inTx
	fns := []func(tx *Tx) error{
		func(tx *Tx) error { return tx.SetMeta("k1", "v") },
		func(tx *Tx) error {
			if err := tx.SetMeta("k2", "v"); err != nil {
				return err
			}
			return errors.New("failed after writing")
		},
		func(*Tx) error { panic("bug") },
	}
	errs := make([]chan error, len(fns))
	for i, fn := range fns {
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- s.Write(ctx, fn) }()
		waitQueued(s, i+2)
	}
	close(release)
	if err := <-leader; err != nil {
		t.Fatalf("the leader's own write, committed alone before the panic: %v", err)
	}
	if err := <-errs[0]; err != nil {
		t.Errorf("write retried and committed before the panic: %v", err)
	}
	if err := <-errs[1]; err == nil || errors.Is(err, errPanicked) {
		t.Errorf("write that failed after writing: %v, want its own error", err)
	}
	if err := <-errs[2]; !errors.Is(err, ErrCorrupt) {
		t.Errorf("panicking write: %v, want ErrCorrupt", err)
	}
	_ = s.View(func(tx *Tx) error {
		if tx.Meta("lead") != "v" || tx.Meta("k1") != "v" || tx.Meta("k2") != "" {
			t.Errorf("lead=%q k1=%q k2=%q, want v, v and nothing", tx.Meta("lead"), tx.Meta("k1"), tx.Meta("k2"))
		}
		return nil
	})
}

// TestCloseDrainsQueue: Close waits for the writes already queued, which
// commit; a write after Close is refused.
func TestCloseDrainsQueue(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	first, release := holdWrite(s, "a")
	second := make(chan error, 1)
	go func() { second <- s.Write(ctx, func(tx *Tx) error { return tx.SetMeta("b", "v") }) }()
	waitQueued(s, 2)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	time.Sleep(20 * time.Millisecond)
	release()
	for _, errc := range []chan error{first, second} {
		if err := <-errc; err != nil {
			t.Fatalf("a write queued before Close: %v", err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	s2, err := Open(filepath.Dir(s.Path()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	_ = s2.View(func(tx *Tx) error {
		if tx.Meta("a") != "v" || tx.Meta("b") != "v" {
			t.Errorf("after reopening: a=%q b=%q, want both written", tx.Meta("a"), tx.Meta("b"))
		}
		return nil
	})
}

// TestEventPagesStayFull: events, appended in order, fill their pages
// (bbolt's default split leaves them half empty, and each append then
// splits a page twice as often).
func TestEventPagesStayFull(t *testing.T) {
	s := openStore(t)
	ev := bytes.Repeat([]byte("e"), 400)
	const n = 600
	for seq := uint64(1); seq <= n; seq++ {
		if err := s.Write(context.Background(), func(tx *Tx) error { return tx.AppendEvent(seq, ev) }); err != nil {
			t.Fatal(err)
		}
	}
	var leaves int
	_ = s.db.View(func(btx *bolt.Tx) error { leaves = btx.Bucket(bEvents).Stats().LeafPageN; return nil })
	// 600 events of 400 bytes plus their 16-byte headers and 8-byte keys
	// fill 62 pages of 4 KiB. bbolt leaves at least two entries on the new
	// page of a split, so pages end about three quarters full (86 pages);
	// half-full ones would be about twice the full count (149 measured).
	if full := n * (len(ev) + 16 + 8) / 4096; leaves > full*3/2 {
		t.Fatalf("%d event pages for %d events, want at most %d (full pages: %d)", leaves, n, full*3/2, full)
	}
}

// TestDays: the latest day's aggregates are kept inline, the others in the
// days bucket, and every day reads back whichever way it is kept, including
// a record left in the days bucket by an earlier version.
func TestDays(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	rec := func(c byte) []byte { return bytes.Repeat([]byte{c}, MaxDayRecord) }
	put := func(day string, b []byte) {
		t.Helper()
		if err := s.Write(ctx, func(tx *Tx) error { return tx.PutDay(day, b) }); err != nil {
			t.Fatal(err)
		}
	}
	// A file of an earlier version: today's aggregates among the others.
	if err := s.Write(ctx, func(tx *Tx) error { return tx.PutBytes(Days, "2026-12-01", rec('a')) }); err != nil {
		t.Fatal(err)
	}
	put("2026-12-01", rec('b')) // takes it out of the days bucket
	dayKeys := func() string {
		var keys []string
		_ = s.View(func(tx *Tx) error {
			return tx.ForEachDay(func(k string, _ []byte) error { keys = append(keys, k); return nil })
		})
		return strings.Join(keys, " ")
	}
	if got := dayKeys(); got != "2026-12-01" {
		t.Fatalf("ForEachDay after the first day's update: %s, want the day once", got)
	}
	put("2026-12-02", rec('c')) // a new day: the 1st joins the others
	put("2026-11-30", rec('d')) // a clock set back
	// Another per-day record.
	if err := s.Write(ctx, func(tx *Tx) error { return tx.Put(Days, "2026-12-02/x", 1) }); err != nil {
		t.Fatal(err)
	}
	if want := "2026-11-30 2026-12-01 2026-12-02 2026-12-02/x"; dayKeys() != want {
		t.Errorf("ForEachDay: %s, want %s", dayKeys(), want)
	}
	_ = s.View(func(tx *Tx) error {
		for day, want := range map[string][]byte{"2026-12-01": rec('b'), "2026-12-02": rec('c'), "2026-11-30": rec('d'), "2026-12-03": nil} {
			if got := tx.Day(day); !bytes.Equal(got, want) {
				t.Errorf("Day(%s) = %.8q…, want %.8q…", day, got, want)
			}
		}
		return nil
	})
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = s.db.View(func(btx *bolt.Tx) error {
		if st := btx.Bucket(bToday).Stats(); st.KeyN != 1 || st.InlineBucketN != 1 {
			t.Errorf("the latest day: %d records, inline %d; want 1 record, inline", st.KeyN, st.InlineBucketN)
		}
		return nil
	})
}

// TestOpenUpgrades: a ledger of schema 1, without the buckets added since,
// opens, gets them and a log and is marked schema 4 (which programs of
// earlier schemas refuse); so do ledgers of schema 2 and 3; a ledger of an
// unknown schema is refused.
func TestOpenUpgrades(t *testing.T) {
	for _, old := range []string{"1", "2", "3"} {
		s := openStore(t)
		dir := filepath.Dir(s.Path())
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		err := s.db.Update(func(btx *bolt.Tx) error {
			if old == "1" {
				if err := btx.DeleteBucket(bToday); err != nil {
					return err
				}
			}
			return btx.Bucket(bMeta).Put([]byte("schema"), []byte(old))
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		// An earlier schema had no log.
		if err := os.RemoveAll(filepath.Join(dir, walDir)); err != nil {
			t.Fatal(err)
		}
		s, err = Open(dir, nil)
		if err != nil {
			t.Fatalf("opening a schema-%s ledger: %v", old, err)
		}
		if err := s.Write(context.Background(), func(tx *Tx) error { return tx.PutDay("2026-12-02", []byte("x")) }); err != nil {
			t.Fatal(err)
		}
		_ = s.View(func(tx *Tx) error {
			if v := tx.Meta("schema"); v != "4" {
				t.Errorf("schema %q after opening a schema-%s ledger, want 4", v, old)
			}
			return nil
		})
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := s.db.Update(func(btx *bolt.Tx) error { return btx.Bucket(bMeta).Put([]byte("schema"), []byte("5")) }); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if s, err := Open(dir, nil); !errors.Is(err, ErrCorrupt) {
			if err == nil {
				s.Close()
			}
			t.Fatalf("opening a schema-5 ledger: %v, want ErrCorrupt", err)
		}
	}
}

// TestDeferred: writes sharing a commit change a record kept by Deferred in
// turn; it is loaded and stored once for the commit, with every write's
// change. A write that fails after changing it aborts the shared
// transaction, and so does a store that fails: each write is then retried
// alone and gets its own outcome, those that succeed sharing one record of
// the log. A read-only transaction has no deferred
// records.
func TestDeferred(t *testing.T) {
	errLate := errors.New("late failure")
	errTooBig := errors.New("over 5")
	for _, c := range []struct {
		name        string
		failing     int   // the queued write that fails after its change, or -1
		limit       int   // the store fails over this count (0: never)
		count       int   // the count at the end
		loads       int64 // how often it was read
		commits     int
		failed      int
		wantFailure error
	}{
		{"all succeed", -1, 0, 11, 1, 1, 0, nil},
		{"a write fails", 3, 0, 10, 12, 1, 1, errLate},
		{"the store fails", -1, 5, 5, 12, 1, 6, errTooBig},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t)
			var loads atomic.Int64
			add := func(tx *Tx) error {
				v, err := tx.Deferred("count", func(tx *Tx) (any, error) {
					loads.Add(1)
					n := int(tx.MetaUint("count"))
					return &n, nil
				}, func(tx *Tx, v any) error {
					if n := *v.(*int); c.limit == 0 || n <= c.limit {
						return tx.SetMetaUint("count", uint64(n))
					}
					return errTooBig
				})
				if err != nil {
					return err
				}
				*v.(*int)++
				return nil
			}
			before := txID(s)
			// The first write holds its transaction open until the others
			// are queued behind it, so that they all share it.
			started, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			first := make(chan error, 1)
			go func() {
				first <- s.Write(context.Background(), func(tx *Tx) error {
					once.Do(func() { close(started); <-release })
					return add(tx)
				})
			}()
			<-started
			const queued = 10
			errs := make(chan error, queued)
			for i := range queued {
				go func() {
					errs <- s.Write(context.Background(), func(tx *Tx) error {
						if err := add(tx); err != nil || i != c.failing {
							return err
						}
						return errLate
					})
				}()
			}
			waitQueued(s, 1+queued)
			close(release)
			failed := 0
			for _, err := range append([]error{<-first}, collect(errs, queued)...) {
				switch {
				case err == nil:
				case errors.Is(err, c.wantFailure):
					failed++
				default:
					t.Errorf("write: %v", err)
				}
			}
			if failed != c.failed {
				t.Errorf("%d writes failed, want %d", failed, c.failed)
			}
			_ = s.View(func(tx *Tx) error {
				if n := tx.MetaUint("count"); n != uint64(c.count) {
					t.Errorf("count %d, want %d", n, c.count)
				}
				if _, err := tx.Deferred("count", nil, nil); !errors.Is(err, errReadOnly) {
					t.Errorf("Deferred in a read-only transaction: %v", err)
				}
				return nil
			})
			if n := loads.Load(); n != c.loads {
				t.Errorf("read %d times, want %d", n, c.loads)
			}
			if got := txID(s) - before; got != c.commits {
				t.Errorf("%d commits, want %d", got, c.commits)
			}
		})
	}
}

// collect reads n values from ch.
func collect(ch chan error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = <-ch
	}
	return out
}
