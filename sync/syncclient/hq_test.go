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

// serveHQ runs a head office with a new embedded store on ln (plain or TLS)
// until the test ends.
func serveHQ(tb testing.TB, ln net.Listener, opts syncserver.Options) *headoffice.Office {
	tb.Helper()
	o := hqtest.Office(tb, hqtest.Bolt(tb), headoffice.Options{Logger: opts.Logger, Now: opts.Now})
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
