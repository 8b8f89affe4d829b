package store

import (
	"fmt"
	"io"
	"strconv"
	"time"
)

// The applier brings bbolt up to date with the log, off the checkout's path:
// once the oldest record bbolt has not applied has waited applyEvery, or the
// records waiting reach applyBytes, it freezes the active layer (group
// commits go on in a new one), writes the frozen layers to bbolt in one
// commit with the log position they reach, and drops them. A checkout never
// waits for it; bbolt's two syncs per commit are shared by every checkout of
// the interval.
const (
	applyEvery = 50 * time.Millisecond
	applyBytes = 1 << 20
	// applyRetry is the wait after a failed apply (a full disk).
	applyRetry = time.Second
)

// metaAcked is the meta key of head office's durable ack (the agent's): a
// segment goes once its events are acked and applied.
const metaAcked = "acked"

func (s *Store) applyLoop() {
	defer close(s.stopped)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-s.kick:
		case <-s.quit:
			_ = s.applyLast()
			return
		}
		// Wait for the lag bound or enough records.
		for {
			s.lmu.Lock()
			top := s.layers[len(s.layers)-1]
			since, size, frozen := top.since, top.bytes, len(s.layers) > 1
			s.lmu.Unlock()
			wait := applyEvery - time.Since(time.Unix(0, since))
			if frozen || size >= applyBytes || wait <= 0 {
				break
			}
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-s.kick:
				if !timer.Stop() {
					<-timer.C
				}
			case <-s.quit:
				timer.Stop()
				_ = s.applyLast()
				return
			}
		}
		if err := s.apply(); err != nil {
			timer.Reset(applyRetry)
			select {
			case <-timer.C:
				s.kickApplier()
			case <-s.quit:
				timer.Stop()
				_ = s.applyLast()
				return
			}
		}
	}
}

// apply writes every layer there is to bbolt in one commit.
func (s *Store) apply() error { return s.applyAll(false) }

// applyLast is the apply of a ledger being closed: it also marks bbolt as
// holding everything the log does (metaClosed), so that a copy of the
// ledger file alone, without its log, opens.
func (s *Store) applyLast() error { return s.applyAll(true) }

// metaClosed (in the log bucket) is the log record bbolt held, everything
// included, when the ledger was last closed; removed at open.
const metaClosed = "wal_closed"

func (s *Store) applyAll(closing bool) error {
	s.amu.Lock()
	defer s.amu.Unlock()
	return s.applyLocked(closing)
}

// applyLocked is applyAll with amu held.
func (s *Store) applyLocked(closing bool) error {
	s.lmu.Lock()
	if top := s.layers[len(s.layers)-1]; top.lsn != 0 {
		s.layers = append(s.layers, &layer{tree: newTree()})
		s.freezes++
	}
	frozen := append([]*layer(nil), s.layers[:len(s.layers)-1]...)
	s.lmu.Unlock()
	if len(frozen) == 0 && !closing {
		return nil
	}
	s.lmu.Lock()
	lsn := s.appliedLSN
	s.lmu.Unlock()
	if len(frozen) > 0 {
		lsn = frozen[len(frozen)-1].lsn
	}
	var acked uint64
	err := s.guard(func() error {
		btx, err := s.db.Begin(true)
		if err != nil {
			return err
		}
		committed := false
		defer func() {
			if !committed {
				// A failure or a panic (a damaged page): the writer lock
				// must go with it.
				func() {
					defer func() { _ = recover() }()
					_ = btx.Rollback()
				}()
			}
		}()
		for _, l := range frozen {
			l.tree.Scan(func(i item) bool {
				v := i.v
				if i.del {
					v = nil
				}
				err = putOp(btx, i.k[0], i.k[1:], v)
				return err == nil
			})
			if err != nil {
				return err
			}
		}
		lb := btx.Bucket(bLog)
		if err := lb.Put([]byte(walApplied), []byte(strconv.FormatUint(lsn, 10))); err != nil {
			return err
		}
		if closing {
			if err := lb.Put([]byte(metaClosed), []byte(strconv.FormatUint(lsn, 10))); err != nil {
				return err
			}
		}
		acked = parseApplied(btx.Bucket(bMeta).Get([]byte(metaAcked)))
		end := btx.Size()
		committed = true
		if err := btx.Commit(); err != nil {
			return err
		}
		// The commit may have allocated past the transaction's size
		// before it, by the pages it allocated at most.
		st := btx.Stats()
		s.zeroAhead(end + st.GetPageAlloc())
		return nil
	})
	s.lmu.Lock()
	if err != nil {
		if full(err) {
			err = fmt.Errorf("%w: %v", ErrDiskFull, err)
		}
		s.applyErr = err
	} else {
		s.layers = s.layers[len(frozen):]
		s.appliedLSN = lsn
		for _, l := range frozen {
			s.unapplied -= l.bytes
		}
		s.applyErr = nil
	}
	s.applyDone.Broadcast()
	s.lmu.Unlock()
	if err != nil {
		return err
	}
	// Segments fully applied and acked go; failing that, the next apply
	// tries again.
	_ = s.log.trim(lsn, acked)
	return nil
}

// LogStatus returns the state of the write-ahead log and how far bbolt is
// behind it.
func (s *Store) LogStatus() LogStatus {
	st := s.log.status()
	s.lmu.Lock()
	defer s.lmu.Unlock()
	st.Applied = s.appliedLSN
	for _, l := range s.layers {
		if l.lsn != 0 {
			st.LagMS = time.Since(time.Unix(0, l.since)).Milliseconds()
			break
		}
	}
	if s.applyErr != nil && st.Failed == "" {
		st.Failed = "applying the log to the ledger file: " + s.applyErr.Error()
	}
	return st
}

// Backup calls fn with the ledger file as it is once every write that
// returned before the call is applied to it: a read transaction over the
// file alone (not the log's newer layers), the file's size, and a function
// that copies it, a whole bbolt file, to a writer. Writes go on meanwhile,
// into the log; the applier waits until fn returns, so that no commit of
// its has to remap the file under the copy's transaction (which would hold
// up every reader, see snapshot).
func (s *Store) Backup(fn func(tx *Tx, size int64, copyTo func(io.Writer) error) error) error {
	s.amu.Lock()
	defer s.amu.Unlock()
	if err := s.applyLocked(false); err != nil {
		return err
	}
	return s.guard(func() error {
		btx, err := s.db.Begin(false)
		if err != nil {
			return err
		}
		defer func() { _ = btx.Rollback() }()
		return fn(&Tx{btx: btx}, btx.Size(), func(w io.Writer) error {
			_, err := btx.WriteTo(w)
			return err
		})
	})
}

// Flush applies the whole log to bbolt now (before a copy of the file, and
// in tests).
func (s *Store) Flush() error { return s.apply() }
