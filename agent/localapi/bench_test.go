package localapi_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/agent/localapi"
)

// BenchmarkEarnVsRawCommit measures earn through the local API (unix socket,
// HTTP, JSON, the agent, one record of the ledger's log synced) with 1 and
// with 8 concurrent clients, beside what bounds it on the same disk in the
// same run: the physical limit, one 1 KB append to a file and fdatasync;
// one raw bbolt commit of one put (and of an earn's four); and, built with
// -tags sqlitebench (make bench does), the same checkout in SQLite in WAL
// mode with synchronous=FULL.
//
// Latency: the single-client samples are interleaved with the others
// (separate files on the same disk, one operation of each in turn, in a
// new order each round), so that the disk's drift over the run (its commit
// latency moves by a third from one second to the next on a virtual
// machine) falls on all alike.
// Throughput: a single client and 8 clients earn on agents of their own in
// alternating blocks, each alone while it runs, as they would on a till,
// in several rounds; the speed-up is the median of the rounds'. The garbage
// collector runs as pos-agent serve sets it (agent.TuneGC), unless GOGC or
// GOMEMLIMIT say otherwise.
func BenchmarkEarnVsRawCommit(b *testing.B) {
	defer agent.TuneGC()()
	n := max(b.N, 200)
	lat := interleaved(b, n)
	const rounds = 5
	var speedups []float64
	var alone, eight []time.Duration
	var oneTput, eightTput float64
	for range rounds {
		one, many, oneWall, manyWall := throughputs(b, n)
		alone, eight = append(alone, one...), append(eight, many...)
		t1, t8 := float64(len(one))/oneWall.Seconds(), float64(len(many))/manyWall.Seconds()
		oneTput, eightTput = oneTput+t1/rounds, eightTput+t8/rounds
		speedups = append(speedups, t8/t1)
	}
	slices.Sort(speedups)
	speedup := speedups[len(speedups)/2]

	limit, api := pct(lat["limit"], 50), pct(lat["api"], 50)
	b.ReportMetric(us(limit), "limit-p50-µs")
	b.ReportMetric(us(pct(lat["raw"], 50)), "raw-p50-µs")
	b.ReportMetric(us(pct(lat["agent"], 50)), "agent-p50-µs")
	b.ReportMetric(us(api), "api1-p50-µs")
	b.ReportMetric(us(pct(lat["api"], 99)), "api1-p99-µs")
	b.ReportMetric(us(pct(eight, 50)), "api8-p50-µs")
	b.ReportMetric(us(pct(eight, 99)), "api8-p99-µs")
	b.ReportMetric(oneTput, "api1-earn/s")
	b.ReportMetric(eightTput, "api8-earn/s")
	b.ReportMetric(float64(api)/float64(limit), "p50-ratio-to-limit")
	b.ReportMetric(float64(api)/float64(pct(lat["raw"], 50)), "p50-ratio-to-raw")
	b.ReportMetric(speedup, "8-vs-1-throughput")
	sqlite := "SQLite not measured: build with -tags sqlitebench"
	if l := lat["sqlite"]; len(l) > 0 {
		b.ReportMetric(us(pct(l, 50)), "sqlite-p50-µs")
		b.ReportMetric(float64(pct(l, 50))/float64(api), "sqlite-vs-api1")
		sqlite = fmt.Sprintf("SQLite WAL FULL p50 %v p99 %v: the earn is %.2fx faster (target ≥ 1.5)", pct(l, 50), pct(l, 99), float64(pct(l, 50))/float64(api))
	}
	b.Logf("n=%d | limit (1 KB append + fdatasync) p50 %v p99 %v | raw bbolt commit p50 %v, of an earn's four puts %v | agent without API p50 %v (%.2fx the limit) | api 1 client p50 %v p99 %v: %.2fx the limit (target ≤ 1.5), %.2fx a raw bbolt commit | %s | throughput 1 client %.0f/s (p50 %v), 8 clients %.0f/s (p50 %v p99 %v): speed-up %.2fx, median of %d rounds %v (target ≥ 4)",
		n, limit, pct(lat["limit"], 99), pct(lat["raw"], 50), pct(lat["raw4"], 50), pct(lat["agent"], 50), float64(pct(lat["agent"], 50))/float64(limit),
		api, pct(lat["api"], 99), float64(api)/float64(limit), float64(api)/float64(pct(lat["raw"], 50)), sqlite,
		oneTput, pct(alone, 50), eightTput, pct(eight, 50), pct(eight, 99), speedup, rounds, speedups)
}

// sqliteCheckout, when the sqlitebench build tag sets it, returns the same
// checkout done in SQLite (bench_sqlite_test.go).
var sqliteCheckout func(b *testing.B) func(i int) error

