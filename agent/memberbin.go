package agent

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/offline-loyalty/terminal/rules"
)

// Member records are read and rewritten by every operation, so they are
// stored in a compact binary form rather than JSON (decoding and encoding it
// cost about a fifth of an earn's transaction function, a tenth of its CPU):
// a version byte, then each field in declaration order. Records written as
// JSON by earlier versions still read; they are rewritten in binary on their
// next update. BenchmarkRecordCodecs measures both forms side by side
// (JSON 4.4x the time and 2.2x the bytes of a member's, 3.7x and 1.5x of a
// checkout's), and testdata/records holds what each version wrote.
const memberBinV1 = 1

// errRecord is a binary record that cannot be read.
var errRecord = errors.New("unreadable record")

// MarshalBinary encodes the record (store.Tx.Put uses it).
func (m *memberRecord) MarshalBinary() ([]byte, error) {
	e := recEncoder{b: make([]byte, 0, 256)}
	e.b = append(e.b, memberBinV1)
	e.str(m.ID)
	e.str(m.Name)
	e.str(m.Email)
	e.str(m.Phone)
	e.bool(m.Consent)
	e.str(m.Tier)
	e.str(m.Status)
	e.strs(m.Cards)
	e.int(m.Base)
	e.time(m.BaseAt)
	e.uint(m.AsOfSeq)
	e.int(m.Pending)
	e.int(m.Balance)
	e.int(m.Spend12m)
	e.int(m.Lifetime)
	e.time(m.LastVisit)
	e.time(m.Enrolled)
	e.int(m.Checkouts)
	e.str(m.LastDay)
	e.str(m.BurnDay)
	e.int(m.BurnedDay)
	e.time(m.RedeemOpen)
	e.str(m.Birthday)
	e.counts(m.Lots)
	e.counts(m.Months)
	e.time(m.TierSince)
	return e.b, e.err
}

// UnmarshalBinary decodes a record MarshalBinary wrote, or the JSON of an
// earlier version.
func (m *memberRecord) UnmarshalBinary(b []byte) error {
	d, err := openRecord(b, memberBinV1, m)
	if d == nil {
		return err
	}
	var r memberRecord
	r.ID = d.str()
	r.Name = d.str()
	r.Email = d.str()
	r.Phone = d.str()
	r.Consent = d.bool()
	r.Tier = d.str()
	r.Status = d.str()
	r.Cards = d.strs()
	r.Base = d.int()
	r.BaseAt = d.time()
	r.AsOfSeq = d.uint()
	r.Pending = d.int()
	r.Balance = d.int()
	r.Spend12m = d.int()
	r.Lifetime = d.int()
	r.LastVisit = d.time()
	r.Enrolled = d.time()
	r.Checkouts = d.int()
	r.LastDay = d.str()
	r.BurnDay = d.str()
	r.BurnedDay = d.int()
	r.RedeemOpen = d.time()
	r.Birthday = d.str()
	r.Lots = rules.Lots(d.counts())
	r.Months = d.counts()
	r.TierSince = d.time()
	if err := d.end(); err != nil {
		return err
	}
	*m = r
	return nil
}

// openRecord starts reading a stored record: the JSON of an earlier
// version is decoded into v whole (no decoder then); the binary form of
// version gets a decoder for its fields.
func openRecord[T any](b []byte, version byte, v *T) (*recDecoder, error) {
	if len(b) > 0 && b[0] == '{' {
		var p T // encoding/json ignores the binary methods
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, err
		}
		*v = p
		return nil, nil
	}
	if len(b) == 0 || b[0] != version {
		return nil, fmt.Errorf("%w: unknown format", errRecord)
	}
	return &recDecoder{b: b[1:]}, nil
}

// end is the error of the record read, if any: a field that could not be
// read, or bytes left past its last.
func (d *recDecoder) end() error {
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%w: %d bytes past its end", errRecord, len(d.b))
	}
	return d.err
}

