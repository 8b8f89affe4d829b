package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// holdApply keeps the applier from bringing bbolt up to date: what is
// written from now on stays in the log alone.
func holdApply(s *Store) { s.amu.Lock() }

// crash leaves the ledger as a SIGKILL or a power cut after the last sync
// would: the log as synced, bbolt at its last commit. The store is not
// usable after it (its applier stays blocked).
func crash(t *testing.T, s *Store) {
	t.Helper()
	if s.amu.TryLock() {
		t.Fatal("crash without holdApply")
	}
	s.zero.close()
	if err := s.log.close(); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
}

// smallSegments makes the log's segments small for the test.
func smallSegments(t *testing.T, size int64) {
	old := segSize
	segSize = size
	t.Cleanup(func() { segSize = old })
}

// setKeys writes meta k<i> = v<i> for i in [from, to), one write each.
func setKeys(t *testing.T, s *Store, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.Write(context.Background(), func(tx *Tx) error { return tx.SetMeta(fmt.Sprint("k", i), fmt.Sprint("v", i)) }); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
}

// keys returns which of meta k0..k<n-1> are set (to their value).
func keys(t *testing.T, s *Store, n int) []bool {
	t.Helper()
	out := make([]bool, n)
	_ = s.View(func(tx *Tx) error {
		for i := range out {
			switch v := tx.Meta(fmt.Sprint("k", i)); v {
			case fmt.Sprint("v", i):
				out[i] = true
			case "":
			default:
				t.Errorf("k%d = %q", i, v)
			}
		}
		return nil
	})
	return out
}

func reopen(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func wantKeys(t *testing.T, s *Store, n int, present func(i int) bool) {
	t.Helper()
	for i, ok := range keys(t, s, n) {
		if ok != present(i) {
			t.Errorf("k%d present %v, want %v", i, ok, present(i))
		}
	}
}

// TestLogReplay: what bbolt had not applied when the process died comes
// back from the log at the next open, whether bbolt had applied none of
// it or part; the log goes on at the next record, and the records bbolt
// applied before are not applied twice.
func TestLogReplay(t *testing.T) {
	for _, applied := range []int{0, 20} {
		t.Run(fmt.Sprint("bbolt applied ", applied), func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			setKeys(t, s, 0, applied)
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			holdApply(s)
			setKeys(t, s, applied, 50)
			before := s.LogStatus()
			crash(t, s)
			s = reopen(t, dir)
			wantKeys(t, s, 50, func(int) bool { return true })
			st := s.LogStatus()
			if st.Applied != before.Logged || st.Logged != before.Logged {
				t.Errorf("after reopening: %+v, want applied and logged %d", st, before.Logged)
			}
			setKeys(t, s, 50, 51)
			if got := s.LogStatus().Logged; got != before.Logged+1 {
				t.Errorf("the next record is %d, want %d", got, before.Logged+1)
			}
		})
	}
}

// lastRecord returns the last segment's path and where its last record
// starts and ends (its padding left out: zeros either way).
func lastRecord(t *testing.T, dir string) (path string, start, end int) {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, walDir, "*"+segSuffix))
	sort.Strings(segs)
	path = segs[len(segs)-1]
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := segHeader
	for {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		if n == 0 {
			return path, start, end
		}
		start, end = off, off+recHeader+n
		off += recHeader + pad8(n)
	}
}

