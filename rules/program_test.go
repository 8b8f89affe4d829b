package rules

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func lineText(r EarnResult) string {
	var lines []string
	for _, l := range r.Lines {
		lines = append(lines, l.String())
	}
	return strings.Join(lines, ", ")
}

// TestProblemsAll checks that the loader reports every problem, each with its
// path, and a decoding problem with its place.
func TestProblemsAll(t *testing.T) {
	doc := strings.Replace(string(defaultJSON), `"version": 1`, `"version": 0`, 1)
	doc = strings.Replace(doc, `{"id": "double-tuesday", "name": "Double Points Tuesday", "names": {"tr": "Salı çift puan"}, "weekdays": ["tue"], "multiplier_bp": 20000}`,
		`{"id": "a", "name": "A", "bonus": 5}, {"id": "b", "name": "B", "bonus": 5, "tiers": ["diamond"]},
		 {"id": "c", "name": "C", "bonus": 5, "from": "24.11.2026"}`, 1)
	doc = strings.Replace(doc, `"months": 12`, `"months": 0`, 1)
	_, err := Parse([]byte(doc))
	var p Problems
	if !errors.As(err, &p) {
		t.Fatalf("error %v is not Problems", err)
	}
	want := Problems{
		"version: must be a positive integer",
		`campaigns[1].tiers[0]: unknown tier "diamond"`,
		"campaigns[2].from: not a date like 2026-11-24",
		"expiry.months: between 1 and 120",
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(p, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "rules: 4 problems: version:") {
		t.Errorf("error is not one line: %q", err)
	}
	for in, want := range map[string]string{
		`{"version": "two"}`:                            `rules: version: string where an integer was expected`,
		`{"version": 2, "campaigns": [{"bonus": "x"}]}`: `rules: campaigns.bonus: string where an integer was expected`,
		"{\n  \"version\": 2,,\n}":                      "rules: line 2 column 16: invalid character ',' looking for beginning of object key string",
		`{"version": 2, "colour": 1}`:                   `rules: unknown field "colour"`,
		``:                                              `rules: empty document`,
		`{"version": 2} {}`:                             `rules: more than one JSON value`,
	} {
		if _, err := Parse([]byte(in)); err == nil || err.Error() != want {
			t.Errorf("Parse(%q) = %v, want %s", in, err, want)
		}
	}
}

// TestCampaignConditions checks each condition of a campaign with exact numbers.
func TestCampaignConditions(t *testing.T) {
	d := Default()
	d.Campaigns = []Campaign{
		{ID: "dairy", Name: "Dairy week", Categories: []string{"dairy"}, Bonus: 30, Stackable: true},
		{ID: "sku", Name: "Oat milk launch", SKUs: []string{"OAT-1L"}, MultiplierBP: 30000, Stackable: true},
		{ID: "first", Name: "First purchase", FirstPurchase: true, Bonus: 200, Stackable: true},
		{ID: "bday", Name: "Birthday month", BirthdayMonth: true, MultiplierBP: 20000, Stackable: true},
		{ID: "budget", Name: "Launch budget", Bonus: 80, Budget: 100, Stackable: true, From: "2026-11-01"},
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) // a Wednesday
	dairy := []Item{{SKU: "MILK", Category: "dairy", Quantity: 1, Amount: 2000}, {SKU: "BREAD", Category: "bakery", Quantity: 1, Amount: 3000}}
	oat := []Item{{SKU: "OAT-1L", Category: "drinks", Quantity: 2, Amount: 5000}}
	tests := []struct {
		name  string
		items []Item
		m     Member
		used  map[string]int64
		lines string
	}{
		{"dairy in basket", dairy, Member{Checkouts: 3}, map[string]int64{"budget": 100}, "+50 base, +30 Dairy week"},
		{"sku in basket", oat, Member{Checkouts: 3}, map[string]int64{"budget": 100}, "+50 base, +100 Oat milk launch"},
		{"first purchase", nil, Member{}, map[string]int64{"budget": 100}, "+50 base, +200 First purchase"},
		{"birthday month", nil, Member{Checkouts: 1, Birthday: "11-30"}, map[string]int64{"budget": 100}, "+50 base, +50 Birthday month"},
		{"not the birthday month", nil, Member{Checkouts: 1, Birthday: "12-01"}, map[string]int64{"budget": 100}, "+50 base"},
		{"budget untouched", nil, Member{Checkouts: 1}, nil, "+50 base, +80 Launch budget"},
		{"budget cut to what is left", nil, Member{Checkouts: 1}, map[string]int64{"budget": 70}, "+50 base, +30 Launch budget"},
		{"a refunded item does not count", []Item{{SKU: "OAT-1L", Amount: 0}, {SKU: "X", Amount: 5000}}, Member{Checkouts: 1}, map[string]int64{"budget": 100}, "+50 base"},
	}
	for _, tt := range tests {
		tt.m.ID, tt.m.Tier = "m", "bronze"
		r := d.EvaluateEarn(Checkout{Ref: "c-1", Amount: 5000, Items: tt.items, Time: at, CampaignUsed: tt.used}, tt.m, 100)
		if got := lineText(r); got != tt.lines {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.lines)
		}
	}
	r := d.EvaluateEarn(Checkout{Ref: "c-1", Amount: 5000, Items: dairy, Time: at}, Member{ID: "m", Tier: "bronze"}, 100)
	if want := map[string]int64{"dairy": 30, "first": 200, "budget": 80}; !reflect.DeepEqual(r.Campaigns, want) {
		t.Errorf("campaign awards %v, want %v", r.Campaigns, want)
	}
}

