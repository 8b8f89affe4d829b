// Package buildstamp holds the build's version, commit and date, stamped at link
// time with -ldflags "-X ...". It must never compute anything at run time.
package buildstamp

import "fmt"

// Set by the linker (see the Makefile's LDFLAGS).
var (
	Version = "dev"
	Commit  = "unknown"
	Date    = "unknown"
)

// Info is the build stamp as printed by the version verbs.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
}

// Get returns the build stamp.
func Get() Info { return Info{Version: Version, Commit: Commit, Date: Date} }

// String renders the stamp on one line.
func (i Info) String() string {
	return fmt.Sprintf("%s (commit %s, built %s)", i.Version, i.Commit, i.Date)
}
