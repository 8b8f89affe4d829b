// Package store keeps the terminal's ledger in one bbolt file: events, members,
// cards, idempotency records, stats aggregates and sync cursors.
//
// It is the only package that imports bbolt. It provides typed reads and
// writes inside transactions and group commit; it decides nothing
// about points. Every write goes through Write, which commits (fsync) before it
// returns, so a caller told "done" survives a crash or power cut.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/offline-loyalty/terminal/internal/boltfile"
)

// FileName is the ledger file inside the data directory.
const FileName = "ledger.db"

const (
	// lockTimeout bounds the wait for bbolt's file lock, so a second agent on
	// the same directory fails fast instead of hanging.
	lockTimeout = time.Second
	// maxBatch caps how many writes share one commit; past it a queue of
	// writers is drained over several commits so none waits unboundedly.
	maxBatch = 256
	// linger is the longest a leader waits for more writes when the last
	// commit was shared by several writers: concurrent clients are then
	// mid-round-trip, and a short wait lets one commit serve them all. A
	// lone writer (last batch of one) never waits.
	linger = 300 * time.Microsecond
	// appendFill is how full the event pages are left when they split.
	appendFill = 0.95
	// fileMode: ledger files hold member data and are private to the owner.
	fileMode = 0o600
	// schemaVersion is written at creation and checked at open. Version 2
	// stores member records in binary, version 3 checkout records too, which
	// a program of an earlier version cannot read: it refuses the file at
	// open instead of failing record by record. Version 4 has a write-ahead
	// log beside the file that holds what bbolt has not applied yet, which an
	// earlier program would not read. A file of an earlier version is
	// upgraded when opened (its JSON records still read, a log is made).
	schemaVersion = "4"
)

// Errors returned by Open.
var (
	ErrLocked  = errors.New("data directory is in use by another pos-agent")
	ErrCorrupt = errors.New("ledger file is damaged")
	ErrClosed  = errors.New("store is closed")
	// ErrDiskFull is a commit the disk had no room for (or the process's
	// file size limit): nothing of it was written.
	ErrDiskFull = errors.New("no room on the disk for the ledger")
)

// Bucket names. They are few on purpose: each bucket an operation touches is
// at least one more page written and synced per commit.
var (
	bMeta      = []byte("meta")
	bEvents    = []byte("events")
	bCheckouts = []byte("checkouts")
	bMembers   = []byte("members")
	bCards     = []byte("cards")
	bDays      = []byte("days")
	// bToday holds the latest day's aggregates alone (see Tx.PutDay).
	bToday = []byte("today")
	// bHistory holds the events of the terminal's earlier ledgers (epochs),
	// kept by a repair and refilled from head office, by epoch and sequence.
	bHistory = []byte("history")
	// bLog holds where bbolt stands in the write-ahead log: two small
	// records, in a bucket of their own so that it stays inline in the
	// root page that every commit writes (in meta, every commit of the
	// applier would rewrite meta's pages, the rules document's among them).
	bLog       = []byte("log")
	allBuckets = [][]byte{bMeta, bEvents, bCheckouts, bMembers, bCards, bDays, bToday, bHistory, bLog}
	// addedBuckets came after the first files of schema 1 and are created
	// when missing; an older program ignores them.
	addedBuckets = [][]byte{bToday, bHistory, bLog}
)