func TestWelcomeBackAndSurprise(t *testing.T) {
	d := Default()
	d.Campaigns = nil
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for days, want := range map[int]string{59: "+50 base", 60: "+50 base, +25 welcome back", 400: "+50 base, +25 welcome back"} {
		r := d.EvaluateEarn(Checkout{Ref: "c-1", Amount: 5000, Time: at}, Member{Tier: "bronze", LastVisit: at.AddDate(0, 0, -days)}, 100)
		if got := lineText(r); got != want || r.WelcomeBack != (days >= 60) {
			t.Errorf("%d days away: %q, want %q", days, got, want)
		}
	}
	if r := d.EvaluateEarn(Checkout{Ref: "c-1", Amount: 5000, Time: at}, Member{Tier: "bronze"}, 100); r.WelcomeBack {
		t.Error("a first purchase is a welcome back")
	}
	// The draw is keyed: the same sequence draws differently under another
	// key, the ref plays no part, and the values are fixed for all time.
	key := bytes.Repeat([]byte{7}, DrawKeySize)
	if got := Draw(key, "ep1", 1); got < 0 || got >= 10000 || got != Draw(key, "ep1", 1) {
		t.Errorf("Draw = %d", got)
	}
	if Draw(key, "ep1", 1) == Draw(bytes.Repeat([]byte{8}, DrawKeySize), "ep1", 1) && Draw(key, "ep1", 2) == Draw(bytes.Repeat([]byte{8}, DrawKeySize), "ep1", 2) {
		t.Error("the key does not change the draw")
	}
	var win, lose int64 = -1, -1
	for seq := uint64(1); win < 0 || lose < 0; seq++ {
		if v := Draw(key, "ep1", seq); v < d.Surprise.ProbabilityBP {
			win = v
		} else {
			lose = v
		}
	}
	for _, tt := range []struct {
		draw   int64
		amount int64
		used   int64
		want   string
	}{
		{win, 5000, 0, "+50 base, +100 surprise"},
		{-1, 5000, 0, "+50 base"},                  // no draw (a quote)
		{win, 5000, 450, "+50 base, +50 surprise"}, // cut to the day's budget
		{win, 5000, 500, "+50 base"},
		{win, 999, 0, "+9 base"}, // under the minimum spend
		{lose, 5000, 0, "+50 base"},
	} {
		r := d.EvaluateEarn(Checkout{Ref: "c-1", Amount: tt.amount, Time: at, SurpriseUsed: tt.used, Draw: tt.draw, Drawn: tt.draw >= 0}, Member{Tier: "bronze"}, 100)
		if got := lineText(r); got != tt.want {
			t.Errorf("surprise draw %d used %d: %q, want %q", tt.draw, tt.used, got, tt.want)
		}
	}
}

// TestGoldenLines is the full explanation of one checkout that everything
// applies to, as the screen and receipt print it.
func TestGoldenLines(t *testing.T) {
	d := Default()
	d.Surprise.ProbabilityBP = bpOne // everyone wins
	d.Campaigns = append(d.Campaigns, Campaign{ID: "bday", Name: "Birthday bonus", BirthdayMonth: true, Bonus: 50, Stackable: true})
	tue := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	r := d.EvaluateEarn(Checkout{Ref: "golden", Amount: 12050, Time: tue, Drawn: true},
		Member{ID: "m", Tier: "gold", Checkouts: 9, Birthday: "11-02", LastVisit: tue.AddDate(0, -3, 0)}, 100)
	want := "+120 base, +60 Gold x1.5, +50 Birthday bonus, +120 Double Points Tuesday, +25 welcome back, +100 surprise"
	if got := lineText(r); got != want || r.Points != 475 {
		t.Errorf("golden lines:\n %q (%d points)\nwant\n %q (475)", got, r.Points, want)
	}
}

