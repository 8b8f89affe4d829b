package ui

import (
	"context"
	"errors"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/ui/i18n"
)

// agentSettings is the settings screen's backend over the agent alone, as
// pos-agent run's is, without serial ports or a head office to join.
type agentSettings struct{ a *agent.Agent }

func (s agentSettings) Current() Config {
	set := s.a.Settings()
	return Config{HQURL: set.HQURL, ScannerPort: set.ScannerPort, PrinterPort: set.PrinterPort, Language: set.Language,
		Currency: s.a.Rules().Currency, Joined: s.a.Identity().Joined()}
}

func (agentSettings) Ports(context.Context) ([]string, error) { return nil, nil }

func (agentSettings) Join(context.Context, string, string) error {
	return errors.New("no head office in this test")
}

func (s agentSettings) Save(_ context.Context, c Config) error {
	set := s.a.Settings()
	set.HQURL, set.ScannerPort, set.PrinterPort, set.Language = c.HQURL, c.ScannerPort, c.PrinterPort, c.Language
	return s.a.SaveSettings(set)
}

// TestSettingsHeadOfficeURL: before a join the head office URL is edited
// and saved; after it the field is not editable and the screen says why,
// and the rest of the settings still save. The currency is shown, never
// edited: it comes with head office's rules.
func TestSettingsHeadOfficeURL(t *testing.T) {
	f := newFixture(t)
	f.term.d.Settings = agentSettings{f.ag}
	if err := f.ag.SetManagerPIN("2468"); err != nil {
		t.Fatal(err)
	}
	s := f.term.set
	// F10 asks for the manager PIN first; leaving the settings locks them.
	open := func() {
		f.term.hotkey(&fyne.KeyEvent{Name: fyne.KeyF1})
		f.term.hotkey(&fyne.KeyEvent{Name: fyne.KeyF10})
		f.settle()
		if s.root.Visible() || !f.term.mgr.gate.Visible() {
			t.Fatal("F10 opened the settings without the manager PIN")
		}
		test.Type(f.term.mgr.pin, "2468")
		f.key(f.term.mgr.pin, fyne.KeyReturn)
		if !s.root.Visible() || f.term.mgr.board.Visible() {
			t.Fatalf("the manager PIN did not open the settings (%q)", f.term.msg.Text)
		}
	}
	open()
	if s.hq.Disabled() || s.joined.Visible() {
		t.Fatalf("before a join the head office URL must be editable (disabled %v), with no joined note (%v)", s.hq.Disabled(), s.joined.Visible())
	}
	if s.currency.Text != "EUR" {
		t.Errorf("currency shows %q, want the rules' EUR", s.currency.Text)
	}
	const hq = "wss://hq.example.com/v1/sync"
	test.Type(s.hq, hq)
	f.tap(s.save)
	f.wantMsg("Settings saved", widget.SuccessImportance)
	if got := f.ag.Settings().HQURL; got != hq {
		t.Fatalf("saved head office URL %q, want %q", got, hq)
	}

	if err := f.ag.SetIdentity("till-1", "store-7"); err != nil {
		t.Fatal(err)
	}
	if err := f.ag.JoinedHQ(hq); err != nil {
		t.Fatal(err)
	}
	open()
	if !s.hq.Disabled() || !s.join.Disabled() || !s.joined.Visible() || !strings.Contains(s.joined.Text, "joined head office") {
		t.Fatalf("after a join: URL disabled %v, join disabled %v, note %v %q", s.hq.Disabled(), s.join.Disabled(), s.joined.Visible(), s.joined.Text)
	}
	s.language.SetSelected("Türkçe")
	f.tap(s.save)
	defer func() { _ = i18n.Use("en") }()
	f.wantMsg("Ayarlar kaydedildi", widget.SuccessImportance) // the screens are Turkish now
	s = f.term.set                                            // built again in Turkish
	if got := f.ag.Settings(); got.Language != "tr" || got.HQURL != hq {
		t.Fatalf("saved %+v, want language tr and the joined URL kept", got)
	}
	// The agent holds the rule, whoever calls it.
	set := f.ag.Settings()
	set.HQURL = "wss://elsewhere.example.com/v1/sync"
	if err := f.ag.SaveSettings(set); err == nil || !strings.Contains(err.Error(), "joined head office at "+hq) {
		t.Fatalf("changing the joined URL: %v", err)
	}
	if got := f.ag.Settings().HQURL; got != hq {
		t.Fatalf("a refused save changed the URL to %q", got)
	}
	// From the settings, F9 shows the figures (the PIN was given); F1
	// locks both again.
	f.term.hotkey(&fyne.KeyEvent{Name: fyne.KeyF9})
	f.settle()
	if !f.term.mgr.board.Visible() || f.term.mgr.gate.Visible() {
		t.Fatal("F9 from the unlocked settings did not show the figures")
	}
	f.term.hotkey(&fyne.KeyEvent{Name: fyne.KeyF1})
	f.term.hotkey(&fyne.KeyEvent{Name: fyne.KeyF10})
	f.settle()
	if s.root.Visible() {
		t.Fatal("the settings stayed unlocked after the checkout screen")
	}
}

