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

// TestBackupRestoreHeadOffice: head office's embedded store is backed up
// while tills sync into it; more checkouts reach it; its disk dies and the
// backup is put back. The tills send what the backup missed, and each
// till's export and head office's events agree byte for byte. A backup of a
// stopped head office opens the file itself; one of PostgreSQL is refused
// in one line.
func TestBackupRestoreHeadOffice(t *testing.T) {
	dir := t.TempDir()
	hq, hqData, url := serveHQ(t, dir)
	var tills []*till
	for i := range 2 {
		id, code := addTerminal(t, hqData, fmt.Sprint("t", i))
		tl := &till{id: id, data: filepath.Join(dir, fmt.Sprint("till", i)), card: fmt.Sprintf("20000000000%d5", i)}
		run(t, "pos-agent", "join", "--data", tl.data, "--hq", url, "--code", code)
		run(t, "pos-agent", "enroll", "--data", tl.data, "--card", tl.card, "--name", "Ada")
		tl.serve = &daemon{t: t, name: "pos-agent", args: []string{"serve", "--data", tl.data}, ready: listening("unix", filepath.Join(tl.data, "agent.sock"))}
		tl.serve.start()
		defer tl.serve.kill()
		tills = append(tills, tl)
	}
	earn := func(prefix string, n int) {
		var wg sync.WaitGroup
		for _, tl := range tills {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n {
					if _, err := try("pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", "4.20", "--ref", fmt.Sprint(prefix, i)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	earn("before-", 10)
	drain(t, tills, 20*time.Second)

	backup := filepath.Join(dir, "headoffice.backup")
	done := make(chan struct{})
	go func() { defer close(done); earn("during-", 20) }()
	time.Sleep(100 * time.Millisecond)
	var out struct {
		File  string
		Bytes int64
	}
	if err := json.Unmarshal([]byte(run(t, "headoffice", "backup", "--data", hqData, "--to", backup, "--json")), &out); err != nil {
		t.Fatal(err)
	}
	<-done
	fi, err := os.Stat(backup)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != out.Bytes || out.Bytes == 0 {
		t.Fatalf("backup file %v (%v), reported %+v", fi, err, out)
	}
	// After the backup: more checkouts, and rules version 5 that every
	// till takes.
	earn("after-", 10)
	rulesV := func(v int, bonus string) string {
		f := filepath.Join(dir, fmt.Sprintf("rules-%d-%s.json", v, bonus))
		def, err := os.ReadFile(filepath.Join("..", "..", "rules", "default.json"))
		if err != nil {
			t.Fatal(err)
		}
		doc := strings.Replace(string(def), `"version": 1,`, fmt.Sprintf(`"version": %d,`, v), 1)
		doc = strings.Replace(doc, `"name": "City Food Bank"`, `"name": "`+bonus+` Food Bank"`, 1)
		if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	run(t, "headoffice", "rules", "set", rulesV(5, "Spring"), "--data", hqData)
	drain(t, tills, 20*time.Second)
	waitRules := func(v int) {
		for _, tl := range tills {
			deadline := time.Now().Add(20 * time.Second)
			for {
				var st struct {
					Rules int `json:"rules_version"`
				}
				out, err := try("pos-agent", "status", "--data", tl.data, "--json")
				if err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Rules == v {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s never took rules version %d: %s %v", tl.id, v, out, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	waitRules(5)
	want := make([]string, len(tills))
	for i, tl := range tills {
		want[i] = run(t, "pos-agent", "export", "--data", tl.data, "--json")
	}

	// The store is lost; the backup is put back (over a store, only with
	// --replace, which keeps it aside), and a member is imported before
	// head office starts: the tills' member cursors are past the copy's
	// feed positions, and they must receive it all the same.
	hq.kill()
	path := filepath.Join(hqData, "headoffice.db")
	lost, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	refusedInOneLine(t, "a restore over a store", "headoffice.db", "headoffice", "restore", "--data", hqData, "--from", backup)
	if b, _ := os.ReadFile(path); string(b) != string(lost) {
		t.Fatal("a refused restore changed the store")
	}
	var restored struct {
		Replaced string `json:"replaced"`
		FeedHead uint64 `json:"feed_head"`
		RaisedTo uint64 `json:"raised_to"`
	}
	if err := json.Unmarshal([]byte(run(t, "headoffice", "restore", "--data", hqData, "--from", backup, "--replace", "--json")), &restored); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(restored.Replaced); err != nil || string(b) != string(lost) || restored.RaisedTo <= restored.FeedHead {
		t.Fatalf("restore %+v: the replaced store was not kept (%v)", restored, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("restored store: %v %v", fi, err)
	}
	csv := filepath.Join(dir, "members.csv")
	if err := os.WriteFile(csv, []byte("card,member,name,email,tier,balance\n4000000000000002,M9,Ida,,,700\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "headoffice", "members", "import", csv, "--data", hqData)
	hq.start()
	for i, tl := range tills {
		deadline := time.Now().Add(30 * time.Second)
		for run(t, "headoffice", "events", "--data", hqData, "--terminal", tl.id) != want[i] {
			if time.Now().After(deadline) {
				t.Fatalf("%s never sent the restored head office what its backup missed", tl.id)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	agree(t, tills, 41, func(args ...string) []string { return append(args, "--data", hqData) })

	// The tills run version 5, which the restored store never published:
	// head office flags it, and refuses another document as version 5.
	var report struct {
		Other []struct{ Kind, Terminal, Detail string } `json:"other_flags"`
	}
	if err := json.Unmarshal([]byte(run(t, "headoffice", "report", "--data", hqData, "--json")), &report); err != nil {
		t.Fatal(err)
	}
	ahead := 0
	for _, f := range report.Other {
		if f.Kind == "rules_ahead" && strings.Contains(f.Detail, "rules version 5") {
			ahead++
		}
	}
	if ahead != len(tills) {
		t.Fatalf("%d rules_ahead flags for %d tills: %+v", ahead, len(tills), report.Other)
	}
	if _, err := try("headoffice", "rules", "set", rulesV(5, "Summer"), "--data", hqData); err == nil || !strings.Contains(err.Error(), "version 6 or above") {
		t.Fatalf("rules version 5 published again over the tills' own: %v", err)
	}
	run(t, "headoffice", "rules", "set", rulesV(6, "Summer"), "--data", hqData)
	waitRules(6)

	// The member imported before head office started reached every till
	// (asked with head office down, so from the till's own copy).
	hq.kill()
	for _, tl := range tills {
		var m struct {
			Balance int64 `json:"balance"`
		}
		if err := json.Unmarshal([]byte(run(t, "pos-agent", "member", "--data", tl.data, "--card", "4000000000000002", "--json")), &m); err != nil || m.Balance != 700 {
			t.Fatalf("%s: the member imported after the restore: %+v %v", tl.id, m, err)
		}
	}

	// Stopped, head office is backed up from its file; PostgreSQL is not
	// backed up by this verb.
	offline := filepath.Join(dir, "offline.backup")
	run(t, "headoffice", "backup", "--data", hqData, "--to", offline)
	if got, err := os.ReadFile(offline); err != nil || len(got) == 0 {
		t.Fatalf("offline backup: %d bytes, %v", len(got), err)
	}
	if _, err := try("headoffice", "backup", "--db", "postgres://nobody@127.0.0.1:1/x", "--to", filepath.Join(dir, "pg.backup")); err == nil || !strings.Contains(err.Error(), "pg_dump") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("a backup of PostgreSQL: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pg.backup")); !os.IsNotExist(err) {
		t.Fatalf("a refused backup left a file: %v", err)
	}
}