// TestEvaluateProperties: over random documents, members and baskets,
// evaluation is deterministic, never negative, and its lines add up.
func TestEvaluateProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cats := []string{"dairy", "gift_card", "tobacco", "bakery", ""}
	for i := range 2000 {
		d := Default()
		d.Campaigns = nil
		for j := range rng.IntN(6) {
			c := Campaign{ID: fmt.Sprint(j), Name: fmt.Sprint("C", j), Stackable: rng.IntN(2) == 0, MinSpend: rng.Int64N(5000),
				Budget: rng.Int64N(300), FirstPurchase: rng.IntN(4) == 0, BirthdayMonth: rng.IntN(4) == 0}
			if rng.IntN(2) == 0 {
				c.Bonus = 1 + rng.Int64N(100)
			} else {
				c.MultiplierBP = bpOne + 1 + rng.Int64N(30000)
			}
			if rng.IntN(3) == 0 {
				c.Categories = []string{cats[rng.IntN(len(cats)-1)]}
			}
			d.Campaigns = append(d.Campaigns, c)
		}
		if err := d.Validate(); err != nil {
			t.Fatal(err)
		}
		var items []Item
		var amount int64
		for range rng.IntN(8) {
			it := Item{SKU: fmt.Sprint("S", rng.IntN(5)), Category: cats[rng.IntN(len(cats))], Quantity: 1, Amount: rng.Int64N(20000)}
			items = append(items, it)
			amount += it.Amount
		}
		if len(items) == 0 {
			amount = rng.Int64N(1_000_000)
		}
		at := time.Date(2026, time.Month(1+rng.IntN(12)), 1+rng.IntN(28), rng.IntN(24), 0, 0, 0, time.UTC)
		ck := Checkout{Ref: fmt.Sprint("R", i), Amount: amount, Items: items, Time: at, SurpriseUsed: rng.Int64N(600),
			CampaignUsed: map[string]int64{"0": rng.Int64N(400)}}
		m := Member{ID: "m", Tier: d.TierIDs()[rng.IntN(4)], Checkouts: rng.Int64N(3), Birthday: fmt.Sprintf("%02d-01", 1+rng.IntN(12)),
			LastVisit: at.AddDate(0, 0, -rng.IntN(200))}
		r1, r2 := d.EvaluateEarn(ck, m, 100), d.EvaluateEarn(ck, m, 100)
		if !reflect.DeepEqual(r1, r2) {
			t.Fatalf("not deterministic: %+v vs %+v", r1, r2)
		}
		var sum int64
		for _, l := range r1.Lines {
			if l.Points < 0 {
				t.Fatalf("negative line %v", l)
			}
			sum += l.Points
		}
		if sum != r1.Points || r1.Points < 0 || r1.Eligible > amount {
			t.Fatalf("lines sum %d, points %d, eligible %d of %d", sum, r1.Points, r1.Eligible, amount)
		}
		for id, p := range r1.Campaigns {
			c := d.Campaigns[0]
			if id == "0" && c.Budget > 0 && p > c.Budget-ck.CampaignUsed["0"] {
				t.Fatalf("campaign 0 gave %d over its budget", p)
			}
		}
		if r1.Surprise > d.Surprise.DailyBudget-ck.SurpriseUsed && r1.Surprise > 0 {
			t.Fatalf("surprise %d over the day's budget", r1.Surprise)
		}
	}
}

func TestLots(t *testing.T) {
	l := Lots{}
	l.Add("2025-10", 100)
	l.Add("2025-12", 50)
	l.Add("2025-11", 70)
	l.Add("2025-11", -5) // ignored
	l.Take(120)          // oldest first
	if !reflect.DeepEqual(l, Lots{"2025-11": 50, "2025-12": 50}) {
		t.Fatalf("after take: %v", l)
	}
	l.Take(1000)
	if len(l) != 0 {
		t.Fatalf("after taking more than all: %v", l)
	}
	l = Lots{"2025-10": 100, "2026-01": 100}
	l.Fit(150, "2026-11")
	if !reflect.DeepEqual(l, Lots{"2025-10": 50, "2026-01": 100}) {
		t.Fatalf("fit down: %v", l)
	}
	l.Fit(200, "2026-11")
	if !reflect.DeepEqual(l, Lots{"2025-10": 50, "2026-01": 100, "2026-11": 50}) {
		t.Fatalf("fit up: %v", l)
	}
}

