package ui

import (
	"context"
	"errors"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/offline-loyalty/terminal/ui/i18n"
)

// noPort is what the port lists show for "no device".
const noPort = "-"

// settingsScreen edits the terminal's configuration through Deps.Settings.
type settingsScreen struct {
	t                *terminal
	root             fyne.CanvasObject
	hq, code         *keyEntry
	scanner, printer *keySelect
	language         *keySelect
	currency, joined *widget.Label
	join, save       *keyButton
}

func newSettingsScreen(t *terminal) *settingsScreen {
	s := &settingsScreen{t: t}
	s.hq, s.code = t.newEntry("wss://hq.example.com/v1/sync"), t.newEntry(lang.L("One-time join code"))
	s.scanner, s.printer = t.newSelect(nil), t.newSelect(nil)
	s.language = t.newSelect(languageNames())
	s.currency = widget.NewLabel("")
	s.joined = widget.NewLabel(lang.L("This terminal has joined head office: its address changes only with a new join."))
	s.joined.Wrapping = fyne.TextWrapWord
	s.joined.Hide()
	s.join = t.newButton(lang.L("Join head office"), theme.LoginIcon(), s.doJoin)
	s.save = t.newButton(lang.L("Save")+" (Enter)", theme.DocumentSaveIcon(), s.doSave)
	s.save.Importance = widget.HighImportance
	s.code.OnSubmitted = func(string) { s.doJoin() }
	s.hq.OnSubmitted = func(string) { s.doSave() }
	s.root = container.NewVScroll(container.NewVBox(
		bigText(lang.L("Settings"), sizeLarge),
		widget.NewForm(
			widget.NewFormItem(lang.L("Head office URL"), s.hq),
			widget.NewFormItem(lang.L("Join code"), container.NewBorder(nil, nil, nil, s.join, s.code)),
			widget.NewFormItem(lang.L("Scanner port"), s.scanner),
			widget.NewFormItem(lang.L("Printer port"), s.printer),
			widget.NewFormItem(lang.L("Language"), s.language),
			widget.NewFormItem(lang.L("Currency"), s.currency),
		),
		s.joined,
		widget.NewLabel(lang.L("The currency comes with head office's rules.")),
		widget.NewLabel(lang.L("The scanner and printer change when the terminal restarts; the language at once.")),
		container.NewGridWithColumns(2, t.newButton(lang.L("Back")+" (Esc)", theme.NavigateBackIcon(), t.showCheckout), s.save),
	))
	return s
}

// settingsView is what the screen loads in the background.
type settingsView struct {
	cfg   Config
	ports []string
	err   error
}

// open loads the saved configuration and the discovered ports.
func (s *settingsScreen) open() {
	run(s.t.br, func(ctx context.Context) (settingsView, error) {
		v := settingsView{cfg: s.t.d.Settings.Current()}
		v.ports, v.err = s.t.d.Settings.Ports(ctx)
		return v, nil
	}, func(v settingsView, _ error) {
		if v.err != nil {
			s.t.fail(v.err)
		}
		s.scanner.SetOptions(withPort(append([]string{noPort, "sim"}, v.ports...), v.cfg.ScannerPort))
		s.printer.SetOptions(withPort(append([]string{noPort}, v.ports...), v.cfg.PrinterPort))
		s.hq.SetText(v.cfg.HQURL)
		s.scanner.SetSelected(portOption(v.cfg.ScannerPort))
		s.printer.SetSelected(portOption(v.cfg.PrinterPort))
		code := v.cfg.Language
		if code == "" {
			code = i18n.Current()
		}
		s.language.SetSelected(languageName(code))
		s.currency.SetText(v.cfg.Currency)
		if v.cfg.Joined {
			s.hq.Disable()
			s.code.Disable()
			s.join.Disable()
			s.joined.Show()
			s.t.w.Canvas().Focus(s.scanner)
		} else {
			s.hq.Enable()
			s.code.Enable()
			s.join.Enable()
			s.joined.Hide()
			s.t.w.Canvas().Focus(s.hq)
		}
	})
}

// withPort adds the saved port to the discovered ones when it was not
// discovered (unplugged), so that saving keeps it.
func withPort(options []string, port string) []string {
	if port != "" && !slices.Contains(options, port) {
		options = append(options, port)
	}
	return options
}

// portOption is how a saved port appears in the list.
func portOption(port string) string {
	if port == "" {
		return noPort
	}
	return port
}

func portValue(sel string) string {
	if sel == noPort {
		return ""
	}
	return sel
}

func (s *settingsScreen) config() Config {
	return Config{HQURL: strings.TrimSpace(s.hq.Text), ScannerPort: portValue(s.scanner.Selected),
		PrinterPort: portValue(s.printer.Selected), Language: languageCode(s.language.Selected)}
}

func (s *settingsScreen) doSave() {
	c := s.config()
	run(s.t.br, func(ctx context.Context) (struct{}, error) { return struct{}{}, s.t.d.Settings.Save(ctx, c) },
		func(_ struct{}, err error) {
			if err != nil {
				s.t.fail(err)
				return
			}
			if c.Language != "" && c.Language != i18n.Current() {
				if err := i18n.Use(c.Language); err != nil {
					s.t.fail(err)
					return
				}
				s.t.relocalize(lang.L("Settings saved"))
				return
			}
			s.t.say(lang.L("Settings saved"))
		})
}

// languages name each language in itself, as a language list does.
var languages = map[string]string{"en": "English", "tr": "Türkçe"}

// languageNames are the languages offered, by name, in i18n's order.
func languageNames() []string {
	out := make([]string, len(i18n.Languages))
	for i, code := range i18n.Languages {
		out[i] = languageName(code)
	}
	return out
}

func languageName(code string) string {
	if n, ok := languages[code]; ok {
		return n
	}
	return code
}

// languageCode is the code of the language named name ("" for none).
func languageCode(name string) string {
	for code, n := range languages {
		if n == name {
			return code
		}
	}
	return ""
}

func (s *settingsScreen) doJoin() {
	url, code := strings.TrimSpace(s.hq.Text), strings.TrimSpace(s.code.Text)
	if url == "" || code == "" {
		s.t.fail(errors.New(lang.L("Type the head office URL and the join code")))
		return
	}
	run(s.t.br, func(ctx context.Context) (struct{}, error) { return struct{}{}, s.t.d.Settings.Join(ctx, url, code) },
		func(_ struct{}, err error) {
			if err != nil {
				s.t.fail(err)
				return
			}
			s.code.SetText("")
			s.t.say(lang.L("Joined head office"))
			s.t.refreshStatus()
		})
}
