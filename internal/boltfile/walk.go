package boltfile

import (
	"encoding/binary"
	"fmt"
	"os"
)

// Page layout of bbolt (internal/common/page.go): a 16-byte header (id,
// flags, count, overflow), then count elements of 16 bytes each.
const (
	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagFreelist = 0x10
	elementSize  = 16
	bucketLeaf   = 0x01 // a leaf element whose value is a bucket
	bucketHeader = 16   // a bucket value: root page, sequence; an inline page follows when root is 0
	maxDepth     = 64   // far deeper than any b+tree of a file this size
)

// walker reads every page reachable from the root bucket and the freelist
// with bounds checked, before bbolt's own consistency check: that check
// trusts page headers (a damaged overflow count makes it loop for billions
// of iterations and grow memory without end).
type walker struct {
	f       *os.File
	ps      int64
	hwm     uint64
	visited map[uint64]bool
	bufs    [][]byte // one per tree level, reused
}

func walk(f *os.File, m meta) error {
	w := &walker{f: f, ps: int64(m.pageSize), hwm: m.pgid, visited: map[uint64]bool{}}
	if m.freelist != noFreelist {
		if err := w.freelist(m.freelist); err != nil {
			return err
		}
	}
	return w.tree(m.root, 0)
}

// read returns page id and its overflow pages, after checking its header,
// in the buffer of tree level depth.
func (w *walker) read(id uint64, want uint16, depth int) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Errorf("a reference to page %d, outside its %d pages", id, w.hwm)
	}
	for len(w.bufs) <= depth {
		w.bufs = append(w.bufs, make([]byte, w.ps))
	}
	b := w.bufs[depth][:w.ps]
	if _, err := w.f.ReadAt(b, int64(id)*w.ps); err != nil {
		return nil, fmt.Errorf("page %d: %v", id, err)
	}
	le := binary.LittleEndian
	overflow := uint64(le.Uint32(b[12:]))
	switch {
	case le.Uint64(b) != id:
		return nil, fmt.Errorf("page %d says it is page %d", id, le.Uint64(b))
	case want != 0 && le.Uint16(b[8:]) != want:
		return nil, fmt.Errorf("page %d has type %#x where type %#x belongs", id, le.Uint16(b[8:]), want)
	case id+overflow >= w.hwm:
		return nil, fmt.Errorf("page %d runs %d pages past its end", id, overflow)
	}
	for p := id; p <= id+overflow; p++ {
		if w.visited[p] {
			return nil, fmt.Errorf("page %d is referenced twice", p)
		}
		w.visited[p] = true
	}
	if overflow > 0 {
		n := (1 + int64(overflow)) * w.ps
		if int64(cap(w.bufs[depth])) < n {
			w.bufs[depth] = make([]byte, n)
		}
		b = w.bufs[depth][:n]
		if _, err := w.f.ReadAt(b, int64(id)*w.ps); err != nil {
			return nil, fmt.Errorf("page %d: %v", id, err)
		}
	}
	return b, nil
}

func (w *walker) freelist(id uint64) error {
	b, err := w.read(id, flagFreelist, 0)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	le := binary.LittleEndian
	count, at := uint64(le.Uint16(b[10:])), pageHeader
	if count == 0xFFFF {
		count, at = le.Uint64(b[pageHeader:]), pageHeader+8
	}
	if count > uint64(len(b)-at)/8 {
		return fmt.Errorf("freelist page %d: %d entries do not fit in it", id, count)
	}
	for i := uint64(0); i < count; i++ {
		if p := le.Uint64(b[at+int(i)*8:]); p < 2 || p >= w.hwm {
			return fmt.Errorf("freelist page %d: a free page %d outside the file's %d pages", id, p, w.hwm)
		}
	}
	return nil
}

// tree checks the b+tree of a bucket whose root is page id.
func (w *walker) tree(id uint64, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("page %d: the tree is %d levels deep", id, depth)
	}
	le := binary.LittleEndian
	b, err := w.read(id, 0, depth)
	if err != nil {
		return err
	}
	flags := le.Uint16(b[8:])
	if flags != flagBranch && flags != flagLeaf {
		return fmt.Errorf("page %d has type %#x in a tree", id, flags)
	}
	if flags == flagLeaf {
		return w.leaf(b, id, depth)
	}
	count := int(le.Uint16(b[10:]))
	if pageHeader+count*elementSize > len(b) {
		return fmt.Errorf("branch page %d: %d elements do not fit in it", id, count)
	}
	for i := range count {
		e := pageHeader + i*elementSize
		pos, ksize := int(le.Uint32(b[e:])), int(le.Uint32(b[e+4:]))
		if e+pos+ksize > len(b) || e+pos < 0 {
			return fmt.Errorf("branch page %d: key %d outside the page", id, i)
		}
		if err := w.tree(le.Uint64(b[e+8:]), depth+1); err != nil {
			return err
		}
	}
	return nil
}

// leaf checks a leaf page (or an inline bucket's page) and the buckets it
// holds.
func (w *walker) leaf(b []byte, id uint64, depth int) error {
	le := binary.LittleEndian
	count := int(le.Uint16(b[10:]))
	if pageHeader+count*elementSize > len(b) {
		return fmt.Errorf("leaf page %d: %d elements do not fit in it", id, count)
	}
	for i := range count {
		e := pageHeader + i*elementSize
		flags, pos := le.Uint32(b[e:]), int(le.Uint32(b[e+4:]))
		ksize, vsize := int(le.Uint32(b[e+8:])), int(le.Uint32(b[e+12:]))
		start := e + pos
		if pos < 0 || ksize < 0 || vsize < 0 || start+ksize+vsize > len(b) || start+ksize+vsize < start {
			return fmt.Errorf("leaf page %d: element %d outside the page", id, i)
		}
		if flags&bucketLeaf == 0 {
			continue
		}
		v := b[start+ksize : start+ksize+vsize]
		if len(v) < bucketHeader {
			return fmt.Errorf("leaf page %d: bucket %d is %d bytes", id, i, len(v))
		}
		if root := le.Uint64(v); root != 0 {
			if err := w.tree(root, depth+1); err != nil {
				return err
			}
			continue
		}
		inline := v[bucketHeader:]
		if len(inline) < pageHeader || le.Uint16(inline[8:]) != flagLeaf {
			return fmt.Errorf("leaf page %d: inline bucket %d is not a leaf page", id, i)
		}
		if err := w.leaf(inline, id, depth+1); err != nil {
			return err
		}
	}
	return nil
}
