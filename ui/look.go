package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// Text sizes of the terminal, larger than Fyne's defaults so that a cashier
// reads them at arm's length.
const (
	sizeHuge  = 34 // the member's balance
	sizeLarge = 24 // names and headings
)

// terminalTheme is Fyne's default theme with larger text and padding, so
// every button is a comfortable touch target.
type terminalTheme struct{ fyne.Theme }

// Size enlarges text and the padding inside widgets.
func (t terminalTheme) Size(n fyne.ThemeSizeName) float32 {
	switch n {
	case theme.SizeNameText:
		return 16
	case theme.SizeNameInnerPadding:
		return 10
	}
	return t.Theme.Size(n)
}

// bigText is a line of bold text at size.
func bigText(s string, size float32) *canvas.Text {
	t := canvas.NewText(s, theme.Color(theme.ColorNameForeground))
	t.TextSize = size
	t.TextStyle.Bold = true
	return t
}

// pill is a short text on a rounded colored background, e.g. the tier badge.
type pill struct {
	bg   *canvas.Rectangle
	text *canvas.Text
	root *fyne.Container
}

func newPill() *pill {
	p := &pill{bg: canvas.NewRectangle(color.Transparent), text: canvas.NewText("", color.White)}
	p.bg.CornerRadius = 12
	p.text.TextStyle.Bold = true
	p.root = container.NewStack(p.bg, container.NewPadded(p.text))
	return p
}

func (p *pill) set(text string, fill color.Color) {
	p.text.Text = text
	p.bg.FillColor = fill
	p.root.Refresh()
}

// tierColor is the badge color of a tier id; unknown tiers are grey.
func tierColor(tier string) color.Color {
	switch tier {
	case "bronze":
		return color.NRGBA{R: 0x8c, G: 0x57, B: 0x2b, A: 0xff}
	case "silver":
		return color.NRGBA{R: 0x70, G: 0x78, B: 0x80, A: 0xff}
	case "gold":
		return color.NRGBA{R: 0xb8, G: 0x86, B: 0x0b, A: 0xff}
	case "platinum":
		return color.NRGBA{R: 0x3a, G: 0x4e, B: 0x6e, A: 0xff}
	}
	return color.NRGBA{R: 0x60, G: 0x60, B: 0x60, A: 0xff}
}

// cardGrid lays out equal cells in as many columns as the width gives
// room for (each at least cell wide, at most maxCols), so that a card's
// title is not cut at 800 pixels nor spread thin at 1920. Its MinSize is
// the height the cells need at the container's present width.
type cardGrid struct {
	box     *fyne.Container
	cell    float32
	maxCols int
}

func newCardGrid(cell float32, maxCols int, objs ...fyne.CanvasObject) *fyne.Container {
	g := &cardGrid{cell: cell, maxCols: maxCols}
	g.box = container.New(g, objs...)
	return g.box
}

// cols is the number of columns at width (one at least).
func (g *cardGrid) cols(width float32) int {
	n := int((width + theme.Padding()) / (g.cell + theme.Padding()))
	return max(1, min(n, g.maxCols))
}

// cellHeight is the tallest cell's minimum height.
func cellHeight(objs []fyne.CanvasObject) float32 {
	var h float32
	for _, o := range objs {
		if o.Visible() {
			h = max(h, o.MinSize().Height)
		}
	}
	return h
}

// rows is how many rows n cells fill in cols columns.
func rows(n, cols int) int { return (n + cols - 1) / cols }

// Layout places the cells row by row, stretched to the width.
func (g *cardGrid) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	cols, pad := g.cols(size.Width), theme.Padding()
	w := (size.Width - pad*float32(cols-1)) / float32(cols)
	h := cellHeight(objs)
	for i, o := range objs {
		o.Move(fyne.NewPos(float32(i%cols)*(w+pad), float32(i/cols)*(h+pad)))
		o.Resize(fyne.NewSize(w, h))
	}
}

// MinSize is one cell wide and as tall as the rows at the present width.
func (g *cardGrid) MinSize(objs []fyne.CanvasObject) fyne.Size {
	width := g.box.Size().Width
	if width <= 0 {
		width = g.cell * float32(g.maxCols)
	}
	n := rows(len(objs), g.cols(width))
	return fyne.NewSize(g.cell, float32(n)*cellHeight(objs)+theme.Padding()*float32(n-1))
}

// meter is a progress bar whose empty part reads as empty: a neutral track
// with the filled part in the primary colour and the text on top (Fyne's
// ProgressBar draws its track in the primary colour at half strength, so
// that at 0 % it looks nearly full on the dark theme).
type meter struct {
	widget.BaseWidget
	value float64 // 0 to 1
	text  string
}

func newMeter() *meter {
	m := &meter{}
	m.ExtendBaseWidget(m)
	return m
}

// set shows value (clamped to 0..1) with text over it.
func (m *meter) set(value float64, text string) {
	m.value, m.text = min(max(value, 0), 1), text
	m.Refresh()
}

// CreateRenderer draws the track, the fill and the text.
func (m *meter) CreateRenderer() fyne.WidgetRenderer {
	r := &meterRenderer{m: m, track: canvas.NewRectangle(color.Transparent), fill: canvas.NewRectangle(color.Transparent),
		label: canvas.NewText("", color.Transparent)}
	r.label.Alignment = fyne.TextAlignCenter
	r.Refresh()
	return r
}

type meterRenderer struct {
	m           *meter
	track, fill *canvas.Rectangle
	label       *canvas.Text
}

func (r *meterRenderer) Layout(size fyne.Size) {
	r.track.Resize(size)
	r.fill.Resize(fyne.NewSize(size.Width*float32(r.m.value), size.Height))
	r.label.Resize(size)
}

func (r *meterRenderer) MinSize() fyne.Size {
	t := fyne.MeasureText(r.m.text, theme.TextSize(), fyne.TextStyle{})
	return fyne.NewSize(t.Width+2*theme.InnerPadding(), t.Height+theme.InnerPadding())
}

func (r *meterRenderer) Refresh() {
	r.track.FillColor = theme.Color(theme.ColorNameInputBackground)
	r.fill.FillColor = theme.Color(theme.ColorNamePrimary)
	r.track.CornerRadius, r.fill.CornerRadius = theme.InputRadiusSize(), theme.InputRadiusSize()
	r.fill.Hidden = r.m.value == 0
	r.label.Text, r.label.Color = r.m.text, theme.Color(theme.ColorNameForeground)
	r.Layout(r.m.Size())
	canvas.Refresh(r.m)
}

func (r *meterRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{r.track, r.fill, r.label}
}

func (r *meterRenderer) Destroy() {}
