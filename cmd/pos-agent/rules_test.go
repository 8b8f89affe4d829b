package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRulesCheck: every problem of a document on its own line with its path,
// a one-line error and exit 1; a valid document is reported valid.
func TestRulesCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	doc := `{"version": 0, "currency": "EUR", "earn": {"points_per_unit": 1},
 "tiers": [{"id": "bronze", "name": "Bronze", "min_spend": 0, "multiplier_bp": 10000}],
 "campaigns": [{"id": "a", "name": "A", "bonus": 5}, {"id": "b", "name": "B", "bonus": 5, "tiers": ["gold"]},
               {"id": "c", "name": "C", "bonus": 5, "from": "tomorrow"}],
 "catalog": [], "discount": {"points": 100, "value": 100, "min_points": 100}, "charities": [],
 "offline_limit": {"points_per_day": 0, "stale_after": "24h"}, "refund": {"allow_negative": true}}`
	if err := os.WriteFile(bad, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	r := posAgent(t, "rules", "check", bad)
	want := []string{
		bad + ": version: must be a positive integer",
		bad + `: campaigns[1].tiers[0]: unknown tier "gold"`,
		bad + ": campaigns[2].from: not a date like 2026-11-24",
	}
	if r.code != 1 || strings.TrimSpace(r.stdout) != strings.Join(want, "\n") || r.stderr != "pos-agent: "+bad+": 3 problems\n" {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr: %q", r.code, r.stdout, r.stderr)
	}
	var rep struct {
		OK       bool
		Problems []string
	}
	if r := posAgent(t, "rules", "check", "--json", bad); r.code != 1 || !strings.Contains(r.stdout, `"ok":false`) {
		t.Fatalf("--json: %d %q", r.code, r.stdout)
	}
	mustJSON(t, posAgent(t, "rules", "check", "--json", "../../scripts/demo-rules.json"), &rep)
	if !rep.OK {
		t.Fatalf("demo rules: %+v", rep)
	}
	if r := posAgent(t, "rules", "check"); r.code != 2 {
		t.Fatalf("no file: exit %d %q", r.code, r.stderr)
	}
}

// TestExpireVerb: the expire verb runs the housekeeping through the API and
// writes nothing when nothing is due; a birthday given at enrollment shows.
func TestExpireVerb(t *testing.T) {
	data := t.TempDir()
	var res struct{ Member string }
	mustJSON(t, posAgent(t, "enroll", "--data", data, "--card", "4000000000000002", "--birthday", "1990-02-14", "--json"), &res)
	var h struct{ Expired, Downgraded, Deferred int }
	mustJSON(t, posAgent(t, "expire", "--data", data, "--json"), &h)
	if h.Expired != 0 || h.Downgraded != 0 || exportCount(t, data) != 1 {
		t.Fatalf("expire on a fresh member: %+v", h)
	}
	var m struct{ Birthday string }
	mustJSON(t, posAgent(t, "member", "--data", data, "--card", "4000000000000002", "--json"), &m)
	if m.Birthday != "02-14" {
		t.Fatalf("birthday %q", m.Birthday)
	}
	if r := posAgent(t, "enroll", "--data", data, "--card", "4000000000000010", "--birthday", "31-12"); r.code != 1 || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("bad birthday: %d %q", r.code, r.stderr)
	}
}
