package ledger

import "time"

// HLC timestamps are hybrid logical clocks: the upper 48 bits are wall time in
// milliseconds since the Unix epoch, the lower 16 a counter that orders events
// within one millisecond or while the wall clock stands still or runs back.
const hlcLogicalBits = 16

// NextHLC returns the clock value for a local event at wall time now, given the
// last value issued or observed. It is strictly greater than last, so events of
// one terminal are totally ordered even if the wall clock jumps backwards.
func NextHLC(last uint64, now time.Time) uint64 {
	phys := uint64(now.UnixMilli()) << hlcLogicalBits
	if phys > last {
		return phys
	}
	return last + 1
}

// ObserveHLC merges a clock value received from elsewhere (head office) into
// the local one, so that later local events order after what was observed.
func ObserveHLC(last, remote uint64) uint64 {
	if remote > last {
		return remote
	}
	return last
}

// HLCTime returns the wall-time part of an HLC value.
func HLCTime(h uint64) time.Time {
	return time.UnixMilli(int64(h >> hlcLogicalBits)).UTC()
}
