package ui

import (
	"image/color"
	"testing"

	"fyne.io/fyne/v2"
)

// TestChartScale: the chart marks its scale (top and middle, in round
// numbers); one outlier does not flatten the other bars: the scale stops
// at the next one's, the outlier fills the height and says its value.
func TestChartScale(t *testing.T) {
	newFixture(t) // an app and the till's theme
	b := newBarChart()
	size := fyne.NewSize(300, chartHeight)
	b.set([]string{"a", "b", "c"}, series{"n", color.White, []int64{3, 4, 10}})
	b.Layout(nil, size)
	if b.gridLabel[0].Text != "10" || b.gridLabel[1].Text != "5" {
		t.Fatalf("scale marks %q and %q, want 10 and 5", b.gridLabel[0].Text, b.gridLabel[1].Text)
	}
	if h := b.bars[2].Size().Height; h != size.Height-30 {
		t.Fatalf("the largest bar is %v high, want the plot's %v", h, size.Height-30)
	}
	if h, full := b.bars[2].Size().Height, b.bars[1].Size().Height; h <= full || b.values[2].Text != "" {
		t.Fatalf("no outlier: heights %v, %v; label %q", full, h, b.values[2].Text)
	}
	b.set([]string{"a", "b", "c"}, series{"n", color.White, []int64{3, 4, 1000}})
	b.Layout(nil, size)
	plot := b.bars[2].Size().Height
	if b.gridLabel[0].Text != "4" || b.values[2].Text != "1000" {
		t.Fatalf("an outlier: scale %q, its label %q; want 4 and 1000", b.gridLabel[0].Text, b.values[2].Text)
	}
	if got := b.bars[1].Size().Height; got != plot {
		t.Fatalf("the bar of 4 is %v high of %v: flattened by the outlier", got, plot)
	}
	for v, want := range map[int64]int64{1: 1, 3: 3, 7: 8, 9: 10, 11: 20, 150: 200, 500: 500, 501: 600, 2400: 3000} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", v, got, want)
		}
	}
}
