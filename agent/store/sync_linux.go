package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdatasync makes a file's written data durable without its metadata
// (times), which the log's segments, written whole when made, never need.
func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

// pwrite writes b at off and returns how much of it reached the file, also
// when it stops short with an error (a file size limit): os.File.WriteAt
// returns 0 then, and a record's written part would stay uncleared.
func pwrite(f *os.File, b []byte, off int64) (int, error) {
	done := 0
	for done < len(b) {
		n, err := unix.Pwrite(int(f.Fd()), b[done:], off+int64(done))
		if n > 0 {
			done += n
		}
		switch {
		case err == unix.EINTR:
		case err != nil:
			return done, &os.PathError{Op: "write", Path: f.Name(), Err: err}
		case n == 0:
			return done, &os.PathError{Op: "write", Path: f.Name(), Err: unix.EIO}
		}
	}
	return done, nil
}
