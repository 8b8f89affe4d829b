package headoffice_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqpg"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/internal/testclock"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/sync/syncproto"
)

func TestMain(m *testing.M) { hqtest.Main(m) }

// started anchors testNow.
var started = time.Now()

// testNow is the clock of the head offices these tests ingest fixed-date
// events into: 24 November 2026 at noon when the tests start, running on
// from there, so that the events stay inside head office's clock-skew
// window whatever day the tests run.
func testNow() time.Time {
	return time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).Add(time.Since(started))
}

// eachStore runs fn as a subtest on a new store of each kind.
func eachStore(t *testing.T, fn func(t *testing.T, s headoffice.Store)) {
	t.Run("bolt", func(t *testing.T) { fn(t, hqtest.Bolt(t)) })
	t.Run("postgres", func(t *testing.T) {
		db, _ := hqtest.PostgresStore(t, hqpg.Options{Serve: true})
		fn(t, db)
	})
}

// chainOf seals n earns of one terminal database, chained from seq 1.
func chainOf(n int) [][]byte {
	raws := make([][]byte, n)
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

// TestIngestMergedBatches: batches merged into one transaction are applied
// as if they came one by one: a resent overlap counts once, a gap stops the
// ack before it, and the member's balance is the sum of the events applied.
func TestIngestMergedBatches(t *testing.T) { eachStore(t, ingestMergedBatches) }

func ingestMergedBatches(t *testing.T, s headoffice.Store) {
	o := hqtest.Office(t, s, headoffice.Options{Now: testNow})
	ctx := context.Background()
	raws := chainOf(9)
	ingest := func(parts ...[][]byte) uint64 {
		t.Helper()
		b := ledger.DecodeBatch(parts[0])
		for _, p := range parts[1:] {
			b = b.Merge(ledger.DecodeBatch(p))
		}
		ack, err := o.Ingest(ctx, "T-1", "store1", "ep1", b)
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
	if err := o.Store().View(ctx, func(tx headoffice.ReadTx) error {
		ms, err := tx.Members([]string{"M-1"})
		if err != nil {
			return err
		}
		if m, ok := ms["M-1"]; !ok || m.Balance != 90 {
			t.Errorf("member %+v (found %v), want balance 90 (9 earns of 10)", m, ok)
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

// TestJoinCodes: a code joins once; a used, unknown or expired code is
// refused with ErrJoinCode; a terminal that joined cannot be added again.
func TestJoinCodes(t *testing.T) { eachStore(t, joinCodes) }

func joinCodes(t *testing.T, s headoffice.Store) {
	clk := testclock.New(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	o := hqtest.Office(t, s, headoffice.Options{Now: clk.Now})
	ctx := context.Background()
	id, code, err := o.AddTerminal(ctx, "store1", "till2")
	if err != nil || id != "store1-till2" {
		t.Fatalf("add: %q %v", id, err)
	}
	pub, _, _ := ed25519.GenerateKey(nil)
	resp, err := o.Join(ctx, syncproto.JoinRequest{Code: strings.ToLower(code), Key: pub})
	if err != nil || resp.Terminal != id || resp.Store != "store1" || len(resp.QRKey) != ed25519.PublicKeySize {
		t.Fatalf("join: %+v %v", resp, err)
	}
	if _, err := o.Join(ctx, syncproto.JoinRequest{Code: code, Key: pub}); !errors.Is(err, headoffice.ErrJoinCode) {
		t.Fatalf("reused join code: %v", err)
	}
	if _, err := o.Join(ctx, syncproto.JoinRequest{Code: "NOPE-NOPE-NOPE", Key: pub}); !errors.Is(err, headoffice.ErrJoinCode) {
		t.Fatalf("unknown join code: %v", err)
	}
	if _, _, err := o.AddTerminal(ctx, "store1", "till2"); !errors.Is(err, headoffice.ErrInvalid) {
		t.Fatalf("adding a joined terminal again: %v", err)
	}
	_, code, _ = o.AddTerminal(ctx, "store1", "till3")
	clk.Set(clk.Now().Add(25 * time.Hour))
	if _, err := o.Join(ctx, syncproto.JoinRequest{Code: code, Key: pub}); !errors.Is(err, headoffice.ErrJoinCode) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired join code: %v", err)
	}
	if _, err := o.Join(ctx, syncproto.JoinRequest{Code: code, Key: pub[:5]}); !errors.Is(err, headoffice.ErrInvalid) {
		t.Fatalf("short key: %v", err)
	}
}
