package syncclient_test

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
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
