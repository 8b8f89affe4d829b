package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBackupRestoreTill: a till backed up while it serves and takes
// checkouts, whose disk then dies after more checkouts reached head office,
// is restored on a new data directory from the backup as a new epoch: head
// office sends back the events the backup missed, no sequence is used twice
// (no conflicting duplicate, no chain break), the till's export and head
// office's events agree byte for byte, and head office flags the rebuilt
// ledger with what it sent back.
func TestBackupRestoreTill(t *testing.T) {
	dir := t.TempDir()
	_, hqData, url := serveHQ(t, dir)
	id, code := addTerminal(t, hqData, "t1")
	tl := &till{id: id, data: filepath.Join(dir, "till"), card: "2000000000015"}
	run(t, "pos-agent", "join", "--data", tl.data, "--hq", url, "--code", code)
	run(t, "pos-agent", "enroll", "--data", tl.data, "--card", tl.card, "--name", "Ada")
	tl.serve = &daemon{t: t, name: "pos-agent", args: []string{"serve", "--data", tl.data}, ready: listening("unix", filepath.Join(tl.data, "agent.sock"))}
	tl.serve.start()
	defer func() { tl.serve.kill() }()

	// Checkouts on two lanes while the backup is taken.
	backup := filepath.Join(dir, "till.backup")
	var wg sync.WaitGroup
	for lane := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if _, err := try("pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", "4.20", "--ref", fmt.Sprint("lane", lane, "-", i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	var info struct {
		Terminal string `json:"terminal"`
		Epoch    string `json:"epoch"`
		Seq      uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(run(t, "pos-agent", "backup", "--data", tl.data, "--to", backup, "--json")), &info); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	for i := range 10 {
		run(t, "pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", "2.00", "--ref", fmt.Sprint("after-", i))
	}
	drain(t, []*till{tl}, 20*time.Second)
	before := run(t, "pos-agent", "export", "--data", tl.data, "--json")
	total := strings.Count(before, "\n")
	if info.Terminal != id || info.Seq < 2 || info.Seq >= uint64(total) {
		t.Fatalf("backup %+v of a till with %d events", info, total)
	}

	// A restore over a ledger is refused, in one line, and changes nothing.
	tl.serve.kill()
	refusedInOneLine(t, "a restore over a ledger", "ledger", "pos-agent", "restore", "--data", tl.data, "--from", backup)
	if got := run(t, "pos-agent", "export", "--data", tl.data, "--json"); got != before {
		t.Fatal("a refused restore changed the ledger")
	}

	// The disk dies; the till is restored on a new one.
	tl.data = filepath.Join(dir, "till-new")
	tl.serve.args = []string{"serve", "--data", tl.data}
	tl.serve.ready = listening("unix", filepath.Join(tl.data, "agent.sock"))
	var rep struct {
		Backup struct {
			Epoch string `json:"epoch"`
			Seq   uint64 `json:"seq"`
		} `json:"backup"`
		Repair struct {
			NewEpoch string `json:"new_epoch"`
			Kept     int    `json:"kept"`
		} `json:"repair"`
	}
	if err := json.Unmarshal([]byte(run(t, "pos-agent", "restore", "--data", tl.data, "--from", backup, "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Backup.Epoch != info.Epoch || rep.Repair.NewEpoch == info.Epoch || rep.Repair.NewEpoch == "" || uint64(rep.Repair.Kept) != info.Seq {
		t.Fatalf("restore %+v of backup %+v", rep, info)
	}
	tl.serve.start()
	waitExport(t, tl, before)
	// The restored till carries on in its new epoch, and a ref of before the
	// backup, retried, is answered and not done again.
	out := run(t, "pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", "4.20", "--ref", "lane0-0", "--json")
	if !strings.Contains(out, `"ref":"lane0-0"`) {
		t.Fatalf("retried earn: %s", out)
	}
	for i := range 3 {
		run(t, "pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", "3.00", "--ref", fmt.Sprint("restored-", i))
	}
	drain(t, []*till{tl}, 20*time.Second)
	agree(t, []*till{tl}, total+3, func(args ...string) []string { return append(args, "--data", hqData) })
	var report struct {
		ChainBreaks []json.RawMessage `json:"chain_breaks"`
		Other       []struct {
			Kind, Terminal, Epoch, Detail string
		} `json:"other_flags"`
	}
	if err := json.Unmarshal([]byte(run(t, "headoffice", "report", "--data", hqData, "--json")), &report); err != nil {
		t.Fatal(err)
	}
	var rebuilt int
	for _, f := range report.Other {
		switch f.Kind {
		case "ledger_rebuilt":
			rebuilt++
			want := fmt.Sprintf("asked for epoch %s's events after seq %d; head office holds epoch %s up to seq %d and sends them back", info.Epoch, info.Seq, info.Epoch, total)
			if f.Terminal != id || f.Epoch != rep.Repair.NewEpoch || !strings.Contains(f.Detail, want) {
				t.Errorf("flag %+v, want its detail to say %q", f, want)
			}
		case "conflicting_duplicate":
			t.Errorf("a sequence was used twice: %+v", f)
		}
	}
	if rebuilt != 1 || len(report.ChainBreaks) != 0 {
		t.Fatalf("%d ledger_rebuilt flags, chain breaks %s", rebuilt, report.ChainBreaks)
	}
}
