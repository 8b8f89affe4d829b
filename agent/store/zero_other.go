//go:build !linux

package store

import "os"

// openZeroer: zeroAhead is for Linux filesystems only (see zero.go); it is
// not measured elsewhere.
func openZeroer(string) zeroer { return zeroer{} }

func writtenFrom(_ *os.File, off int64) int64 { return off }

func evict(*os.File, int64, int64) {}