// Store is an open ledger: the bbolt file and its write-ahead log.
type Store struct {
	db       *bolt.DB
	path     string
	onCommit func()
	log      *wal

	mu      sync.Mutex
	queue   []*request // writes waiting, the first one committing or about to
	closed  bool
	drained *sync.Cond // signalled when the queue empties
	// last is the size of the last batch; while a leader lingers for more
	// writes, each new one signals grew.
	last      int
	lingering bool
	grew      chan struct{}

	// lmu guards the layers (overlay.go), oldest first, the last the one
	// group commits add to, and the applier's state.
	lmu    sync.Mutex
	layers []*layer
	// master is the active layer's records as the last group commit left
	// them, which the next one copies and writes to (the leader's alone).
	master     *tree
	masterOf   *layer
	appliedLSN uint64
	// freezes counts the layers the applier froze: a reader's layers and
	// its bbolt transaction show one state if none was frozen in between
	// (snapshot).
	freezes   uint64
	unapplied int   // the payload bytes of the layers
	applyErr  error // the last apply's failure, nil once one succeeds
	applyDone *sync.Cond
	amu       sync.Mutex // one apply at a time
	kick      chan struct{}
	quit      chan struct{}
	stopped   chan struct{}
	// zero keeps the file written past the ledger's end (zero.go); only
	// the applier uses it.
	zero zeroer
}

// request is one Write. Its wake channel is signalled once it is done or
// once it is the first of the queue, which makes it the leader: it commits
// itself and the writes queued behind it.
type request struct {
	fn   func(*Tx) error
	err  error
	done bool
	wake chan struct{}
}

