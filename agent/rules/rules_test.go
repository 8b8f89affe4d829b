package rules

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDefaultParses(t *testing.T) {
	d := Default()
	if d.StartTier() != "bronze" || strings.Join(d.TierIDs(), ",") != "bronze,silver,gold,platinum" {
		t.Fatalf("tiers %v", d.TierIDs())
	}
}

func TestEarnWithTiers(t *testing.T) {
	d := Default()
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		tier   string
		amount int64
		items  []Item
		points int64
		lines  string
	}{
		{"bronze", 12050, nil, 120, "+120 base"},
		{"silver", 12050, nil, 150, "+120 base, +30 Silver x1.25"},
		{"gold", 12050, nil, 180, "+120 base, +60 Gold x1.5"},
		{"platinum", 12050, nil, 240, "+120 base, +120 Platinum x2"},
		{"gold", 3000, []Item{{SKU: "tea", Category: "grocery", Amount: 1000}, {SKU: "gc", Category: "gift_card", Amount: 2000}}, 15, "+10 base, +5 Gold x1.5"},
		{"gold", 99, nil, 0, "+0 base"},
		{"nosuchtier", 1000, nil, 10, "+10 base"},
	}
	for _, tt := range tests {
		r := d.EvaluateEarn(Checkout{Ref: "r", Amount: tt.amount, Items: tt.items, Time: at}, Member{ID: "m", Tier: tt.tier}, 100)
		var lines []string
		for _, l := range r.Lines {
			lines = append(lines, l.String())
		}
		if r.Points != tt.points || strings.Join(lines, ", ") != tt.lines {
			t.Errorf("%s %d: %d points %q, want %d %q", tt.tier, tt.amount, r.Points, lines, tt.points, tt.lines)
		}
	}
}

func TestTierLadder(t *testing.T) {
	d := Default()
	for _, tt := range []struct {
		current string
		spend   int64
		want    string
	}{
		{"bronze", 49999, ""}, {"bronze", 50000, "silver"}, {"bronze", 200000, "gold"},
		{"silver", 600000, "platinum"}, {"gold", 100, ""}, {"platinum", 9999999, ""},
	} {
		got, ok := d.Upgrade(tt.current, tt.spend)
		if (tt.want == "") == ok || (ok && got.ID != tt.want) {
			t.Errorf("Upgrade(%s, %d) = %v %v, want %q", tt.current, tt.spend, got.ID, ok, tt.want)
		}
	}
	if next, toGo, ok := d.NextTier("silver", 120000); !ok || next.ID != "gold" || toGo != 30000 {
		t.Errorf("NextTier(silver) = %v %d %v", next.ID, toGo, ok)
	}
	if _, _, ok := d.NextTier("platinum", 0); ok {
		t.Error("a tier above platinum")
	}
	if !d.TierAllows("gold", "silver") || d.TierAllows("silver", "gold") || !d.TierAllows("bronze", "") {
		t.Error("TierAllows")
	}
	for bp, want := range map[int64]string{10000: "x1", 12500: "x1.25", 15000: "x1.5", 20000: "x2", 10001: "x1.0001"} {
		if got := multiplierLabel(bp); got != want {
			t.Errorf("multiplierLabel(%d) = %q, want %q", bp, got, want)
		}
	}
}

func TestTierProblems(t *testing.T) {
	base := func() map[string]any {
		var m map[string]any
		_ = json.Unmarshal(defaultJSON, &m)
		return m
	}
	for name, change := range map[string]func(m map[string]any){
		"no tiers":        func(m map[string]any) { m["tiers"] = []any{} },
		"first not zero":  func(m map[string]any) { m["tiers"].([]any)[0].(map[string]any)["min_spend"] = 5 },
		"not ascending":   func(m map[string]any) { m["tiers"].([]any)[2].(map[string]any)["min_spend"] = 10 },
		"low multiplier":  func(m map[string]any) { m["tiers"].([]any)[1].(map[string]any)["multiplier_bp"] = 5000 },
		"reward tier":     func(m map[string]any) { m["catalog"].([]any)[3].(map[string]any)["tier"] = "diamond" },
		"duplicate tiers": func(m map[string]any) { m["tiers"].([]any)[1].(map[string]any)["id"] = "bronze" },
	} {
		m := base()
		change(m)
		b, _ := json.Marshal(m)
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// FuzzParse checks that the loader never panics and that whatever it accepts
// evaluates without negative points.
func FuzzParse(f *testing.F) {
	f.Add(defaultJSON)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":2,"currency":"EUR","earn":{"points_per_unit":1},"tiers":[{"id":"a","name":"A","min_spend":0,"multiplier_bp":10000}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			return
		}
		r := d.EvaluateEarn(Checkout{Ref: "r", Amount: 123456, Time: time.Unix(0, 0)}, Member{ID: "m", Tier: d.StartTier()}, 100)
		if r.Points < 0 {
			t.Fatalf("negative points %d", r.Points)
		}
	})
}

// TestDocExample keeps docs/rules.md's example a valid document.
func TestDocExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/rules.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "```json")
	example, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("docs/rules.md has no JSON example")
	}
	if _, err := Parse([]byte(example)); err != nil {
		t.Fatalf("docs/rules.md example: %v", err)
	}
}
