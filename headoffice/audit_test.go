package headoffice_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/rules"
)

// TestAuditSurprise: head office draws every checkout of the day again with
// the terminal's key: the surprises the draws won pass, one paid on a draw
// that lost is listed.
func TestAuditSurprise(t *testing.T) {
	o := hqtest.Office(t, hqtest.Bolt(t), headoffice.Options{Now: testNow})
	ctx := context.Background()
	d := rules.Default()
	d.Version, d.Surprise.ProbabilityBP = 40, 5000
	doc, _ := json.Marshal(d)
	if _, err := o.SetRules(ctx, doc); err != nil {
		t.Fatal(err)
	}
	key := o.DrawKey("S1-t1")
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	var raws [][]byte
	prev, won, forged := "", 0, uint64(0)
	for seq := uint64(1); seq <= 40; seq++ {
		e := ledger.Event{Terminal: "S1-t1", Store: "S1", Epoch: "ep1", Seq: seq, ID: fmt.Sprint("ep1-", seq), Type: ledger.Earn, Member: "M1",
			Card: "C1", Points: 10, Amount: 1000, Ref: fmt.Sprint("r", seq), Time: at.Add(time.Duration(seq) * time.Minute), RulesVersion: 40,
			Lines: []ledger.Line{{Label: "base", Points: 10}}}
		wins := rules.Draw(key, "ep1", seq) < 5000
		if !wins && forged == 0 {
			forged, wins = seq, true // paid although the draw lost
		} else if wins {
			won++
		}
		if wins {
			e.Lines = append(e.Lines, ledger.Line{Label: "surprise", Points: 100})
			e.Points += 100
		}
		raws = append(raws, e.Seal(prev))
		prev = e.Hash
	}
	if ack, err := o.Ingest(ctx, "S1-t1", "S1", "ep1", ledger.DecodeBatch(raws)); err != nil || ack != 40 {
		t.Fatalf("ingest: %d %v", ack, err)
	}
	a, err := o.AuditSurprise(ctx, "2026-11-24")
	if err != nil {
		t.Fatal(err)
	}
	if a.Checkouts != 40 || a.Won != won+1 || len(a.Mismatches) != 1 || a.Mismatches[0].Seq != forged || a.Mismatches[0].Paid != 100 {
		t.Fatalf("audit %+v; want 40 checkouts, %d won, seq %d listed", a, won+1, forged)
	}
	if a, _ := o.AuditSurprise(ctx, "2026-11-25"); a.Checkouts != 0 {
		t.Fatalf("another day: %+v", a)
	}
	if _, err := o.AuditSurprise(ctx, "24.11.2026"); err == nil {
		t.Fatal("a day that is not one")
	}
}
