package agent

import (
	"runtime/debug"
	"testing"
)

func gcPercent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}

// TestTuneGC: the serving settings apply unless the environment sets its
// own, and restore puts back what was there.
func TestTuneGC(t *testing.T) {
	percent, limit := gcPercent(), debug.SetMemoryLimit(-1)
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	restore := TuneGC()
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != GCPercent || l != GCMemoryLimit {
		t.Errorf("tuned: GOGC %d, limit %d; want %d, %d", p, l, GCPercent, GCMemoryLimit)
	}
	restore()
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != percent || l != limit {
		t.Errorf("restored: GOGC %d, limit %d; want %d, %d", p, l, percent, limit)
	}
	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "1GiB")
	restore = TuneGC()
	defer restore()
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != percent || l != limit {
		t.Errorf("with GOGC and GOMEMLIMIT set: GOGC %d, limit %d; want them left at %d, %d", p, l, percent, limit)
	}
}