func TestExpiries(t *testing.T) {
	d := Default() // earned, 12 months
	loc := time.FixedZone("store", 3600)
	lots := Lots{"2025-10": 100, "2025-11": 30, "2025-12": 20}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, loc)
	got := d.Expiries("M1", lots, 150, time.Time{}, now)
	if len(got) != 1 || got[0].Ref != "expire:M1:2025-10" || got[0].Points != 100 || !got[0].On.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, loc)) {
		t.Fatalf("due now: %+v", got)
	}
	// In the next 30 days November's lot comes due too (on 1 December).
	if soon := d.Expiries("M1", lots, 150, time.Time{}, now.AddDate(0, 0, 30)); len(soon) != 2 || soon[1].Points != 30 {
		t.Fatalf("next 30 days: %+v", soon)
	}
	// A balance below the lots (spent elsewhere, not yet fitted) caps them.
	if capped := d.Expiries("M1", lots, 40, time.Time{}, now); capped[0].Points != 40 {
		t.Fatalf("capped: %+v", capped)
	}
	d.Expiry = &Expiry{Policy: ExpireInactive, Months: 18}
	last := time.Date(2025, 5, 20, 15, 0, 0, 0, loc)
	got = d.Expiries("M1", lots, 150, last, now)
	if len(got) != 1 || got[0].Ref != "expire:M1:idle:2025-05-20" || got[0].Points != 150 {
		t.Fatalf("inactive: %+v", got)
	}
	if got := d.Expiries("M1", lots, 150, last.AddDate(0, 1, 0), now); got != nil {
		t.Fatalf("active member expires: %+v", got)
	}
	if got := d.Expiries("M1", lots, 0, last, now); got != nil {
		t.Fatalf("nothing to expire expires: %+v", got)
	}
}

func TestRollingSpendAndReview(t *testing.T) {
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	months := map[string]int64{"2025-11": 1000, "2025-12": 10, "2026-11": 5, "2027-01": 7}
	if got := RollingSpend(months, now); got != 15 {
		t.Errorf("rolling spend %d, want 15 (December 2025 to November 2026)", got)
	}
	d := Default()
	for at, want := range map[string]string{"2026-11-25": "2026-01-01", "2027-01-01": "2027-01-01", "2026-12-31": "2026-01-01"} {
		now, _ := time.Parse(time.DateOnly, at)
		if got, ok := d.ReviewDay(now); !ok || got != want {
			t.Errorf("ReviewDay(%s) = %s, want %s", at, got, want)
		}
	}
	for spend, want := range map[int64]string{0: "bronze", 49999: "bronze", 150000: "gold", 10_000_000: "platinum"} {
		if got := d.Qualify(spend); got.ID != want {
			t.Errorf("Qualify(%d) = %s, want %s", spend, got.ID, want)
		}
	}
	if r := (Reward{From: "2026-12-01", To: "2026-12-24"}); r.Available("2026-11-30") || !r.Available("2026-12-24") || r.Available("2026-12-25") {
		t.Error("reward validity window")
	}
}

// BenchmarkEvaluate50Items20Campaigns is the target: a 50-item basket
// against 20 active campaigns, under 50 µs per checkout.
func BenchmarkEvaluate50Items20Campaigns(b *testing.B) {
	d := Default()
	d.Campaigns = nil
	for i := range 20 {
		c := Campaign{ID: fmt.Sprint("c", i), Name: fmt.Sprint("Campaign ", i), From: "2026-01-01", To: "2026-12-31",
			Weekdays: []string{"mon", "tue", "wed", "thu", "fri"}, HourFrom: 8, HourTo: 22, MinSpend: 1000, Stackable: i%2 == 0,
			Tiers: []string{"silver", "gold", "platinum"}, Categories: []string{fmt.Sprint("cat", i%7)}, Budget: 1_000_000}
		if i%3 == 0 {
			c.Bonus = 10
		} else {
			c.MultiplierBP = 15000
		}
		d.Campaigns = append(d.Campaigns, c)
	}
	if err := d.Validate(); err != nil {
		b.Fatal(err)
	}
	items := make([]Item, 50)
	var amount int64
	for i := range items {
		items[i] = Item{SKU: fmt.Sprint("SKU-", i), Category: fmt.Sprint("cat", i%9), Quantity: 1, Amount: int64(100 + i*37)}
		amount += items[i].Amount
	}
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	m := Member{ID: "m", Tier: "gold", Checkouts: 5, Birthday: "11-02", LastVisit: at.AddDate(0, 0, -90)}
	used := map[string]int64{"c0": 10}
	var n int
	for i := 0; b.Loop(); i++ {
		r := d.EvaluateEarn(Checkout{Ref: "R-" + fmt.Sprint(i), Amount: amount, Items: items, Time: at, CampaignUsed: used}, m, 100)
		n = len(r.Campaigns)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/50_000, "of-50µs-target")
	// All 20 are active: the 10 stackable ones apply, and the best of the others.
	if n != 11 {
		b.Fatalf("%d campaigns applied, want 11", n)
	}
}
