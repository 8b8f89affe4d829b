package headoffice_test

import (
	"context"
	"strings"
	"testing"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqpg"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/ledger"
)

// TestMoveAndVerify: a store moved to PostgreSQL verifies against its
// source; a moved store that differs in a balance or misses an event does
// not; terminals' old feed cursors are below every new position.
func TestMoveAndVerify(t *testing.T) {
	ctx := context.Background()
	src := hqtest.Bolt(t)
	o := hqtest.Office(t, src, headoffice.Options{Now: testNow})
	if _, _, err := o.AddTerminal(ctx, "S1", "t1"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.ImportMembers(ctx, strings.NewReader("card,member,name,email,tier,balance\nC9,M9,Zed,,,5\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Ingest(ctx, "T-1", "S1", "ep1", ledger.DecodeBatch(chainOf(7))); err != nil {
		t.Fatal(err)
	}
	var head uint64
	if err := src.View(ctx, func(tx headoffice.ReadTx) (err error) { head, err = tx.FeedHead(); return }); err != nil || head == 0 {
		t.Fatalf("feed head %d %v", head, err)
	}
	dst, _ := hqtest.PostgresStore(t, hqpg.Options{})
	if _, err := headoffice.Move(ctx, src, dst); err != nil {
		t.Fatal(err)
	}
	n, err := headoffice.Verify(ctx, src, dst)
	if err != nil || n.Events != 7 || n.Members != 2 || n.Chains != 1 {
		t.Fatalf("verify: %+v %v", n, err)
	}
	if _, err := dst.Pump(ctx); err != nil {
		t.Fatal(err)
	}
	k := headoffice.ChainKey{Terminal: "T-1", Epoch: "ep1"}
	p, err := dst.FeedPage(ctx, headoffice.FeedQuery{Terminals: []headoffice.ChainKey{k}, Store: "S1", MemberCursor: head, Max: 10})
	if err != nil || len(p.Members) != 2 || p.AsOf[k] != 7 {
		t.Fatalf("a terminal at the old head receives every member again: %+v %v", p, err)
	}
	if err := dst.Update(ctx, func(tx headoffice.Tx) error {
		ms, err := tx.LockMembers([]string{"M-1"})
		m := ms["M-1"]
		m.Balance++
		if err == nil {
			err = tx.PutMember(m)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := headoffice.Verify(ctx, src, dst); err == nil || !strings.Contains(err.Error(), "balance") {
		t.Fatalf("verify a changed balance: %v", err)
	}
	if _, err := dst.Pool().Exec(ctx, `DELETE FROM events WHERE seq = 7`); err != nil {
		t.Fatal(err)
	}
	if _, err := headoffice.Verify(ctx, src, dst); err == nil {
		t.Fatal("verify a missing event: no error")
	}
}
