package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/internal/promtest"
)

// TestMetrics: the till's /metrics, on its socket and on --metrics, counts
// operations by kind and result (a refusal by its reason), replays and
// commit latency, and shows the state status reads (queue, link, scanner,
// ledger), each with HELP and TYPE;
// a refused operation is one JSON log line with its reason and the card
// masked.
func TestMetrics(t *testing.T) {
	data := t.TempDir()
	addr := freeAddr(t)
	logf := filepath.Join(t.TempDir(), "serve.log")
	f, err := os.Create(logf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, "serve", "--data", data, "--metrics", addr, "--log-format", "json")
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sock := filepath.Join(data, "agent.sock")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not listen")
		}
	}
	const card = "4000000000000002"
	ok := func(args ...string) {
		t.Helper()
		if r := posAgent(t, append(args, "--data", data)...); r.code != 0 {
			t.Fatalf("%v: %s", args, r.stderr)
		}
	}
	ok("enroll", "--card", card)
	ok("earn", "--card", card, "--amount", "3.00", "--ref", "r1")
	ok("earn", "--card", card, "--amount", "3.00", "--ref", "r1") // a retry
	if r := posAgent(t, "redeem", "--card", card, "--points", "5000", "--data", data); r.code == 0 {
		t.Fatal("redeemed more points than the member has")
	}

	unix := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	for name, scrape := range map[string]func() (promtest.Families, error){
		"socket":    func() (promtest.Families, error) { return promtest.Scrape(unix, "http://agent/metrics") },
		"--metrics": func() (promtest.Families, error) { return promtest.Scrape(nil, "http://"+addr+"/metrics") },
	} {
		fams, err := scrape()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, w := range []struct {
			name   string
			labels []string
			want   float64
		}{
			{"pos_agent_operations_total", []string{"kind", "enroll", "result", "ok"}, 1},
			{"pos_agent_operations_total", []string{"kind", "earn", "result", "ok"}, 2},
			{"pos_agent_operations_total", []string{"kind", "redeem", "result", "insufficient_points"}, 1},
			{"pos_agent_operations_total", []string{"kind", "void", "result", "ok"}, 0},
			{"pos_agent_operations_replayed_total", nil, 1},
			{"pos_agent_commit_seconds", nil, 2},
			{"pos_agent_queue_events", nil, 2},
			{"pos_agent_link_up", nil, 0},
			{"pos_agent_link_connects_total", nil, 0},
			{"pos_agent_scanner", []string{"state", "none"}, 1},
			{"pos_agent_scans_total", nil, 0},
			{"pos_agent_ledger_seq", nil, 2},
			{"pos_agent_log_failed", nil, 0},
			{"pos_agent_build_info", []string{"version", "dev"}, 1},
		} {
			if v, ok := fams.Value(w.name, w.labels...); !ok || v != w.want {
				t.Errorf("%s: %s%v = %v (present %v), want %v", name, w.name, w.labels, v, ok, w.want)
			}
		}
		for _, present := range []string{"pos_agent_oldest_unsent_age_seconds", "pos_agent_log_bytes", "go_goroutines", "process_open_fds"} {
			if _, ok := fams.Value(present); !ok {
				t.Errorf("%s: no %s", name, present)
			}
		}
		if _, ok := fams.Value("pos_agent_last_sync_timestamp_seconds"); ok {
			t.Errorf("%s: a last sync for a till that never synced", name)
		}
	}

	log, _ := os.ReadFile(logf)
	var refused []string
	for _, line := range strings.Split(strings.TrimSpace(string(log)), "\n") {
		if !strings.HasPrefix(line, `{"time":`) {
			t.Fatalf("not a JSON log line: %q", line)
		}
		if strings.Contains(line, `"msg":"operation refused"`) {
			refused = append(refused, line)
		}
	}
	if len(refused) != 1 || !strings.Contains(refused[0], `"kind":"redeem","reason":"insufficient_points"`) {
		t.Fatalf("refusals logged: %q", refused)
	}
	if strings.Contains(string(log), card) {
		t.Fatalf("the log shows a card number: %s", log)
	}
}
