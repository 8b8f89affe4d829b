package agent

import (
	"reflect"
	"testing"
	"time"
)

func TestProblems(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	healthy := Status{Store: "S1", Online: true, Scanner: "connected", LastSync: at(time.Second)}
	for name, tc := range map[string]struct {
		change func(*Status)
		want   []string
	}{
		"healthy":      {func(*Status) {}, []string{}},
		"no scanner":   {func(s *Status) { s.Scanner = "none" }, []string{}},
		"recent queue": {func(s *Status) { s.Queue, s.OldestUnsent = 3, at(time.Minute) }, []string{}},
		"not joined":   {func(s *Status) { s.Store = "" }, []string{"not joined to head office: events stay on this till (pos-agent join --hq URL --code CODE)"}},
		"offline": {func(s *Status) {
			s.Online, s.LastSync, s.LinkError, s.Queue, s.OldestUnsent = false, at(3*time.Hour), "dial tcp: connection refused", 40, at(2*time.Hour)
		}, []string{"offline, last sync 3h0m0s ago: dial tcp: connection refused", "40 events not at head office yet, the oldest from 2h0m0s ago"}},
		"never synced": {func(s *Status) { s.Online, s.LastSync = false, nil }, []string{"offline, never synced"}},
		"scanner":      {func(s *Status) { s.Scanner = "disconnected" }, []string{"scanner disconnected: check its cable and port (cards can be typed meanwhile)"}},
		"log failed": {func(s *Status) { s.Log.Failed, s.Log.LagMS = "write wal/0001: no space left on device", 90000 },
			[]string{"the ledger's log failed: write wal/0001: no space left on device"}},
		"log behind": {func(s *Status) { s.Log.Logged, s.Log.Applied, s.Log.LagMS = 120, 20, 90000 },
			[]string{"the ledger file is 100 records behind its log for 1m30s"}},
	} {
		s := healthy
		tc.change(&s)
		if got := problems(s, now); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}
