package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/offline-loyalty/terminal/agent/store"
)

// Settings are the terminal's local configuration, chosen on the settings
// screen or with flags, and kept in the ledger file so they survive restarts.
type Settings struct {
	HQURL       string `json:"hq_url,omitempty"`       // head office sync endpoint, ws:// or wss://
	ScannerPort string `json:"scanner_port,omitempty"` // serial port path, "sim", or "" for none
	ScannerBaud int    `json:"scanner_baud,omitempty"` // 0 means the driver's default
	PrinterPort string `json:"printer_port,omitempty"` // receipt printer serial port, "" for none
	Language    string `json:"language,omitempty"`     // "en", "tr"; "" follows the system
}

// Languages the terminal's screens are translated into.
var Languages = []string{"en", "tr"}

// Validate checks the settings and returns the first problem.
func (s Settings) Validate() error {
	if s.HQURL != "" {
		u, err := url.Parse(s.HQURL)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return fmt.Errorf("%w: head office URL %q must look like wss://host/v1/sync", ErrInvalid, s.HQURL)
		}
	}
	for name, v := range map[string]string{"scanner port": s.ScannerPort, "printer port": s.PrinterPort} {
		if err := checkText(name, v, 256); err != nil {
			return err
		}
	}
	if s.ScannerBaud < 0 || s.ScannerBaud > 4_000_000 {
		return fmt.Errorf("%w: scanner baud rate %d", ErrInvalid, s.ScannerBaud)
	}
	if s.Language != "" && !contains(Languages, s.Language) {
		return fmt.Errorf("%w: language %q: choose one of %s", ErrInvalid, s.Language, strings.Join(Languages, ", "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Settings returns the saved settings.
func (a *Agent) Settings() Settings {
	var s Settings
	_ = a.st.View(func(tx *store.Tx) error {
		if raw := tx.Meta("settings"); raw != "" {
			_ = json.Unmarshal([]byte(raw), &s)
		}
		return nil
	})
	return s
}

// SaveSettings validates and saves the settings. Components that use them
// (the scanner, the printer) pick them up when they are restarted. Once the
// terminal has joined head office, its head office URL is the one it joined
// at (JoinedHQ): a different one is refused, since the link would not go
// there.
func (a *Agent) SaveSettings(s Settings) error {
	if cur := a.Settings(); s.HQURL != cur.HQURL && a.Identity().Joined() {
		return fmt.Errorf("%w: this terminal has joined head office at %s: its address changes only with a new join (pos-agent serve --hq URL reaches it elsewhere for one run)", ErrInvalid, cur.HQURL)
	}
	return a.saveSettings(s)
}

// JoinedHQ records the head office URL a join succeeded at as the
// terminal's head office URL.
func (a *Agent) JoinedHQ(url string) error {
	s := a.Settings()
	s.HQURL = url
	return a.saveSettings(s)
}

func (a *Agent) saveSettings(s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := a.st.Write(context.Background(), func(tx *store.Tx) error { return tx.SetMeta("settings", string(b)) }); err != nil {
		return err
	}
	a.notify(Notice{Kind: NoticeStatus})
	return nil
}
