package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/internal/xvfbtest"
)

// lockedBuffer is a process's stderr, read while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunAttach: the real app (under Xvfb) attached to a running pos-agent
// serve follows it through the serve's restart, and stops cleanly on
// SIGTERM; the CLI's checkouts meanwhile go to the one ledger.
func TestRunAttach(t *testing.T) {
	display := xvfbtest.Start(t)
	data := t.TempDir()
	const card = "4000000000000002"
	var res map[string]any
	mustJSON(t, posAgent(t, "enroll", "--data", data, "--card", card, "--json"), &res)
	serve := startServe(t, data)
	app := exec.Command(bin, "run", "--attach", "--data", data)
	app.Env = append(os.Environ(), "DISPLAY="+display, "LIBGL_ALWAYS_SOFTWARE=1", "LANGUAGE=en", "LC_ALL=")
	var stderr lockedBuffer
	app.Stderr = &stderr
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- app.Wait() }()
	defer func() {
		_ = app.Process.Kill()
		_ = serve.Process.Kill()
	}()
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if strings.Contains(stderr.String(), what) {
				return
			}
			select {
			case err := <-exited:
				t.Fatalf("the attached app exited (%v) before %q:\n%s", err, what, stderr.String())
			default:
			}
		}
		t.Fatalf("the attached app never logged %q:\n%s", what, stderr.String())
	}
	waitFor("pos-agent app attached")
	mustJSON(t, posAgent(t, "earn", "--data", data, "--card", card, "--amount", "12.50", "--ref", "A-1", "--json"), &res)

	// The serving agent restarts; the app stays up and attached.
	_ = serve.Process.Signal(syscall.SIGTERM)
	_ = serve.Wait()
	serve = startServe(t, data)
	mustJSON(t, posAgent(t, "earn", "--data", data, "--card", card, "--amount", "7.50", "--ref", "A-2", "--json"), &res)
	select {
	case err := <-exited:
		t.Fatalf("the attached app exited (%v) with its agent's restart:\n%s", err, stderr.String())
	case <-time.After(time.Second):
	}
	if n := exportCount(t, data); n != 3 {
		t.Fatalf("the ledger holds %d events, want enroll and two earns", n)
	}
	_ = app.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the attached app on SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the attached app did not stop on SIGTERM:\n%s", stderr.String())
	}
	if s := stderr.String(); strings.Contains(s, "panic") || strings.Contains(s, "DATA RACE") {
		t.Fatalf("the attached app:\n%s", s)
	}
}

// TestRunInProcess: the real app (under Xvfb) with its agent in-process and
// the simulated scanner serves the local API to the CLI while its window
// runs, and stops cleanly on SIGTERM.
func TestRunInProcess(t *testing.T) {
	display := xvfbtest.Start(t)
	data := t.TempDir()
	const card = "4000000000000002"
	var res map[string]any
	mustJSON(t, posAgent(t, "enroll", "--data", data, "--card", card, "--json"), &res)
	app := exec.Command(bin, "run", "--data", data, "--scanner", "sim")
	app.Env = append(os.Environ(), "DISPLAY="+display, "LIBGL_ALWAYS_SOFTWARE=1", "LANGUAGE=en", "LC_ALL=")
	var stderr lockedBuffer
	app.Stderr = &stderr
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- app.Wait() }()
	defer func() { _ = app.Process.Kill() }()
	for deadline := time.Now().Add(30 * time.Second); !serving(filepath.Join(data, "agent.sock")); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("the app exited (%v):\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app never served its local API:\n%s", stderr.String())
		}
	}
	mustJSON(t, posAgent(t, "earn", "--data", data, "--card", card, "--amount", "12.50", "--ref", "P-1", "--json"), &res)
	if n := exportCount(t, data); n != 2 {
		t.Fatalf("the ledger holds %d events, want enroll and the earn", n)
	}
	_ = app.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the app on SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the app did not stop on SIGTERM:\n%s", stderr.String())
	}
}
