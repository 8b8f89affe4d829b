package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
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
