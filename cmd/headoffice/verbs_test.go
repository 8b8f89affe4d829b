package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/headoffice/hqpg"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
)

// TestVerbsOnBothStores: every verb behaves the same on the embedded store
// (--data) and on PostgreSQL (--db, or HEADOFFICE_DB): the same answers, the
// same one-line refusals.
func TestVerbsOnBothStores(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.json")
	if err := os.WriteFile(rules, []byte(`{"version":4,"currency":"EUR","earn":{"points_per_unit":1},"tiers":[{"id":"bronze","name":"Bronze","min_spend":0,"multiplier_bp":10000}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	csv := filepath.Join(dir, "members.csv")
	if err := os.WriteFile(csv, []byte("card,member,name,email,tier,balance\n4000000000000002,M1,Ada,ada@example.com,gold,150\n4000000000000010,M2,Bob,,,20\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("card,member,name,email,tier,balance\n4000000000000028,M3,Cy,,,lots\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := hqtest.Postgres(t).NewDatabase(t)
	script := [][]string{
		{"terminal", "add", "--store", "S1", "--name", "till-1", "--json"},
		{"terminal", "add", "--store", "S1", "--name", "till-1", "--json"}, // a new code for a terminal not joined yet
		{"terminal", "add", "--store", "S 1", "--name", "x"},
		{"rules", "set", rules, "--json"},
		{"rules", "set", rules},
		{"rules", "get"},
		{"members", "import", csv, "--json"},
		{"members", "import", bad},
		{"member", "--card", "4000000000000002", "--json"},
		{"member", "--card", "4000000000000099"},
		{"events"},
		{"report", "--json"},
		{"report", "--from", "yesterday"},
		{"audit", "surprise", "--day", "2026-11-24", "--json"},
		{"audit", "surprise", "--day", "Tuesday"},
		{"member", "merge", "--into", "M1", "--from", "M2", "--json"},
		{"member", "merge", "--into", "M1", "--from", "M2"},
		{"member", "--card", "4000000000000010", "--json"},
	}
	codes := regexp.MustCompile(`[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}|"(taken|enrolled)":"[^"]*"`)
	runScript := func(where ...string) []string {
		var out []string
		for _, args := range script {
			got, err := try("headoffice", append(args, where...)...)
			line := codes.ReplaceAllString(got, "X")
			if err != nil {
				line += "ERROR " + codes.ReplaceAllString(err.Error(), "X")
			}
			out = append(out, line)
		}
		return out
	}
	if got, err := try("headoffice", "report", "--db", url); err == nil || !strings.Contains(err.Error(), "headoffice migrate") {
		t.Fatalf("a verb before migrate: %q %v", got, err)
	}
	if out := run(t, "headoffice", "migrate", "--db", url, "--json"); out != fmt.Sprintf(`{"from":0,"to":%d}`+"\n", hqpg.SchemaVersion) {
		t.Fatalf("migrate: %q", out)
	}
	if out := run(t, "headoffice", "migrate", "--db", url); !strings.Contains(out, "already") {
		t.Fatalf("migrate again: %q", out)
	}
	bolt := runScript("--data", filepath.Join(dir, "hq"))
	os.Setenv("HEADOFFICE_DB", url)
	pg := runScript()
	os.Unsetenv("HEADOFFICE_DB")
	for i := range script {
		if bolt[i] != pg[i] {
			t.Errorf("headoffice %v:\n  embedded:   %q\n  postgresql: %q", script[i], bolt[i], pg[i])
		}
	}
	for i, want := range []string{"", "", "ERROR", "", "ERROR", "", "", "ERROR", "", "ERROR", "", "", "ERROR", "", "ERROR", "", "ERROR", ""} {
		if got := strings.Contains(bolt[i], "ERROR"); got != (want == "ERROR") {
			t.Errorf("headoffice %v: %q", script[i], bolt[i])
		}
	}
	if !strings.Contains(bolt[8], `"balance":150`) || !strings.Contains(bolt[11], `"liability_points":170`) {
		t.Errorf("member %q, report %q", bolt[8], bolt[11])
	}
	if !strings.Contains(bolt[17], `"member":"M1"`) || !strings.Contains(bolt[17], `"balance":170`) {
		t.Errorf("a merged member's card: %q", bolt[17])
	}
}

// TestMigrateStore: a chain that ran on the embedded store moves to
// PostgreSQL with its events, members, keys, codes and rules; its tills
// carry on against head office on PostgreSQL, their streams continuing
// exactly once, and a join code issued before the move still joins.
func TestMigrateStore(t *testing.T) {
	dir := t.TempDir()
	hqData := filepath.Join(dir, "hq")
	boltAddr, pgAddr := freePort(t), freePort(t)
	hq := &daemon{t: t, name: "headoffice", args: []string{"serve", "--listen", boltAddr, "--data", hqData}, ready: listening("tcp", boltAddr)}
	hq.start()
	px := newProxy(t, boltAddr)
	hqURL := "ws://" + px.ln.Addr().String() + "/v1/sync"
	rules := filepath.Join(dir, "rules.json")
	if err := os.WriteFile(rules, []byte(`{"version":3,"currency":"EUR","earn":{"points_per_unit":2},"tiers":[{"id":"bronze","name":"Bronze","min_spend":0,"multiplier_bp":10000}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "headoffice", "rules", "set", rules, "--data", hqData)
	addTill := func(i int) (*till, string) {
		var added map[string]string
		if err := json.Unmarshal([]byte(run(t, "headoffice", "terminal", "add", "--data", hqData, "--store", "S1", "--name", fmt.Sprint("till", i), "--json")), &added); err != nil {
			t.Fatal(err)
		}
		tl := &till{id: added["terminal"], data: filepath.Join(dir, fmt.Sprint("till", i)), card: fmt.Sprintf("20000000200%02d", i)}
		tl.serve = &daemon{t: t, name: "pos-agent", args: []string{"serve", "--data", tl.data}, ready: listening("unix", filepath.Join(tl.data, "agent.sock"))}
		return tl, added["code"]
	}
	var tills []*till
	for i := range 2 {
		tl, code := addTill(i)
		run(t, "pos-agent", "join", "--data", tl.data, "--hq", hqURL, "--code", code)
		tl.serve.start()
		defer tl.serve.kill()
		run(t, "pos-agent", "enroll", "--data", tl.data, "--card", tl.card, "--ref", "enroll-"+tl.card)
		for r := range 5 {
			run(t, "pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", "10.00", "--ref", fmt.Sprint(tl.id, "-a", r))
		}
		tills = append(tills, tl)
	}
	later, laterCode := addTill(2) // joins after the move, with a code issued before it
	drain(t, tills, 30*time.Second)
	agree(t, tills, 6, func(args ...string) []string { return append(args, "--data", hqData) })
	hq.kill()

	url := hqtest.Postgres(t).NewDatabase(t)
	var moved map[string]int
	if err := json.Unmarshal([]byte(run(t, "headoffice", "migrate-store", "--from", hqData, "--to", url, "--json")), &moved); err != nil {
		t.Fatal(err)
	}
	if moved["terminals"] != 3 || moved["join_codes"] != 1 || moved["chains"] != 2 || moved["events"] != 12 || moved["members"] != 2 || moved["rules_versions"] != 1 {
		t.Fatalf("moved %v", moved)
	}
	if _, err := try("headoffice", "migrate-store", "--from", hqData, "--to", url); err == nil || !strings.Contains(err.Error(), "holds terminals or events already") {
		t.Fatalf("a second move into the same database: %v", err)
	}

	pgHQ := &daemon{t: t, name: "headoffice", args: []string{"serve", "--listen", pgAddr, "--db", url}, ready: listening("tcp", pgAddr)}
	pgHQ.start()
	defer pgHQ.kill()
	px.retarget(pgAddr)
	run(t, "pos-agent", "join", "--data", later.data, "--hq", hqURL, "--code", laterCode)
	later.serve.start()
	defer later.serve.kill()
	run(t, "pos-agent", "enroll", "--data", later.data, "--card", later.card, "--ref", "enroll-"+later.card)
	tills = append(tills, later)
	for _, tl := range tills {
		for r := range 3 {
			run(t, "pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", "5.00", "--ref", fmt.Sprint(tl.id, "-b", r))
		}
	}
	drain(t, tills, 30*time.Second)
	agree(t, tills, 4, func(args ...string) []string { return append(args, "--db", url) })
	if got := run(t, "headoffice", "rules", "get", "--db", url); !strings.Contains(got, `"points_per_unit":2`) {
		t.Fatalf("rules after the move: %s", got)
	}
	// The tills see each other's members again through head office on
	// PostgreSQL: till0 learns till2's member.
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := try("pos-agent", "member", "--data", tills[0].data, "--card", later.card, "--json")
		if err == nil && strings.Contains(out, `"balance":30`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("till0 never saw till2's member: %s %v", out, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestServeWaitsForDatabase: head office started while its database is
// down says so in one line, serves nothing, retries, and serves once the
// database is back.
func TestServeWaitsForDatabase(t *testing.T) {
	cluster := hqtest.Postgres(t)
	url := cluster.NewDatabase(t)
	run(t, "headoffice", "migrate", "--db", url)
	if err := cluster.Crash(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = cluster.Start()
		}
	}()
	addr := freePort(t)
	logf := filepath.Join(t.TempDir(), "hq.log")
	f, err := os.Create(logf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin("headoffice"), "serve", "--listen", addr, "--db", url)
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()
	time.Sleep(2 * time.Second)
	if listening("tcp", addr)() {
		t.Fatal("head office listens without its database")
	}
	log, _ := os.ReadFile(logf)
	if !strings.Contains(string(log), "database not reachable") {
		t.Fatalf("log says: %s", log)
	}
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	deadline := time.Now().Add(40 * time.Second)
	for !listening("tcp", addr)() {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf)
			t.Fatalf("head office never served after the database came back: %s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