// copyTree copies a data directory.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLogTornTail: a power cut during the last record's write leaves any
// prefix of it on the disk: cut at every offset of the record (the rest of
// it zeros, as the segment was made, or the file cut short there), the
// ledger opens with every record before it and without it (it was never
// acknowledged), and the cleared tail does not come back after the next
// record. A byte damaged in the last record reads the same way.
func TestLogTornTail(t *testing.T) {
	smallSegments(t, 64<<10)
	crashed := t.TempDir()
	s, err := Open(crashed, nil)
	if err != nil {
		t.Fatal(err)
	}
	holdApply(s)
	const n = 6
	setKeys(t, s, 0, n)
	crash(t, s)
	_, start, end := lastRecord(t, crashed)
	check := func(t *testing.T, dir string) {
		t.Helper()
		s := reopen(t, dir)
		wantKeys(t, s, n, func(i int) bool { return i < n-1 })
		setKeys(t, s, n, n+1)
		s.Close()
		s = reopen(t, dir)
		wantKeys(t, s, n+1, func(i int) bool { return i != n-1 })
		s.Close()
	}
	for cut := start; cut < end; cut++ {
		for _, mode := range []string{"zeros", "truncated"} {
			dir := t.TempDir()
			copyTree(t, crashed, dir)
			path, _, _ := lastRecord(t, dir)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if mode == "zeros" {
				clear(b[cut:end])
			} else {
				b = b[:cut]
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			check(t, dir)
			if t.Failed() {
				t.Fatalf("cut at %d (record %d-%d), %s", cut, start, end, mode)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		dir := t.TempDir()
		copyTree(t, crashed, dir)
		path, _, _ := lastRecord(t, dir)
		b, _ := os.ReadFile(path)
		at := start + rng.IntN(end-start)
		b[at] ^= byte(1 + rng.IntN(255))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, dir)
		if t.Failed() {
			t.Fatalf("byte %d of the last record (%d-%d) damaged", at, start, end)
		}
	}
}

// TestLogDamage: a log that cannot be read without losing an acknowledged
// record is refused at open, in one line, with nothing written to either
// file: a damaged byte of a record that another follows, a segment missing
// between two, a log that starts past what bbolt applied, a missing log
// directory, a log of another ledger.
func TestLogDamage(t *testing.T) {
	smallSegments(t, 16<<10)
	crashed := t.TempDir()
	s, err := Open(crashed, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	holdApply(s)
	// Records of about 3 KB: several segments.
	big := strings.Repeat("x", 3000)
	for i := range 20 {
		if err := s.Write(context.Background(), func(tx *Tx) error { return tx.SetMeta(fmt.Sprint("big", i), big) }); err != nil {
			t.Fatal(err)
		}
	}
	crash(t, s)
	segs, _ := filepath.Glob(filepath.Join(crashed, walDir, "*"+segSuffix))
	sort.Strings(segs)
	if len(segs) < 3 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	other := t.TempDir()
	o, err := Open(other, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		name   string
		damage func(dir string)
		want   string
	}{
		{"a damaged byte of a record another follows", func(dir string) {
			p := filepath.Join(dir, walDir, filepath.Base(segs[0]))
			b, _ := os.ReadFile(p)
			at := segHeader + rng.IntN(3000)
			b[at] ^= 0x40
			_ = os.WriteFile(p, b, 0o600)
		}, "does not verify"},
		{"a segment missing", func(dir string) {
			_ = os.Remove(filepath.Join(dir, walDir, filepath.Base(segs[1])))
		}, "missing"},
		{"the first segments gone", func(dir string) {
			_ = os.Remove(filepath.Join(dir, walDir, filepath.Base(segs[0])))
		}, "lost commits"},
		{"no log", func(dir string) {
			_ = os.RemoveAll(filepath.Join(dir, walDir))
		}, "missing"},
		{"another ledger's log", func(dir string) {
			_ = os.RemoveAll(filepath.Join(dir, walDir))
			copyTree(t, filepath.Join(other, walDir), filepath.Join(dir, walDir))
		}, "another ledger"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, crashed, dir)
			c.damage(dir)
			before := snapshot(t, dir)
			s, err := Open(dir, nil)
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("open: %v, want ErrCorrupt saying %q in one line", err, c.want)
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("a refused open changed the files")
			}
		})
	}
}

// snapshot is the contents of every file of a directory, for comparing.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			raw, _ := os.ReadFile(p)
			fmt.Fprintf(&b, "%s %x\n", p, raw)
		}
		return nil
	})
	return b.String()
}

// TestLedgerWithoutLog: a ledger closed cleanly holds everything its log
// did; its file copied alone opens, with everything, and starts a new log
// that goes on from the last record. One not closed (the process died) is
// refused without its log (TestLogDamage).
func TestLedgerWithoutLog(t *testing.T) {
	dir := t.TempDir()
	s := reopen(t, dir)
	setKeys(t, s, 0, 5)
	logged := s.LogStatus().Logged
	s.Close()
	if err := os.RemoveAll(filepath.Join(dir, walDir)); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, nil) // crashed below: no Close
	if err != nil {
		t.Fatal(err)
	}
	wantKeys(t, s, 5, func(int) bool { return true })
	setKeys(t, s, 5, 6)
	if got := s.LogStatus().Logged; got != logged+1 {
		t.Errorf("the new log's record %d, want %d", got, logged+1)
	}
	// Open again, then died: not closed any more.
	holdApply(s)
	setKeys(t, s, 6, 7)
	crash(t, s)
	if err := os.RemoveAll(filepath.Join(dir, walDir)); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, nil); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("a ledger that was not closed, without its log: %v", err)
	}
}

