package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/widget"

	"github.com/offline-loyalty/terminal/agent"
)

// statusBar is always visible: the link to head office with the queue, the
// scanner, and which terminal and store this is.
type statusBar struct {
	root                    fyne.CanvasObject
	link, scanner, terminal *widget.Label
}

func newStatusBar() *statusBar {
	s := &statusBar{link: widget.NewLabel(""), scanner: widget.NewLabel(""), terminal: widget.NewLabel("")}
	s.link.TextStyle.Bold = true
	s.root = container.NewHBox(s.link, widget.NewSeparator(), s.scanner, widget.NewSeparator(), s.terminal)
	return s
}

func (s *statusBar) set(st agent.Status) {
	if st.Online {
		s.link.Importance = widget.SuccessImportance
		s.link.SetText(lang.L("Online · {{.Queue}} to send", map[string]any{"Queue": st.Queue}))
	} else {
		s.link.Importance = widget.DangerImportance
		s.link.SetText(lang.L("Offline · {{.Queue}} waiting to send", map[string]any{"Queue": st.Queue}))
	}
	s.scanner.Importance = widget.MediumImportance
	if st.Scanner != "connected" {
		s.scanner.Importance = widget.WarningImportance
	}
	s.scanner.SetText(lang.L("Scanner: {{.State}}", map[string]any{"State": lang.L(st.Scanner)}))
	term, store := st.Terminal, st.Store
	if term == "" {
		term = lang.L("not joined")
	}
	if store == "" {
		store = "-"
	}
	s.terminal.SetText(lang.L("Terminal {{.Terminal}} · Store {{.Store}} · Rules v{{.Rules}}",
		map[string]any{"Terminal": term, "Store": store, "Rules": st.RulesVersion}))
}
