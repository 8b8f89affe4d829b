//go:build !unix

package localapi

// umask is a no-op where files have no Unix permission bits; the socket's
// directory is the user's private data directory.
func umask(int) int { return 0 }
