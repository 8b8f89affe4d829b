package rules

import (
	"fmt"
	"strings"
	"time"
)

// Campaign is a time-limited or conditional bonus on earning.
type Campaign struct {
	ID    string `json:"id"`
	Name  string `json:"name"`            // shown on the explanation line: "+50 Double Points Tuesday"
	Names Names  `json:"names,omitempty"` // the name in other languages
	// When: all given parts must hold; an empty part always holds.
	From     string   `json:"from,omitempty"`     // first day, YYYY-MM-DD (store time)
	To       string   `json:"to,omitempty"`       // last day, YYYY-MM-DD
	Weekdays []string `json:"weekdays,omitempty"` // "mon" … "sun"
	HourFrom int      `json:"hour_from,omitempty"`
	HourTo   int      `json:"hour_to,omitempty"` // exclusive; 0 with HourFrom 0 means all day
	// Who and what: every given condition must hold.
	Tiers         []string `json:"tiers,omitempty"`          // member tiers it applies to; empty for all
	Categories    []string `json:"categories,omitempty"`     // the basket has an item of one of them
	SKUs          []string `json:"skus,omitempty"`           // the basket has one of these items
	MinSpend      int64    `json:"min_spend,omitempty"`      // minor units of eligible amount
	FirstPurchase bool     `json:"first_purchase,omitempty"` // the member's first purchase
	BirthdayMonth bool     `json:"birthday_month,omitempty"` // in the month of the member's birthday
	// Effect: a multiplier on base points (basis points, 20000 = double) or a
	// fixed bonus.
	MultiplierBP int64 `json:"multiplier_bp,omitempty"`
	Bonus        int64 `json:"bonus,omitempty"`
	// Stackable campaigns all apply; of the others only the largest.
	Stackable bool `json:"stackable,omitempty"`
	// Budget caps the points the campaign awards in all (0: no cap). Each
	// terminal counts what it has awarded, so that a budget holds offline;
	// the award that reaches it is cut to what is left.
	Budget int64 `json:"budget,omitempty"`
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

func (d *Document) validateCampaigns(p *problems) {
	seen := map[string]bool{}
	for i, c := range d.Campaigns {
		path := fmt.Sprintf("campaigns[%d]", i)
		p.uniqueID(path, c.ID, seen)
		c.Names.check(p, path+".names")
		if c.Name == "" {
			p.addf("%s.name: required (it is the explanation line)", path)
		}
		switch {
		case (c.MultiplierBP == 0) == (c.Bonus == 0):
			p.addf("%s: give multiplier_bp or bonus, one of them", path)
		case c.MultiplierBP != 0 && (c.MultiplierBP <= bpOne || c.MultiplierBP > maxMultiplierBP):
			p.addf("%s.multiplier_bp: between %d and %d", path, bpOne+1, maxMultiplierBP)
		case c.Bonus < 0 || c.Bonus > maxBonus:
			p.addf("%s.bonus: between 1 and %d", path, maxBonus)
		}
		if c.MinSpend < 0 {
			p.addf("%s.min_spend: must not be negative", path)
		}
		if c.Budget < 0 || c.Budget > maxBonus {
			p.addf("%s.budget: between 0 (none) and %d", path, maxBonus)
		}
		if c.HourFrom < 0 || c.HourFrom > 23 || c.HourTo < 0 || c.HourTo > 24 || (c.HourTo != 0 && c.HourTo <= c.HourFrom) {
			p.addf("%s: hours run from hour_from (0-23) to hour_to (after it, up to 24)", path)
		}
		checkDates(p, path, c.From, c.To)
		for j, w := range c.Weekdays {
			if _, ok := weekdays[w]; !ok {
				p.addf("%s.weekdays[%d]: %q is not mon, tue, wed, thu, fri, sat or sun", path, j, w)
			}
		}
		for j, t := range c.Tiers {
			if !d.hasTier(t) {
				p.addf("%s.tiers[%d]: unknown tier %q", path, j, t)
			}
		}
		for j, v := range c.Categories {
			if v == "" {
				p.addf("%s.categories[%d]: empty", path, j)
			}
		}
		for j, v := range c.SKUs {
			if v == "" {
				p.addf("%s.skus[%d]: empty", path, j)
			}
		}
	}
}

// active reports whether the campaign applies to checkout c by member m with
// the eligible spend.
func (c *Campaign) active(ck *Checkout, m *Member, eligible int64) bool {
	t := ck.Time
	if c.From != "" || c.To != "" {
		day := t.Format(time.DateOnly)
		if (c.From != "" && day < c.From) || (c.To != "" && day > c.To) {
			return false
		}
	}
	if len(c.Weekdays) > 0 {
		ok := false
		for _, w := range c.Weekdays {
			ok = ok || weekdays[w] == t.Weekday()
		}
		if !ok {
			return false
		}
	}
	switch {
	case c.HourTo != 0 && (t.Hour() < c.HourFrom || t.Hour() >= c.HourTo),
		len(c.Tiers) > 0 && !contains(c.Tiers, m.Tier),
		eligible < c.MinSpend,
		c.FirstPurchase && m.Checkouts > 0,
		c.BirthdayMonth && !m.birthdayMonth(t),
		len(c.Categories) > 0 && !basketHas(ck.Items, c.Categories, func(it *Item) string { return it.Category }),
		len(c.SKUs) > 0 && !basketHas(ck.Items, c.SKUs, func(it *Item) string { return it.SKU }):
		return false
	}
	return true
}

// basketHas reports whether an item of the basket with a positive amount has
// one of the values.
func basketHas(items []Item, values []string, field func(*Item) string) bool {
	for i := range items {
		if items[i].Amount > 0 && contains(values, field(&items[i])) {
			return true
		}
	}
	return false
}

// points is what the campaign adds to base points, within what is left of its
// budget.
func (c *Campaign) points(base, used int64) int64 {
	p := c.Bonus
	if c.MultiplierBP != 0 {
		p = bpShare(base, c.MultiplierBP-bpOne)
	}
	if c.Budget > 0 {
		p = min(p, c.Budget-used)
	}
	return p
}

// bpShare is floor(n × bp / 10000) without overflow for any n.
func bpShare(n, bp int64) int64 { return n/bpOne*bp + n%bpOne*bp/bpOne }

// campaignAward is a campaign's line and the campaign it came from.
type campaignAward struct {
	id   string
	line Line
}

// campaigns evaluates the campaigns: every stackable one that applies, and of
// the others the one adding most (the first on a tie).
func (d *Document) campaigns(ck *Checkout, m *Member, eligible, base int64) []campaignAward {
	var out []campaignAward
	best := -1
	var bestPoints int64
	for i := range d.Campaigns {
		c := &d.Campaigns[i]
		if !c.active(ck, m, eligible) {
			continue
		}
		p := c.points(base, ck.CampaignUsed[c.ID])
		if p <= 0 {
			continue
		}
		if c.Stackable {
			out = append(out, campaignAward{c.ID, Line{Label: c.Name, Points: p}})
		} else if best < 0 || p > bestPoints {
			best, bestPoints = i, p
		}
	}
	if best >= 0 {
		c := &d.Campaigns[best]
		out = append(out, campaignAward{c.ID, Line{Label: c.Name, Points: bestPoints}})
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
