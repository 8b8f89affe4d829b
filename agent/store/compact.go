package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"github.com/offline-loyalty/terminal/internal/boltfile"
)

// compactTxSize bounds the bytes copied per transaction while compacting, so
// compaction of a large ledger does not hold all of it in one transaction.
const compactTxSize = 64 << 20

// Compact rewrites the ledger in dir into a new file without free pages and
// replaces the old one atomically; it returns the sizes before and after.
// bbolt files never shrink on their own. The ledger must not be open: a
// running agent holds the lock and Compact fails with ErrLocked.
func Compact(dir string) (before, after int64, err error) {
	path := filepath.Join(dir, FileName)
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, 0, fmt.Errorf("no ledger in %s", dir)
		}
		return 0, 0, err
	}
	src, err := boltfile.Open(path, fileMode, &bolt.Options{Timeout: lockTimeout, ReadOnly: true})
	var dmg *boltfile.Damage
	switch {
	case errors.Is(err, boltfile.ErrLocked):
		return 0, 0, fmt.Errorf("%w (%s): stop it before compacting", ErrLocked, dir)
	case errors.As(err, &dmg):
		return 0, 0, damaged(dmg)
	case err != nil:
		return 0, 0, err
	}
	defer src.Close()
	tmp := path + ".compact"
	_ = os.Remove(tmp) // left by an interrupted compaction
	dst, err := bolt.Open(tmp, fileMode, &bolt.Options{Timeout: lockTimeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return 0, 0, err
	}
	if err := boltfile.Recover(path, func() error { return bolt.Compact(dst, src, compactTxSize) }); err != nil {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("compact: %w", err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return 0, 0, err
	}
	nfi, err := os.Stat(tmp)
	if err != nil {
		return 0, 0, err
	}
	// The copy is complete and synced by bbolt; the rename is the switch.
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return 0, 0, err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable where the OS allows syncing a directory
		d.Close()
	}
	return fi.Size(), nfi.Size(), nil
}
