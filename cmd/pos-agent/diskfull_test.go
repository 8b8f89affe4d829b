package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/internal/localhttp"
)

// TestDiskFull: a till whose disk has no room left (here: the process's
// file size limit, which fails writes as a full disk does) refuses the
// checkout it cannot write with code disk_full and one line, loses nothing
// it said it wrote, and goes on serving reads.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	if r := posAgent(t, "enroll", "--data", dir, "--card", "2000000000015", "--name", "Ada"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	fi, err := os.Stat(filepath.Join(dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	// Room for a few hundred checkouts past the file as it is.
	limitKB := fi.Size()/1024 + 256
	serve := exec.Command("sh", "-c", fmt.Sprintf("ulimit -f %d; exec %s serve --data %s", limitKB, bin, dir))
	var errb bytes.Buffer
	serve.Stderr = &errb
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = serve.Process.Kill(); _, _ = serve.Process.Wait() }()
	sock := filepath.Join(dir, "agent.sock")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", errb.String())
		}
	}
	hc := localhttp.Unix(sock)
	earned := 0
	var refusal struct{ Error, Code string }
	for i := 0; ; i++ {
		body := fmt.Sprintf(`{"card":"2000000000015","amount":"12.50","ref":"fill-%d-%s"}`, i, strings.Repeat("x", 100))
		resp, err := hc.Post("http://agent/v1/earn", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK {
			resp.Body.Close()
			earned++
			if earned > 20000 {
				t.Fatal("the file size limit never stopped a write")
			}
			continue
		}
		err = json.NewDecoder(resp.Body).Decode(&refusal)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusInsufficientStorage || refusal.Code != "disk_full" {
			t.Fatalf("after %d earns: status %d %+v %v; want 507 disk_full", earned, resp.StatusCode, refusal, err)
		}
		break
	}
	if earned < 10 || !strings.Contains(refusal.Error, "no room") {
		t.Fatalf("%d earns, then %q", earned, refusal.Error)
	}
	// The CLI says it in one line; reads go on. (The same earn with a
	// longer ref: a smaller record could still fit in what is left.)
	r := posAgent(t, "earn", "--data", dir, "--card", "2000000000015", "--amount", "12.50", "--ref", "more-99999-"+strings.Repeat("x", 100))
	if r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "no room") {
		t.Fatalf("earn on a full disk: exit %d, %q", r.code, r.stderr)
	}
	var m struct{ Balance int64 }
	mustJSON(t, posAgent(t, "member", "--data", dir, "--card", "2000000000015", "--json"), &m)
	_ = serve.Process.Kill()
	_, _ = serve.Process.Wait()
	// Every earn it acknowledged is there after the process is gone, and
	// the balance is theirs.
	r = posAgent(t, "export", "--data", dir, "--json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var sum int64
	fills := 0
	for _, l := range lines {
		var e struct {
			Points    int64
			Type, Ref string
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		sum += e.Points
		if e.Type == "earn" && strings.HasPrefix(e.Ref, "fill-") {
			fills++
		}
	}
	if fills != earned || sum != m.Balance {
		t.Fatalf("%d earns kept of %d acknowledged; their points %d, balance %d", fills, earned, sum, m.Balance)
	}
}
