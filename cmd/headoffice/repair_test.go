package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRepairTill: a till whose ledger lost pages (or the whole file) is
// repaired from the events that still verify, gets back from head office
// the ones it lost, and carries on in a new epoch: its export equals head
// office's events byte for byte, balances agree, and a retried ref of
// before the damage is answered without being done again.
func TestRepairTill(t *testing.T) {
	for _, mode := range []string{"pages", "missing"} {
		t.Run(mode, func(t *testing.T) { repairTill(t, mode) })
	}
}

func repairTill(t *testing.T, mode string) {
	dir := t.TempDir()
	_, hqData, url := serveHQ(t, dir)
	id, code := addTerminal(t, hqData, "t1")
	tl := &till{id: id, data: filepath.Join(dir, "till"), card: "2000000000015"}
	run(t, "pos-agent", "join", "--data", tl.data, "--hq", url, "--code", code)
	run(t, "pos-agent", "enroll", "--data", tl.data, "--card", tl.card, "--name", "Ada")
	for i := range 120 {
		run(t, "pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", "9.90", "--ref", fmt.Sprint("before-", i))
	}
	run(t, "pos-agent", "redeem", "--data", tl.data, "--card", tl.card, "--points", "100", "--ref", "burn-before")
	tl.serve = &daemon{t: t, name: "pos-agent", args: []string{"serve", "--data", tl.data}, ready: listening("unix", filepath.Join(tl.data, "agent.sock"))}
	tl.serve.start()
	drain(t, []*till{tl}, 20*time.Second)
	tl.serve.kill()
	before := run(t, "pos-agent", "export", "--data", tl.data, "--json")

	path := filepath.Join(tl.data, "ledger.db")
	switch mode {
	case "pages":
		pages, ps := dataPages(t, path)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for p := pages / 3; p < pages/3+3; p++ {
			for i := range ps {
				b[p*ps+i] = 0
			}
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	case "missing":
		os.Remove(path)
	}
	// The log, which holds the events too, is lost with it (a repair
	// keeps what a log still holds: agent's TestNewestMetaPageDamaged).
	os.RemoveAll(filepath.Join(tl.data, "wal"))
	refusedInOneLine(t, "the damaged ledger", "ledger.db", "pos-agent", "status", "--data", tl.data)

	var rep struct {
		Damaged  string `json:"damaged"`
		OldEpoch string `json:"old_epoch"`
		NewEpoch string `json:"new_epoch"`
		Kept     int    `json:"kept"`
		Lost     []struct{ From, To uint64 }
	}
	if err := json.Unmarshal([]byte(run(t, "pos-agent", "repair", "--data", tl.data, "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	total := strings.Count(before, "\n")
	t.Logf("repair (%s): %+v of %d events", mode, rep, total)
	switch mode {
	case "pages":
		if rep.Kept == 0 || rep.Kept >= total || rep.Damaged == "" || rep.NewEpoch == rep.OldEpoch {
			t.Fatalf("repair of damaged pages: %+v (of %d events)", rep, total)
		}
		if _, err := os.Stat(rep.Damaged); err != nil {
			t.Fatalf("the damaged file was not kept: %v", err)
		}
	case "missing":
		if rep.Kept != 0 || rep.Damaged != "" {
			t.Fatalf("repair of a missing ledger: %+v", rep)
		}
	}
	// The repaired till connects: head office sends the lost events and the
	// balances back.
	tl.serve.start()
	defer tl.serve.kill()
	waitExport(t, tl, before)
	// A ref of before the damage, retried, is answered and not done again.
	out := run(t, "pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", "9.90", "--ref", "before-60", "--json")
	if !strings.Contains(out, `"ref":"before-60"`) {
		t.Fatalf("retried earn: %s", out)
	}
	if got := run(t, "pos-agent", "export", "--data", tl.data, "--json"); got != before {
		t.Fatal("a retried ref of before the repair wrote an event")
	}
	// And the till carries on in its new epoch.
	for i := range 5 {
		run(t, "pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", "3.00", "--ref", fmt.Sprint("after-", i))
	}
	drain(t, []*till{tl}, 20*time.Second)
	agree(t, []*till{tl}, total+5, func(args ...string) []string { return append(args, "--data", hqData) })
	if mode != "pages" {
		return
	}
	// Lost again, whole this time: both epochs come back from head office.
	tl.serve.kill()
	before = run(t, "pos-agent", "export", "--data", tl.data, "--json")
	os.Remove(path)
	os.RemoveAll(filepath.Join(tl.data, "wal"))
	run(t, "pos-agent", "repair", "--data", tl.data)
	tl.serve.start()
	waitExport(t, tl, before)
}

// waitExport waits for a till's export to be want.
func waitExport(t *testing.T, tl *till, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := run(t, "pos-agent", "export", "--data", tl.data, "--json")
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the till's history never came back whole (%d of %d events)", strings.Count(got, "\n"), strings.Count(want, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRepairHeadOffice: head office's embedded store with damaged pages is
// refused at open; repair keeps the terminals, their keys and the join codes,
// applies again the events that still verify, and the tills send the rest
// when they reconnect: head office ends with every event of every till, byte
// for byte, and the balances agree.
func TestRepairHeadOffice(t *testing.T) {
	dir := t.TempDir()
	hq, hqData, url := serveHQ(t, dir)
	var tills []*till
	for i := range 2 {
		id, code := addTerminal(t, hqData, fmt.Sprint("t", i))
		tl := &till{id: id, data: filepath.Join(dir, fmt.Sprint("till", i)), card: fmt.Sprintf("20000000000%d5", i)}
		run(t, "pos-agent", "join", "--data", tl.data, "--hq", url, "--code", code)
		run(t, "pos-agent", "enroll", "--data", tl.data, "--card", tl.card, "--name", "Ada")
		for j := range 150 {
			run(t, "pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", "9.90", "--ref", fmt.Sprint("e-", j))
		}
		tl.serve = &daemon{t: t, name: "pos-agent", args: []string{"serve", "--data", tl.data}, ready: listening("unix", filepath.Join(tl.data, "agent.sock"))}
		tl.serve.start()
		defer tl.serve.kill()
		tills = append(tills, tl)
	}
	_, spareCode := addTerminal(t, hqData, "spare")
	drain(t, tills, 30*time.Second)
	hq.kill()

	// Zero the pages that hold events and nothing else (a damaged page of
	// the terminals could lose what only head office knows).
	path := filepath.Join(hqData, "headoffice.db")
	pages, ps := dataPages(t, path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zeroed := 0
	for p := 2; p < pages && zeroed < 4; p++ {
		page := b[p*ps : (p+1)*ps]
		if strings.Count(string(page), `"hash":"`) > 2 && !strings.Contains(string(page), `"key":"`) && p%3 == 0 {
			clear(page)
			zeroed++
		}
	}
	if zeroed == 0 {
		t.Fatal("no page of events found to damage")
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	refusedInOneLine(t, "a damaged store", "headoffice.db", "headoffice", "serve", "--listen", freePort(t), "--data", hqData)

	var rep struct {
		Damaged   string `json:"damaged"`
		Terminals int    `json:"terminals"`
		Codes     int    `json:"codes"`
		Applied   int    `json:"applied"`
		Dropped   int    `json:"dropped"`
	}
	if err := json.Unmarshal([]byte(run(t, "headoffice", "repair", "--data", hqData, "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("head office repair: %+v (%d pages zeroed)", rep, zeroed)
	if rep.Terminals != 3 || rep.Codes != 1 || rep.Applied == 0 || rep.Applied >= 2*151 {
		t.Fatalf("repair: %+v", rep)
	}
	if _, err := os.Stat(rep.Damaged); err != nil {
		t.Fatalf("the damaged file was not kept: %v", err)
	}
	hq.start()
	for _, tl := range tills {
		want := run(t, "pos-agent", "export", "--data", tl.data, "--json")
		deadline := time.Now().Add(30 * time.Second)
		for run(t, "headoffice", "events", "--data", hqData, "--terminal", tl.id) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s never sent head office what it lost", tl.id)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	agree(t, tills, 151, func(args ...string) []string { return append(args, "--data", hqData) })
	// A join code issued before the damage still joins.
	run(t, "pos-agent", "join", "--data", filepath.Join(dir, "spare"), "--hq", url, "--code", spareCode)
}
