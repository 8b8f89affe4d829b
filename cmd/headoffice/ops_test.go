package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/internal/promtest"
)

// get returns the status and the body of a GET.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetrics: head office's /metrics, on its own address, has the Go and
// process collectors and the figures of a terminal that joined and synced,
// each with HELP and TYPE; the sync address no longer serves it; the logs
// are JSON lines when asked for.
func TestMetrics(t *testing.T) {
	dir := t.TempDir()
	hqData := filepath.Join(dir, "hq")
	addr, maddr := freePort(t), freePort(t)
	hq := &daemon{t: t, name: "headoffice", args: []string{"serve", "--listen", addr, "--metrics-listen", maddr, "--log-format", "json", "--data", hqData},
		ready: listening("tcp", addr)}
	hq.start()
	defer hq.kill()
	id, code := addTerminal(t, hqData, "t1")
	tl := &till{id: id, data: filepath.Join(dir, "till"), card: "2000000000015"}
	hqURL := "ws://" + addr + "/v1/sync"
	run(t, "pos-agent", "join", "--data", tl.data, "--hq", hqURL, "--code", code)
	run(t, "pos-agent", "enroll", "--data", tl.data, "--card", tl.card)
	for _, ref := range []string{"r1", "r2", "r3"} {
		run(t, "pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", "3.00", "--ref", ref)
	}
	tl.serve = &daemon{t: t, name: "pos-agent", args: []string{"serve", "--data", tl.data, "--hq", hqURL}, ready: listening("unix", filepath.Join(tl.data, "agent.sock"))}
	tl.serve.start()
	defer tl.serve.kill()
	drain(t, []*till{tl}, 15*time.Second)
	// A join with a code that is not one is refused and counted.
	if _, err := try("pos-agent", "join", "--data", filepath.Join(dir, "intruder"), "--hq", hqURL, "--code", "AAAA-BBBB-CCCC"); err == nil {
		t.Fatal("a made-up join code joined")
	}

	fams, err := promtest.Scrape(nil, "http://"+maddr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name   string
		labels []string
		least  float64
	}{
		{"go_goroutines", nil, 1},
		{"process_resident_memory_bytes", nil, 1},
		{"headoffice_build_info", []string{"version", "dev"}, 1},
		{"headoffice_terminals_connected", nil, 1},
		{"headoffice_handshakes_total", []string{"result", "ok"}, 1},
		{"headoffice_events_ingested_total", nil, 4},
		{"headoffice_batch_events", nil, 1},
		{"headoffice_ack_seconds", nil, 1},
		{"headoffice_batches_refused_total", []string{"reason", "chain"}, 0},
		{"headoffice_store_commit_seconds", nil, 1},
		{"headoffice_store_commit_events", nil, 1},
		{"headoffice_store_commits_failed_total", nil, 0},
		{"headoffice_joins_total", []string{"result", "ok"}, 1},
		{"headoffice_joins_total", []string{"result", "join_code"}, 1},
		{"headoffice_open_connections", nil, 1},
		{"headoffice_connections_refused_total", nil, 0},
		{"headoffice_flags_raised_total", []string{"kind", "negative_balance"}, 0},
	}
	for _, w := range want {
		if v, ok := fams.Value(w.name, w.labels...); !ok || v < w.least {
			t.Errorf("%s%v = %v (present %v), want at least %v", w.name, w.labels, v, ok, w.least)
		}
	}
	if status, _ := get(t, "http://"+addr+"/metrics"); status != http.StatusNotFound {
		t.Errorf("/metrics beside /v1/sync: %d, want 404 with --metrics-listen", status)
	}
	for _, a := range []string{addr, maddr} {
		if status, body := get(t, "http://"+a+"/healthz"); status != 200 || body != "ok\n" {
			t.Errorf("%s /healthz: %d %q", a, status, body)
		}
		if status, body := get(t, "http://"+a+"/readyz"); status != 200 || body != "ready\n" {
			t.Errorf("%s /readyz: %d %q", a, status, body)
		}
	}
	// The till's own metrics, on its socket, see the link.
	sock := filepath.Join(tl.data, "agent.sock")
	unix := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	tfams, err := promtest.Scrape(unix, "http://agent/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{"pos_agent_link_up": 1, "pos_agent_link_connects_total": 1, "pos_agent_queue_events": 0, "pos_agent_oldest_unsent_age_seconds": 0} {
		if v, ok := tfams.Value(name); !ok || v != want {
			t.Errorf("till %s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if v, ok := tfams.Value("pos_agent_last_sync_timestamp_seconds"); !ok || v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("till last sync %v (present %v)", v, ok)
	}
	// Every series the Grafana dashboard in docs/ queries is one of these.
	dash, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(dash) {
		t.Fatal("docs/grafana-dashboard.json is not JSON")
	}
	for _, name := range regexp.MustCompile(`\b(?:headoffice|pos_agent)_[a-z_]+`).FindAllString(string(dash), -1) {
		base := name
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && (fams[b] != nil || tfams[b] != nil) {
				base = b
			}
		}
		if fams[base] == nil && tfams[base] == nil {
			t.Errorf("the dashboard queries %s, which neither program exposes", name)
		}
	}
	log, _ := os.ReadFile(hq.log.Name())
	for _, line := range strings.Split(strings.TrimSpace(string(log)), "\n") {
		if !strings.HasPrefix(line, `{"time":`) {
			t.Fatalf("not a JSON log line: %q", line)
		}
	}
	if !strings.Contains(string(log), `"msg":"join refused"`) {
		t.Fatalf("the refused join is not logged: %s", log)
	}
}

// TestReadiness: with --metrics-listen, head office answers /healthz from
// the start and /readyz only while its database answers: not while it
// waits for it at start, and not while it is down later.
func TestReadiness(t *testing.T) {
	cluster := hqtest.Postgres(t)
	url := cluster.NewDatabase(t)
	run(t, "headoffice", "migrate", "--db", url)
	if err := cluster.Crash(); err != nil {
		t.Fatal(err)
	}
	up := false
	defer func() {
		if !up {
			_ = cluster.Start()
		}
	}()
	addr, maddr := freePort(t), freePort(t)
	cmd := exec.Command(bin("headoffice"), "serve", "--listen", addr, "--db", url, "--metrics-listen", maddr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()
	await := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(40 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("never %s", what)
			}
		}
	}
	await("alive", func() bool { s, _ := get(t, "http://"+maddr+"/healthz"); return s == 200 })
	if s, body := get(t, "http://"+maddr+"/readyz"); s != http.StatusServiceUnavailable || body != "not ready: opening the store\n" {
		t.Fatalf("/readyz while the database is down at start: %d %q", s, body)
	}
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	up = true
	await("ready", func() bool { s, _ := get(t, "http://"+maddr+"/readyz"); return s == 200 })
	if err := cluster.Crash(); err != nil {
		t.Fatal(err)
	}
	up = false
	s, body := get(t, "http://"+maddr+"/readyz")
	if s != http.StatusServiceUnavailable || !strings.HasPrefix(body, "not ready: database unreachable") || strings.Count(body, "\n") != 1 {
		t.Fatalf("/readyz with the database down: %d %q", s, body)
	}
	if s, _ := get(t, "http://"+maddr+"/healthz"); s != 200 {
		t.Fatalf("/healthz with the database down: %d", s)
	}
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	up = true
	await("ready again", func() bool { s, _ := get(t, "http://"+maddr+"/readyz"); return s == 200 })
}
