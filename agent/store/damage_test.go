package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// smallLedger writes a ledger of n events in its own directory and returns
// the file's bytes cut to the pages bbolt uses (the file is kept written
// with zeros past them, zero.go) and its page size.
func smallLedger(t testing.TB, n int) ([]byte, int) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := s.Write(context.Background(), func(tx *Tx) error {
			if err := tx.AppendEvent(uint64(i+1), []byte(fmt.Sprintf(`{"seq":%d,"pad":"%s"}`, i+1, strings.Repeat("x", 300)))); err != nil {
				return err
			}
			return tx.Put(Members, fmt.Sprint("m", i), map[string]int{"balance": i})
		}); err != nil {
			t.Fatal(err)
		}
	}
	ps := s.db.Info().PageSize
	var size int64
	if err := s.db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	return b[:size], ps
}

// openBytes writes b as a ledger and opens it, failing the test on a panic
// or a hang.
func openBytes(t *testing.T, b []byte) (*Store, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	type result struct {
		s   *Store
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- result{err: fmt.Errorf("panic: %v", v)}
			}
		}()
		s, err := Open(dir, nil)
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		if r.err != nil && strings.HasPrefix(r.err.Error(), "panic:") {
			t.Fatalf("open panicked: %v", r.err)
		}
		if r.err != nil {
			if got, _ := os.ReadFile(path); string(got) != string(b) {
				t.Fatal("a refused file was changed")
			}
		}
		return r.s, r.err
	case <-time.After(20 * time.Second):
		t.Fatal("open hung")
		return nil, nil
	}
}

// TestEmptyFileIsDamage: a zero-length ledger (a crash during creation, a
// failed copy) is refused, never taken for a new ledger.
func TestEmptyFileIsDamage(t *testing.T) {
	_, err := openBytes(t, nil)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "empty") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("empty ledger: %v", err)
	}
}

// TestTruncatedFiles: a ledger cut at every page boundary, and inside its
// pages, is refused with one line (it used to panic or crash with SIGBUS).
func TestTruncatedFiles(t *testing.T) {
	b, ps := smallLedger(t, 40)
	pages := len(b) / ps
	if pages < 6 {
		t.Fatalf("the ledger has only %d pages", pages)
	}
	for cut := 1; cut < len(b); cut += ps / 2 {
		s, err := openBytes(t, b[:cut])
		if err == nil {
			s.Close()
			t.Fatalf("a ledger cut to %d of %d bytes opened", cut, len(b))
		}
		if !errors.Is(err, ErrCorrupt) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("cut to %d bytes: %v", cut, err)
		}
	}
}

// TestDamagedPages: bytes overwritten in every page, one page at a time,
// either leave a ledger that opens and reads everything without a panic, or
// are refused at open with one line.
func TestDamagedPages(t *testing.T) {
	b, ps := smallLedger(t, 40)
	refused := 0
	for p := 0; p < len(b)/ps; p++ {
		for _, at := range []int{0, 16, ps / 2} {
			d := append([]byte(nil), b...)
			for i := range 64 {
				if off := p*ps + at + i; off < len(d) {
					d[off] ^= 0xA5
				}
			}
			s, err := openBytes(t, d)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("page %d+%d: %v", p, at, err)
				}
				refused++
				continue
			}
			// Opened: every record reads, or fails, without a panic.
			readAll(t, s)
			if err := s.Write(context.Background(), func(tx *Tx) error { return tx.SetMeta("after", "x") }); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("page %d+%d: a write: %v", p, at, err)
			}
			s.Close()
		}
	}
	if refused == 0 {
		t.Fatal("no damage was refused: the test damaged nothing that matters")
	}
}

func readAll(t *testing.T, s *Store) {
	t.Helper()
	err := s.View(func(tx *Tx) error {
		tx.Events(0, func(uint64, []byte) bool { return true })
		for _, k := range []Kind{Members, Cards, Checkouts} {
			if err := tx.ForEach(k, func(string, []byte) error { return nil }); err != nil {
				return err
			}
		}
		return tx.ForEachDay(func(string, []byte) error { return nil })
	})
	if err != nil && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reading: %v", err)
	}
}

// FuzzOpen opens mutated ledger files — bbolt's pages, not only the records
// in them — and reads and writes what opens: never a panic or a hang, a
// damaged file refused with ErrCorrupt and left as it was.
func FuzzOpen(f *testing.F) {
	b, ps := smallLedger(f, 12)
	f.Add(b)
	f.Add(b[:len(b)-ps])
	for _, off := range []int{16, ps + 16, 2 * ps, 3*ps + 40} {
		d := append([]byte(nil), b...)
		d[off] ^= 0xff
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := openBytes(t, data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !strings.Contains(err.Error(), "schema") {
				t.Fatalf("refusal without ErrCorrupt: %v", err)
			}
			return
		}
		readAll(t, s)
		if err := s.Write(context.Background(), func(tx *Tx) error { return tx.SetMeta("after", "x") }); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("a write: %v", err)
		}
		s.Close()
	})
}

// TestModesSetOnEveryOpen: a data directory and ledger left with looser
// modes (a copy, a restore) are made private when opened, not only when
// created.
func TestModesSetOnEveryOpen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, FileName)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, fi.Mode().Perm(), err, want)
		}
	}
}

// FuzzReadSalvage reads what a repair would of mutated ledger files: never a
// panic, and every byte string it offers is one of the file's.
func FuzzReadSalvage(f *testing.F) {
	b, ps := smallLedger(f, 12)
	f.Add(b)
	f.Add(b[:len(b)/2])
	for _, off := range []int{16, ps + 16, 2 * ps, 3*ps + 40} {
		d := append([]byte(nil), b...)
		d[off] ^= 0xff
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := ReadSalvage(dir)
		if err != nil {
			return
		}
		for _, e := range s.Events {
			if !bytes.Contains(data, e) {
				t.Fatalf("salvaged bytes not in the file: %q", e)
			}
		}
	})
}
