package syncserver

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/sync/hqstore"
)

// chainOf seals n earns of one terminal database, chained from seq 1.
func chainOf(n int) []json.RawMessage {
	raws := make([]json.RawMessage, n)
	prev := ""
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	for i := range raws {
		e := ledger.Event{Terminal: "T-1", Epoch: "ep1", Seq: uint64(i + 1), ID: fmt.Sprint("id", i+1), Type: ledger.Earn,
			Member: "M-1", Points: 10, Amount: 1000, Ref: fmt.Sprint("r", i+1), Time: at.Add(time.Duration(i) * time.Second)}
		raws[i] = e.Seal(prev)
		prev = e.Hash
	}
	return raws
}

// TestIngestMergedBatches: batches the ingester merged into one transaction
// are applied as if they came one by one: a resent overlap counts once, a
// gap stops the ack before it, and the member's balance is the sum of the
// events applied.
func TestIngestMergedBatches(t *testing.T) {
	db, err := hqstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := New(db, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	raws := chainOf(9)
	ingest := func(parts ...[]json.RawMessage) uint64 {
		t.Helper()
		b := decodeBatch(parts[0])
		for _, p := range parts[1:] {
			b = b.merge(decodeBatch(p))
		}
		ack, err := s.ingest("T-1", "store1", "ep1", b)
		if err != nil {
			t.Fatal(err)
		}
		return ack
	}
	// 1-3, then 2-5 resent with an overlap: acked 5, 2 and 3 applied once.
	if ack := ingest(raws[0:3], raws[1:5]); ack != 5 {
		t.Fatalf("ack %d after 1-3 and 2-5, want 5", ack)
	}
	// 6, then 8-9 past a gap: the ack stops at 6.
	if ack := ingest(raws[5:6], raws[7:9]); ack != 6 {
		t.Fatalf("ack %d after 6 and 8-9, want 6", ack)
	}
	// The terminal resends from the ack.
	if ack := ingest(raws[6:9]); ack != 9 {
		t.Fatalf("ack %d after the resend, want 9", ack)
	}
	if err := db.View(func(tx *hqstore.Tx) error {
		m, ok, err := tx.Member("M-1")
		if err != nil || !ok {
			return fmt.Errorf("member: %v %v", ok, err)
		}
		if m.Balance != 90 {
			t.Errorf("balance %d, want 90 (9 earns of 10)", m.Balance)
		}
		n := 0
		if err := tx.Events("T-1", func([]byte) error { n++; return nil }); err != nil {
			return err
		}
		if n != 9 {
			t.Errorf("%d events stored, want 9", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
