package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// ledgerEnd is the end of the ledger's allocated pages.
func ledgerEnd(t *testing.T, s *Store) int64 {
	t.Helper()
	var end int64
	if err := s.db.View(func(btx *bolt.Tx) error { end = btx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	return end
}

// holeAfter is where the first hole at or after off starts (the file's end
// if there is none).
func holeAfter(t *testing.T, path string, off int64) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hole, err := f.Seek(off, seekHole)
	if err != nil {
		t.Fatal(err)
	}
	return hole
}

// TestZeroAhead: after a commit the file is written, without holes, at least
// zeroMargin past the ledger's end, also after a commit that grew the ledger
// past the zeros already written; the zeros never reach the ledger's pages
// (a value written in the same commit reads back whole, bbolt's check
// passes after reopening); a reopened store that is zeroed ahead writes no
// more zeros.
func TestZeroAhead(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := s.Path()
	ctx := context.Background()
	put := func(key string, v []byte) {
		t.Helper()
		if err := s.Write(ctx, func(tx *Tx) error { return tx.SetMeta(key, string(v)) }); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		end := ledgerEnd(t, s)
		if hole := holeAfter(t, path, end); hole < end+zeroMargin {
			t.Errorf("after writing %s: written up to %d, the ledger ends at %d: want %d more", key, hole, end, zeroMargin)
		}
	}
	put("small", []byte("v"))
	// Twice the zeros written at a time, in one commit: it allocates past
	// them, and the next zeros must start after its pages.
	big := make([]byte, 2*zeroChunk)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	put("big", big)
	put("after", []byte("v"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	w0 := writtenBytes(t)
	s, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put("reopened", []byte("v"))
	if w := writtenBytes(t) - w0; w >= zeroChunk/4 {
		t.Errorf("reopening and one small commit wrote %d bytes: zeros written again", w)
	}
	err = s.db.View(func(btx *bolt.Tx) error {
		for err := range btx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		if got := btx.Bucket(bMeta).Get([]byte("big")); !bytes.Equal(got, big) {
			t.Errorf("the big value reads back changed (%d bytes, want %d)", len(got), len(big))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(path) != dir {
		t.Fatalf("ledger at %s, not in %s", path, dir)
	}
}

// writtenBytes is what this process has caused to be written to storage.
func writtenBytes(t *testing.T) int64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no write_bytes in /proc/self/io")
	return 0
}
