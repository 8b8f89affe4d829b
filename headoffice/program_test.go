package headoffice_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/rules"
	"github.com/offline-loyalty/terminal/sync/syncproto"
)

// TestSetRulesVersions: a document is published only above every version a
// terminal may run: the published one, the built-in default's, and one a
// terminal reports running that the store never published (raised once as
// a rules_ahead flag).
func TestSetRulesVersions(t *testing.T) {
	ctx := context.Background()
	o := hqtest.Office(t, hqtest.Bolt(t), headoffice.Options{Now: testNow})
	publish := func(v int) error {
		d := rules.Default()
		d.Version = v
		doc, _ := json.Marshal(d)
		_, err := o.SetRules(ctx, doc)
		return err
	}
	if err := publish(rules.Default().Version); !errors.Is(err, headoffice.ErrInvalid) || !strings.Contains(err.Error(), "built-in default") {
		t.Fatalf("the default's version: %v", err)
	}
	if err := publish(3); err != nil {
		t.Fatal(err)
	}
	if err := publish(3); !errors.Is(err, headoffice.ErrInvalid) || !strings.Contains(err.Error(), "published version 3") {
		t.Fatalf("the published version again: %v", err)
	}
	// A terminal runs version 7, which this store never published.
	for range 3 {
		cur := syncproto.Cursors{Rules: 7}
		if _, err := o.Pending(ctx, "S1-t1", "S1", "ep1", &cur, testNow()); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := o.Report(ctx, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	var ahead []headoffice.Flag
	for _, f := range rep.Other {
		if f.Kind == headoffice.FlagRulesAhead {
			ahead = append(ahead, f)
		}
	}
	if len(ahead) != 1 || ahead[0].Terminal != "S1-t1" || ahead[0].Seq != 7 {
		t.Fatalf("rules_ahead flags: %+v", ahead)
	}
	if err := publish(7); !errors.Is(err, headoffice.ErrInvalid) || !strings.Contains(err.Error(), "terminal S1-t1") || !strings.Contains(err.Error(), "version 8 or above") {
		t.Fatalf("below a terminal's version: %v", err)
	}
	if err := publish(8); err != nil {
		t.Fatal(err)
	}
}

// TestRulesRollback: a preview lists the problems and the change and
// publishes nothing; a rollback publishes an earlier content as a new
// version above all; on both stores.
func TestRulesRollback(t *testing.T) { eachStore(t, rulesRollback) }

func rulesRollback(t *testing.T, s headoffice.Store) {
	ctx := context.Background()
	o := hqtest.Office(t, s, headoffice.Options{})
	doc := func(v, ppu int) []byte {
		d := rules.Default()
		d.Version, d.Earn.PointsPerUnit = v, int64(ppu)
		b, _ := json.Marshal(d)
		return b
	}
	p, err := o.PreviewRules(ctx, doc(1, 5000))
	if err != nil || len(p.Problems) != 1 || !strings.Contains(p.Problems[0], "earn.points_per_unit: between 0 and 1000") {
		t.Fatalf("preview of a bad document: %+v %v", p.Problems, err)
	}
	if p, err = o.PreviewRules(ctx, doc(2, 2)); err != nil || len(p.Problems) != 0 || !strings.Contains(p.Diff, `+    "points_per_unit": 2,`) {
		t.Fatalf("preview: %+v %v", p, err)
	}
	if h, _ := o.RulesHistory(ctx); len(h) != 0 {
		t.Fatalf("a preview published %d versions", len(h))
	}
	for _, ppu := range []int{2, 3} {
		if _, err := o.SetRules(ctx, doc(ppu, ppu)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := o.RollbackRules(ctx, 7); !errors.Is(err, headoffice.ErrNotFound) {
		t.Errorf("rollback to a version never published: %v", err)
	}
	v, err := o.RollbackRules(ctx, 2)
	if err != nil || v != 4 {
		t.Fatalf("rollback: %d %v", v, err)
	}
	raw, _ := o.Rules(ctx)
	d, err := rules.Parse(raw)
	if err != nil || d.Version != 4 || d.Earn.PointsPerUnit != 2 {
		t.Fatalf("after the rollback: %+v %v", d, err)
	}
	h, _ := o.RulesHistory(ctx)
	if len(h) != 3 || h[0].Version != 4 {
		t.Errorf("history %+v", h)
	}
}