// Open opens (creating if needed) the ledger in dir. onCommit, if not nil, is
// called after every commit that wrote something, outside any transaction and
// before the writes of that commit return; it must not block.
//
// A directory locked by another process is ErrLocked after about a second; a
// file that exists but is not a readable ledger is ErrCorrupt, never replaced
// by a new empty one. The log's records that bbolt had not applied when the
// ledger was last closed (a crash, a power cut) are applied first.
func Open(dir string, onCommit func()) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	// An existing directory made with looser permissions is tightened on
	// every start, not only at creation.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	existed := true
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		existed = false
	}
	// The hashmap freelist (as etcd uses) allocates and frees pages in
	// constant time; with the array freelist every commit paid for the
	// file's fragmentation (measured: ~50 µs of a ~500 µs commit). An
	// existing file is checked whole before anything reads it.
	db, err := boltfile.Open(path, fileMode, &bolt.Options{Timeout: lockTimeout, FreelistType: bolt.FreelistMapType})
	var dmg *boltfile.Damage
	switch {
	case errors.Is(err, boltfile.ErrLocked):
		return nil, fmt.Errorf("%w (%s)", ErrLocked, dir)
	case errors.As(err, &dmg):
		return nil, damaged(dmg)
	case err != nil:
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// bbolt keeps the mode of an existing file; a ledger copied in with looser
	// permissions is tightened.
	if err := os.Chmod(path, fileMode); err != nil {
		db.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	s := &Store{db: db, path: path, onCommit: onCommit, grew: make(chan struct{}, 1),
		layers: []*layer{{tree: newTree()}}, master: newTree(),
		kick: make(chan struct{}, 1), quit: make(chan struct{}), stopped: make(chan struct{})}
	s.drained = sync.NewCond(&s.mu)
	s.applyDone = sync.NewCond(&s.lmu)
	if err := s.openLog(dir, existed); err != nil {
		db.Close()
		return nil, err
	}
	s.zero = openZeroer(path)
	go s.applyLoop()
	return s, nil
}

// openLog checks the ledger and its log, applies the log's records bbolt
// has not, and creates a new ledger's buckets, identity and log. Every check
// comes before the first write.
func (s *Store) openLog(dir string, existed bool) error {
	var schema, epoch string
	var applied uint64
	var closed bool
	err := s.guard(func() error {
		return s.db.View(func(btx *bolt.Tx) error {
			if m := btx.Bucket(bMeta); m != nil {
				schema, epoch = string(m.Get([]byte("schema"))), string(m.Get([]byte("epoch")))
			}
			if lb := btx.Bucket(bLog); lb != nil {
				applied = parseApplied(lb.Get([]byte(walApplied)))
				c := lb.Get([]byte(metaClosed))
				closed = c != nil && parseApplied(c) == applied
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if schema == "" {
		// A new ledger (or one that crashed before its first commit): its
		// log is made first, so that a ledger with an identity always has
		// one (a log left by a crash before the commit is replaced).
		raw := make([]byte, 8)
		if _, err := rand.Read(raw); err != nil {
			return err
		}
		epoch = hex.EncodeToString(raw)
		if err := os.RemoveAll(filepath.Join(dir, walDir)); err != nil {
			return fmt.Errorf("log: %w", err)
		}
		w, _, err := openWAL(dir, epoch, 0, true)
		if err != nil {
			return s.logError(err)
		}
		s.log = w
		if err := s.init(existed, epoch); err != nil {
			w.close()
			return err
		}
		return nil
	}
	if schema != schemaVersion && schema != "1" && schema != "2" && schema != "3" {
		return fmt.Errorf("%w: %s: schema %q, want %q (a newer program's ledger?)", ErrCorrupt, s.path, schema, schemaVersion)
	}
	_, statErr := os.Stat(filepath.Join(dir, walDir))
	// A ledger of an earlier schema has no log yet. A ledger closed cleanly
	// holds everything its log did: copied without it, it starts a new one.
	fresh := schema != schemaVersion || (errors.Is(statErr, fs.ErrNotExist) && closed)
	if fresh || errors.Is(statErr, fs.ErrNotExist) {
		// A ledger without a log is what bbolt holds; a damaged meta page
		// may have opened it at an older commit than the file holds (the
		// one that said it was closed among the lost ones), which says
		// more than that the log is missing.
		if err := s.lostCommit(); err != nil {
			return err
		}
	}
	w, replay, err := openWAL(dir, epoch, applied, fresh)
	if err != nil {
		return s.logError(err)
	}
	s.log = w
	if err := s.init(true, epoch); err != nil {
		w.close()
		return err
	}
	if err := s.replay(replay); err != nil {
		w.close()
		return err
	}
	s.appliedLSN = max(applied, w.next-1)
	return nil
}

// logError is the refusal of a ledger whose log is damaged.
func (s *Store) logError(err error) error {
	if errors.Is(err, errLogDamage) {
		return fmt.Errorf("%w: %s: %v (nothing was written to it; pos-agent repair rebuilds a ledger from the events that still verify)", ErrCorrupt, filepath.Join(filepath.Dir(s.path), walDir), err)
	}
	return err
}

// replay applies the log's records past bbolt's last applied one.
func (s *Store) replay(recs []logRecord) error {
	if len(recs) == 0 {
		return nil
	}
	return s.guard(func() error {
		return s.db.Update(func(btx *bolt.Tx) error {
			for _, r := range recs {
				ops, err := decodeOps(r.payload)
				if err != nil {
					return fmt.Errorf("%w: %s: log record %d: %v", ErrCorrupt, s.path, r.lsn, err)
				}
				for _, o := range ops {
					if err := putOp(btx, o.bucket, o.key, o.value); err != nil {
						return fmt.Errorf("replaying log record %d: %w", r.lsn, err)
					}
				}
			}
			return btx.Bucket(bLog).Put([]byte(walApplied), []byte(strconv.FormatUint(recs[len(recs)-1].lsn, 10)))
		})
	})
}

// putOp writes one record to bbolt: v, or a deletion when v is nil.
func putOp(btx *bolt.Tx, id byte, key, v []byte) error {
	b := btx.Bucket(allBuckets[id])
	if v == nil {
		return b.Delete(key)
	}
	if id == idEvents || id == idHistory {
		// Events are appended at the end: a page that splits is left
		// full, not half empty (bbolt's default, made for random inserts),
		// so the last page splits half as often and the file holds half
		// the event pages.
		b.FillPercent = appendFill
	}
	return b.Put(key, v)
}

// init creates the buckets and identity of a new ledger, or checks an existing
// one is complete.
// epoch is a new ledger's.
func (s *Store) init(existed bool, epoch string) error {
	return s.db.Update(func(btx *bolt.Tx) error {
		meta := btx.Bucket(bMeta)
		if meta == nil {
			if existed && btx.Bucket(bEvents) != nil {
				return fmt.Errorf("%w: %s: no meta bucket", ErrCorrupt, s.path)
			}
			if existed {
				// An existing file with no buckets at all may be a ledger that
				// was created and crashed before its first commit: bbolt's
				// initial pages are valid and empty. Anything else is foreign.
				empty := true
				_ = btx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
				if !empty {
					return fmt.Errorf("%w: %s: not a ledger", ErrCorrupt, s.path)
				}
			}
			for _, b := range allBuckets {
				if _, err := btx.CreateBucket(b); err != nil {
					return err
				}
			}
			meta = btx.Bucket(bMeta)
			term := make([]byte, 4)
			if _, err := rand.Read(term); err != nil {
				return err
			}
			for k, v := range map[string]string{
				"schema":   schemaVersion,
				"epoch":    epoch,
				"terminal": "T-" + hex.EncodeToString(term),
				"created":  time.Now().UTC().Format(time.RFC3339Nano),
			} {
				if err := meta.Put([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
			return nil
		}
		switch v := string(meta.Get([]byte("schema"))); v {
		case schemaVersion:
		case "1", "2", "3":
			if err := meta.Put([]byte("schema"), []byte(schemaVersion)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: %s: schema %q, want %q (a newer program's ledger?)", ErrCorrupt, s.path, v, schemaVersion)
		}
		for _, b := range addedBuckets {
			if _, err := btx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		// Open: the log may hold records bbolt does not from now on.
		if err := btx.Bucket(bLog).Delete([]byte(metaClosed)); err != nil {
			return err
		}
		for _, b := range allBuckets {
			if btx.Bucket(b) == nil {
				return fmt.Errorf("%w: %s: bucket %s missing", ErrCorrupt, s.path, b)
			}
		}
		return nil
	})
}

// full reports whether a write failed for want of room: the disk is full,
// the user's quota is used up, or the process's file size limit is reached.
func full(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG)
}

// damaged is the one-line refusal of a damaged ledger file.
func damaged(d *boltfile.Damage) error {
	return fmt.Errorf("%w: %s: %s (nothing was written to it; pos-agent repair rebuilds a ledger from the events that still verify)", ErrCorrupt, d.Path, d.What)
}

// guard runs fn with a panic or memory fault inside bbolt (a damaged page)
// turned into ErrCorrupt, so that a damaged page refuses the operation
// instead of ending the process.
func (s *Store) guard(fn func() error) error {
	err := boltfile.Recover(s.path, fn)
	var dmg *boltfile.Damage
	if errors.As(err, &dmg) {
		return damaged(dmg)
	}
	return err
}

// Close refuses new writes, waits for the queued ones to commit, applies
// the log to bbolt and closes both.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for len(s.queue) > 0 {
		s.drained.Wait()
	}
	s.mu.Unlock()
	close(s.quit)
	<-s.stopped
	s.zero.close()
	lerr := s.log.close()
	if err := s.db.Close(); err != nil {
		return err
	}
	return lerr
}

// Path is the ledger file's path.
func (s *Store) Path() string { return s.path }

// View runs fn in a read-only transaction. Keep it short: a long read blocks
// the writer when the file grows.
func (s *Store) View(fn func(*Tx) error) error {
	return s.guard(func() error {
		_, under, btx, err := s.snapshot(0)
		if err != nil {
			return err
		}
		defer func() { _ = btx.Rollback() }()
		return fn(&Tx{btx: btx, under: under})
	})
}

// snapshot returns the active layer, the layers from the skip-th newest on,
// newest first, and a bbolt read transaction, which together show one state
// of the ledger.
//
// bbolt's Begin is not called under lmu: it waits while a commit of the
// applier remaps the file, which waits for every open read transaction to
// end, the leader's among them, and the leader takes lmu to install its
// batch. The layers are taken before the transaction and checked after it:
// if no layer was frozen meanwhile, bbolt holds no commit newer than the
// layers taken (the applier commits only frozen layers, whose records no
// longer change), and a layer already dropped was committed before the
// transaction began.
func (s *Store) snapshot(skip int) (*layer, []*tree, *bolt.Tx, error) {
	for {
		s.lmu.Lock()
		gen, act := s.freezes, s.layers[len(s.layers)-1]
		under := make([]*tree, 0, len(s.layers))
		for i := len(s.layers) - 1 - skip; i >= 0; i-- {
			under = append(under, s.layers[i].tree)
		}
		s.lmu.Unlock()
		btx, err := s.db.Begin(false)
		if err != nil {
			return nil, nil, nil, err
		}
		s.lmu.Lock()
		same := s.freezes == gen
		s.lmu.Unlock()
		if same {
			return act, under, btx, nil
		}
		_ = btx.Rollback()
	}
}

// Write runs fn in a read-write transaction shared with other concurrent
// writes (group commit) and returns after the transaction is durable: its
// record is in the log and synced.
//
// The first write of the queue leads: on its own goroutine it runs, in one
// transaction, itself and the writes queued behind it (up to maxBatch, those
// queued while it runs included), logs them as one record, then hands the
// lead to the next write queued meanwhile. A lone write thus commits without
// waiting for any other goroutine, and concurrent writes share the record
// that follows the one being synced when they came.
//
// fn must make all its checks before its first write: an error returned by a
// fn that has not written anything fails only that write; an error after a
// write aborts the shared transaction, which is then retried one write at a
// time. fn may therefore run more than once and must have no side
// effects outside the transaction. fn reads through its Tx only: a View
// inside it would wait for bbolt's remap of a growing file, which waits
// for fn's own read transaction to end.
func (s *Store) Write(ctx context.Context, fn func(*Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request{fn: fn, wake: make(chan struct{}, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.queue = append(s.queue, r)
	lead := len(s.queue) == 1
	if s.lingering {
		select {
		case s.grew <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	// Once queued, wait for the outcome whatever the context says: returning
	// early could report failure for a write that then commits.
	if !lead {
		<-r.wake
		if r.done {
			return r.err
		}
	}
	s.lead()
	return r.err
}

// errPanicked fails the writes of a commit during which another write failed
// with a panic.
var errPanicked = errors.New("write aborted: another write of its commit failed")

// lead commits the writes at the front of the queue, the caller's first.
//
// When several writers shared the last commit, they are mid-round-trip and
// about to write again: the leader lingers (up to linger) until as many are
// queued, so they share this commit instead of splitting into two that
// alternate. It runs each write as it arrives, inside the open transaction,
// so the wait overlaps the work instead of adding to it.
func (s *Store) lead() {
	var batch []*request
	var b *batchTx
	// A write that panics (bbolt on a damaged page, with memory faults made
	// panics too, or a bug) must neither end the process nor wedge the
	// queue: the transaction is dropped, the write fails with ErrCorrupt,
	// the others of its batch fail (none of it is logged) and the next
	// write leads. A write retried alone that panics fails alone (alone).
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		v := recover()
		settled := len(batch)
		var culprit *request
		if b != nil {
			culprit = b.running
			func() {
				defer func() { _ = recover() }() // a damaged transaction may not even roll back
				b.rollback()
			}()
			settled = b.settled
		}
		for _, r := range batch[settled:] {
			r.err = errPanicked
			if v != nil && (r == culprit || culprit == nil) {
				r.err = damaged(&boltfile.Damage{Path: s.path, What: fmt.Sprint("writing it failed: ", v)})
			}
		}
		s.release(batch)
	}()
	s.mu.Lock()
	want := s.last
	batch = s.take(batch)
	lingering := want > 1 && len(batch) < want
	s.lingering = lingering
	s.mu.Unlock()
	var err error
	if b, err = s.begin(); err != nil {
		s.mu.Lock()
		s.lingering = false
		s.mu.Unlock()
		for _, r := range batch {
			r.err = err
		}
		b = &batchTx{settled: len(batch)}
		return
	}
	for _, r := range batch {
		b.run(r)
	}
	if lingering {
		timer := time.NewTimer(linger)
	wait:
		for !b.abort && len(batch) < want && len(batch) < maxBatch {
			select {
			case <-s.grew:
				s.mu.Lock()
				had := len(batch)
				batch = s.take(batch)
				s.mu.Unlock()
				for _, r := range batch[had:] {
					b.run(r)
				}
			case <-timer.C:
				break wait
			}
		}
		timer.Stop()
	}
	s.mu.Lock()
	s.lingering = false
	had := len(batch)
	if !b.abort {
		batch = s.take(batch)
	}
	s.last = len(batch)
	s.mu.Unlock()
	for _, r := range batch[had:] {
		b.run(r)
	}
	s.finish(b, batch)
}

// take extends batch, a prefix of the queue, to the writes queued since, up
// to maxBatch. The caller holds s.mu.
func (s *Store) take(batch []*request) []*request {
	if n := min(len(s.queue), maxBatch); n > len(batch) {
		return s.queue[:n:n]
	}
	return batch
}

// release marks a batch done, wakes its writers and hands the lead to the
// next queued write.
func (s *Store) release(batch []*request) {
	s.mu.Lock()
	for _, r := range batch {
		r.done = true
	}
	// Writes queued during the commit stay, the next one now leads.
	s.queue = s.queue[len(batch):]
	var next *request
	if len(s.queue) > 0 {
		next = s.queue[0]
	} else {
		s.queue = nil
		s.drained.Broadcast()
	}
	s.mu.Unlock()
	for _, r := range batch[1:] {
		r.wake <- struct{}{}
	}
	if next != nil {
		next.wake <- struct{}{}
	}
}

// batchTx is the transaction a leader runs its batch in: its writes go to a
// transaction on the active layer's tree, over bbolt's last commit read.
type batchTx struct {
	btx   *bolt.Tx // read-only
	act   *layer   // the active layer when the batch began
	base  *tree    // its records then (the master), which the batch leaves as they are
	under []*tree  // the frozen layers, newest first
	w     *tree    // a copy of base the batch writes to
	// buckets: bbolt's, opened once for the batch's writes.
	buckets [idHistory + 1]*bolt.Bucket
	ops     []op
	late    lateWrites // the records its writes keep until the commit (Tx.Deferred)
	wrote   bool       // a write changed something
	// abort: a write failed after changing something, so the transaction
	// is void; no further write runs in it, and each write of the batch is
	// then retried on its own.
	abort bool
	// settled counts the writes of the batch whose outcome is final (all
	// of them once the batch is logged, or has failed to be).
	settled int
	// running is the write being run, the one a panic comes from.
	running *request
}

// maxUnapplied bounds what the log may hold that bbolt has not applied: a
// write past it waits for the applier, and fails if the applier fails.
const maxUnapplied = 64 << 20

func (s *Store) begin() (*batchTx, error) {
	s.lmu.Lock()
	for s.unapplied > maxUnapplied {
		if s.applyErr != nil {
			err := s.applyErr
			s.lmu.Unlock()
			return nil, fmt.Errorf("commit: the ledger file cannot be brought up to date: %w", err)
		}
		s.kickApplier()
		s.applyDone.Wait()
	}
	s.lmu.Unlock()
	// The frozen layers and bbolt, under the active layer (the master); a
	// layer frozen since is the install's to handle, as one frozen during
	// the batch.
	act, under, btx, err := s.snapshot(1)
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.masterOf != act && s.masterOf != nil {
		// The applier froze the layer the master was: the new one is empty.
		s.master = newTree()
	}
	s.masterOf = act
	return &batchTx{btx: btx, act: act, base: s.master, under: under, w: s.master.Copy()}, nil
}

func (b *batchTx) tx(late *lateWrites) *Tx {
	return &Tx{btx: b.btx, under: b.under, w: b.w, ops: &b.ops, late: late, buckets: &b.buckets}
}

// run runs one write in the batch's transaction.
func (b *batchTx) run(r *request) {
	if b.abort {
		return
	}
	tx := b.tx(&b.late)
	b.running = r
	r.err = r.fn(tx)
	b.running = nil
	if r.err != nil && tx.dirty {
		b.abort = true
	}
	b.wrote = b.wrote || tx.dirty
}

// rollback ends the read transaction if finish has not (a panic).
func (b *batchTx) rollback() {
	if b.btx != nil {
		_ = b.btx.Rollback()
		b.btx = nil
	}
}

// finish logs the batch, or first retries its writes one by one if it was
// aborted. A batch that wrote nothing logs nothing (repeated acks, a clock
// already ahead, an idempotent retry).
func (s *Store) finish(b *batchTx, batch []*request) {
	// Records kept until the commit are written now; if that fails, each
	// write is retried alone, as if it had failed itself.
	if !b.abort && b.wrote {
		b.abort = b.tx(&b.late).flushLate() != nil
	}
	if b.abort {
		b.w, b.ops, b.wrote = b.base.Copy(), nil, false
		for _, r := range batch {
			snap, n := b.w.Copy(), len(b.ops)
			tx := b.tx(&lateWrites{})
			r.err = s.alone(r, tx)
			if r.err != nil {
				b.w, b.ops = snap, b.ops[:n]
			} else {
				b.wrote = b.wrote || tx.dirty
			}
		}
	}
	if b.wrote {
		payload := appendOps(make([]byte, 0, 4096), b.ops)
		lsn, err := s.log.append(payload, maxEventSeq(b.ops))
		if err == nil {
			s.install(b, lsn, len(payload))
		} else {
			for _, r := range batch {
				if r.err == nil {
					r.err = fmt.Errorf("commit: %w", err)
				}
			}
			b.wrote = false
		}
	}
	b.rollback()
	b.settled = len(batch)
	// The hook runs before the writers are released, so whatever it
	// announces (the agent's notices) is out before any write returns.
	if b.wrote && s.onCommit != nil {
		s.onCommit()
	}
}

// alone runs a write retried on its own: a panic fails it alone (the others
// of the batch are not logged yet, and are logged without it).
func (s *Store) alone(r *request, tx *Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = damaged(&boltfile.Damage{Path: s.path, What: fmt.Sprint("writing it failed: ", v)})
		}
	}()
	if err := r.fn(tx); err != nil {
		return err
	}
	return tx.flushLate()
}

// install makes a logged batch's writes the active layer's.
func (s *Store) install(b *batchTx, lsn uint64, size int) {
	s.lmu.Lock()
	top := s.layers[len(s.layers)-1]
	if top != b.act {
		// The applier froze the layer the batch began on: the batch's
		// writes alone go on the new one.
		b.w = newTree()
		for _, o := range b.ops {
			b.w.Set(item{k: ovKey(o.bucket, o.key), v: o.value, del: o.value == nil})
		}
		s.masterOf = top
	}
	s.master = b.w
	top.tree = b.w.Copy()
	// The applier is woken for a layer's first record (it then sleeps out
	// the interval) and once the layer is big enough, not for every
	// record: a wake-up per checkout costs the checkout a thread's wake.
	wake := top.lsn == 0 || (top.bytes < applyBytes && top.bytes+size >= applyBytes)
	if top.lsn == 0 {
		top.since = time.Now().UnixNano()
	}
	top.lsn = lsn
	top.bytes += size
	s.unapplied += size
	if wake {
		s.kickApplier()
	}
	s.lmu.Unlock()
}

// kickApplier wakes the applier.
func (s *Store) kickApplier() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}
