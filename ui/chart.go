package ui

import (
	"image/color"

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
// bar per series, scaled to the largest value. Heights are geometry computed
// from integer data; nothing here is money.
type barChart struct {
	box    *fyne.Container // what the screen shows; barChart is its layout
	labels []string
	series []series
}

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
	c := b.box
	c.Objects = c.Objects[:0]
	for range labels {
		for range ss {
			c.Objects = append(c.Objects, canvas.NewRectangle(color.Transparent))
		}
		t := canvas.NewText("", theme.Color(theme.ColorNameForeground))
		t.TextSize = 10
		c.Objects = append(c.Objects, t)
	}
	for _, s := range ss {
		t := canvas.NewText("■ "+s.name, s.color)
		t.TextSize = 11
		c.Objects = append(c.Objects, t)
	}
	c.Refresh()
}

// MinSize asks for a readable chart.
func (b *barChart) MinSize([]fyne.CanvasObject) fyne.Size { return fyne.NewSize(240, chartHeight) }

// Layout places the bars.
func (b *barChart) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	if len(b.labels) == 0 {
		return
	}
	var top int64 = 1
	for _, s := range b.series {
		for _, v := range s.values {
			top = max(top, v)
		}
	}
	const legend, axis = 16, 14
	plot := size.Height - legend - axis
	col := size.Width / float32(len(b.labels))
	bar := col * 0.8 / float32(len(b.series))
	every := 1 + len(b.labels)/12 // label at most a dozen columns
	i := 0
	for c, label := range b.labels {
		for s, ser := range b.series {
			r := objs[i].(*canvas.Rectangle)
			i++
			v := int64(0)
			if c < len(ser.values) {
				v = ser.values[c]
			}
			h := plot * float32(v) / float32(top)
			r.FillColor = ser.color
			r.Move(fyne.NewPos(float32(c)*col+col*0.1+float32(s)*bar, legend+plot-h))
			r.Resize(fyne.NewSize(bar, h))
		}
		t := objs[i].(*canvas.Text)
		i++
		t.Text = ""
		if c%every == 0 {
			t.Text = label
		}
		t.Move(fyne.NewPos(float32(c)*col, legend+plot))
		t.Resize(fyne.NewSize(col*float32(every), axis))
	}
	x := float32(0)
	for range b.series {
		t := objs[i].(*canvas.Text)
		i++
		t.Move(fyne.NewPos(x, 0))
		x += t.MinSize().Width + 12
	}
}
