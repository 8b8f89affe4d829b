package store

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Kind names a bucket of JSON records.
type Kind int

// The kinds of JSON records.
const (
	Checkouts Kind = iota // checkout ref → its state and the first result of each operation on it
	Members               // member id → member record
	Cards                 // card number → card record
	Days                  // per-day records; the day's aggregates go through Tx.Day and Tx.PutDay
)

func (k Kind) bucket() []byte { return allBuckets[k.id()] }

func (k Kind) id() byte {
	return [...]byte{idCheckouts, idMembers, idCards, idDays}[k]
}

// Tx is a transaction on the ledger. Values read from it are copies and stay
// valid after the transaction ends.
//
// It reads bbolt's last commit (btx, read-only) under the layers of what the
// log holds and bbolt has not applied yet (under, newest first) and, in a
// write, its batch's own writes (w), which it also lists in ops for the log.
type Tx struct {
	btx   *bolt.Tx
	under []*tree
	w     *tree
	ops   *[]op
	// buckets are bbolt's buckets as the transaction opened them (nil: not
	// kept), shared by the writes of a batch.
	buckets *[idHistory + 1]*bolt.Bucket
	dirty   bool
	// late holds the records kept by Deferred, shared by the writes of one
	// transaction; nil in a read-only one.
	late *lateWrites
}

// lateWrites are the records of a transaction kept by Deferred, in the order
// they were first asked for.
type lateWrites []*lateWrite

type lateWrite struct {
	key   string
	v     any
	flush func(*Tx, any) error
}

// errReadOnly: Deferred in a read-only transaction.
var errReadOnly = errors.New("deferred write in a read-only transaction")

// Deferred returns the record kept under key until the transaction commits,
// calling load to read it the first time. The caller changes it in place,
// and flush writes it once, just before the commit. Writes sharing a commit
// (group commit) that each update the same record thus decode and store it
// once per commit instead of once each. While the transaction is open the
// record must be read through Deferred only. It counts as a write: an error
// returned after it aborts a shared transaction (see Store.Write).
func (tx *Tx) Deferred(key string, load func(*Tx) (any, error), flush func(*Tx, any) error) (any, error) {
	if tx.late == nil {
		return nil, errReadOnly
	}
	for _, w := range *tx.late {
		if w.key == key {
			tx.dirty = true
			return w.v, nil
		}
	}
	v, err := load(tx)
	if err != nil {
		return nil, err
	}
	*tx.late = append(*tx.late, &lateWrite{key: key, v: v, flush: flush})
	tx.dirty = true
	return v, nil
}

// flushLate writes the records kept by Deferred, in the order they were
// first asked for.
func (tx *Tx) flushLate() error {
	for _, w := range *tx.late {
		if err := w.flush(tx, w.v); err != nil {
			return fmt.Errorf("%s: %w", w.key, err)
		}
	}
	return nil
}

// Meta returns a metadata value ("" when unset).
func (tx *Tx) Meta(key string) string {
	return string(tx.get(idMeta, []byte(key)))
}

// MetaUint returns a numeric metadata value (0 when unset).
func (tx *Tx) MetaUint(key string) uint64 {
	v, _ := strconv.ParseUint(tx.Meta(key), 10, 64)
	return v
}

// SetMeta writes a metadata value.
func (tx *Tx) SetMeta(key, value string) error {
	return tx.put(idMeta, []byte(key), []byte(value))
}

// SetMetaUint writes a numeric metadata value.
func (tx *Tx) SetMetaUint(key string, v uint64) error {
	return tx.SetMeta(key, strconv.FormatUint(v, 10))
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// AppendEvent stores an encoded event under its sequence number. The caller
// keeps the sequence gapless; a sequence that exists already is an error.
func (tx *Tx) AppendEvent(seq uint64, encoded []byte) error {
	if tx.get(idEvents, seqKey(seq)) != nil {
		return fmt.Errorf("event %d exists already", seq)
	}
	return tx.put(idEvents, seqKey(seq), encoded)
}

// Event returns the encoded event with the given sequence, or nil.
func (tx *Tx) Event(seq uint64) []byte {
	return bytes.Clone(tx.get(idEvents, seqKey(seq)))
}

// Events calls fn for each encoded event with a sequence greater than after,
// in order, until fn returns false. The bytes passed to fn are valid only
// during the call.
func (tx *Tx) Events(after uint64, fn func(seq uint64, encoded []byte) bool) {
	tx.scan(idEvents, seqKey(after+1), func(k, v []byte) bool { return fn(binary.BigEndian.Uint64(k), v) })
}

func historyKey(epoch string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(epoch+"\x00"), seq)
}

// PutHistory keeps an event of an earlier ledger of this terminal; one kept
// already is left as it is.
func (tx *Tx) PutHistory(epoch string, seq uint64, encoded []byte) error {
	if tx.HasHistory(epoch, seq) {
		return nil
	}
	return tx.put(idHistory, historyKey(epoch, seq), encoded)
}

// HasHistory reports whether the event (epoch, seq) of an earlier ledger is
// kept.
func (tx *Tx) HasHistory(epoch string, seq uint64) bool {
	return tx.get(idHistory, historyKey(epoch, seq)) != nil
}

// HistoryEpochs returns the epochs of which events are kept, in order.
func (tx *Tx) HistoryEpochs() []string {
	var out []string
	for k, _ := tx.first(idHistory, nil); k != nil; {
		if len(k) < 9 || k[len(k)-9] != 0 {
			k, _ = tx.first(idHistory, append(bytes.Clone(k), 0))
			continue
		}
		ep := string(k[:len(k)-9])
		out = append(out, ep)
		// Past every key of this epoch.
		k, _ = tx.first(idHistory, append([]byte(ep), 1))
	}
	return out
}

