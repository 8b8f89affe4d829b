package localhttp

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkServerOverhead measures what serving a call adds to its handler,
// with this package's Server and with net/http's, both called by this
// package's client over a unix socket. The handler writes a page and
// fdatasyncs it, as an earn's commit does: the machine idles during the
// sync, and waking up after it is where net/http's per-request goroutines
// cost most. Each server takes calls back to back, as from a POS, in blocks
// that alternate between the two so the machine's drift falls on both alike
// (calls alternating one by one hide most of net/http's cost: its
// goroutines then finish their work while the other server answers).
func BenchmarkServerOverhead(b *testing.B) {
	dir := b.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, "sync"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	var handled atomic.Int64 // the last call's time in the handler (ns)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		t0 := time.Now()
		if _, err := f.WriteAt(page, 0); err != nil {
			b.Error(err)
		}
		if err := f.Sync(); err != nil {
			b.Error(err)
		}
		handled.Store(int64(time.Since(t0)))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(page[:300])
	})
	serve := func(name string, srv interface{ Serve(net.Listener) error }) *http.Client {
		path := filepath.Join(dir, name)
		ln, err := net.Listen("unix", path)
		if err != nil {
			b.Fatal(err)
		}
		go func() { _ = srv.Serve(ln) }()
		return Unix(path)
	}
	lean := &Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	std := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	defer lean.Close()
	defer std.Close()
	clients := []*http.Client{serve("lean.sock", lean), serve("std.sock", std)}
	n := max(b.N, 200)
	const block = 50
	over := [2][]time.Duration{make([]time.Duration, n), make([]time.Duration, n)}
	body := page[:300]
	for start := 0; start < n; start += block {
		for k, c := range clients {
			for i := start; i < min(start+block, n); i++ {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://agent/earn", bytes.NewReader(body))
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				over[k][i] = time.Since(t0) - time.Duration(handled.Load())
			}
		}
	}
	p50 := func(d []time.Duration) time.Duration { d = slices.Clone(d); slices.Sort(d); return d[len(d)/2] }
	p99 := func(d []time.Duration) time.Duration { d = slices.Clone(d); slices.Sort(d); return d[len(d)*99/100] }
	b.ReportMetric(float64(p50(over[0]))/1e3, "lean-p50-µs")
	b.ReportMetric(float64(p50(over[1]))/1e3, "net/http-p50-µs")
	b.ReportMetric(float64(p50(over[1]))/float64(p50(over[0])), "net/http-vs-lean")
	b.Logf("n=%d  overhead over the handler: lean p50 %v p99 %v | net/http p50 %v p99 %v",
		n, p50(over[0]), p99(over[0]), p50(over[1]), p99(over[1]))
}
