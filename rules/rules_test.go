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
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) // a Wednesday: no default campaign
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
		"discount value":  func(m map[string]any) { m["discount"].(map[string]any)["value"] = 1e17 },
		"discount points": func(m map[string]any) { m["discount"].(map[string]any)["points"] = 1e15 },
		"max amount":      func(m map[string]any) { m["earn"].(map[string]any)["max_amount"] = -1 },
		"max amount huge": func(m map[string]any) { m["earn"].(map[string]any)["max_amount"] = 1e18 },
		"void approval":   func(m map[string]any) { m["approval"].(map[string]any)["void_points"] = -1 },
		"names code": func(m map[string]any) {
			m["tiers"].([]any)[1].(map[string]any)["names"] = map[string]any{"Turkish": "Gümüş"}
		},
		"names empty":     func(m map[string]any) { m["catalog"].([]any)[0].(map[string]any)["names"] = map[string]any{"tr": ""} },
		"refund approval": func(m map[string]any) { m["approval"].(map[string]any)["refund_amount"] = 1e18 },
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
	demo, err := os.ReadFile("../scripts/demo-rules.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(demo) // campaigns with conditions and budgets, surprise, welcome back, expiry, review
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":2,"currency":"EUR","earn":{"points_per_unit":1},"tiers":[{"id":"a","name":"A","min_spend":0,"multiplier_bp":10000}],` +
		`"campaigns":[{"id":"c","name":"C","skus":["X"],"categories":["d"],"first_purchase":true,"bonus":5,"budget":9}],` +
		`"expiry":{"policy":"inactivity","months":18},"review":{"date":"02-29"},"surprise":{"probability_bp":10000,"bonus":1,"daily_budget":1}}`))
	f.Add([]byte(`{"version":2,"currency":"EUR","earn":{"points_per_unit":1},"tiers":[{"id":"a","name":"A","min_spend":0,"multiplier_bp":10000}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			return
		}
		at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
		r := d.EvaluateEarn(Checkout{Ref: "r", Amount: 123456, Time: at, Items: []Item{{SKU: "X", Category: "d", Amount: 123456}}},
			Member{ID: "m", Tier: d.StartTier(), Birthday: "11-01", LastVisit: at.AddDate(-1, 0, 0)}, 100)
		if r.Points < 0 {
			t.Fatalf("negative points %d", r.Points)
		}
		for _, e := range d.Expiries("m", Lots{"2025-01": 10}, 10, at.AddDate(-2, 0, 0), at) {
			if e.Points <= 0 || e.Points > 10 {
				t.Fatalf("expiry of %d points from a balance of 10", e.Points)
			}
		}
	})
}

// TestDocExample keeps docs/rules.md's example a valid document.
func TestDocExample(t *testing.T) {
	b, err := os.ReadFile("../docs/rules.md")
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

func TestCampaigns(t *testing.T) {
	d := Default()
	d.Campaigns = append(d.Campaigns,
		Campaign{ID: "gold-eve", Name: "Gold evening", Tiers: []string{"gold"}, HourFrom: 18, HourTo: 21, Bonus: 50, Stackable: true},
		Campaign{ID: "winter", Name: "Winter week", From: "2026-12-01", To: "2026-12-07", MinSpend: 3000, MultiplierBP: 15000},
		Campaign{ID: "big", Name: "Big basket", MinSpend: 10000, Bonus: 40},
	)
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	tue := time.Date(2026, 11, 24, 19, 0, 0, 0, time.UTC)
	wed := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	winter := time.Date(2026, 12, 2, 19, 0, 0, 0, time.UTC)
	tests := []struct {
		at     time.Time
		tier   string
		amount int64
		lines  string
	}{
		{wed, "bronze", 5000, "+50 base"},
		{wed, "bronze", 12000, "+120 base, +40 Big basket"},
		// Not stackable: of Double Points Tuesday (+120) and Big basket (+40) only the larger.
		{tue, "bronze", 12000, "+120 base, +120 Double Points Tuesday"},
		// Stackable ones add to it; the tier line comes first.
		{tue, "gold", 12000, "+120 base, +60 Gold x1.5, +50 Gold evening, +120 Double Points Tuesday"},
		{winter, "bronze", 5000, "+50 base, +25 Winter week"},
		{winter, "bronze", 2999, "+29 base"},
		{winter.Add(-3 * time.Hour), "gold", 5000, "+50 base, +25 Gold x1.5, +25 Winter week"},
	}
	for _, tt := range tests {
		r := d.EvaluateEarn(Checkout{Ref: "r", Amount: tt.amount, Time: tt.at}, Member{ID: "m", Tier: tt.tier}, 100)
		var lines []string
		var sum int64
		for _, l := range r.Lines {
			lines = append(lines, l.String())
			sum += l.Points
		}
		if strings.Join(lines, ", ") != tt.lines || sum != r.Points {
			t.Errorf("%s %s %d: %q (%d points), want %q", tt.at.Weekday(), tt.tier, tt.amount, lines, r.Points, tt.lines)
		}
	}
	for name, c := range map[string]Campaign{
		"no effect":    {ID: "x", Name: "X"},
		"both effects": {ID: "x", Name: "X", Bonus: 5, MultiplierBP: 20000},
		"bad weekday":  {ID: "x", Name: "X", Bonus: 5, Weekdays: []string{"tues"}},
		"bad date":     {ID: "x", Name: "X", Bonus: 5, From: "24.11.2026"},
		"bad hours":    {ID: "x", Name: "X", Bonus: 5, HourFrom: 20, HourTo: 18},
		"unknown tier": {ID: "x", Name: "X", Bonus: 5, Tiers: []string{"diamond"}},
	} {
		bad := Default()
		bad.Campaigns = append(bad.Campaigns, c)
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
}

// TestDemoRules keeps the rules `make run` publishes valid.
func TestDemoRules(t *testing.T) {
	b, err := os.ReadFile("../scripts/demo-rules.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(b)
	if err != nil {
		t.Fatalf("scripts/demo-rules.json: %v", err)
	}
	if d.Version <= Default().Version || len(d.Campaigns) < 2 {
		t.Fatalf("the demo rules must be newer than the default and run a campaign: v%d, %d campaigns", d.Version, len(d.Campaigns))
	}
}
