package hqbolt

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/internal/boltfile"
	"github.com/offline-loyalty/terminal/rules"
)

// RepairReport says what a repair of the embedded store kept of the damaged
// file.
type RepairReport struct {
	Damaged   string `json:"damaged"` // where the damaged file was kept
	Terminals int    `json:"terminals"`
	Codes     int    `json:"codes"`
	Rules     int    `json:"rules_versions"`
	Found     int    `json:"events_found"` // event records read, for the caller to apply again
	Skipped   int    `json:"pages_unreadable"`
	FeedHead  uint64 `json:"feed_head"`
}

// Repair reads what it can of the damaged head-office file in dir (no
// process may have it open), keeps it beside a new file, and writes into the
// new one what configures the chain and cannot come from anywhere else: the
// terminals and their keys, the join codes, the published rules, the QR
// signing key and the other metadata; and it raises the feed positions past
// the old ones, so that no terminal's cursor is ahead of the new feeds. It
// returns the event records found, unverified, for the caller to apply
// again through the Office (members, balances, figures and flags are
// derived from them); what they lack, the terminals send again when they
// next connect, since head office then holds less of their chains than
// they have sent.
func Repair(dir string) (RepairReport, [][]byte, error) {
	var rep RepairReport
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return rep, nil, fmt.Errorf("nothing to repair: no %s", path)
	} else if err != nil {
		return rep, nil, err
	}
	if err := boltfile.Unlocked(path); errors.Is(err, boltfile.ErrLocked) {
		return rep, nil, fmt.Errorf("%w (%s): stop head office before repairing", ErrLocked, dir)
	} else if err != nil {
		return rep, nil, err
	}
	sal, err := boltfile.Salvage(path)
	if err != nil {
		return rep, nil, err
	}
	rep.Skipped = sal.Skipped
	rep.Damaged = path + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(path, rep.Damaged); err != nil {
		return rep, nil, fmt.Errorf("keep the damaged file: %w", err)
	}
	db, err := Open(dir)
	if err != nil {
		return rep, nil, err
	}
	defer db.Close()
	pairs := func(b []byte) []boltfile.KV {
		if s := sal.Buckets[string(b)]; s != nil {
			return s.Pairs
		}
		return nil
	}
	terminals := map[string]bool{}
	err = db.db.Update(func(tx *bolt.Tx) error {
		for _, kv := range pairs(bMeta) {
			if string(kv.Key) == "schema" || (string(kv.Key) == headoffice.MetaQRKey && len(kv.Value) != ed25519.SeedSize) {
				continue
			}
			if err := tx.Bucket(bMeta).Put(kv.Key, kv.Value); err != nil {
				return err
			}
		}
		for _, kv := range pairs(bTerminals) {
			var t headoffice.Terminal
			if json.Unmarshal(kv.Value, &t) != nil || t.ID != string(kv.Key) || t.Store == "" {
				continue
			}
			if err := tx.Bucket(bTerminals).Put(kv.Key, kv.Value); err != nil {
				return err
			}
			terminals[t.ID] = true
			rep.Terminals++
		}
		for _, kv := range pairs(bCodes) {
			if !terminals[string(kv.Value)] {
				continue
			}
			if err := tx.Bucket(bCodes).Put(kv.Key, kv.Value); err != nil {
				return err
			}
			rep.Codes++
		}
		for _, kv := range pairs(bRules) {
			if _, err := rules.Parse(kv.Value); err != nil || len(kv.Key) != len(versionKey(0)) {
				continue
			}
			if err := tx.Bucket(bRules).Put(kv.Key, kv.Value); err != nil {
				return err
			}
			rep.Rules++
		}
		for _, b := range [][]byte{bMemberFd, bBlockFd} {
			if s := sal.Buckets[string(b)]; s != nil {
				rep.FeedHead = max(rep.FeedHead, s.Sequence)
				for _, kv := range s.Pairs {
					if len(kv.Key) >= 8 { // the position ends every feed key
						rep.FeedHead = max(rep.FeedHead, binary.BigEndian.Uint64(kv.Key[len(kv.Key)-8:]))
					}
				}
			}
		}
		return (&Tx{tx: tx}).RaiseFeedHead(rep.FeedHead)
	})
	if err != nil {
		return rep, nil, err
	}
	var events [][]byte
	for _, kv := range pairs(bEvents) {
		events = append(events, kv.Value)
	}
	rep.Found = len(events)
	return rep, events, nil
}

// RestoreReport says what a restore of the embedded store did.
type RestoreReport struct {
	From     string `json:"from"`
	Replaced string `json:"replaced,omitempty"` // where the file it replaced was kept
	headoffice.Restored
}

// Restore puts the backup file from (headoffice backup --to) in place of
// dir's store, no process having it open: it copies it into dir, checks it
// whole as Open does, raises its feed positions (headoffice.MarkRestored),
// and only then renames it into place. A store already there is refused
// unless replace, which keeps it beside (*.replaced-<time>).
func Restore(ctx context.Context, dir, from string, replace bool) (RestoreReport, error) {
	rep := RestoreReport{From: from}
	path := filepath.Join(dir, FileName)
	_, err := os.Stat(path)
	exists := err == nil
	switch {
	case exists && !replace:
		return rep, fmt.Errorf("%s holds a store already: restore over it with --replace (it is kept beside)", path)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return rep, err
	}
	if exists {
		if err := boltfile.Unlocked(path); errors.Is(err, boltfile.ErrLocked) {
			return rep, fmt.Errorf("%w (%s): stop head office before restoring", ErrLocked, dir)
		} else if err != nil {
			return rep, err
		}
	}
	src, err := os.Open(from)
	if err != nil {
		return rep, err
	}
	defer src.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return rep, err
	}
	tmp, err := os.MkdirTemp(dir, ".restore-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(tmp)
	dst, err := os.OpenFile(filepath.Join(tmp, FileName), os.O_CREATE|os.O_EXCL|os.O_WRONLY, fileMode)
	if err != nil {
		return rep, err
	}
	_, err = io.Copy(dst, src)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return rep, fmt.Errorf("copying %s: %w", from, err)
	}
	db, err := Open(tmp)
	if err != nil {
		return rep, fmt.Errorf("%s is not a head office store that reads whole: %w", from, err)
	}
	rep.Restored, err = headoffice.MarkRestored(ctx, db)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return rep, err
	}
	if exists {
		rep.Replaced = path + ".replaced-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(path, rep.Replaced); err != nil {
			return rep, err
		}
	}
	if err := os.Rename(filepath.Join(tmp, FileName), path); err != nil {
		return rep, err
	}
	d, err := os.Open(dir)
	if err != nil {
		return rep, err
	}
	defer d.Close()
	return rep, d.Sync()
}
