package headoffice

import (
	"math"
	"testing"
)

// TestLiabilityValue: points × value per point × (1 − breakage), rounded
// down, exact at the ends of int64.
func TestLiabilityValue(t *testing.T) {
	for _, c := range []struct {
		points, value, per, breakage, want int64
	}{
		{1500, 100, 100, 0, 1500},   // 100 points are worth 1.00: 15.00
		{1500, 100, 100, 200, 1200}, // a fifth expires
		{1, 1, 3, 0, 0},             // rounded down
		{0, 100, 100, 0, 0},
		{-50, 100, 100, 0, 0}, // a negative total owes nothing
		{1000, 100, 0, 0, 0},  // no value per point
		{math.MaxInt64, math.MaxInt64, 1, 0, math.MaxInt64},
		{math.MaxInt64, 1, 1, 1000, 0},
	} {
		if got := liabilityValue(c.points, c.value, c.per, c.breakage); got != c.want {
			t.Errorf("liabilityValue(%d, %d, %d, %d) = %d, want %d", c.points, c.value, c.per, c.breakage, got, c.want)
		}
	}
}
