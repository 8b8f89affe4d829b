package localapi_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/agent/localapi"
)

// BenchmarkEarnVsRawCommit measures earn through the local API (unix socket,
// HTTP, JSON, the agent, one durable bbolt commit) with 1 and with 8
// concurrent clients, and the physical limit on the same disk in the same
// run: one raw bbolt Update with one Put.
//
// Latency: the single-client samples are interleaved with the raw commits
// and with earns called in-process (separate files on the same disk, one
// operation of each in turn), so that the disk's drift over the run (its
// commit latency moves by a third from one second to the next on a virtual
// machine) falls on all alike. Throughput: a single client and 8 clients
// earn on agents of their own in alternating blocks, each alone while it
// runs, as they would on a till. The single client runs b.N earns in each
// phase. The garbage collector runs as pos-agent serve sets it
// (agent.TuneGC), unless GOGC or GOMEMLIMIT say otherwise.
func BenchmarkEarnVsRawCommit(b *testing.B) {
	defer agent.TuneGC()()
	n := max(b.N, 200)
	raw, shaped, direct, one := interleaved(b, n)
	alone, eight, aloneWall, eightWall := throughputs(b, n)

	rawP50, oneP50, oneP99 := pct(raw, 50), pct(one, 50), pct(one, 99)
	oneTput := float64(n) / aloneWall.Seconds()
	eightTput := float64(len(eight)) / eightWall.Seconds()
	b.ReportMetric(us(rawP50), "raw-p50-µs")
	b.ReportMetric(us(pct(direct, 50)), "agent-p50-µs")
	b.ReportMetric(us(oneP50), "api1-p50-µs")
	b.ReportMetric(us(oneP99), "api1-p99-µs")
	b.ReportMetric(us(pct(eight, 50)), "api8-p50-µs")
	b.ReportMetric(us(pct(eight, 99)), "api8-p99-µs")
	b.ReportMetric(oneTput, "api1-earn/s")
	b.ReportMetric(eightTput, "api8-earn/s")
	b.ReportMetric(float64(oneP50)/float64(rawP50), "p50-ratio-to-raw")
	b.ReportMetric(us(pct(shaped, 50)), "raw4-p50-µs")
	b.ReportMetric(float64(oneP50)/float64(pct(shaped, 50)), "p50-ratio-to-raw4")
	b.ReportMetric(eightTput/oneTput, "8-vs-1-throughput")
	b.Logf("n=%d  raw commit p50 %v p99 %v | raw commit of an earn's four puts p50 %v | agent without API p50 %v (%.2fx raw, %.2fx raw4) | api 1 client p50 %v p99 %v, alone p50 %v %.0f/s | api 8 clients p50 %v p99 %v %.0f/s | p50 ratio %.2f (target ≤ 1.5; %.2f to raw4) | 8-client speed-up %.2fx (target ≥ 4)",
		n, rawP50, pct(raw, 99), pct(shaped, 50), pct(direct, 50), float64(pct(direct, 50))/float64(rawP50), float64(pct(direct, 50))/float64(pct(shaped, 50)),
		oneP50, oneP99, pct(alone, 50), oneTput, pct(eight, 50), pct(eight, 99), eightTput,
		float64(oneP50)/float64(rawP50), float64(oneP50)/float64(pct(shaped, 50)), eightTput/oneTput)
}

// interleaved runs n rounds of: one raw bbolt commit of one put, one raw
// commit of an earn's four puts (an event appended, a new checkout record,
// the member's and the day's records rewritten, at about their sizes), one
// earn called in-process, one earn through the API with a single client. It
// returns the latencies of each.
func interleaved(b *testing.B, n int) (raw, shaped, direct, api []time.Duration) {
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
	a := openAgent(b, b.TempDir(), benchCard)
	c, cards := serveAPI(ctx, b, 1)
	raw, shaped, direct, api = make([]time.Duration, n), make([]time.Duration, n), make([]time.Duration, n), make([]time.Duration, n)
	for i := range n {
		t0 := time.Now()
		if err := rawCommit(i); err != nil {
			b.Fatal(err)
		}
		raw[i] = time.Since(t0)
		t0 = time.Now()
		if err := shapedCommit(i); err != nil {
			b.Fatal(err)
		}
		shaped[i] = time.Since(t0)
		t0 = time.Now()
		if _, err := a.Earn(ctx, agent.EarnRequest{Card: benchCard, Amount: "12.50", Ref: fmt.Sprint("d-", i)}); err != nil {
			b.Fatal(err)
		}
		direct[i] = time.Since(t0)
		t0 = time.Now()
		if _, err := c.Earn(ctx, agent.EarnRequest{Card: cards[0], Amount: "12.50", Ref: fmt.Sprint("b-", i)}); err != nil {
			b.Fatal(err)
		}
		api[i] = time.Since(t0)
	}
	return raw, shaped, direct, api
}

// benchCard is the member card of in-process earns.
const benchCard = "4000000000000002"

// openAgent opens an agent on dir with a member for each card.
func openAgent(b *testing.B, dir string, cards ...string) *agent.Agent {
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
func serveAPI(ctx context.Context, b *testing.B, clients int) (*localapi.Client, []string) {
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
func apiEarns(b *testing.B, c *localapi.Client, cards []string, lat []time.Duration, base int) time.Duration {
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
