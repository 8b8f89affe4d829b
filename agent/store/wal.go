package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The write-ahead log: where an operation becomes durable. Each group commit
// is one record, appended to the current segment and made durable with one
// fdatasync; bbolt is the materialised state, brought up to date in batched
// commits off the checkout's path (see apply.go), and replayed from the log
// past its last applied record when the ledger opens.
//
// A segment is a file of segSize bytes written with zeros when it is made
// (a fresh one is prepared in the background before the current one fills),
// so an append overwrites blocks that exist and fdatasync writes data only,
// never the file's size or its block map: on ext4 the first write into an
// unwritten block costs a journal commit besides the data.
//
//	segment: header (segHeader bytes) then records, each padded to 8 bytes
//	header:  "LEDGWAL1" | first LSN u64 | segment size u64 | ledger epoch (16) | crc32c u32
//	record:  payload length u32 | crc32c u32 (of the LSN and payload) | LSN u64 | payload
//
// Records follow each other in LSN order without gaps, across segments. A
// record is written only once the one before it is durable, so only the
// last record of the log can be torn by a crash: a record that does not
// verify with nothing valid after it is a tail that was never acknowledged,
// and is cleared; one with a valid record after it is damage.
const (
	walDir      = "wal"
	segMagic    = "LEDGWAL1"
	segHeader   = 64
	recHeader   = 16
	prepName    = "prepared.tmp"
	segSuffix   = ".wal"
	maxSegments = 16 // applied segments past this many go even if head office has not acked them
	// maxRecord bounds one record: a group commit of maxBatch writes of a
	// few KB each is far below it.
	maxRecord = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segSize is a new segment's size: about 2,000 checkouts. (Tests make it
// smaller.)
var segSize int64 = 4 << 20

// segment is one file of the log.
type segment struct {
	path   string
	first  uint64 // LSN of its first record
	last   uint64 // LSN of its last record; first-1 when it has none
	maxSeq uint64 // the highest event sequence its records write
	size   int64  // its length: records end before it
	bytes  int64  // how much of it records use, header included
}

// wal is the open log. append is called by one goroutine at a time (the
// group commit's leader); status and trim may run beside it.
type wal struct {
	dir   string
	epoch string
	// fsync makes a segment's written bytes durable: fdatasync, or a
	// failure injected by tests.
	fsync func(*os.File) error

	mu     sync.Mutex // guards segs (the slice and the last segment's counters)
	segs   []*segment
	f      *os.File // the last segment, open for writing
	next   uint64   // LSN of the next record
	failed error    // a failure that left the log in a state not known: no append succeeds
	buf    []byte

	// prep delivers the segment prepared in the background (one at a
	// time); nil while none is being prepared.
	prep chan prepared
}

type prepared struct {
	f   *os.File
	err error
}

// logRecord is a record read back.
type logRecord struct {
	lsn     uint64
	payload []byte
}

// segName is the file name of the segment whose first record is lsn.
func segName(lsn uint64) string { return fmt.Sprintf("%016x%s", lsn, segSuffix) }

func pad8(n int) int { return (n + 7) &^ 7 }

// encodeSegHeader is the header of a segment.
func encodeSegHeader(first uint64, size int64, epoch string) []byte {
	h := make([]byte, segHeader)
	copy(h, segMagic)
	binary.LittleEndian.PutUint64(h[8:], first)
	binary.LittleEndian.PutUint64(h[16:], uint64(size))
	copy(h[24:40], epoch)
	binary.LittleEndian.PutUint32(h[40:], crc32.Checksum(h[:40], castagnoli))
	return h
}

// recordCRC is the checksum a record carries.
func recordCRC(lsn uint64, payload []byte) uint32 {
	var l [8]byte
	binary.LittleEndian.PutUint64(l[:], lsn)
	return crc32.Update(crc32.Checksum(l[:], castagnoli), castagnoli, payload)
}

// parsedSegment is what scanSegment found in a segment's bytes.
type parsedSegment struct {
	first uint64
	size  int64
	recs  []logRecord
	end   int64 // where the records end (the offset of the next one)
	// torn: bytes past end that are not zeros, with no valid record among
	// them: a tail that was never acknowledged, to be cleared.
	torn bool
}

// errLogDamage is a log that cannot be read without losing a record that
// was acknowledged.
var errLogDamage = errors.New("log damaged")

// scanSegment reads a segment's records. A header of zeros is a segment
// made but never written (nil, nil). epoch is the ledger's; a segment of
// another is damage.
func scanSegment(b []byte, epoch string) (*parsedSegment, error) {
	if len(b) < segHeader {
		if len(bytes.Trim(b, "\x00")) == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: a segment of %d bytes, shorter than its header", errLogDamage, len(b))
	}
	h := b[:segHeader]
	if len(bytes.Trim(h, "\x00")) == 0 {
		if len(bytes.Trim(b, "\x00")) == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: a segment without its header", errLogDamage)
	}
	if string(h[:8]) != segMagic || binary.LittleEndian.Uint32(h[40:]) != crc32.Checksum(h[:40], castagnoli) {
		return nil, fmt.Errorf("%w: a segment's header does not verify", errLogDamage)
	}
	if got := string(bytes.TrimRight(h[24:40], "\x00")); got != epoch {
		return nil, fmt.Errorf("%w: a segment of another ledger (epoch %q, this ledger's is %q)", errLogDamage, got, epoch)
	}
	p := &parsedSegment{first: binary.LittleEndian.Uint64(h[8:]), size: int64(binary.LittleEndian.Uint64(h[16:]))}
	if p.first == 0 {
		return nil, fmt.Errorf("%w: a segment starting at record 0", errLogDamage)
	}
	off := segHeader
	want := p.first
	for {
		payload, ok := recordAt(b, off, want)
		if !ok {
			break
		}
		p.recs = append(p.recs, logRecord{lsn: want, payload: payload})
		off += recHeader + pad8(len(payload))
		want++
	}
	p.end = int64(off)
	rest := b[off:]
	if len(bytes.Trim(rest, "\x00")) == 0 {
		return p, nil
	}
	// Something past the last record: torn, unless a valid record follows.
	for q := off + 8; q+recHeader <= len(b); q += 8 {
		lsn := binary.LittleEndian.Uint64(b[q+8:])
		if lsn < want || lsn > want+1<<20 {
			continue
		}
		if _, ok := recordAt(b, q, lsn); ok {
			return nil, fmt.Errorf("%w: record %d does not verify and record %d after it does", errLogDamage, want, lsn)
		}
	}
	p.torn = true
	return p, nil
}

// recordAt returns the payload of the record at off if it is there whole,
// verifies and has the given LSN.
func recordAt(b []byte, off int, lsn uint64) ([]byte, bool) {
	if off+recHeader > len(b) {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint32(b[off:]))
	if n == 0 || n > maxRecord || off+recHeader+n > len(b) {
		return nil, false
	}
	if binary.LittleEndian.Uint64(b[off+8:]) != lsn {
		return nil, false
	}
	payload := b[off+recHeader : off+recHeader+n]
	if recordCRC(lsn, payload) != binary.LittleEndian.Uint32(b[off+4:]) {
		return nil, false
	}
	return payload, true
}

// openWAL opens the log in dir/wal of the ledger with the given epoch whose
// bbolt state has applied every record up to applied, and returns the
// records past it, to be replayed. fresh says the ledger has no log yet (a
// new ledger or one of an earlier schema): one is made. A log missing or
// damaged so that records bbolt has not applied may be lost is refused;
// every check comes before the log is written to.
func openWAL(dir, epoch string, applied uint64, fresh bool) (*wal, []logRecord, error) {
	w := &wal{dir: filepath.Join(dir, walDir), epoch: epoch, fsync: fdatasync}
	if fresh {
		if err := os.Mkdir(w.dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, nil, fmt.Errorf("log: %w", err)
		}
	}
	if err := os.Chmod(w.dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("%w: %s is missing (the log of a ledger that has applied %d records)", errLogDamage, w.dir, applied)
		}
		return nil, nil, fmt.Errorf("log: %w", err)
	}
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("log: %w", err)
	}
	var names []string
	for _, e := range entries {
		switch name := e.Name(); {
		case name == prepName:
			_ = os.Remove(filepath.Join(w.dir, name))
		case strings.HasSuffix(name, segSuffix):
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var replay []logRecord
	var tornAt int64 = -1
	var blank []string // segments made but never written, at the end
	for _, name := range names {
		path := filepath.Join(w.dir, name)
		if err := os.Chmod(path, fileMode); err != nil {
			return nil, nil, fmt.Errorf("log: %w", err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("log: %w", err)
		}
		p, err := scanSegment(b, epoch)
		if err != nil {
			return nil, nil, fmt.Errorf("%w (%s)", err, name)
		}
		if p == nil {
			blank = append(blank, path)
			continue
		}
		if len(blank) > 0 || tornAt >= 0 {
			return nil, nil, fmt.Errorf("%w: segment %s follows one that ends early", errLogDamage, name)
		}
		if want := strings.TrimSuffix(name, segSuffix); want != fmt.Sprintf("%016x", p.first) {
			return nil, nil, fmt.Errorf("%w: segment %s starts at record %d", errLogDamage, name, p.first)
		}
		if n := len(w.segs); n > 0 && w.segs[n-1].last+1 != p.first {
			return nil, nil, fmt.Errorf("%w: records %d to %d are missing", errLogDamage, w.segs[n-1].last+1, p.first-1)
		}
		seg := &segment{path: path, first: p.first, last: p.first - 1, size: int64(len(b)), bytes: p.end}
		for _, r := range p.recs {
			ops, err := decodeOps(r.payload)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: record %d: %v", errLogDamage, r.lsn, err)
			}
			seg.last = r.lsn
			seg.maxSeq = max(seg.maxSeq, maxEventSeq(ops))
			if r.lsn > applied {
				replay = append(replay, logRecord{lsn: r.lsn, payload: bytes.Clone(r.payload)})
			}
		}
		w.segs = append(w.segs, seg)
		if p.torn {
			tornAt = p.end
		}
	}
	if len(w.segs) == 0 {
		if !fresh && applied > 0 {
			return nil, nil, fmt.Errorf("%w: no segment in %s (the log of a ledger that has applied %d records)", errLogDamage, w.dir, applied)
		}
	} else if first := w.segs[0].first; first > applied+1 {
		return nil, nil, fmt.Errorf("%w: the ledger has applied records up to %d and the log starts at %d: the ledger file lost commits", errLogDamage, applied, first)
	}
	// Checks done; the log is written from here on: blank segments go, a
	// torn tail is cleared, and a log behind bbolt (its last records lost
	// after bbolt applied them) continues in a new segment.
	for _, path := range blank {
		if err := os.Remove(path); err != nil {
			return nil, nil, fmt.Errorf("log: %w", err)
		}
	}
	w.next = applied + 1
	if n := len(w.segs); n > 0 {
		seg := w.segs[n-1]
		if seg.last+1 >= w.next {
			w.next = seg.last + 1
			f, err := os.OpenFile(seg.path, os.O_RDWR, fileMode)
			if err != nil {
				return nil, nil, fmt.Errorf("log: %w", err)
			}
			w.f = f
			if tornAt >= 0 {
				if err := w.clear(tornAt, seg.size); err != nil {
					f.Close()
					return nil, nil, fmt.Errorf("log: clearing a torn tail: %w", err)
				}
			}
		}
	}
	if w.f == nil {
		if err := w.roll(0); err != nil {
			return nil, nil, err
		}
	}
	return w, replay, nil
}

// clear writes zeros over [from, to) of the last segment and syncs them.
func (w *wal) clear(from, to int64) error {
	if from >= to {
		return nil
	}
	for off := from; off < to; off += int64(len(zeros)) {
		n := min(int64(len(zeros)), to-off)
		if _, err := w.f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
	}
	return w.fsync(w.f)
}

// prepare makes a segment file of zeros in the background; roll takes it.
func (w *wal) prepare(size int64) {
	ch := make(chan prepared, 1)
	w.prep = ch
	go func() {
		f, err := makeSegment(filepath.Join(w.dir, prepName), size)
		ch <- prepared{f: f, err: err}
	}()
}

// makeSegment writes a file of size zeros and syncs it.
func makeSegment(path string, size int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		return nil, err
	}
	for off := int64(0); off < size; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
			f.Close()
			_ = os.Remove(path)
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	return f, nil
}

