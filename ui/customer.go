package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/rules"
)

// customerDisplay is the second window a till may face its customer with
// (Deps.CustomerDisplay): who is signed to the sale, their points, what
// this sale earned line by line and the way to the next tier — and, with
// nobody on the sale, an invitation to scan. It shows what the cashier's
// screen shows, read from the same member view; it decides nothing.
type customerDisplay struct {
	w        fyne.Window
	greeting *widget.Label
	balance  *canvas.Text
	tier     *pill
	progress *meter
	lines    *widget.Label
	member   *fyne.Container
	idle     *widget.Label
}

func newCustomerDisplay(w fyne.Window) *customerDisplay {
	d := &customerDisplay{w: w, tier: newPill(), progress: newMeter()}
	d.greeting = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	d.greeting.SizeName = theme.SizeNameHeadingText
	d.balance = bigText("", sizeHuge*1.5)
	d.balance.Alignment = fyne.TextAlignCenter
	d.lines = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{})
	d.lines.Wrapping = fyne.TextWrapWord
	d.idle = widget.NewLabelWithStyle(lang.L("Welcome! Scan your loyalty card or app to collect points."), fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	d.idle.SizeName = theme.SizeNameHeadingText
	d.idle.Wrapping = fyne.TextWrapWord
	d.member = container.NewVBox(d.greeting, container.NewCenter(d.tier.root), d.balance, d.progress, d.lines)
	w.SetContent(container.NewPadded(container.NewStack(container.NewCenter(d.idle), d.member)))
	d.show(nil, nil, "", "")
	return d
}

// show puts member (nil: nobody) on the display with the lines the sale
// earned and what the next tier takes (toNext, "" at the top tier); doc is
// the rules in force, which name the tiers.
func (d *customerDisplay) show(m *agent.MemberView, doc *rules.Document, lines, toNext string) {
	if m == nil {
		d.member.Hide()
		d.idle.Show()
		return
	}
	f := factsOf(*m, doc)
	name := m.Name
	if name == "" {
		name = lang.L("Member")
	}
	d.greeting.SetText(lang.L("Hello, {{.Name}}!", map[string]any{"Name": name}))
	d.tier.set(f.Tier, tierColor(m.Tier))
	d.balance.Text = lang.L("{{.Points}} pts", map[string]any{"Points": m.Balance})
	d.balance.Refresh()
	d.progress.Hidden = toNext == ""
	d.progress.set(f.Progress, toNext)
	d.lines.SetText(lines)
	d.idle.Hide()
	d.member.Show()
}
