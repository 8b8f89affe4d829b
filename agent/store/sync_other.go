//go:build !linux

package store

import "os"

// fdatasync is a full sync where the system has no fdatasync.
func fdatasync(f *os.File) error { return f.Sync() }

// pwrite writes b at off. On an error os.File.WriteAt does not say how much
// reached the file, so all of b counts as written (to be cleared).
func pwrite(f *os.File, b []byte, off int64) (int, error) {
	n, err := f.WriteAt(b, off)
	if err != nil {
		return len(b), err
	}
	return n, nil
}
