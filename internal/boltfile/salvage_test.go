package boltfile

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// smallFile writes a bbolt file of two buckets, n records in "big" (values of
// 300 bytes, so that they span many pages) and one in "small", and returns
// its bytes and page size.
func smallFile(t testing.TB, n int) ([]byte, int) {
	path := filepath.Join(t.TempDir(), "f.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		big, err := tx.CreateBucket([]byte("big"))
		if err != nil {
			return err
		}
		if err := big.SetSequence(77); err != nil {
			return err
		}
		for i := range n {
			if err := big.Put(fmt.Appendf(nil, "k%05d", i), fmt.Appendf(make([]byte, 0, 300), "%0300d", i)); err != nil {
				return err
			}
		}
		small, err := tx.CreateBucket([]byte("small"))
		if err != nil {
			return err
		}
		return small.Put([]byte("only"), []byte("one"))
	})
	if err != nil {
		t.Fatal(err)
	}
	ps := db.Info().PageSize
	db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, ps
}

func salvageBytes(t testing.TB, b []byte) (Salvaged, error) {
	path := filepath.Join(t.TempDir(), "f.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return Salvage(path)
}

// TestSalvage: a whole file gives back every record and each bucket's
// sequence; with pages of it zeroed, the records of the other pages.
func TestSalvage(t *testing.T) {
	b, ps := smallFile(t, 400)
	s, err := salvageBytes(t, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Buckets["big"].Pairs) != 400 || s.Buckets["big"].Sequence != 77 || len(s.Buckets["small"].Pairs) != 1 || s.Skipped != 0 {
		t.Fatalf("whole file: %v, big sequence %d", s, s.Buckets["big"].Sequence)
	}
	pages := len(b) / ps
	for p := pages / 3; p < pages/3+3; p++ {
		clear(b[p*ps : (p+1)*ps])
	}
	s, err = salvageBytes(t, b)
	if err != nil {
		t.Fatal(err)
	}
	got := len(s.Buckets["big"].Pairs)
	if got == 0 || got >= 400 || s.Skipped == 0 || len(s.Buckets["small"].Pairs) != 1 {
		t.Fatalf("zeroed pages: %v", s)
	}
	for _, kv := range s.Buckets["big"].Pairs {
		if len(kv.Value) != 300 {
			t.Fatalf("a value of %d bytes salvaged from an intact page", len(kv.Value))
		}
	}
	if err := Unlocked(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("Unlocked of a missing file")
	}
}

// TestUnlocked: a file bbolt has open is locked; closed, it is not.
func TestUnlocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Unlocked(path); err != ErrLocked {
		t.Fatalf("open by bbolt: %v", err)
	}
	db.Close()
	if err := Unlocked(path); err != nil {
		t.Fatalf("closed: %v", err)
	}
}

// FuzzSalvage reads mutated files: never a panic or a hang, whatever the
// pages say.
func FuzzSalvage(f *testing.F) {
	b, ps := smallFile(f, 60)
	f.Add(b)
	f.Add(b[:len(b)-ps])
	for _, off := range []int{16, ps + 16, 2 * ps, 3*ps + 10, 4*ps + 40} {
		d := append([]byte(nil), b...)
		d[off] ^= 0xff
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := salvageBytes(t, data)
		if err != nil {
			return
		}
		n := 0
		for _, b := range s.Buckets {
			n += len(b.Pairs)
		}
		if n > len(data) {
			t.Fatalf("%d records out of %d bytes", n, len(data))
		}
	})
}