// roll starts a new segment for records from w.next on, at least big
// enough for a record of need bytes, with its header written (made durable
// with the first record's sync).
func (w *wal) roll(need int) error {
	size := max(segSize, int64(segHeader+need))
	var f *os.File
	var err error
	if w.prep != nil {
		p := <-w.prep
		w.prep = nil
		f, err = p.f, p.err
		if err == nil {
			if st, serr := f.Stat(); serr != nil || st.Size() < size {
				f.Close()
				f = nil
			}
		}
	}
	if f == nil && err == nil {
		f, err = makeSegment(filepath.Join(w.dir, prepName), size)
	}
	if err != nil {
		if full(err) {
			return fmt.Errorf("%w: a new log segment: %v", ErrDiskFull, err)
		}
		return fmt.Errorf("log: a new segment: %w", err)
	}
	path := filepath.Join(w.dir, segName(w.next))
	if err := os.Rename(filepath.Join(w.dir, prepName), path); err != nil {
		f.Close()
		return fmt.Errorf("log: %w", err)
	}
	// The name must be durable before any record in the file is
	// acknowledged.
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return fmt.Errorf("log: %w", err)
	}
	if _, err := f.WriteAt(encodeSegHeader(w.next, size, w.epoch), 0); err != nil {
		f.Close()
		return fmt.Errorf("log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("log: %w", err)
	}
	if w.f != nil {
		_ = w.f.Close()
	}
	w.mu.Lock()
	w.f = f
	w.segs = append(w.segs, &segment{path: path, first: w.next, last: w.next - 1, size: st.Size(), bytes: segHeader})
	w.mu.Unlock()
	return nil
}