// interleaved runs n rounds of: one 1 KB append to a file and fdatasync,
// one raw bbolt commit of one put, one raw commit of an earn's four puts (an
// event appended, a new checkout record, the member's and the day's records
// rewritten, at about their sizes), the checkout in SQLite (when built in),
// one earn called in-process, one earn through the API with a single client.
// It returns the latencies of each by name.
func interleaved(b *testing.B, n int) map[string][]time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	openRaw := func(name string) *bolt.DB {
		db, err := bolt.Open(filepath.Join(b.TempDir(), name), 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	}
	db, db4 := openRaw("raw.db"), openRaw("raw4.db")
	val := make([]byte, 400) // about one encoded earn event
	rawCommit := func(i int) error {
		return db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("events"))
			if err != nil {
				return err
			}
			return bk.Put([]byte(fmt.Sprintf("%016d", i)), val)
		})
	}
	big := make([]byte, 900)
	shapedCommit := func(i int) error {
		return db4.Update(func(tx *bolt.Tx) error {
			for _, p := range []struct {
				bucket, key string
				size        int
			}{{"events", fmt.Sprintf("%016d", i), 750}, {"checkouts", fmt.Sprint("b-", i), 700}, {"members", "M-1", 450}, {"days", "2026-12-02", 880}} {
				bk, err := tx.CreateBucketIfNotExists([]byte(p.bucket))
				if err != nil {
					return err
				}
				if err := bk.Put([]byte(p.key), big[:p.size]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "limit"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	kb := make([]byte, 1024)
	limit := func(int) error {
		if _, err := f.Write(kb); err != nil {
			return err
		}
		return syscall.Fdatasync(int(f.Fd()))
	}
	a := openAgent(b, b.TempDir(), benchCard)
	c, cards := serveAPI(ctx, b, 1)
	ops := []struct {
		name string
		fn   func(int) error
	}{
		{"limit", limit},
		{"raw", rawCommit},
		{"raw4", shapedCommit},
		{"agent", func(i int) error {
			_, err := a.Earn(ctx, agent.EarnRequest{Card: benchCard, Amount: "12.50", Ref: fmt.Sprint("d-", i)})
			return err
		}},
		{"api", func(i int) error {
			_, err := c.Earn(ctx, agent.EarnRequest{Card: cards[0], Amount: "12.50", Ref: fmt.Sprint("b-", i)})
			return err
		}},
	}
	if sqliteCheckout != nil {
		ops = append(ops, struct {
			name string
			fn   func(int) error
		}{"sqlite", sqliteCheckout(b)})
	}
	lat := map[string][]time.Duration{}
	// Each round in its own order: what runs just before an operation
	// (a commit still being written out by the disk, an applier's commit)
	// falls on all alike.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
		for _, o := range ops {
			t0 := time.Now()
			if err := o.fn(i); err != nil {
				b.Fatalf("%s: %v", o.name, err)
			}
			lat[o.name] = append(lat[o.name], time.Since(t0))
		}
	}
	return lat
}

// benchCard is the member card of in-process earns.
const benchCard = "4000000000000002"

// openAgent opens an agent on dir with a member for each card.
func openAgent(b testing.TB, dir string, cards ...string) *agent.Agent {
	ctx := context.Background()
	a, err := agent.Open(ctx, dir, agent.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	for _, card := range cards {
		if _, err := a.Enroll(ctx, agent.EnrollRequest{Card: card}); err != nil {
			b.Fatal(err)
		}
	}
	return a
}

// serveAPI serves a new agent's local API until ctx ends and returns a
// client with one enrolled card per concurrent client.
func serveAPI(ctx context.Context, b testing.TB, clients int) (*localapi.Client, []string) {
	dir := b.TempDir()
	a := openAgent(b, dir)
	srv, err := localapi.Listen(agent.SocketPath(dir), "", localapi.Handler(a, nil))
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ctx) }()
	c := localapi.Dial(agent.SocketPath(dir))
	cards := make([]string, clients)
	for i := range cards {
		cards[i] = fmt.Sprintf("40000000%08d", i)
		if _, err := c.Enroll(ctx, agent.EnrollRequest{Card: cards[i]}); err != nil {
			b.Fatal(err)
		}
	}
	return c, cards
}

// throughputs runs n earns through the API with one client and 4n with 8
// concurrent clients (blocks of about the same length: a short block of 8
// clients is mostly its ramp-up and its stragglers), each on an agent of its
// own, in alternating blocks (a quarter of each in turn) so that the disk's
// drift falls on both alike. It returns the latencies of each and the wall
// time they took.
func throughputs(b *testing.B, n int) (one, eight []time.Duration, oneWall, eightWall time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c1, cards1 := serveAPI(ctx, b, 1)
	c8, cards8 := serveAPI(ctx, b, 8)
	one, eight = make([]time.Duration, n), make([]time.Duration, 4*n)
	const blocks = 4
	for k := range blocks {
		lo, hi := k*n/blocks, (k+1)*n/blocks
		oneWall += apiEarns(b, c1, cards1, one[lo:hi], lo)
		eightWall += apiEarns(b, c8, cards8, eight[4*lo:4*hi], 4*lo)
	}
	return one, eight, oneWall, eightWall
}

// apiEarns runs len(lat) earns through c, one client per card concurrently,
// with refs numbered from base, and returns the wall time they took.
func apiEarns(b testing.TB, c *localapi.Client, cards []string, lat []time.Duration, base int) time.Duration {
	ctx := context.Background()
	var wg sync.WaitGroup
	start := time.Now()
	for w, card := range cards {
		wg.Go(func() {
			for i := w; i < len(lat); i += len(cards) {
				t0 := time.Now()
				_, err := c.Earn(ctx, agent.EarnRequest{Card: card, Amount: "12.50", Ref: fmt.Sprintf("b-%d", base+i)})
				lat[i] = time.Since(t0)
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

func pct(lat []time.Duration, p int) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
