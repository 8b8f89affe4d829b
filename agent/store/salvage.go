package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/offline-loyalty/terminal/internal/boltfile"
)

// Salvage is what could be read of a ledger file that does not open: for a
// repair to rebuild from. Nothing in it is trusted: every event is checked
// by its hash before it is used.
type Salvage struct {
	// Path is the file read ("" when there was none).
	Path string
	// Events are the byte strings of the file that look like encoded
	// events (the whole file is searched, bbolt's pages or not: a file cut
	// short or with damaged pages still holds most of its events), possibly
	// several times over and including damaged ones.
	Events [][]byte
	// Meta are the metadata values bbolt could still read, if it could.
	Meta map[string]string
	// Log is the ledger's write-ahead log directory ("" when there was
	// none), whose segments were searched for events too.
	Log string
}

// maxSalvage bounds the file read whole by a repair.
const maxSalvage = 4 << 30

// ReadSalvage reads what it can of the ledger in dir, which no process may
// have open (ErrLocked).
func ReadSalvage(dir string) (Salvage, error) {
	s := Salvage{Meta: map[string]string{}}
	if err := s.readLedger(filepath.Join(dir, FileName)); err != nil {
		return s, err
	}
	// The log's records hold the events bbolt had not applied, as they
	// were written.
	if fi, err := os.Stat(filepath.Join(dir, walDir)); err == nil && fi.IsDir() {
		s.Log = filepath.Join(dir, walDir)
		segs, _ := filepath.Glob(filepath.Join(s.Log, "*"+segSuffix))
		for _, p := range segs {
			if fi, err := os.Stat(p); err != nil || fi.Size() > maxSalvage {
				continue
			}
			if raw, err := os.ReadFile(p); err == nil {
				s.Events = append(s.Events, findEvents(raw)...)
			}
		}
	}
	return s, nil
}

// readLedger reads what it can of the bbolt file at path, if there is one.
func (s *Salvage) readLedger(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Size() > maxSalvage {
		return fmt.Errorf("%s is %d bytes, more than a repair reads", path, fi.Size())
	}
	s.Path = path
	if err := notLocked(path); err != nil {
		return err
	}
	// bbolt may still read the metadata (a file with damaged data pages);
	// if it cannot even open the file, the bytes are all there is.
	_ = boltfile.Recover(path, func() error {
		db, err := bolt.Open(path, fileMode, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
		if err != nil {
			return err
		}
		defer db.Close()
		return db.View(func(tx *bolt.Tx) error {
			if b := tx.Bucket(bMeta); b != nil {
				return b.ForEach(func(k, v []byte) error { s.Meta[string(k)] = string(v); return nil })
			}
			return nil
		})
	})
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s.Events = findEvents(raw)
	return nil
}

// notLocked is ErrLocked when another process holds the file.
func notLocked(path string) error {
	if err := boltfile.Unlocked(path); errors.Is(err, boltfile.ErrLocked) {
		return fmt.Errorf("%w (%s): stop it before repairing", ErrLocked, filepath.Dir(path))
	} else if err != nil {
		return err
	}
	return nil
}

// findEvents returns every byte string of b that starts like an encoded
// event and ends with a hash, each copied.
func findEvents(b []byte) [][]byte {
	start := []byte(`{"terminal":"`)
	const hashField = `,"hash":"`
	var out [][]byte
	for i := 0; ; {
		j := bytes.Index(b[i:], start)
		if j < 0 {
			return out
		}
		from := i + j
		i = from + len(start)
		// An event is at most ledger.MaxEncodedSize; its hash closes it.
		window := b[from:min(len(b), from+64<<10)]
		k := bytes.Index(window, []byte(hashField))
		if k < 0 || k+len(hashField)+64+2 > len(window) {
			continue
		}
		end := k + len(hashField) + 64 + 2
		if string(window[end-2:end]) != `"}` {
			continue
		}
		out = append(out, bytes.Clone(window[:end]))
	}
}

// lostCommit refuses a ledger that bbolt opened at an older commit than the
// file holds: when one of its two meta pages is damaged bbolt falls back to
// the other, and if the file still holds the event that follows the last
// one of the tree (its epoch, the next sequence, linked to the last one's
// hash), that commit is lost from the tree and the next operation would
// reuse its sequence. It runs before anything is written to the file (a
// commit would overwrite the damaged meta page). A torn meta page of a
// commit never acknowledged is refused the same way; the repair keeps its
// event either way.
func (s *Store) lostCommit() error {
	one, err := boltfile.OneMetaInvalid(s.path)
	if err != nil || !one {
		return err
	}
	var epoch, last []byte
	err = s.guard(func() error {
		return s.db.View(func(btx *bolt.Tx) error {
			if m := btx.Bucket(bMeta); m != nil {
				epoch = bytes.Clone(m.Get([]byte("epoch")))
			}
			if b := btx.Bucket(bEvents); b != nil {
				_, v := b.Cursor().Last()
				last = bytes.Clone(v)
			}
			return nil
		})
	})
	if err != nil || epoch == nil {
		return err
	}
	var seq uint64
	var hash []byte
	if last != nil {
		n, h, ok := seqAndHash(last)
		if !ok {
			return nil // the chain check that follows refuses it
		}
		seq, hash = n, h
	}
	fi, err := os.Stat(s.path)
	if err != nil || fi.Size() > maxSalvage {
		return err
	}
	raw, err := os.ReadFile(s.path)
	if err != nil {
		return err
	}
	wantEpoch := []byte(`"epoch":"` + string(epoch) + `"`)
	wantSeq := []byte(`"seq":` + strconv.FormatUint(seq+1, 10) + `,`)
	wantPrev := []byte(`"prev_hash":"` + string(hash) + `"`)
	for _, e := range findEvents(raw) {
		if bytes.Contains(e, wantEpoch) && bytes.Contains(e, wantSeq) && (seq == 0 || bytes.Contains(e, wantPrev)) {
			return fmt.Errorf("%w: %s: a meta page is damaged and the file opens at an older commit, without event %d that the file still holds (nothing was written; pos-agent repair keeps it)",
				ErrCorrupt, s.path, seq+1)
		}
	}
	return nil
}

// seqAndHash reads the sequence and hash of an encoded event.
func seqAndHash(e []byte) (uint64, []byte, bool) {
	_, rest, ok := bytes.Cut(e, []byte(`"seq":`))
	if !ok {
		return 0, nil, false
	}
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		return 0, nil, false
	}
	n, err := strconv.ParseUint(string(rest[:end]), 10, 64)
	if err != nil {
		return 0, nil, false
	}
	i := bytes.LastIndex(e, []byte(`"hash":"`))
	if i < 0 {
		return 0, nil, false
	}
	h := e[i+len(`"hash":"`):]
	end = bytes.IndexByte(h, '"')
	if end < 0 {
		return 0, nil, false
	}
	return n, h[:end], true
}
