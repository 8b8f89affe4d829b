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
	h, handled := syncingHandler(b, dir)
	lean := &Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	std := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	defer lean.Close()
	defer std.Close()
	clients := []*http.Client{Unix(listenUnix(b, dir, "lean.sock", lean)), Unix(listenUnix(b, dir, "std.sock", std))}
	over := callInBlocks(b, clients, handled)
	reportOverhead(b, over, "lean", "net/http")
}

// BenchmarkClientOverhead measures what calling adds to the handler, with
// this package's unix-socket client and with net/http's http.Transport
// dialling the same socket, both calling this package's Server, in
// alternating blocks as above. http.Transport hands each request to a
// writer goroutine and each response to a reader goroutine; the client here
// writes and reads on the caller's goroutine.
func BenchmarkClientOverhead(b *testing.B) {
	dir := b.TempDir()
	h, handled := syncingHandler(b, dir)
	srv := &Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	defer srv.Close()
	path := listenUnix(b, dir, "agent.sock", srv)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	defer tr.CloseIdleConnections()
	over := callInBlocks(b, []*http.Client{Unix(path), {Transport: tr}}, handled)
	reportOverhead(b, over, "lean", "http.Transport")
}

// syncingHandler writes a page and fdatasyncs it for every call, and keeps
// the last call's time in the handler (ns).
func syncingHandler(b *testing.B, dir string) (http.Handler, *atomic.Int64) {
	f, err := os.OpenFile(filepath.Join(dir, "sync"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	page := make([]byte, 4096)
	handled := new(atomic.Int64)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	}), handled
}

func listenUnix(b *testing.B, dir, name string, srv interface{ Serve(net.Listener) error }) string {
	path := filepath.Join(dir, name)
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	return path
}

// callInBlocks posts max(b.N, 200) calls through each client, in blocks of
// 50 that alternate between them, and returns each call's time beyond the
// handler's, per client.
func callInBlocks(b *testing.B, clients []*http.Client, handled *atomic.Int64) [][]time.Duration {
	n := max(b.N, 200)
	const block = 50
	over := make([][]time.Duration, len(clients))
	for k := range over {
		over[k] = make([]time.Duration, n)
	}
	body := make([]byte, 300)
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
	return over
}

// reportOverhead prints p50 and p99 of two overheads and the second's
// ratio to the first's.
func reportOverhead(b *testing.B, over [][]time.Duration, ours, std string) {
	p50 := func(d []time.Duration) time.Duration { d = slices.Clone(d); slices.Sort(d); return d[len(d)/2] }
	p99 := func(d []time.Duration) time.Duration { d = slices.Clone(d); slices.Sort(d); return d[len(d)*99/100] }
	b.ReportMetric(float64(p50(over[0]))/1e3, ours+"-p50-µs")
	b.ReportMetric(float64(p50(over[1]))/1e3, std+"-p50-µs")
	b.ReportMetric(float64(p50(over[1]))/float64(p50(over[0])), std+"-vs-"+ours)
	b.Logf("n=%d  overhead over the handler: %s p50 %v p99 %v | %s p50 %v p99 %v",
		len(over[0]), ours, p50(over[0]), p99(over[0]), std, p50(over[1]), p99(over[1]))
}
