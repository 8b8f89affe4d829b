package syncclient_test

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/sync/hqstore"
	"github.com/offline-loyalty/terminal/sync/syncserver"
)

// serveHQ runs a head office with a new database on ln (plain or TLS) until
// the test ends.
func serveHQ(tb testing.TB, ln net.Listener, opts syncserver.Options) (*syncserver.Server, *hqstore.DB) {
	tb.Helper()
	db, err := hqstore.Open(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := syncserver.New(db, opts)
	if err != nil {
		db.Close()
		tb.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: time.Second}
	go func() { _ = hs.Serve(ln) }()
	tb.Cleanup(func() {
		hs.Close()
		db.Close()
	})
	return srv, db
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