// TestLogSyncFails: a write whose record the disk fails to sync is refused
// and is never seen, not even after the process dies and the ledger opens
// again; the writes before and after it are kept and the log has no gap. If
// the failed record cannot even be cleared, every later write is refused
// until the ledger is opened again, and the record does not come back.
func TestLogSyncFails(t *testing.T) {
	for _, clearFails := range []bool{false, true} {
		t.Run(fmt.Sprint("clearing fails ", clearFails), func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			var failing atomic.Int32 // syncs still to fail
			s.log.fsync = func(f *os.File) error {
				if failing.Load() > 0 {
					failing.Add(-1)
					return syscall.EIO
				}
				return fdatasync(f)
			}
			holdApply(s)
			setKeys(t, s, 0, 3)
			failing.Store(1)
			if clearFails {
				failing.Store(2)
			}
			err = s.Write(context.Background(), func(tx *Tx) error { return tx.SetMeta("k3", "v3") })
			if err == nil {
				t.Fatal("a write whose sync failed succeeded")
			}
			if keys(t, s, 4)[3] {
				t.Error("the failed write is seen")
			}
			err = s.Write(context.Background(), func(tx *Tx) error { return tx.SetMeta("k4", "v4") })
			if clearFails {
				if err == nil || !strings.Contains(err.Error(), "restart") {
					t.Fatalf("a write after a log that could not be cleared: %v", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			crash(t, s)
			s = reopen(t, dir)
			wantKeys(t, s, 5, func(i int) bool { return i < 3 || (i == 4 && !clearFails) })
			setKeys(t, s, 5, 6)
			st := s.LogStatus()
			if want := uint64(5); clearFails && st.Logged != want-1 || !clearFails && st.Logged != want {
				t.Errorf("log status %+v after %d records", st, st.Logged)
			}
		})
	}
}

// TestLogTrim: segments bbolt has applied go once head office has acked
// their events, and past maxSegments even if it has not; the segment being
// written stays. The status shows the segments and bbolt's lag.
func TestLogTrim(t *testing.T) {
	smallSegments(t, 16<<10)
	s := openStore(t)
	ctx := context.Background()
	event := bytes.Repeat([]byte("e"), 3000)
	seq := uint64(0)
	appendEvents := func(n int) {
		t.Helper()
		for range n {
			seq++
			if err := s.Write(ctx, func(tx *Tx) error { return tx.AppendEvent(seq, event) }); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	appendEvents(20)
	st := s.LogStatus()
	if st.Segments < 4 || st.Applied != st.Logged || st.LagMS != 0 {
		t.Fatalf("after 20 records of 3 KB, applied: %+v", st)
	}
	appendEvents(40)
	if st := s.LogStatus(); st.Segments > maxSegments+1 {
		t.Errorf("%d segments past maxSegments with nothing acked", st.Segments)
	}
	if err := s.Write(ctx, func(tx *Tx) error { return tx.SetMetaUint(metaAcked, seq) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := s.LogStatus(); st.Segments != 1 {
		t.Errorf("%d segments once everything is applied and acked, want 1", st.Segments)
	}
	if err := s.View(func(tx *Tx) error {
		for i := uint64(1); i <= seq; i++ {
			if !bytes.Equal(tx.Event(i), event) {
				return fmt.Errorf("event %d lost", i)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	holdApply(s)
	seq++
	if err := s.Write(ctx, func(tx *Tx) error { return tx.AppendEvent(seq, event) }); err != nil {
		t.Fatal(err)
	}
	if st := s.LogStatus(); st.Logged != st.Applied+1 {
		t.Errorf("a record bbolt has not applied: %+v", st)
	}
	s.amu.Unlock()
}

// TestOverlayModel: reads see the log's layers over bbolt exactly as if
// every write had gone to bbolt: random puts and deletes over a few keys of
// two buckets, bbolt brought up to date at random moments (and the layer
// frozen mid-batch), checked against a model after every write: point
// reads, scans from random keys, the first and last records.
func TestOverlayModel(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	model := map[byte]map[string]string{idCheckouts: {}, idEvents: {}}
	key := func() string { return fmt.Sprintf("k%02d", rng.IntN(30)) }
	for step := range 3000 {
		b := []byte{idCheckouts, idEvents}[rng.IntN(2)]
		k := key()
		del := rng.IntN(3) == 0
		fail := rng.IntN(10) == 0
		v := fmt.Sprint("v", step)
		err := s.Write(ctx, func(tx *Tx) error {
			var err error
			if del {
				if tx.get(b, []byte(k)) == nil {
					if fail {
						return errors.New("fails before writing")
					}
					return nil
				}
				err = tx.del(b, []byte(k))
			} else {
				err = tx.put(b, []byte(k), []byte(v))
			}
			if err == nil && fail {
				return errors.New("fails after writing")
			}
			return err
		})
		switch {
		case fail && err == nil:
			t.Fatal("a failing write succeeded")
		case !fail && err != nil:
			t.Fatal(err)
		case !fail && del:
			delete(model[b], k)
		case !fail:
			model[b][k] = v
		}
		if rng.IntN(50) == 0 {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		from := key()
		err = s.View(func(tx *Tx) error {
			for b, m := range model {
				var want []string
				for k := range m {
					want = append(want, k)
				}
				sort.Strings(want)
				var got []string
				tx.scan(b, nil, func(k, v []byte) bool {
					if m[string(k)] != string(v) {
						t.Errorf("step %d: scan %q = %q, want %q", step, k, v, m[string(k)])
					}
					got = append(got, string(k))
					return true
				})
				if strings.Join(got, ",") != strings.Join(want, ",") {
					return fmt.Errorf("step %d: bucket %d holds %v, want %v", step, b, got, want)
				}
				if v := tx.get(b, []byte(from)); string(v) != m[from] || (v == nil) != (m[from] == "") {
					return fmt.Errorf("step %d: get %s = %q, want %q", step, from, v, m[from])
				}
				i := sort.SearchStrings(want, from)
				fk, _ := tx.first(b, []byte(from))
				if wantFirst := ""; i < len(want) {
					wantFirst = want[i]
					if string(fk) != wantFirst {
						return fmt.Errorf("step %d: first from %s = %q, want %q", step, from, fk, wantFirst)
					}
				} else if fk != nil {
					return fmt.Errorf("step %d: first from %s = %q, want none", step, from, fk)
				}
				lk, _ := tx.last(b)
				if len(want) > 0 && string(lk) != want[len(want)-1] || len(want) == 0 && lk != nil {
					return fmt.Errorf("step %d: last = %q, want %v", step, lk, want)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadsDuringApply: readers running while writes go on and the applier
// brings bbolt up to date never see a value go back, nor miss one that a
// write returned before they began.
func TestReadsDuringApply(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	var done atomic.Uint64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 3 {
		wg.Go(func() {
			var last uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				floor := done.Load()
				var n uint64
				_ = s.View(func(tx *Tx) error { n = tx.MetaUint("n"); return nil })
				if n < last || n < floor {
					t.Errorf("read %d after %d (%d written before the read)", n, last, floor)
					return
				}
				last = n
			}
		})
	}
	for i := uint64(1); i <= 2000; i++ {
		if err := s.Write(ctx, func(tx *Tx) error { return tx.SetMetaUint("n", i) }); err != nil {
			t.Fatal(err)
		}
		done.Store(i)
		if i%300 == 0 {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
}

// TestReadsWhileFileGrows: readers, writers and the applier together while
// the file grows (bbolt remaps it, which waits for every read transaction)
// neither wedge nor show a state no commit left: a and b are written
// together, so a reader sees them equal.
func TestReadsWhileFileGrows(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	big := strings.Repeat("x", 64<<10)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var a, b uint64
				if err := s.View(func(tx *Tx) error {
					a, b = tx.MetaUint("a"), tx.MetaUint("b")
					return nil
				}); err != nil {
					t.Error(err)
					return
				}
				if a != b {
					t.Errorf("read a=%d b=%d, written together", a, b)
					return
				}
			}
		})
	}
	finished := make(chan struct{})
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			for i := range 150 {
				n := uint64(w*1000 + i)
				if err := s.Write(ctx, func(tx *Tx) error {
					if err := tx.SetMeta(fmt.Sprint("big", w, "-", i), big); err != nil {
						return err
					}
					if err := tx.SetMetaUint("a", n); err != nil {
						return err
					}
					return tx.SetMetaUint("b", n)
				}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	go func() { writers.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(2 * time.Minute):
		// The store cannot be closed (a panic would run the cleanup,
		// which waits for the writes): the test binary ends here.
		buf := make([]byte, 1<<20)
		fmt.Fprintf(os.Stderr, "%s\nFAIL: TestReadsWhileFileGrows: the writes wedged\n", buf[:runtime.Stack(buf, true)])
		os.Exit(1)
	}
	close(stop)
	wg.Wait()
}