// TestLiveLanguageSwitch: the language list names languages in
// themselves and shows the one on screen; choosing Türkçe and saving
// switches every screen at once, without a restart, keeping the member on
// the sale and the settings open; money is then written the Turkish way.
func TestLiveLanguageSwitch(t *testing.T) {
	t.Setenv("LANGUAGE", "")
	t.Setenv("LC_ALL", "")
	defer func() { _ = i18n.Use("en") }()
	f := newFixture(t)
	f.term.d.Settings = agentSettings{f.ag}
	if err := f.ag.SetManagerPIN("2468"); err != nil {
		t.Fatal(err)
	}
	f.scan(adaCard)
	f.term.hotkey(&fyne.KeyEvent{Name: fyne.KeyF10})
	f.settle()
	test.Type(f.term.mgr.pin, "2468")
	f.key(f.term.mgr.pin, fyne.KeyReturn)
	s := f.term.set
	if got := s.language.Options; strings.Join(got, ",") != "English,Türkçe" || s.language.Selected != "English" {
		t.Fatalf("language list %v, selected %q", got, s.language.Selected)
	}
	s.language.SetSelected("Türkçe")
	f.tap(s.save)
	if f.ag.Settings().Language != "tr" {
		t.Fatalf("saved language %q", f.ag.Settings().Language)
	}
	s = f.term.set
	if !s.root.Visible() || s.language.Selected != "Türkçe" || f.term.msg.Text != "Ayarlar kaydedildi" || f.term.msg.Importance != widget.SuccessImportance {
		t.Fatalf("after the switch: settings shown %v, language %q, message %q", s.root.Visible(), s.language.Selected, f.term.msg.Text)
	}
	f.term.hotkey(&fyne.KeyEvent{Name: fyne.KeyF1})
	f.settle()
	c := f.term.co
	if c.member == nil || c.member.Name != "Ada Lovelace" || !strings.Contains(c.earnBtn.Text, "Puan kazan") {
		t.Fatalf("the checkout after the switch: member %v, Earn button %q", c.member, c.earnBtn.Text)
	}
	if !strings.Contains(c.progress.text, "500,00 €") {
		t.Fatalf("money in Turkish: %q", c.progress.text)
	}
	// The rules' names in Turkish: tiers, the earn lines, rewards.
	if c.tier.text.Text != "Bronz" || !strings.Contains(c.progress.text, "Gümüş") {
		t.Fatalf("tier names in Turkish: %q, %q", c.tier.text.Text, c.progress.text)
	}
	f.earn("12.50")
	if !strings.Contains(c.lines.Text, "temel") {
		t.Fatalf("earn lines in Turkish: %q", c.lines.Text)
	}
	c.openRewards()
	f.settle()
	if len(c.rewards.list) == 0 || rewardLabel(c.rewards.list[0].Reward) != "Bedava kahve" {
		t.Fatalf("reward names in Turkish: %+v", c.rewards.list)
	}
}
