package agent_test

import (
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
	if err := os.Remove(filepath.Join(dir, agent.LedgerFile)); err != nil {
		t.Fatal(err)
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
// bbolt would open the ledger at the commit before, and the next earn would
// reuse the last one's sequence. The agent refuses to open it; the repair
// finds the lost commit's event in the file and keeps it.
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
	_, err = agent.Open(ctx, dir, agent.Options{})
	if !errors.Is(err, agent.ErrCorrupt) || !strings.Contains(err.Error(), "meta page") {
		t.Fatalf("open with the newest meta page zeroed: %v", err)
	}
	rep, err := agent.Repair(ctx, dir, agent.RepairOptions{})
	if err != nil || rep.Kept != len(all) || len(rep.Lost) != 0 {
		t.Fatalf("repair: %+v %v; want all %d events kept", rep, err, len(all))
	}
	r := open(t, dir, nil)
	var got int
	if err := r.Export(func([]byte) error { got++; return nil }); err != nil || got != len(all) {
		t.Fatalf("export after the repair: %d of %d (%v)", got, len(all), err)
	}
}
