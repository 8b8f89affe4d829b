package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// copyTree copies a data directory (files only) for one case of damage.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || e.Type()&os.ModeSocket != 0 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// dataPages is how many pages a bbolt file uses (past them a ledger is
// kept written with zeros), and its page size.
func dataPages(t *testing.T, path string) (int, int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var size int64
	_ = db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	ps := db.Info().PageSize
	return int(size) / ps, ps
}

// serveHQ starts a head office on the embedded store in dir/hq and returns
// it (killed when the test ends), its data directory and its sync URL.
func serveHQ(t *testing.T, dir string) (*daemon, string, string) {
	t.Helper()
	hqData := filepath.Join(dir, "hq")
	addr := freePort(t)
	hq := &daemon{t: t, name: "headoffice", args: []string{"serve", "--listen", addr, "--data", hqData}, ready: listening("tcp", addr)}
	hq.start()
	t.Cleanup(hq.kill)
	return hq, hqData, "ws://" + addr + "/v1/sync"
}

// addTerminal registers a terminal of store S1 and returns its id and join
// code.
func addTerminal(t *testing.T, hqData, name string) (string, string) {
	t.Helper()
	var added map[string]string
	if err := json.Unmarshal([]byte(run(t, "headoffice", "terminal", "add", "--data", hqData, "--store", "S1", "--name", name, "--json")), &added); err != nil {
		t.Fatal(err)
	}
	return added["terminal"], added["code"]
}

// refusedInOneLine runs a program that must stop at once with one line
// naming the damaged file: not a panic, not a crash, not a new ledger.
func refusedInOneLine(t *testing.T, what, file string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin(name), args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		msg := strings.TrimSpace(errb.String())
		if err == nil || strings.Contains(msg, "\n") || !strings.Contains(msg, file) ||
			strings.Contains(msg, "panic") || strings.Contains(msg, "fatal error") {
			t.Fatalf("%s: %s %v: exit %v, stderr %q; want a one-line refusal naming %s", what, name, args, err, msg, file)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("%s: %s %v kept running", what, name, args)
	}
}

// neverPanics runs a program on a damaged file: it may stop with one line
// or go on serving, but no panic or crash reaches the user.
func neverPanics(t *testing.T, what string, keep time.Duration, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin(name), args...)
	var errb bytes.Buffer
	cmd.Stderr, cmd.Stdout = &errb, &bytes.Buffer{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		msg := strings.TrimSpace(errb.String())
		if strings.Contains(msg, "panic") || strings.Contains(msg, "fatal error") || strings.Contains(msg, "goroutine ") ||
			(err != nil && strings.Count(msg, "\n") > 0 && !strings.Contains(msg, "level=")) {
			t.Fatalf("%s: %s %v: exit %v, stderr %q", what, name, args, err, msg)
		}
	case <-time.After(keep):
		_ = cmd.Process.Kill()
		<-done
		if msg := errb.String(); strings.Contains(msg, "panic") || strings.Contains(msg, "fatal error") {
			t.Fatalf("%s: %s %v: %q", what, name, args, msg)
		}
	}
}

