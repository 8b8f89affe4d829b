package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// seekHole is lseek's SEEK_HOLE on Linux.
const seekHole = 4

// openZeroer opens the ledger file for zeroAhead.
func openZeroer(path string) zeroer {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return zeroer{}
	}
	return zeroer{f: f, to: -1}
}

// writtenFrom returns where the written part of the file that contains off
// ends: the start of the first hole at or after off, or the file's end. A
// file zeroed ahead by an earlier run needs no zeros now.
func writtenFrom(f *os.File, off int64) int64 {
	hole, err := f.Seek(off, seekHole)
	if err != nil {
		return off // no SEEK_HOLE: assume nothing is written
	}
	return hole
}

// evict drops n bytes of the file from off on from the page cache (they are
// synced).
func evict(f *os.File, off, n int64) {
	_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}
