package boltfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
)

// Salvaged is what Salvage could read of a damaged file.
type Salvaged struct {
	// Buckets holds, by name, the top-level buckets found.
	Buckets map[string]*SalvagedBucket
	// Skipped counts the pages (with their subtrees) that could not be
	// read: a damaged header, a reference outside the file, a loop.
	Skipped int
}

// SalvagedBucket is what was found of one top-level bucket.
type SalvagedBucket struct {
	Sequence uint64 // its NextSequence counter, as its header said
	Pairs    []KV   // the keys and values of the leaves that could be read (nested buckets left out)
}

// KV is one key and its value, copies of the file's bytes.
type KV struct{ Key, Value []byte }

// Salvage reads what it can of the bbolt file at path without bbolt: it
// walks the tree from the latest valid meta page, checks every page's header
// before reading it, and skips a page that fails (and what hangs below it)
// instead of stopping. Pages past a truncated file's end are skipped too.
// Values found are not checked: the caller decides what they are worth.
func Salvage(path string) (Salvaged, error) {
	out := Salvaged{Buckets: map[string]*SalvagedBucket{}}
	f, err := os.Open(path)
	if err != nil {
		return out, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return out, err
	}
	m, found, err := bestMeta(f)
	if err != nil {
		return out, err
	}
	if !found {
		return out, &Damage{path, "neither of its two meta pages is valid: nothing can be read of it"}
	}
	hwm := min(m.pgid, uint64(st.Size()/int64(m.pageSize)))
	s := &salvager{walker: walker{f: f, ps: int64(m.pageSize), hwm: hwm, visited: map[uint64]bool{}}, out: &out}
	s.tree(m.root, 0, func(k, v []byte, bucket bool) {
		if !bucket || len(v) < bucketHeader {
			return
		}
		b := &SalvagedBucket{Sequence: binary.LittleEndian.Uint64(v[8:])}
		out.Buckets[string(k)] = b
		s.bucket(v, 1, func(k, v []byte, nested bool) {
			if !nested {
				b.Pairs = append(b.Pairs, KV{bytes.Clone(k), bytes.Clone(v)})
			}
		})
	})
	return out, nil
}

type salvager struct {
	walker
	out *Salvaged
}

// visit is called with each element of a leaf; bucket says its value is a
// bucket header.
type visit func(k, v []byte, bucket bool)

// bucket reads a bucket whose header (and inline page, if any) is v.
func (s *salvager) bucket(v []byte, depth int, fn visit) {
	if root := binary.LittleEndian.Uint64(v); root != 0 {
		s.tree(root, depth, fn)
		return
	}
	inline := v[bucketHeader:]
	if len(inline) < pageHeader || binary.LittleEndian.Uint16(inline[8:]) != flagLeaf {
		s.out.Skipped++
		return
	}
	s.leaf(bytes.Clone(inline), fn)
}

func (s *salvager) tree(id uint64, depth int, fn visit) {
	if depth > maxDepth {
		s.out.Skipped++
		return
	}
	b, err := s.read(id, 0, depth)
	if err != nil {
		s.out.Skipped++
		return
	}
	// The buffer of this level is reused below it: work on a copy.
	b = bytes.Clone(b)
	le := binary.LittleEndian
	switch le.Uint16(b[8:]) {
	case flagLeaf:
		s.leaf(b, fn)
	case flagBranch:
		count := int(le.Uint16(b[10:]))
		for i := range count {
			e := pageHeader + i*elementSize
			if e+elementSize > len(b) {
				s.out.Skipped++
				return
			}
			s.tree(le.Uint64(b[e+8:]), depth+1, fn)
		}
	default:
		s.out.Skipped++
	}
}

// leaf calls fn for every element of a leaf page that lies inside it.
func (s *salvager) leaf(b []byte, fn visit) {
	le := binary.LittleEndian
	count := int(le.Uint16(b[10:]))
	for i := range count {
		e := pageHeader + i*elementSize
		if e+elementSize > len(b) {
			s.out.Skipped++
			return
		}
		flags, pos := le.Uint32(b[e:]), int(le.Uint32(b[e+4:]))
		ksize, vsize := int(le.Uint32(b[e+8:])), int(le.Uint32(b[e+12:]))
		start := e + pos
		if pos < 0 || ksize < 0 || vsize < 0 || start+ksize+vsize > len(b) || start+ksize+vsize < start {
			continue
		}
		fn(b[start:start+ksize], b[start+ksize:start+ksize+vsize], flags&bucketLeaf != 0)
	}
}

// Unlocked returns ErrLocked when a process holds the bbolt file at path
// open for writing: bbolt's own lock, taken by opening it read-only with a
// short timeout (a file too damaged for bbolt to open is taken as not held).
func Unlocked(path string) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	var locked bool
	_ = Recover(path, func() error {
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
		if errors.Is(err, bolterr.ErrTimeout) {
			locked = true
		} else if err == nil {
			db.Close()
		}
		return nil
	})
	if locked {
		return ErrLocked
	}
	return nil
}