// recEncoder appends fields: integers as varints, strings length-prefixed.
type recEncoder struct {
	b   []byte
	err error
}

func (e *recEncoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *recEncoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }

func (e *recEncoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *recEncoder) str(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

// strs writes nil as 0 and a list of n (empty included) as n+1, so that nil
// and empty stay apart as they do in JSON.
func (e *recEncoder) strs(ss []string) {
	if ss == nil {
		e.uint(0)
		return
	}
	e.uint(uint64(len(ss)) + 1)
	for _, s := range ss {
		e.str(s)
	}
}

// counts writes a map in key order; an empty map reads back as nil, as the
// JSON (omitempty) did.
func (e *recEncoder) counts(m map[string]int64) {
	e.uint(uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		e.str(k)
		e.int(m[k])
	}
}

// time keeps the instant and the zone offset (JSON kept the offset to the
// minute only).
func (e *recEncoder) time(t time.Time) {
	if y := t.Year(); (y < 0 || y > 9999) && e.err == nil {
		e.err = fmt.Errorf("time %s: year outside 0-9999", t)
	}
	_, offset := t.Zone()
	e.int(t.Unix())
	e.uint(uint64(t.Nanosecond()))
	e.int(int64(offset))
}

// recDecoder reads what recEncoder wrote; after the first error every read
// returns a zero value and the error stays.
type recDecoder struct {
	b   []byte
	err error
}

func (d *recDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", errRecord, what)
	}
	d.b = nil
}

func (d *recDecoder) uint() uint64 { return readVarint(d, binary.Uvarint) }
func (d *recDecoder) int() int64   { return readVarint(d, binary.Varint) }

// readVarint reads a number with read (binary.Uvarint or binary.Varint).
func readVarint[T uint64 | int64](d *recDecoder, read func([]byte) (T, int)) T {
	v, n := read(d.b)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recDecoder) bool() bool {
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail("flag")
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

// bytes returns the next length-prefixed field.
func (d *recDecoder) bytes(what string) []byte {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *recDecoder) str() string { return string(d.bytes("text")) }

func (d *recDecoder) strs() []string {
	n := d.uint()
	if n == 0 || d.err != nil {
		return nil
	}
	if n-1 > uint64(len(d.b)) { // each takes a byte at least
		d.fail("list")
		return nil
	}
	ss := make([]string, n-1)
	for i := range ss {
		ss[i] = d.str()
	}
	return ss
}

func (d *recDecoder) counts() map[string]int64 {
	n := d.uint()
	if n == 0 || d.err != nil {
		return nil
	}
	if n > uint64(len(d.b))/2 { // each takes two bytes at least
		d.fail("counts")
		return nil
	}
	m := make(map[string]int64, n)
	prev := ""
	for i := range n {
		k := d.str()
		if i > 0 && k <= prev { // written in key order, each once
			d.fail("counts")
			return nil
		}
		m[k], prev = d.int(), k
	}
	return m
}

// time returns the instant in UTC for a zero offset, in the local zone if
// that has the offset then, else in a fixed zone: as time.Parse does.
func (d *recDecoder) time() time.Time {
	sec, nsec, offset := d.int(), d.uint(), d.int()
	if d.err != nil || nsec >= 1e9 || offset <= -86400 || offset >= 86400 {
		d.fail("time")
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	switch {
	case offset == 0:
		t = t.UTC()
	case zoneOffset(t.In(time.Local)) == int(offset):
		t = t.In(time.Local)
	default:
		t = t.In(time.FixedZone("", int(offset)))
	}
	// Years JSON cannot show (nor a clock or head office give) are damage.
	if y := t.Year(); y < 0 || y > 9999 {
		d.fail("time")
		return time.Time{}
	}
	return t
}

func zoneOffset(t time.Time) int {
	_, offset := t.Zone()
	return offset
}
