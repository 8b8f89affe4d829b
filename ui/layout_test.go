package ui

import (
	"fmt"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/offline-loyalty/terminal/ui/i18n"
)

// screenSizes are the screens the till is laid out for, smallest first.
var screenSizes = []fyne.Size{{Width: 800, Height: 600}, {Width: 1024, Height: 768}, {Width: 1920, Height: 1080}}

// cutTexts lists what on screen is cut short: a single-line label or a
// button narrower than its text, anywhere under root that is visible.
func cutTexts(root fyne.CanvasObject) []string {
	var out []string
	var walk func(o fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		if !o.Visible() {
			return
		}
		switch w := o.(type) {
		case *widget.Label:
			if w.Wrapping == fyne.TextWrapOff && w.Text != "" {
				size := theme.TextSize()
				if w.SizeName != "" {
					size = theme.Size(w.SizeName)
				}
				need := fyne.MeasureText(w.Text, size, w.TextStyle).Width + 2*theme.InnerPadding()
				if need > w.Size().Width+1 {
					out = append(out, fmt.Sprintf("label %q: %.0f px of text in %.0f", w.Text, need, w.Size().Width))
				}
			}
			return
		case *keyButton:
			if need := w.MinSize().Width; need > w.Size().Width+1 {
				out = append(out, fmt.Sprintf("button %q: %.0f px in %.0f", w.Text, need, w.Size().Width))
			}
			return
		case *fyne.Container:
			for _, c := range w.Objects {
				walk(c)
			}
			return
		case fyne.Widget:
			for _, c := range test.WidgetRenderer(w).Objects() {
				walk(c)
			}
		}
	}
	walk(root)
	return out
}

// inside reports whether o lies wholly within the window's canvas.
func inside(f *fixture, o fyne.CanvasObject) bool {
	pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(o)
	cs := f.w.Canvas().Size()
	return pos.X >= 0 && pos.Y >= 0 && pos.X+o.Size().Width <= cs.Width+1 && pos.Y+o.Size().Height <= cs.Height+1
}

// TestLayoutFits: at 800x600, 1024x768 and 1920x1080, in English and in
// Turkish, the checkout screen's Earn button, message line and status bar
// are on screen and nothing is cut short; the manager screen's figures fit
// without scrolling from 1024x768 and no title is cut.
func TestLayoutFits(t *testing.T) {
	for _, code := range i18n.Languages {
		t.Run(code, func(t *testing.T) {
			t.Setenv("LANGUAGE", "")
			t.Setenv("LC_ALL", "")
			if err := i18n.Use(code); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = i18n.Use("en") }()
			f := newFixture(t)
			if err := f.ag.SetManagerPIN("2468"); err != nil {
				t.Fatal(err)
			}
			c := f.term.co
			f.scan(adaCard)
			f.earn("12.50")
			f.settle()
			// The fullest member panel: every optional line shown.
			m := *c.member
			m.Pending, m.Expiring, m.WelcomeBack, m.BirthdayMonth = 50, 120, true, true
			m.ExpiresOn = &clock
			c.setMember(m)
			c.openRewards() // the widest work area
			for _, sz := range screenSizes {
				f.w.Resize(sz)
				f.settle()
				if min := f.w.Content().MinSize(); min.Width > sz.Width || min.Height > sz.Height {
					t.Errorf("%v: the checkout screen needs %v", sz, min)
				}
				for name, o := range map[string]fyne.CanvasObject{"F2 Earn": c.actions[fyne.KeyF2], "message": f.term.msg, "status bar": f.term.status.root} {
					if !inside(f, o) {
						t.Errorf("%v: the %s is off screen", sz, name)
					}
				}
				for _, cut := range cutTexts(f.w.Content()) {
					t.Errorf("%v checkout: %s", sz, cut)
				}
			}
			f.key(c.amount, fyne.KeyF9)
			f.term.mgr.pin.SetText("2468")
			f.key(f.term.mgr.pin, fyne.KeyReturn)
			if !f.term.mgr.board.Visible() {
				t.Fatal("the manager screen did not open")
			}
			for _, sz := range screenSizes {
				f.w.Resize(sz)
				f.settle()
				content := f.term.mgr.board.(*container.Scroll).Content.MinSize()
				if sz.Width >= 1024 && content.Height > f.term.mgr.board.Size().Height {
					t.Errorf("%v: the manager screen scrolls (%v of figures in %v)", sz, content, f.term.mgr.board.Size())
				}
				for _, cut := range cutTexts(f.term.mgr.board.(*container.Scroll).Content) {
					t.Errorf("%v manager: %s", sz, cut)
				}
			}
		})
	}
}
