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
	// open instead of failing record by record. A file of an earlier version
	// is upgraded when opened (its JSON records still read).
	schemaVersion = "3"
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
	bHistory   = []byte("history")
	allBuckets = [][]byte{bMeta, bEvents, bCheckouts, bMembers, bCards, bDays, bToday, bHistory}
	// addedBuckets came after the first files of schema 1 and are created
	// when missing; an older program ignores them.
	addedBuckets = [][]byte{bToday, bHistory}
)

// Store is an open ledger file.
type Store struct {
	db       *bolt.DB
	path     string
	onCommit func()

	mu      sync.Mutex
	queue   []*request // writes waiting, the first one committing or about to
	closed  bool
	drained *sync.Cond // signalled when the queue empties
	// last is the size of the last batch; while a leader lingers for more
	// writes, each new one signals grew.
	last      int
	lingering bool
	grew      chan struct{}
	// zero keeps the file written past the ledger's end (zero.go); only
	// the leader uses it.
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
// by a new empty one.
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
	s := &Store{db: db, path: path, onCommit: onCommit, grew: make(chan struct{}, 1)}
	s.drained = sync.NewCond(&s.mu)
	if existed {
		if err := s.lostCommit(); err != nil {
			db.Close()
			return nil, err
		}
	}
	if err := s.init(existed); err != nil {
		db.Close()
		return nil, err
	}
	s.zero = openZeroer(path)
	return s, nil
}

// init creates the buckets and identity of a new ledger, or checks an existing
// one is complete.
func (s *Store) init(existed bool) error {
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
			epoch := make([]byte, 8)
			if _, err := rand.Read(epoch); err != nil {
				return err
			}
			term := make([]byte, 4)
			if _, err := rand.Read(term); err != nil {
				return err
			}
			for k, v := range map[string]string{
				"schema":   schemaVersion,
				"epoch":    hex.EncodeToString(epoch),
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
		case "1", "2":
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

// Close refuses new writes, waits for the queued ones to commit and closes
// the file.
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
	s.zero.close()
	return s.db.Close()
}

// Path is the ledger file's path.
func (s *Store) Path() string { return s.path }

// View runs fn in a read-only transaction. Keep it short: a long read blocks
// the writer when the file grows.
func (s *Store) View(fn func(*Tx) error) error {
	return s.guard(func() error {
		return s.db.View(func(btx *bolt.Tx) error { return fn(&Tx{btx: btx}) })
	})
}

// Write runs fn in a read-write transaction shared with other concurrent
// writes (group commit) and returns after the transaction is durable.
//
// The first write of the queue leads: on its own goroutine it runs, in one
// transaction, itself and the writes queued behind it (up to maxBatch, those
// queued while it runs included), commits, then hands the lead to the next
// write queued meanwhile. A lone write thus commits without waiting for any
// other goroutine, and concurrent writes share the commit that follows the
// one being synced when they came.
//
// fn must make all its checks before its first write: an error returned by a
// fn that has not written anything fails only that write; an error after a
// write aborts the shared transaction, which is then retried one write per
// transaction. fn may therefore run more than once and must have no side
// effects outside the transaction.
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
	// queue: the transaction is rolled back, the write fails with
	// ErrCorrupt, the others of its batch fail (bar those a retry had
	// committed already) and the next write leads.
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

// batchTx is the transaction a leader runs its batch in.
type batchTx struct {
	btx   *bolt.Tx
	late  lateWrites // the records its writes keep until the commit (Tx.Deferred)
	wrote bool       // a write changed something
	// abort: a write failed after changing something, so the transaction
	// is void; no further write runs in it, and each write of the batch is
	// then retried in a transaction of its own.
	abort bool
	// settled counts the writes of the batch whose outcome is final, for a
	// panic during the retries: those before it did commit.
	settled int
	// running is the write being run, the one a panic comes from.
	running *request
}

func (s *Store) begin() (*batchTx, error) {
	btx, err := s.db.Begin(true)
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return &batchTx{btx: btx}, nil
}

// run runs one write in the batch's transaction.
func (b *batchTx) run(r *request) {
	if b.abort {
		return
	}
	tx := &Tx{btx: b.btx, late: &b.late}
	b.running = r
	r.err = r.fn(tx)
	b.running = nil
	if r.err != nil && tx.dirty {
		b.abort = true
	}
	b.wrote = b.wrote || tx.dirty
}

// rollback ends the transaction if finish has not (a panic).
func (b *batchTx) rollback() {
	if b.btx != nil {
		_ = b.btx.Rollback()
		b.btx = nil
	}
}

// finish commits the batch, or retries its writes one by one if it was
// aborted. A transaction that wrote nothing is rolled back: a commit would
// cost two fsyncs for no change (repeated acks, a clock already ahead, an
// idempotent retry).
func (s *Store) finish(b *batchTx, batch []*request) {
	// Records kept until the commit are written now; if that fails, each
	// write is retried alone, as if it had failed itself.
	if !b.abort && b.wrote {
		b.abort = (&Tx{btx: b.btx, late: &b.late}).flushLate() != nil
	}
	var err error
	switch {
	case b.abort:
		b.rollback()
		b.wrote = false
		for _, r := range batch {
			tx := &Tx{}
			b.running = r
			r.err = s.db.Update(func(btx *bolt.Tx) error {
				tx.btx, tx.late = btx, &lateWrites{}
				if err := r.fn(tx); err != nil {
					return err
				}
				return tx.flushLate()
			})
			b.running = nil
			b.wrote = b.wrote || (r.err == nil && tx.dirty)
			b.settled++
		}
	case !b.wrote:
		b.rollback()
	default:
		btx := b.btx
		end := btx.Size()
		err = btx.Commit()
		b.btx = nil
		if err == nil {
			// The commit may have allocated past the transaction's size
			// before it, by the pages it allocated at most.
			st := btx.Stats()
			s.zeroAhead(end + st.GetPageAlloc())
		}
	}
	if err != nil {
		if full(err) {
			err = fmt.Errorf("%w: %v", ErrDiskFull, err)
		}
		for _, r := range batch {
			if r.err == nil {
				r.err = fmt.Errorf("commit: %w", err)
			}
		}
		b.wrote = false
	}
	b.settled = len(batch)
	// The hook runs before the writers are released, so whatever it
	// announces (the agent's notices) is out before any write returns.
	if b.wrote && s.onCommit != nil {
		s.onCommit()
	}
}
