package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdatasync makes a file's written data durable without its metadata
// (times), which the log's segments, written whole when made, never need.
func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