// syncDir makes the directory's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// append writes one record and makes it durable; maxSeq is the highest
// event sequence it writes (0: none). On a failure the record is cleared
// again (zeros, synced) so that it never comes back at the next open; if
// even that fails, the log refuses every further record until the ledger
// is reopened.
func (w *wal) append(payload []byte, maxSeq uint64) (uint64, error) {
	if w.failed != nil {
		return 0, w.failed
	}
	need := recHeader + pad8(len(payload))
	if len(payload) == 0 || len(payload) > maxRecord {
		return 0, fmt.Errorf("log: a record of %d bytes", len(payload))
	}
	seg := w.last()
	// Prepare the next segment once this one is half used.
	if w.prep == nil && seg.bytes+int64(need) > seg.size/2 {
		w.prepare(segSize)
	}
	if seg.bytes+int64(need) > seg.size {
		if err := w.roll(need); err != nil {
			return 0, err
		}
		seg = w.last()
	}
	lsn := w.next
	w.buf = append(w.buf[:0], make([]byte, recHeader)...)
	binary.LittleEndian.PutUint32(w.buf, uint32(len(payload)))
	binary.LittleEndian.PutUint32(w.buf[4:], recordCRC(lsn, payload))
	binary.LittleEndian.PutUint64(w.buf[8:], lsn)
	w.buf = append(w.buf, payload...)
	w.buf = append(w.buf, zeros[:need-recHeader-len(payload)]...)
	off := seg.bytes
	written, err := pwrite(w.f, w.buf, off)
	if err == nil {
		err = w.fsync(w.f)
	}
	if err != nil {
		// What reached the file is cleared: all of it when the sync
		// failed, the part written when the write stopped short (a file
		// size limit, a full disk).
		if cerr := w.clear(off, off+int64(written)); cerr != nil {
			w.failed = fmt.Errorf("the ledger's log failed (%v) and could not be cleared (%v): restart pos-agent", err, cerr)
		}
		if full(err) {
			return 0, fmt.Errorf("%w: %v", ErrDiskFull, err)
		}
		return 0, fmt.Errorf("log: %w", err)
	}
	w.mu.Lock()
	seg.bytes += int64(need)
	seg.last = lsn
	seg.maxSeq = max(seg.maxSeq, maxSeq)
	w.mu.Unlock()
	w.next++
	return lsn, nil
}

