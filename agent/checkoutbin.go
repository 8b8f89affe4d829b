package agent

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
)

// Checkout records are written by every operation, one new record per
// checkout, and group commit puts the checkouts of concurrent clients into
// the same commit: the smaller they are, the fewer pages of the checkouts
// tree a commit rewrites. They are stored in the binary form of member
// records (see memberbin.go), about two thirds of their JSON: a version
// byte, then each field in declaration order, the results last, each the
// JSON answer a retry gets back. Records written as JSON by earlier versions
// still read; they are rewritten in binary on their next update.
const checkoutBinV1 = 1

// MarshalBinary encodes the record (store.Tx.Put uses it).
func (c *checkoutRecord) MarshalBinary() ([]byte, error) {
	e := recEncoder{b: make([]byte, 0, 256)}
	e.b = append(e.b, checkoutBinV1)
	e.str(c.Ref)
	e.str(c.Member)
	e.str(c.Card)
	e.str(c.EarnEvent)
	e.str(c.Day)
	e.time(c.Time)
	e.int(c.Amount)
	e.int(c.Earned)
	e.int(c.Burned)
	e.int(c.Refunded)
	e.int(c.Clawed)
	e.bool(c.Voided)
	e.uint(uint64(len(c.Results)))
	// Each result is json.Marshal's output or was checked when its record
	// was read (results): it is not checked again here.
	for _, k := range slices.Sorted(maps.Keys(c.Results)) {
		e.str(k)
		e.str(string(c.Results[k]))
	}
	return e.b, e.err
}

// UnmarshalBinary decodes a record MarshalBinary wrote, or the JSON of an
// earlier version.
func (c *checkoutRecord) UnmarshalBinary(b []byte) error {
	d, err := openRecord(b, checkoutBinV1, c)
	if d == nil {
		return err
	}
	var r checkoutRecord
	r.Ref = d.str()
	r.Member = d.str()
	r.Card = d.str()
	r.EarnEvent = d.str()
	r.Day = d.str()
	r.Time = d.time()
	r.Amount = d.int()
	r.Earned = d.int()
	r.Burned = d.int()
	r.Refunded = d.int()
	r.Clawed = d.int()
	r.Voided = d.bool()
	r.Results = d.results()
	if err := d.end(); err != nil {
		return err
	}
	*c = r
	return nil
}

// results reads the answers of a checkout's operations: in key order, each
// once, each valid JSON (a retry hands it out as it is). The bytes are
// copied: the record being decoded may be the store's own memory.
func (d *recDecoder) results() map[string]json.RawMessage {
	n := d.uint()
	if n == 0 || d.err != nil {
		return nil
	}
	if n > uint64(len(d.b))/3 { // each takes three bytes at least
		d.fail("results")
		return nil
	}
	m := make(map[string]json.RawMessage, n)
	prev := ""
	for i := range n {
		k := d.str()
		v := d.bytes("result")
		if d.err != nil || (i > 0 && k <= prev) || !json.Valid(v) {
			d.fail("results")
			return nil
		}
		m[k], prev = bytes.Clone(v), k
	}
	return m
}
