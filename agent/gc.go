package agent

import (
	"os"
	"runtime/debug"
)

// The garbage collector's settings for a process that serves checkouts
// (pos-agent serve and run). The agent's live heap is a few MB, and Go's
// default (GOGC=100 with a 4 MB minimum heap) then collects every 2-3 MB
// allocated: every 80-100 earns under load. Each collection holds up the
// requests in flight, and a client held up past the group-commit wait
// misses the shared commit (see docs/architecture.md). At 400 it collects a
// quarter as often, for about 12 MB more memory; the soft limit keeps the
// heap bounded should the live heap ever grow large.
const (
	GCPercent     = 400
	GCMemoryLimit = 512 << 20
)

// TuneGC applies GCPercent and GCMemoryLimit to the process, each unless the
// environment sets it (GOGC, GOMEMLIMIT), and returns a function that puts
// back the settings it found.
func TuneGC() (restore func()) {
	percent, limit := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1)
	debug.SetGCPercent(percent)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(GCMemoryLimit)
	}
	return func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}
