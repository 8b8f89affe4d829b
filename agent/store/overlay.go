package store

import (
	"bytes"

	"github.com/tidwall/btree"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// What the log holds and bbolt has not applied yet lives in memory, in
// layers: trees of bucket id + key → value or deletion that never change
// once published (a transaction takes one as it is and keeps it, whatever
// the writes after it do). The last layer is the one group commits add
// to; the applier freezes it (starts a new one) when it brings bbolt up to
// date, and drops the layers it applied once bbolt's commit is durable. A
// transaction reads its own writes first, then the layers from the newest,
// then bbolt.

// Bucket ids: the index of each bucket in allBuckets, the first byte of
// every key in the layers and the log.
const (
	idMeta byte = iota
	idEvents
	idCheckouts
	idMembers
	idCards
	idDays
	idToday
	idHistory
	idLog // the applier's own; never in a record
)

// item is a record of a layer: key (bucket id first), value, or a deletion.
type item struct {
	k, v []byte
	del  bool
}

func lessItem(a, b item) bool { return bytes.Compare(a.k, b.k) < 0 }

// tree is a layer's records: a B-tree whose Copy is lazy (copy on write),
// so that a transaction's snapshot costs nothing and a group commit's
// writes copy only the nodes they touch. Nodes are small (degree 16) for
// that copy to be cheap.
type tree = btree.BTreeG[item]

func newTree() *tree {
	return btree.NewBTreeGOptions(lessItem, btree.Options{Degree: 16, NoLocks: true})
}

// layer is the records of a run of log records, as they stand after them.
// Its tree is never changed once set: the leader writes to a copy.
type layer struct {
	tree  *tree
	lsn   uint64 // its last record; 0 while it has none
	since int64  // when its first record was logged (unix nanoseconds)
	bytes int    // the size of its records' payloads
}

func ovKey(b byte, key []byte) []byte {
	k := make([]byte, 1+len(key))
	k[0] = b
	copy(k[1:], key)
	return k
}

// get reads a record: the transaction's writes, the layers, bbolt.
func (tx *Tx) get(b byte, key []byte) []byte {
	k := item{k: ovKey(b, key)}
	if tx.w != nil {
		if it, ok := tx.w.Get(k); ok {
			return it.v
		}
	}
	for _, t := range tx.under {
		if it, ok := t.Get(k); ok {
			return it.v
		}
	}
	return tx.bucket(b).Get(key)
}

// put writes a record (a copy of v) in the transaction.
func (tx *Tx) put(b byte, key, v []byte) error {
	if tx.w == nil {
		return errReadOnly
	}
	if len(key) == 0 {
		return berrors.ErrKeyRequired
	}
	if len(key) > bolt.MaxKeySize {
		return berrors.ErrKeyTooLarge
	}
	if int64(len(v)) > bolt.MaxValueSize {
		return berrors.ErrValueTooLarge
	}
	tx.dirty = true
	key, v = bytes.Clone(key), append(make([]byte, 0, len(v)), v...)
	tx.w.Set(item{k: ovKey(b, key), v: v})
	*tx.ops = append(*tx.ops, op{bucket: b, key: key, value: v})
	return nil
}

// del deletes a record in the transaction.
func (tx *Tx) del(b byte, key []byte) error {
	if tx.w == nil {
		return errReadOnly
	}
	tx.dirty = true
	key = bytes.Clone(key)
	tx.w.Set(item{k: ovKey(b, key), del: true})
	*tx.ops = append(*tx.ops, op{bucket: b, key: key})
	return nil
}

// source is one ordered input of a merged scan.
type source struct {
	k, v    []byte
	ok      bool
	deleted bool
	next    func() (k, v []byte, deleted, ok bool)
}

func (s *source) advance() { s.k, s.v, s.deleted, s.ok = s.next() }

// sources are the transaction's inputs for bucket b, the first the one
// that wins, positioned at from (descending from the end when desc).
// Reading the transaction's own writes while the caller's callback may
// write more, a scan takes a copy of them (stable; a callback-free read
// such as first looks at them in place).
func (tx *Tx) sources(b byte, from []byte, desc, stable bool) []*source {
	trees := make([]*tree, 0, len(tx.under)+1)
	if tx.w != nil {
		if stable {
			trees = append(trees, tx.w.Copy())
		} else {
			trees = append(trees, tx.w)
		}
	}
	trees = append(trees, tx.under...)
	srcs := make([]*source, 0, len(trees)+1)
	for _, t := range trees {
		it := t.Iter()
		var ok bool
		if desc {
			if it.Seek(item{k: []byte{b + 1}}) {
				ok = it.Prev()
			} else {
				ok = it.Last()
			}
		} else {
			ok = it.Seek(item{k: ovKey(b, from)})
		}
		s := &source{}
		s.next = func() ([]byte, []byte, bool, bool) {
			if !ok {
				return nil, nil, false, false
			}
			i := it.Item()
			if i.k[0] != b {
				ok = false
				return nil, nil, false, false
			}
			if desc {
				ok = it.Prev()
			} else {
				ok = it.Next()
			}
			return i.k[1:], i.v, i.del, true
		}
		s.advance()
		srcs = append(srcs, s)
	}
	c := tx.bucket(b).Cursor()
	s := &source{}
	var k, v []byte
	if desc {
		k, v = c.Last()
		s.next = func() ([]byte, []byte, bool, bool) { k, v := c.Prev(); return k, v, false, k != nil }
	} else {
		if len(from) == 0 {
			k, v = c.First()
		} else {
			k, v = c.Seek(from)
		}
		s.next = func() ([]byte, []byte, bool, bool) { k, v := c.Next(); return k, v, false, k != nil }
	}
	s.k, s.v, s.ok = k, v, k != nil
	return append(srcs, s)
}

// merge calls fn for each record of srcs in key order (descending when
// desc), the first source's value winning for a key several hold, deleted
// records left out, until fn returns false.
func merge(srcs []*source, desc bool, fn func(k, v []byte) bool) {
	for {
		best := -1
		for i, s := range srcs {
			if !s.ok {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			c := bytes.Compare(s.k, srcs[best].k)
			if (!desc && c < 0) || (desc && c > 0) {
				best = i
			}
		}
		if best < 0 {
			return
		}
		k, v, deleted := srcs[best].k, srcs[best].v, srcs[best].deleted
		for _, s := range srcs {
			if s.ok && bytes.Equal(s.k, k) {
				s.advance()
			}
		}
		if !deleted && !fn(k, v) {
			return
		}
	}
}

// scan calls fn for each record of bucket b from from on, in key order,
// until fn returns false. The bytes are valid only during the call; fn may
// write.
func (tx *Tx) scan(b byte, from []byte, fn func(k, v []byte) bool) {
	merge(tx.sources(b, from, false, true), false, fn)
}

// first returns bucket b's first record at or after from (nil when none).
func (tx *Tx) first(b byte, from []byte) (k, v []byte) {
	if k, v, ok := tx.edge(b, from, false); ok {
		return k, v
	}
	merge(tx.sources(b, from, false, false), false, func(fk, fv []byte) bool { k, v = fk, fv; return false })
	return k, v
}

// last returns bucket b's last record (nil when it has none).
func (tx *Tx) last(b byte) (k, v []byte) {
	if k, v, ok := tx.edge(b, nil, true); ok {
		return k, v
	}
	merge(tx.sources(b, nil, true, false), true, func(lk, lv []byte) bool { k, v = lk, lv; return false })
	return k, v
}

// edge is first (or last, when desc) without a merge: the nearest record
// of each input, the nearest of them winning. It cannot answer (ok false)
// when the winner is a deletion: the record it hides may be any further on.
func (tx *Tx) edge(b byte, from []byte, desc bool) (k, v []byte, ok bool) {
	found, del := false, false
	consider := func(ck, cv []byte, cdel bool) {
		if !found || (!desc && bytes.Compare(ck, k) < 0) || (desc && bytes.Compare(ck, k) > 0) {
			k, v, del, found = ck, cv, cdel, true
		}
	}
	at := func(t *tree) {
		it := t.Iter()
		var ok bool
		if desc {
			if it.Seek(item{k: []byte{b + 1}}) {
				ok = it.Prev()
			} else {
				ok = it.Last()
			}
		} else {
			ok = it.Seek(item{k: ovKey(b, from)})
		}
		if ok {
			if i := it.Item(); i.k[0] == b {
				consider(i.k[1:], i.v, i.del)
			}
		}
	}
	if tx.w != nil {
		at(tx.w)
	}
	for _, t := range tx.under {
		at(t)
	}
	c := tx.bucket(b).Cursor()
	var bk, bv []byte
	switch {
	case desc:
		bk, bv = c.Last()
	case len(from) == 0:
		bk, bv = c.First()
	default:
		bk, bv = c.Seek(from)
	}
	if bk != nil {
		consider(bk, bv, false)
	}
	if del {
		return nil, nil, false
	}
	return k, v, true
}

// bucket is bbolt's bucket b in the transaction's read.
func (tx *Tx) bucket(b byte) *bolt.Bucket {
	if tx.buckets == nil {
		return tx.btx.Bucket(allBuckets[b])
	}
	if tx.buckets[b] == nil {
		tx.buckets[b] = tx.btx.Bucket(allBuckets[b])
	}
	return tx.buckets[b]
}