// TestDamagedTill: a joined till whose ledger is empty, missing, cut short
// or has damaged pages is refused at start with one line naming the file —
// never a fresh ledger, never a panic or a crash loop.
func TestDamagedTill(t *testing.T) {
	dir := t.TempDir()
	_, hqData, url := serveHQ(t, dir)
	_, code := addTerminal(t, hqData, "t1")
	till := filepath.Join(dir, "till")
	run(t, "pos-agent", "join", "--data", till, "--hq", url, "--code", code)
	run(t, "pos-agent", "enroll", "--data", till, "--card", "2000000000015", "--name", "Ada")
	for i := range 60 {
		run(t, "pos-agent", "earn", "--data", till, "--card", "2000000000015", "--amount", "7.25", "--ref", fmt.Sprint("r", i))
	}
	const ledgerFile = "ledger.db"

	empty := copyTree(t, till)
	if err := os.Truncate(filepath.Join(empty, ledgerFile), 0); err != nil {
		t.Fatal(err)
	}
	refusedInOneLine(t, "an empty ledger", ledgerFile, "pos-agent", "serve", "--data", empty, "--hq", url)
	refusedInOneLine(t, "an empty ledger", ledgerFile, "pos-agent", "status", "--data", empty)
	if fi, _ := os.Stat(filepath.Join(empty, ledgerFile)); fi.Size() != 0 {
		t.Fatal("the empty ledger was written to")
	}

	missing := copyTree(t, till)
	os.Remove(filepath.Join(missing, ledgerFile))
	refusedInOneLine(t, "a missing ledger beside the terminal's key", ledgerFile, "pos-agent", "serve", "--data", missing, "--hq", url)
	if _, err := os.Stat(filepath.Join(missing, ledgerFile)); err == nil {
		t.Fatal("a new ledger was made beside the terminal's identity")
	}

	pages, ps := dataPages(t, filepath.Join(till, ledgerFile))
	for _, cut := range []int{1, pages / 2, pages - 1} {
		short := copyTree(t, till)
		if err := os.Truncate(filepath.Join(short, ledgerFile), int64(cut*ps)); err != nil {
			t.Fatal(err)
		}
		refusedInOneLine(t, "a ledger cut short", ledgerFile, "pos-agent", "export", "--data", short)
		refusedInOneLine(t, "a ledger cut short", ledgerFile, "pos-agent", "serve", "--data", short, "--hq", url)
	}

	// Damaged pages: 64 bytes flipped inside data pages.
	original, err := os.ReadFile(filepath.Join(till, ledgerFile))
	if err != nil {
		t.Fatal(err)
	}
	for p := 2; p < pages; p += max(1, pages/8) {
		flipped := copyTree(t, till)
		b := append([]byte(nil), original...)
		for i := range 64 {
			b[p*ps+ps/3+i] ^= 0x5A
		}
		if err := os.WriteFile(filepath.Join(flipped, ledgerFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		neverPanics(t, "flipped bytes", 3*time.Second, "pos-agent", "serve", "--data", flipped, "--hq", url)
		neverPanics(t, "flipped bytes", 10*time.Second, "pos-agent", "export", "--data", flipped)
	}
}

// TestDamagedHeadOffice: head office's embedded store empty, cut short or
// with damaged pages is refused with one line (it used to count "0
// terminals", crash with SIGBUS or panic in report and events).
func TestDamagedHeadOffice(t *testing.T) {
	dir := t.TempDir()
	hqData := filepath.Join(dir, "hq")
	for i := range 30 {
		run(t, "headoffice", "terminal", "add", "--data", hqData, "--store", "S1", "--name", fmt.Sprint("t", i))
	}
	const file = "headoffice.db"
	empty := copyTree(t, hqData)
	if err := os.Truncate(filepath.Join(empty, file), 0); err != nil {
		t.Fatal(err)
	}
	refusedInOneLine(t, "an empty store", file, "headoffice", "serve", "--listen", freePort(t), "--data", empty)
	refusedInOneLine(t, "an empty store", file, "headoffice", "report", "--data", empty)

	pages, ps := dataPages(t, filepath.Join(hqData, file))
	for cut := 1; cut < pages; cut++ {
		short := copyTree(t, hqData)
		if err := os.Truncate(filepath.Join(short, file), int64(cut*ps)); err != nil {
			t.Fatal(err)
		}
		refusedInOneLine(t, "a store cut short", file, "headoffice", "report", "--data", short)
	}
	original, err := os.ReadFile(filepath.Join(hqData, file))
	if err != nil {
		t.Fatal(err)
	}
	for p := 2; p < pages; p++ {
		random := copyTree(t, hqData)
		b := append([]byte(nil), original...)
		for i := range 200 {
			b[p*ps+100+i] = byte(i*131 + p)
		}
		if err := os.WriteFile(filepath.Join(random, file), b, 0o600); err != nil {
			t.Fatal(err)
		}
		neverPanics(t, "random bytes", 10*time.Second, "headoffice", "report", "--data", random)
		neverPanics(t, "random bytes", 10*time.Second, "headoffice", "events", "--data", random)
	}
}