// last is the segment being written. Only append changes its counters, but
// trim shortens the slice beside it.
func (w *wal) last() *segment {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.segs[len(w.segs)-1]
}

// trim removes the segments whose records bbolt has applied and whose
// events head office has acked (or, past maxSegments, applied only); the
// segment being written stays.
func (w *wal) trim(applied, acked uint64) error {
	w.mu.Lock()
	var gone []string
	for len(w.segs) > 1 {
		s := w.segs[0]
		if s.last > applied || (s.maxSeq > acked && len(w.segs) <= maxSegments) {
			break
		}
		gone = append(gone, s.path)
		w.segs = w.segs[1:]
	}
	w.mu.Unlock()
	if len(gone) == 0 {
		return nil
	}
	for _, p := range gone {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return syncDir(w.dir)
}

// LogStatus is the state of the ledger's log.
type LogStatus struct {
	Segments int    `json:"segments"`
	Bytes    int64  `json:"bytes"`   // the segments' size on disk
	Used     int64  `json:"used"`    // of which records
	Logged   uint64 `json:"logged"`  // the last record written
	Applied  uint64 `json:"applied"` // the last record bbolt has applied
	LagMS    int64  `json:"lag_ms"`  // how long the oldest record bbolt has not applied has waited
	Failed   string `json:"failed,omitempty"`
}

func (w *wal) status() LogStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := LogStatus{Segments: len(w.segs)}
	for _, s := range w.segs {
		st.Bytes += s.size
		st.Used += s.bytes
	}
	if n := len(w.segs); n > 0 {
		st.Logged = w.segs[n-1].last
	}
	if w.failed != nil {
		st.Failed = w.failed.Error()
	}
	return st
}

