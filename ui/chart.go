package ui

import (
	"image/color"
	"strconv"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
)

// series is one set of bars of a chart: its color and a value per column.
type series struct {
	name   string
	color  color.Color
	values []int64
}

// barChart draws grouped bars with Fyne's canvas: one group per column, one
// bar per series, on a value scale with its top and middle marked. One bar
// far above the rest (over outlierRatio times the next) does not flatten
// them: the scale stops at the next one's, and that bar reaches the top
// with its value written on it. Heights are geometry computed from integer
// data; nothing here is money.
type barChart struct {
	box    *fyne.Container // what the screen shows; barChart is its layout
	labels []string
	series []series
	// Objects of box, by role.
	bars      []*canvas.Rectangle // column by column, series by series
	values    []*canvas.Text      // a capped bar's value, one per bar
	axis      []*canvas.Text      // the column labels
	legend    []*canvas.Text
	grid      [2]*canvas.Line // the scale's top and middle
	gridLabel [2]*canvas.Text
}

// outlierRatio is how far above the next bar a bar must be to be capped.
const outlierRatio = 3

// chartHeight is the height a chart asks for: tall enough to read at a
// glance on a 768-pixel screen next to the figure cards.
const chartHeight = 110

func newBarChart() *barChart {
	b := &barChart{}
	b.box = &fyne.Container{Layout: b}
	return b
}

// set replaces the data; labels name the columns.
func (b *barChart) set(labels []string, ss ...series) {
	b.labels, b.series = labels, ss
	b.bars, b.values, b.axis, b.legend = nil, nil, nil, nil
	c := b.box
	c.Objects = c.Objects[:0]
	fg := theme.Color(theme.ColorNameForeground)
	for i := range b.grid {
		b.grid[i] = canvas.NewLine(theme.Color(theme.ColorNameSeparator))
		b.gridLabel[i] = canvas.NewText("", theme.Color(theme.ColorNamePlaceHolder))
		b.gridLabel[i].TextSize = 10
		c.Objects = append(c.Objects, b.grid[i], b.gridLabel[i])
	}
	for range labels {
		for range ss {
			r := canvas.NewRectangle(color.Transparent)
			v := canvas.NewText("", fg)
			v.TextSize = 10
			v.Alignment = fyne.TextAlignCenter
			b.bars, b.values = append(b.bars, r), append(b.values, v)
			c.Objects = append(c.Objects, r, v)
		}
		t := canvas.NewText("", fg)
		t.TextSize = 10
		b.axis = append(b.axis, t)
		c.Objects = append(c.Objects, t)
	}
	for _, s := range ss {
		t := canvas.NewText("■ "+s.name, s.color)
		t.TextSize = 11
		b.legend = append(b.legend, t)
		c.Objects = append(c.Objects, t)
	}
	c.Refresh()
}

// MinSize asks for a readable chart.
func (b *barChart) MinSize([]fyne.CanvasObject) fyne.Size { return fyne.NewSize(240, chartHeight) }

// scale is the value at the top of the chart: the largest value, or, when
// it is an outlier, the next largest (the outlier is then capped); rounded
// up to a round number (niceCeil).
func (b *barChart) scale() int64 {
	var top, next int64
	for _, s := range b.series {
		for _, v := range s.values {
			switch {
			case v > top:
				top, next = v, top
			case v > next:
				next = v
			}
		}
	}
	if next > 0 && top > outlierRatio*next {
		top = next
	}
	return niceCeil(max(top, 1))
}

// niceCeil is the smallest of 1, 2, 3, 4, 5, 6, 8 times a power of ten
// that is at least v: round, and never far above it.
func niceCeil(v int64) int64 {
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 3, 4, 5, 6, 8} {
			if m*p >= v {
				return m * p
			}
		}
	}
}

// Layout places the scale, the bars and the labels.
func (b *barChart) Layout(_ []fyne.CanvasObject, size fyne.Size) {
	if len(b.labels) == 0 {
		return
	}
	top := b.scale()
	const legend, axis, gutter = 16, 14, 30
	plot := size.Height - legend - axis
	col := (size.Width - gutter) / float32(len(b.labels))
	bar := col * 0.8 / float32(len(b.series))
	for i, v := range []int64{top, top / 2} {
		y := legend + plot - plot*float32(v)/float32(top)
		b.grid[i].Position1, b.grid[i].Position2 = fyne.NewPos(gutter, y), fyne.NewPos(size.Width, y)
		b.gridLabel[i].Text = strconv.FormatInt(v, 10)
		b.gridLabel[i].Move(fyne.NewPos(0, y-6))
		b.gridLabel[i].Refresh()
	}
	every := 1 + len(b.labels)/12 // label at most a dozen columns
	i := 0
	for c, label := range b.labels {
		x0 := gutter + float32(c)*col
		for s, ser := range b.series {
			r, val := b.bars[i], b.values[i]
			i++
			v := int64(0)
			if c < len(ser.values) {
				v = ser.values[c]
			}
			h := plot * float32(min(v, top)) / float32(top)
			r.FillColor = ser.color
			x := x0 + col*0.1 + float32(s)*bar
			r.Move(fyne.NewPos(x, legend+plot-h))
			r.Resize(fyne.NewSize(bar, h))
			val.Text = ""
			if v > top {
				// Capped: its real value, on the bar's top.
				val.Text = strconv.FormatInt(v, 10)
			}
			val.Move(fyne.NewPos(x, legend+2))
			val.Resize(fyne.NewSize(bar, 12))
			val.Refresh()
		}
		t := b.axis[c]
		t.Text = ""
		if c%every == 0 {
			t.Text = label
		}
		t.Move(fyne.NewPos(x0, legend+plot))
		t.Resize(fyne.NewSize(col*float32(every), axis))
	}
	x := float32(gutter)
	for _, t := range b.legend {
		t.Move(fyne.NewPos(x, 0))
		x += t.MinSize().Width + 12
	}
}