// HistoryAfter calls fn for each kept event of epoch past after, in order,
// until fn returns false. The bytes are valid only during the call.
func (tx *Tx) HistoryAfter(epoch string, after uint64, fn func(seq uint64, encoded []byte) bool) {
	prefix := []byte(epoch + "\x00")
	tx.scan(idHistory, historyKey(epoch, after+1), func(k, v []byte) bool {
		if !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+8 {
			return false
		}
		return fn(binary.BigEndian.Uint64(k[len(prefix):]), v)
	})
}

// LastEvent returns the highest stored sequence and its encoded event (0 and
// nil when there is none).
func (tx *Tx) LastEvent() (uint64, []byte) {
	k, v := tx.last(idEvents)
	if k == nil {
		return 0, nil
	}
	return binary.BigEndian.Uint64(k), bytes.Clone(v)
}

// Get reads the record key of the given kind into v: with its
// UnmarshalBinary if it has one, else as JSON. It reports whether the record
// exists.
func (tx *Tx) Get(kind Kind, key string, v any) (bool, error) {
	b := tx.get(kind.id(), []byte(key))
	if b == nil {
		return false, nil
	}
	var err error
	if u, ok := v.(encoding.BinaryUnmarshaler); ok {
		err = u.UnmarshalBinary(b)
	} else {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return true, fmt.Errorf("%w: %s record %q: %v", ErrCorrupt, kind.bucket(), key, err)
	}
	return true, nil
}

// GetBytes returns the stored bytes of a record (a copy), or nil.
func (tx *Tx) GetBytes(kind Kind, key string) []byte {
	return bytes.Clone(tx.get(kind.id(), []byte(key)))
}

// PutBytes writes bytes as the record key of the given kind.
func (tx *Tx) PutBytes(kind Kind, key string, b []byte) error {
	return tx.put(kind.id(), []byte(key), b)
}

// Put writes v as the record key of the given kind: with its MarshalBinary
// if it has one, else as JSON.
func (tx *Tx) Put(kind Kind, key string, v any) error {
	var b []byte
	var err error
	if m, ok := v.(encoding.BinaryMarshaler); ok {
		b, err = m.MarshalBinary()
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return fmt.Errorf("encode %s record %q: %w", kind.bucket(), key, err)
	}
	return tx.put(kind.id(), []byte(key), b)
}

// MaxDayRecord is the largest day record (see PutDay) that stays inline in
// the root page: a quarter of a 4 KiB page, less bbolt's page and element
// headers and a YYYY-MM-DD key.
const MaxDayRecord = 4096/4 - 16 - 16 - len("2006-01-02")

// Day returns the aggregates PutDay stored for day (a copy), or nil.
func (tx *Tx) Day(day string) []byte {
	if k, v := tx.first(idToday, nil); k != nil && string(k) == day {
		return bytes.Clone(v)
	}
	return bytes.Clone(tx.get(idDays, []byte(day)))
}

// PutDay stores the aggregates of day, a record every checkout rewrites. The
// latest day's is kept apart, alone in its bucket: that small, bbolt keeps
// the bucket inside the root page, which every commit writes anyway, so the
// rewrite costs no page of its own; in the days bucket (once a few days are
// stored) it would cost a page and its parent on every checkout. The other
// days are moved there once, when the next day begins.
func (tx *Tx) PutDay(day string, b []byte) error {
	k, v := tx.first(idToday, nil)
	switch {
	case k != nil && string(k) == day:
		return tx.put(idToday, []byte(day), b)
	case k != nil && string(k) > day: // an earlier day (a clock set back)
		return tx.put(idDays, []byte(day), b)
	case k != nil:
		k, v = bytes.Clone(k), bytes.Clone(v)
		if err := tx.put(idDays, k, v); err != nil {
			return err
		}
		if err := tx.del(idToday, k); err != nil {
			return err
		}
	}
	// A record of the day in the days bucket (written by a version that
	// kept them all there) is the one the caller read and updated.
	if tx.get(idDays, []byte(day)) != nil {
		if err := tx.del(idDays, []byte(day)); err != nil {
			return err
		}
	}
	return tx.put(idToday, []byte(day), b)
}

// ForEachDay calls fn, in key order, for every record of the Days kind and
// the latest day's aggregates (which ForEach(Days) does not see), until fn
// returns an error. The bytes are valid only during the call.
func (tx *Tx) ForEachDay(fn func(key string, raw []byte) error) error {
	tk, tv := tx.first(idToday, nil)
	tk, tv = bytes.Clone(tk), bytes.Clone(tv)
	err := tx.ForEach(Days, func(k string, v []byte) error {
		if tk != nil && string(tk) < k {
			if err := fn(string(tk), tv); err != nil {
				return err
			}
			tk = nil
		}
		return fn(k, v)
	})
	if err == nil && tk != nil {
		err = fn(string(tk), tv)
	}
	return err
}

// ForEach calls fn for every record of a kind, in key order, until fn returns
// an error. The bytes are valid only during the call.
func (tx *Tx) ForEach(kind Kind, fn func(key string, raw []byte) error) error {
	var err error
	tx.scan(kind.id(), nil, func(k, v []byte) bool {
		err = fn(string(k), v)
		return err == nil
	})
	return err
}
