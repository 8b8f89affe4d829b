//go:build !unix

package main

// umask is a no-op where files have no Unix permission bits.
func umask(int) int { return 0 }
