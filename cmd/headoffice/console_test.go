package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/offline-loyalty/terminal/internal/browsertest"
)

// TestConsoleAtTheTill: the whole way, with real processes. Operators
// added on the server's command line sign in to the console that
// headoffice serve answers. Support finds the member a till enrolled and
// blocks the card, and the till — its own process, syncing over the
// websocket — refuses the card once the blocklist reaches it. An admin
// publishes a new earn rate, the till runs it, and a rollback publishes the
// old rate again as a newer version, which the till runs too.
func TestConsoleAtTheTill(t *testing.T) {
	dir := t.TempDir()
	_, hqData, syncURL := serveHQ(t, dir)
	base := "http://" + strings.TrimSuffix(strings.TrimPrefix(syncURL, "ws://"), "/v1/sync")
	id, code := addTerminal(t, hqData, "t1")
	tl := &till{id: id, data: filepath.Join(dir, "till"), card: "2000000000015"}
	run(t, "pos-agent", "join", "--data", tl.data, "--hq", syncURL, "--code", code)
	run(t, "pos-agent", "enroll", "--data", tl.data, "--card", tl.card, "--name", "Ada Lovelace")
	run(t, "pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", "12.00", "--ref", "first")
	run(t, "pos-agent", "enroll", "--data", tl.data, "--card", "2000000000022")
	tl.serve = &daemon{t: t, name: "pos-agent", args: []string{"serve", "--data", tl.data}, ready: listening("unix", filepath.Join(tl.data, "agent.sock"))}
	tl.serve.start()
	defer tl.serve.kill()
	drain(t, []*till{tl}, 20*time.Second)

	for _, op := range [][2]string{{"sam", "support"}, {"ana", "admin"}} {
		add := exec.Command(bin("headoffice"), "operator", "add", "--data", hqData, "--name", op[0], "--role", op[1])
		add.Stdin = strings.NewReader("correct horse battery\n")
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("operator add: %v: %s", err, out)
		}
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

	err = chromedp.Do(ctx,
		browsertest.Submit(`form[action="/signout"] button`),
		chromedp.Navigate(base+"/rules"),
		chromedp.WaitVisible(chromedp.CSS("#signin")),
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "ana"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "correct horse battery"),
		browsertest.Submit("#signin button"),
	)
	if err != nil {
		t.Fatalf("signing in as an admin: %v", err)
	}
	publish := func(ppu string) {
		t.Helper()
		err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/rules"),
			chromedp.SetValue(chromedp.CSS(`#rules-form input[name="earn.points_per_unit"]`), ppu),
			browsertest.Submit("#rules-form button"),
			browsertest.Submit("#publish button"),
		)
		if err != nil {
			t.Fatalf("publishing %s points per unit: %v", ppu, err)
		}
	}
	// What 10.00 earns, as the till quotes it (campaigns of the day
	// included), at 1 point per unit and then at 3.
	quote := func() int {
		t.Helper()
		var q struct {
			Points int `json:"points"`
		}
		if err := json.Unmarshal([]byte(run(t, "pos-agent", "quote", "--data", tl.data, "--card", "2000000000022", "--amount", "10.00", "--json")), &q); err != nil {
			t.Fatal(err)
		}
		return q.Points
	}
	before := quote()
	publish("3")
	waitRules(t, tl, 2)
	if got := quote(); before <= 0 || got != 3*before {
		t.Errorf("10.00 earns %d under version 2, want 3 × %d", got, before)
	}
	publish("4")
	waitRules(t, tl, 3)
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/rules"),
		browsertest.Submit(`#history input[value="2"] ~ button`),
	)
	if err != nil {
		t.Fatalf("rolling back: %v", err)
	}
	waitRules(t, tl, 4)
	if got := quote(); got != 3*before {
		t.Errorf("10.00 earns %d under version 4 (version 2 again), want 3 × %d", got, before)
	}

	// The terminals page follows the till live: online with the rules it
	// runs, then offline once its process is killed, without a reload.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/terminals"), chromedp.WaitVisible(chromedp.CSS("#t-"+id))); err != nil {
		t.Fatal(err)
	}
	row := func() string {
		s, _ := browsertest.Text(ctx, "#t-"+id)
		return s
	}
	waitRow := func(what string, ok func(string) bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(row()); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the terminal's row is not %s: %q", what, row())
			}
		}
	}
	waitRow("online with rules 4", func(s string) bool { return strings.Contains(s, "online") && strings.Contains(s, "\t4\t") })
	marker, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`window.__page = "kept"`))
	tl.serve.kill()
	waitRow("offline", func(s string) bool { return strings.Contains(s, "offline") })
	if still, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`window.__page`)); still != marker {
		t.Error("the page was reloaded to show the change")
	}

	// A till revoked while connected is dropped, and refused from then on.
	tl.serve.start()
	waitRow("online again", func(s string) bool { return strings.Contains(s, "online") })
	err = chromedp.Do(ctx,
		browsertest.Fill("#t-"+id+` input[name="reason"]`, "till stolen"),
		browsertest.Submit("#t-"+id+" button"),
	)
	if err != nil {
		t.Fatalf("revoking: %v", err)
	}
	waitRow("revoked", func(s string) bool { return strings.Contains(s, "revoked") })
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, _ := try("pos-agent", "status", "--data", tl.data, "--json")
		if strings.Contains(strings.ReplaceAll(out, " ", ""), `"online":false`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked till is still online: %s", out)
		}
	}
	time.Sleep(2 * time.Second) // the till's reconnections, refused
	if out, _ := try("pos-agent", "status", "--data", tl.data, "--json"); !strings.Contains(strings.ReplaceAll(out, " ", ""), `"online":false`) {
		t.Errorf("the revoked till reconnected: %s", out)
	}
}

// waitRules waits until the till runs rules version v.
func waitRules(t *testing.T, tl *till, v int) {
	t.Helper()
	want := fmt.Sprintf(`"rules_version":%d`, v)
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := try("pos-agent", "status", "--data", tl.data, "--json")
		if strings.Contains(strings.ReplaceAll(out, " ", ""), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the till does not run rules version %d: %s", v, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
