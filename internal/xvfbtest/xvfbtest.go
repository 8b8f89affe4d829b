// Package xvfbtest starts a private X server (Xvfb) for the tests that run
// the real till app. A missing Xvfb fails the test: scripts/deps.sh
// installs it.
package xvfbtest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// startWait bounds the wait for Xvfb's socket to appear.
const startWait = 10 * time.Second

// Start starts Xvfb with a 1024x768 screen on a free display, stopped when
// the test ends, and returns the display (":N").
func Start(t *testing.T) string {
	t.Helper()
	return StartSize(t, "1024x768")
}

// StartSize is Start with a screen of size (WIDTHxHEIGHT).
func StartSize(t *testing.T, size string) string {
	t.Helper()
	xvfb, err := exec.LookPath("Xvfb")
	if err != nil {
		t.Fatal("Xvfb is missing: run scripts/deps.sh")
	}
	n := 50 + os.Getpid()%400
	for ; ; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); os.IsNotExist(err) {
			break
		}
	}
	cmd := exec.Command(xvfb, ":"+strconv.Itoa(n), "-screen", "0", size+"x24", "-nolisten", "tcp")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	sock := fmt.Sprintf("/tmp/.X11-unix/X%d", n)
	deadline := time.Now().Add(startWait)
	for {
		if _, err := os.Stat(sock); err == nil {
			return ":" + strconv.Itoa(n)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Xvfb did not create %s", sock)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
