package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLogSegment: any bytes read as a segment of the log are either refused
// (damage) or give records that verify, in LSN order without gaps, within
// the bytes; never a panic. The seeds are segments the store wrote: whole,
// with a torn tail, and with two records.
func FuzzLogSegment(f *testing.F) {
	old := segSize
	segSize = 16 << 10
	f.Cleanup(func() { segSize = old })
	dir := f.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range []string{"a", "bb", "a longer value"} {
		if err := s.Write(f.Context(), func(tx *Tx) error { return tx.SetMeta("k", v) }); err != nil {
			f.Fatal(err)
		}
	}
	epoch := ""
	_ = s.View(func(tx *Tx) error { epoch = tx.Meta("epoch"); return nil })
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, walDir, "*"+segSuffix))
	seg, err := os.ReadFile(segs[0])
	if err != nil {
		f.Fatal(err)
	}
	end := bytes.LastIndexFunc(seg, func(r rune) bool { return r != 0 }) + 1
	f.Add(seg[:end+8])
	f.Add(seg[:end-3])
	f.Add(seg[:segHeader])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := scanSegment(b, epoch)
		if err != nil || p == nil {
			return
		}
		if p.end > int64(len(b)) || p.end < segHeader {
			t.Fatalf("records end at %d of %d bytes", p.end, len(b))
		}
		for i, r := range p.recs {
			if r.lsn != p.first+uint64(i) {
				t.Fatalf("record %d has LSN %d, first %d", i, r.lsn, p.first)
			}
			if len(r.payload) == 0 {
				t.Fatalf("record %d is empty", i)
			}
		}
	})
}

// FuzzLogOps: a record's payload either decodes into operations that encode
// back to the same bytes or is refused; never a panic.
func FuzzLogOps(f *testing.F) {
	f.Add(appendOps(nil, []op{{bucket: idMeta, key: []byte("k"), value: []byte("v")}, {bucket: idToday, key: []byte("2026-12-03")}}))
	f.Add(appendOps(nil, []op{{bucket: idEvents, key: seqKey(7), value: []byte{}}}))
	f.Add([]byte{idHistory + 1, 1, 'k', 0})
	f.Add([]byte{0, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, err := decodeOps(b)
		if err != nil {
			return
		}
		if again := appendOps(nil, ops); !bytes.Equal(again, b) {
			// Uvarints have one shortest form; a longer one decodes too.
			if re, err := decodeOps(again); err != nil || len(re) != len(ops) {
				t.Fatalf("%x decodes to %d operations that encode to %x", b, len(ops), again)
			}
		}
	})
}
