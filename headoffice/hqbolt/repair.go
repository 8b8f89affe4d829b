package hqbolt

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
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
