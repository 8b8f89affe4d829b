package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/drivers/scansim"
)

// scanWait bounds each wait on the child so a broken verb fails the test
// instead of hanging it; it is not a timing assertion.
const scanWait = 15 * time.Second

// TestScanJSON runs `pos-agent scan --scanner PTY --json` as a child process
// and reads the JSON lines it prints for scans written to a real pty.
func TestScanJSON(t *testing.T) {
	sim, err := scansim.New(t.TempDir())
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer sim.Close()
	cmd := exec.Command(bin, "scan", "--scanner", sim.Path(), "--json", "--data", t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	timer := time.AfterFunc(scanWait, func() { cmd.Process.Kill() })
	defer timer.Stop()

	errLines := bufio.NewScanner(stderr)
	if !errLines.Scan() || errLines.Text() != "scanner connected" {
		t.Fatalf("stderr: %q, want scanner connected", errLines.Text())
	}
	if err := sim.Write([]byte("]E02000000000015\r\n20000000")); err != nil {
		t.Fatal(err)
	}
	if err := sim.Write([]byte("00022\r\n2000000000016\r\n")); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var got []map[string]string
	for len(got) < 3 && lines.Scan() {
		var m map[string]string
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %q", lines.Text())
		}
		got = append(got, m)
	}
	if len(got) < 3 {
		t.Fatalf("got %d lines: %v", len(got), got)
	}
	if got[0]["kind"] != "card" || got[0]["symbology"] != "ean-13" || got[0]["card"] != "2000000000015" || got[0]["raw"] != "]E02000000000015" {
		t.Errorf("first scan: %v", got[0])
	}
	if got[1]["card"] != "2000000000022" {
		t.Errorf("scan split across writes: %v", got[1])
	}
	if !strings.Contains(got[2]["error"], "check digit") || got[2]["raw"] != "2000000000016" || got[2]["card"] != "" {
		t.Errorf("bad check digit: %v", got[2])
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("scan after interrupt: %v", err)
	}
}

func TestScanUsage(t *testing.T) {
	if r := posAgent(t, "scan", "--json"); r.code != 2 {
		t.Errorf("scan without --scanner: exit %d, %s", r.code, r.stderr)
	}
	if r := posAgent(t, "scan", "--scanner", "/dev/x", "--baud", "-5"); r.code != 2 {
		t.Errorf("scan with a negative baud: exit %d, %s", r.code, r.stderr)
	}
}

func TestPorts(t *testing.T) {
	var ports []struct {
		Path   string `json:"path"`
		Target string `json:"target"`
	}
	r := posAgent(t, "ports", "--json", "--data", t.TempDir())
	if r.code != 0 {
		t.Fatalf("ports: exit %d: %s", r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &ports); err != nil {
		t.Fatalf("ports --json: %v: %q", err, r.stdout)
	}
}
