// Package hqtest builds head offices for tests: an Office over a new store
// of either kind, cleaned up when the test ends. It is imported by tests
// only.
package hqtest

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqbolt"
)

// Quiet is a logger that writes nothing.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Bolt opens a new embedded store in a temporary directory.
func Bolt(tb testing.TB) *hqbolt.DB {
	tb.Helper()
	db, err := hqbolt.Open(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// Office runs head office over store until the test ends.
func Office(tb testing.TB, store headoffice.Store, opts headoffice.Options) *headoffice.Office {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = Quiet()
	}
	o, err := headoffice.New(context.Background(), store, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(o.Close)
	return o
}
