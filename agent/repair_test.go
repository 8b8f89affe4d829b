package agent_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offline-loyalty/terminal/agent"
)

// TestRepairRefill: a ledger lost whole is repaired empty and asks head
// office first which epochs the terminal had; what head office sends back is
// checked (an event of another epoch, or outside the range asked for, is
// refused and nothing is kept), and a retried ref of the old ledger is
// answered, not done again.
func TestRepairRefill(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := open(t, dir, nil)
	enroll(t, a, card)
	for i := range 5 {
		if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "10", Ref: fmt.Sprint("r", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var old [][]byte
	if err := a.Export(func(b []byte) error { old = append(old, b); return nil }); err != nil {
		t.Fatal(err)
	}
	oldEpoch := a.Identity().Epoch
	a.Close()
	// The ledger and its log (which holds its events too) are lost.
	for _, p := range []string{agent.LedgerFile, "wal"} {
		if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := agent.Repair(ctx, dir, agent.RepairOptions{Terminal: "T1", Store: "S1"})
	if err != nil || rep.Kept != 0 || rep.NewEpoch == "" {
		t.Fatalf("repair: %+v, %v", rep, err)
	}
	b := open(t, dir, nil)
	req, ok := b.NextHistoryRequest()
	if !ok || req.Epoch != "" {
		t.Fatalf("first request %+v %v: want the list of epochs", req, ok)
	}
	if err := b.ApplyEpochs([]string{rep.NewEpoch, oldEpoch}); err != nil {
		t.Fatal(err)
	}
	req, ok = b.NextHistoryRequest()
	if !ok || req.Epoch != oldEpoch || req.After != 0 {
		t.Fatalf("next request %+v %v: want all of %s", req, ok, oldEpoch)
	}
	if err := b.ApplyHistory(agent.HistoryRequest{Epoch: oldEpoch, After: 2}, 6, old); err == nil {
		t.Fatal("events before the range asked for were kept")
	}
	if err := b.ApplyHistory(req, 3, old); err == nil {
		t.Fatal("events past what head office says it covered were kept")
	}
	if err := b.ApplyHistory(req, 6, old); err != nil {
		t.Fatal(err)
	}
	if req, ok := b.NextHistoryRequest(); !ok || req.After != 6 {
		t.Fatalf("after a full page: %+v %v: want what follows it", req, ok)
	}
	if err := b.ApplyHistory(agent.HistoryRequest{Epoch: oldEpoch, After: 6}, 6, nil); err != nil {
		t.Fatal(err)
	}
	if req, ok := b.NextHistoryRequest(); ok {
		t.Fatalf("refill done, still asking %+v", req)
	}
	var got int
	if err := b.Export(func([]byte) error { got++; return nil }); err != nil || got != len(old) {
		t.Fatalf("export after the refill: %d events of %d, %v", got, len(old), err)
	}
	again, err := b.Earn(ctx, agent.EarnRequest{Card: card, Amount: "10", Ref: "r3"})
	if err != nil || again.Seq != 5 {
		t.Fatalf("retried ref of the old ledger: %+v, %v", again, err)
	}
	if n := len(events(t, b)); n != len(old) {
		t.Fatalf("the retried ref wrote an event: %d of %d", n, len(old))
	}
}

// TestNewestMetaPageDamaged: with the newest of its two meta pages zeroed,
// bbolt opens the ledger at the commit before. The log still holds what
// that commit applied: the agent opens with every event, and the next earn
// takes the next sequence. Without the log too, the agent refuses to open
// it; the repair finds the lost commit's events in the file and keeps them.
func TestNewestMetaPageDamaged(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := open(t, dir, nil)
	enroll(t, a, card)
	for i := range 3 {
		if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "10", Ref: fmt.Sprint("r", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var all [][]byte
	if err := a.Export(func(b []byte) error { all = append(all, b); return nil }); err != nil {
		t.Fatal(err)
	}
	a.Close()
	path := filepath.Join(dir, agent.LedgerFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps := int(binary.LittleEndian.Uint32(b[16+8:]))
	txid := func(page int) uint64 { return binary.LittleEndian.Uint64(b[page*ps+16+48:]) }
	newest := 0
	if txid(1) > txid(0) {
		newest = 1
	}
	// Its content, not its page header (bbolt's own check refuses a page
	// that does not say which it is).
	clear(b[newest*ps+16 : newest*ps+16+64])
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	saved := t.TempDir()
	copyDir(t, dir, saved)
	r := open(t, dir, nil)
	var got [][]byte
	if err := r.Export(func(b []byte) error { got = append(got, b); return nil }); err != nil || len(got) != len(all) {
		t.Fatalf("export with the newest meta page zeroed: %d of %d (%v)", len(got), len(all), err)
	}
	for i := range all {
		if !bytes.Equal(got[i], all[i]) {
			t.Fatalf("event %d: %s, want %s", i+1, got[i], all[i])
		}
	}
	res, err := r.Earn(ctx, agent.EarnRequest{Card: card, Amount: "10", Ref: "after"})
	if err != nil || res.Seq != uint64(len(all)+1) {
		t.Fatalf("earn after reopening: %+v %v, want sequence %d", res, err, len(all)+1)
	}
	r.Close()

	// The same file without its log.
	dir = saved
	if err := os.RemoveAll(filepath.Join(dir, "wal")); err != nil {
		t.Fatal(err)
	}
	_, err = agent.Open(ctx, dir, agent.Options{})
	if !errors.Is(err, agent.ErrCorrupt) || !strings.Contains(err.Error(), "meta page") {
		t.Fatalf("open with the newest meta page zeroed and no log: %v", err)
	}
	rep, err := agent.Repair(ctx, dir, agent.RepairOptions{})
	if err != nil || rep.Kept != len(all) || len(rep.Lost) != 0 {
		t.Fatalf("repair: %+v %v; want all %d events kept", rep, err, len(all))
	}
	r = open(t, dir, nil)
	n := 0
	if err := r.Export(func([]byte) error { n++; return nil }); err != nil || n != len(all) {
		t.Fatalf("export after the repair: %d of %d (%v)", n, len(all), err)
	}
}

// copyDir copies the files of a data directory (and of its directories one
// level down: the log) into to.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
