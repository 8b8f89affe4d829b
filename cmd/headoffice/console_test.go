package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/offline-loyalty/terminal/internal/browsertest"
)

// TestConsoleBlocksAtTheTill: the whole way, with real processes. An
// operator added on the server's command line signs in to the console that
// headoffice serve answers, finds the member a till enrolled, blocks the
// card, and the till — its own process, syncing over the websocket —
// refuses the card once the blocklist reaches it.
func TestConsoleBlocksAtTheTill(t *testing.T) {
	dir := t.TempDir()
	_, hqData, syncURL := serveHQ(t, dir)
	base := "http://" + strings.TrimSuffix(strings.TrimPrefix(syncURL, "ws://"), "/v1/sync")
	id, code := addTerminal(t, hqData, "t1")
	tl := &till{id: id, data: filepath.Join(dir, "till"), card: "2000000000015"}
	run(t, "pos-agent", "join", "--data", tl.data, "--hq", syncURL, "--code", code)
	run(t, "pos-agent", "enroll", "--data", tl.data, "--card", tl.card, "--name", "Ada Lovelace")
	run(t, "pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", "12.00", "--ref", "first")
	tl.serve = &daemon{t: t, name: "pos-agent", args: []string{"serve", "--data", tl.data}, ready: listening("unix", filepath.Join(tl.data, "agent.sock"))}
	tl.serve.start()
	defer tl.serve.kill()
	drain(t, []*till{tl}, 20*time.Second)

	add := exec.Command(bin("headoffice"), "operator", "add", "--data", hqData, "--name", "sam", "--role", "support")
	add.Stdin = strings.NewReader("correct horse battery\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("operator add: %v: %s", err, out)
	}

	ctx := browsertest.New(t, 60*time.Second)
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/members"),
		chromedp.WaitVisible(chromedp.CSS("#signin")),
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "sam"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "correct horse battery"),
		chromedp.Click(chromedp.CSS("#signin button")),
		chromedp.WaitVisible(chromedp.CSS("#q")),
		chromedp.SendKeys(chromedp.CSS("#q"), "Lovelace"),
		chromedp.WaitVisible(chromedp.CSS("#results a")),
		chromedp.Click(chromedp.CSS("#results a")),
		chromedp.WaitVisible(chromedp.CSS("#cards")),
		chromedp.SendKeys(chromedp.CSS(`#cards input[name="reason"]`), "reported stolen"),
		chromedp.Click(chromedp.CSS("#cards button")),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if err != nil {
		t.Fatalf("blocking the card in the console: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := try("pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", "3.00", "--ref", "after-block-"+time.Now().Format("150405.000"))
		if err != nil && strings.Contains(err.Error(), "card is blocked") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the till still takes the blocked card: %s %v", out, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
