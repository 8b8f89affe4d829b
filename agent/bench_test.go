package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/offline-loyalty/terminal/agent"
)

// A ledger that has been in use: its member, checkout, event and day buckets
// are a few levels deep, so an earn writes the pages a store's till writes,
// not those of a fresh file (where everything but the events fits in the
// root page).
const (
	livedMembers = 2000
	livedDays    = 40
	livedPerDay  = 250
)

var lived struct {
	once  sync.Once
	dir   string
	a     *agent.Agent
	clock time.Time
	mu    sync.Mutex
	err   error
}

// TestMain removes the lived-in ledger, which outlives each benchmark run.
func TestMain(m *testing.M) {
	code := m.Run()
	if lived.a != nil {
		lived.a.Close()
	}
	if lived.dir != "" {
		os.RemoveAll(lived.dir)
	}
	if opened.dir != "" {
		os.RemoveAll(opened.dir)
	}
	os.Exit(code)
}

func livedCard(i int) string { return fmt.Sprintf("41000000%08d", i) }

// livedAgent builds the lived-in ledger once per test binary.
func livedAgent(b *testing.B) *agent.Agent {
	lived.once.Do(func() {
		dir, err := os.MkdirTemp("", "lived")
		if err != nil {
			lived.err = err
			return
		}
		lived.dir = dir
		lived.clock = time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)
		now := func() time.Time {
			lived.mu.Lock()
			defer lived.mu.Unlock()
			return lived.clock
		}
		ctx := context.Background()
		a, err := agent.Open(ctx, dir, agent.Options{Now: now, Location: time.UTC})
		if err != nil {
			lived.err = err
			return
		}
		for i := range livedMembers {
			if _, err := a.Enroll(ctx, agent.EnrollRequest{Card: livedCard(i)}); err != nil {
				lived.err = err
				return
			}
		}
		r := rand.New(rand.NewPCG(1, 2))
		for d := range livedDays {
			lived.mu.Lock()
			lived.clock = time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC).AddDate(0, 0, d)
			lived.mu.Unlock()
			for i := range livedPerDay {
				ref := fmt.Sprintf("R-%03d-%04d", d, i)
				if _, err := a.Earn(ctx, agent.EarnRequest{Card: livedCard(r.IntN(livedMembers)), Amount: "12.50", Ref: ref}); err != nil {
					lived.err = err
					return
				}
			}
		}
		lived.a = a
	})
	if lived.err != nil {
		b.Fatal(lived.err)
	}
	return lived.a
}

// writtenBytes is what this process has caused to be written to storage
// (Linux), or -1.
func writtenBytes() int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range bytes.Lines(raw) {
		if v, ok := bytes.CutPrefix(line, []byte("write_bytes: ")); ok {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// BenchmarkEarnLivedIn measures an earn called in-process on a ledger in use
// (2,000 members, 40 days of 250 checkouts), each interleaved with a raw bbolt
// commit of one put on the same disk, and what an earn writes to storage
// (Linux: the process's write_bytes). The garbage collector runs as pos-agent
// serve sets it (agent.TuneGC).
func BenchmarkEarnLivedIn(b *testing.B) {
	defer agent.TuneGC()()
	a := livedAgent(b)
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	val := make([]byte, 400)
	var raw, earn []time.Duration
	var earnBytes int64
	i := 0
	for b.Loop() {
		i++
		t0 := time.Now()
		err := db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("events"))
			if err != nil {
				return err
			}
			return bk.Put([]byte(fmt.Sprintf("%016d", i)), val)
		})
		if err != nil {
			b.Fatal(err)
		}
		raw = append(raw, time.Since(t0))
		w0 := writtenBytes()
		t0 = time.Now()
		ref := fmt.Sprintf("B-%d-%d", b.N, i)
		if _, err := a.Earn(ctx, agent.EarnRequest{Card: livedCard(r.IntN(livedMembers)), Amount: "12.50", Ref: ref}); err != nil {
			b.Fatal(err)
		}
		earn = append(earn, time.Since(t0))
		earnBytes += writtenBytes() - w0
	}
	slices.Sort(raw)
	slices.Sort(earn)
	rawP50, earnP50 := raw[len(raw)/2], earn[len(earn)/2]
	b.ReportMetric(float64(rawP50.Microseconds()), "raw-p50-µs")
	b.ReportMetric(float64(earnP50.Microseconds()), "earn-p50-µs")
	b.ReportMetric(float64(earnP50)/float64(rawP50), "p50-ratio-to-raw")
	kib := -1.0
	if writtenBytes() >= 0 {
		kib = float64(earnBytes) / 1024 / float64(len(earn))
		b.ReportMetric(kib, "KiB-written/earn")
	}
	b.Logf("n=%d on %d members and %d days: raw commit p50 %v | earn in-process p50 %v (%.2fx raw) | %.1f KiB written per earn",
		len(earn), livedMembers, livedDays, rawP50, earnP50, float64(earnP50)/float64(rawP50), kib)
}

// openEvents is the size of the ledger BenchmarkOpen opens: a till's year.
const openEvents = 100_000

var opened struct {
	once sync.Once
	dir  string
	err  error
}

// BenchmarkOpen: opening a ledger checks it whole (bbolt's consistency check
// and every event's hash and link) before anything reads or writes it. The
// time to open a 100,000-event ledger, against the limit measured in the
// same run: bbolt opening the file and reading every event without checking
// anything.
func BenchmarkOpen(b *testing.B) {
	opened.once.Do(func() {
		opened.dir, opened.err = os.MkdirTemp("", "open-bench")
		if opened.err != nil {
			return
		}
		ctx := context.Background()
		a, err := agent.Open(ctx, opened.dir, agent.Options{})
		if err != nil {
			opened.err = err
			return
		}
		defer a.Close()
		const writers = 16 // concurrent checkouts share commits
		var wg sync.WaitGroup
		for w := range writers {
			card := fmt.Sprintf("4200000000%04d", w)
			if _, err := a.Enroll(ctx, agent.EnrollRequest{Card: card}); err != nil {
				opened.err = err
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < openEvents-writers; i += writers {
					if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "3.10", Ref: strconv.Itoa(i)}); err != nil {
						opened.err = err
						return
					}
				}
			}()
		}
		wg.Wait()
	})
	if opened.err != nil {
		b.Fatal(opened.err)
	}
	ctx := context.Background()
	var checked, raw time.Duration
	for range b.N {
		start := time.Now()
		a, err := agent.Open(ctx, opened.dir, agent.Options{})
		if err != nil {
			b.Fatal(err)
		}
		checked += time.Since(start)
		a.Close()
		start = time.Now()
		db, err := bolt.Open(filepath.Join(opened.dir, agent.LedgerFile), 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		if err := db.View(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("events")).ForEach(func(_, v []byte) error { n += len(v); return nil })
		}); err != nil {
			b.Fatal(err)
		}
		db.Close()
		raw += time.Since(start)
	}
	b.ReportMetric(float64(checked.Microseconds())/float64(b.N)/1000, "open-ms")
	b.ReportMetric(float64(checked)/float64(raw), "raw-ratio")
	b.Logf("opening a ledger of %d events, checked whole: %v | bbolt opening it and reading every event unchecked: %v | ratio %.1fx",
		openEvents, (checked / time.Duration(b.N)).Round(time.Millisecond), (raw / time.Duration(b.N)).Round(time.Millisecond), float64(checked)/float64(raw))
}
