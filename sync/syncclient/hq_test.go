package syncclient_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/sync/syncclient"
	"github.com/offline-loyalty/terminal/sync/syncserver"
)

func TestMain(m *testing.M) { hqtest.Main(m) }

// serveHQ runs a head office with a new embedded store on ln (plain or TLS)
// until the test ends.
func serveHQ(tb testing.TB, ln net.Listener, opts syncserver.Options) *headoffice.Office {
	tb.Helper()
	return serveOn(tb, ln, hqtest.Bolt(tb), opts)
}

// serveOn runs a head office over store on ln until the test ends.
func serveOn(tb testing.TB, ln net.Listener, store headoffice.Store, opts syncserver.Options) *headoffice.Office {
	tb.Helper()
	o := hqtest.Office(tb, store, headoffice.Options{Logger: opts.Logger, Now: opts.Now})
	hs := &http.Server{Handler: syncserver.New(o, opts).Handler(), ReadHeaderTimeout: time.Second}
	go func() { _ = hs.Serve(ln) }()
	tb.Cleanup(func() { hs.Close() })
	return o
}

// listenLocal listens on a free port of 127.0.0.1.
func listenLocal(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// joinedTill opens an agent in a new directory (closed when the test ends)
// and joins it to head office at url as store-1's till-a; it returns the
// agent, its directory and its terminal id.
func joinedTill(tb testing.TB, hq *headoffice.Office, url string, opts agent.Options) (*agent.Agent, string, string) {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	opts.Logger = quiet
	a, err := agent.Open(ctx, dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close() })
	id, code, err := hq.AddTerminal(ctx, "store-1", "till-a")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := syncclient.Join(ctx, a, dir, url, code, false); err != nil {
		tb.Fatal(err)
	}
	return a, dir, id
}