// close ends the log's use: the prepared segment is dropped.
func (w *wal) close() error {
	if w.prep != nil {
		if p := <-w.prep; p.f != nil {
			p.f.Close()
			_ = os.Remove(filepath.Join(w.dir, prepName))
		}
		w.prep = nil
	}
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// Ops: what a record says to do to bbolt, in order.
//
//	op: bucket u8 | key length uvarint | key | value length+1 uvarint (0: delete) | value
type op struct {
	bucket byte
	key    []byte
	value  []byte // nil: delete
}

func appendOps(b []byte, ops []op) []byte {
	for _, o := range ops {
		b = append(b, o.bucket)
		b = binary.AppendUvarint(b, uint64(len(o.key)))
		b = append(b, o.key...)
		if o.value == nil {
			b = binary.AppendUvarint(b, 0)
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(o.value))+1)
		b = append(b, o.value...)
	}
	return b
}

// decodeOps reads a record's payload. The slices point into b.
func decodeOps(b []byte) ([]op, error) {
	var ops []op
	for len(b) > 0 {
		bucket := b[0]
		if bucket >= idLog {
			return nil, fmt.Errorf("bucket %d unknown", bucket)
		}
		b = b[1:]
		kn, n := binary.Uvarint(b)
		if n <= 0 || kn == 0 || kn > uint64(len(b)-n) {
			return nil, errors.New("a key cut short")
		}
		key := b[n : n+int(kn)]
		b = b[n+int(kn):]
		vn, n := binary.Uvarint(b)
		if n <= 0 || (vn > 0 && vn-1 > uint64(len(b)-n)) {
			return nil, errors.New("a value cut short")
		}
		b = b[n:]
		o := op{bucket: bucket, key: key}
		if vn > 0 {
			o.value = b[: vn-1 : vn-1]
			b = b[vn-1:]
		}
		ops = append(ops, o)
	}
	return ops, nil
}

// maxEventSeq is the highest event sequence ops write.
func maxEventSeq(ops []op) uint64 {
	var m uint64
	for _, o := range ops {
		if o.bucket == idEvents && len(o.key) == 8 {
			m = max(m, binary.BigEndian.Uint64(o.key))
		}
	}
	return m
}

// walApplied is the key (in the log bucket) of the last record bbolt has
// applied.
const walApplied = "wal_applied"

func parseApplied(v []byte) uint64 {
	n, _ := strconv.ParseUint(string(v), 10, 64)
	return n
}
