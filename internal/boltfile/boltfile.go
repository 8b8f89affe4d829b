// Package boltfile opens a bbolt file only when it is whole: the terminal's
// ledger and head office's embedded store both go through it. A file that is
// empty, shorter than the pages it records, or that fails bbolt's own
// consistency check is refused with a *Damage naming the file and what is
// wrong, before anything reads past its end (which would crash the process
// with SIGBUS) and without writing to it; a panic of bbolt's on a damaged
// page becomes an error.
//
// It decides nothing about what the file holds: the stores check their
// schema and records themselves.
package boltfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
)

// Damage is a data file that cannot be trusted.
type Damage struct {
	Path string
	What string
}

func (d *Damage) Error() string { return fmt.Sprintf("%s is damaged: %s", d.Path, d.What) }

// ErrLocked is a file another process holds.
var ErrLocked = errors.New("in use by another process")

// The on-disk meta page of bbolt (version 2): a 16-byte page header, then
// magic, version, page size, flags, the root bucket (page, sequence), the
// freelist page, the page count, the transaction id and an FNV-1a checksum
// of what precedes it. Little-endian, as bbolt writes it on the machines we
// ship for.
const (
	pageHeader  = 16
	metaSize    = 64
	metaSummed  = 56
	magic       = 0xED0CDAED
	version     = 2
	noFreelist  = 0xffffffffffffffff
	minPageSize = 512
	maxPageSize = 1 << 16
)

// meta is what Precheck reads of a meta page.
type meta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64
	txid     uint64
}

func readMeta(b []byte) (meta, bool) {
	if len(b) < pageHeader+metaSize {
		return meta{}, false
	}
	m := b[pageHeader : pageHeader+metaSize]
	le := binary.LittleEndian
	h := fnv.New64a()
	h.Write(m[:metaSummed])
	if le.Uint32(m[0:]) != magic || le.Uint32(m[4:]) != version || le.Uint64(m[56:]) != h.Sum64() {
		return meta{}, false
	}
	return meta{pageSize: le.Uint32(m[8:]), root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, true
}

// bestMeta reads the two meta pages of f and returns the valid one of the
// latest transaction.
func bestMeta(f *os.File) (meta, bool, error) {
	head := make([]byte, 2*maxPageSize)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return meta{}, false, err
	}
	head = head[:n]
	var best meta
	found := false
	consider := func(m meta, ok bool) {
		if ok && m.pageSize >= minPageSize && m.pageSize <= maxPageSize && m.pageSize&(m.pageSize-1) == 0 && (!found || m.txid > best.txid) {
			best, found = m, true
		}
	}
	m0, ok0 := readMeta(head)
	consider(m0, ok0)
	// The second meta page is one page in; its size comes from the first
	// (when that is valid) or is one of the sizes bbolt uses.
	sizes := []uint32{4096, 8192, 16384, 65536}
	if ok0 {
		sizes = append([]uint32{m0.pageSize}, sizes...)
	}
	for _, ps := range sizes {
		if int(ps) < len(head) {
			if m1, ok := readMeta(head[ps:]); ok && m1.pageSize == ps {
				consider(m1, true)
				break
			}
		}
	}
	return best, found, nil
}

// Precheck reads the meta pages of the file at path and refuses a file that
// cannot be a whole bbolt file: empty, neither meta page valid, pages
// recorded past the file's end.
func Precheck(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size == 0 {
		return &Damage{path, "it is empty (0 bytes), as a crash during its creation or a failed copy leaves it"}
	}
	best, found, err := bestMeta(f)
	if err != nil {
		return err
	}
	if !found {
		return &Damage{path, "neither of its two meta pages is valid (not a data file, or overwritten)"}
	}
	want := int64(best.pgid) * int64(best.pageSize)
	switch {
	case size < want:
		return &Damage{path, fmt.Sprintf("it is %d bytes, shorter than the %d pages of %d bytes it records (truncated)", size, best.pgid, best.pageSize)}
	case best.root >= best.pgid || (best.freelist != noFreelist && best.freelist >= best.pgid) || best.pgid < 2:
		return &Damage{path, "its meta page points past its pages"}
	}
	if err := walk(f, best); err != nil {
		return &Damage{path, err.Error()}
	}
	return nil
}

// Open opens the bbolt file at path after Precheck (an existing file) and
// runs bbolt's consistency check on it: a damaged file is a *Damage, a file
// another process holds is ErrLocked. A missing file is created.
func Open(path string, mode os.FileMode, opts *bolt.Options) (db *bolt.DB, err error) {
	if _, err := os.Stat(path); err == nil {
		if err := Precheck(path); err != nil {
			return nil, err
		}
	}
	db, err = guard(path, func() (*bolt.DB, error) { return bolt.Open(path, mode, opts) })
	switch {
	case errors.Is(err, bolterr.ErrTimeout):
		return nil, ErrLocked
	case errors.Is(err, bolterr.ErrInvalid), errors.Is(err, bolterr.ErrVersionMismatch), errors.Is(err, bolterr.ErrChecksum):
		return nil, &Damage{path, err.Error()}
	case err != nil:
		return nil, err
	}
	if err := Check(db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Check runs bbolt's consistency check (every page reachable once, the
// freelist sound) and returns its first finding as a *Damage.
func Check(db *bolt.DB) error {
	return Recover(db.Path(), func() error {
		return db.View(func(tx *bolt.Tx) error {
			var first error
			// Read to the end: the checker's goroutine ends when drained.
			for err := range tx.Check() {
				if first == nil {
					first = err
				}
			}
			if first != nil {
				return &Damage{db.Path(), "consistency check: " + first.Error()}
			}
			return nil
		})
	})
}

// guard runs open with a fault or panic inside bbolt turned into a Damage.
func guard(path string, open func() (*bolt.DB, error)) (db *bolt.DB, err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if v := recover(); v != nil {
			db, err = nil, &Damage{path, fmt.Sprint("reading it failed: ", v)}
		}
	}()
	return open()
}

// Recover turns a panic or memory fault inside fn (bbolt reading a damaged
// page) into an error for path; use it around every transaction.
func Recover(path string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if v := recover(); v != nil {
			err = &Damage{path, fmt.Sprint("reading it failed: ", v)}
		}
	}()
	return fn()
}

// OneMetaInvalid reports whether exactly one of the file's two meta pages
// fails its checksum. bbolt then opens the file at the other, an older
// commit: after a crash that tore the newest meta page mid-write (the
// commit was never acknowledged) or after damage to it (it was). A caller
// that can tell, from the data the newer commit left in the file, which of
// the two happened decides whether to go on.
func OneMetaInvalid(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	best, found, err := bestMeta(f)
	if err != nil || !found {
		return false, err
	}
	pages := make([]byte, 2*int(best.pageSize))
	if _, err := f.ReadAt(pages, 0); err != nil {
		return false, err
	}
	_, ok0 := readMeta(pages)
	_, ok1 := readMeta(pages[best.pageSize:])
	return ok0 != ok1, nil
}
