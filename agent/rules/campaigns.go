package rules

import (
	"fmt"
	"strings"
	"time"
)

// Campaign is a time-limited or conditional bonus on earning.
type Campaign struct {
	ID   string `json:"id"`
	Name string `json:"name"` // shown on the explanation line: "+50 Double Points Tuesday"
	// When: all given parts must hold; an empty part always holds.
	From     string   `json:"from,omitempty"`     // first day, YYYY-MM-DD (store time)
	To       string   `json:"to,omitempty"`       // last day, YYYY-MM-DD
	Weekdays []string `json:"weekdays,omitempty"` // "mon" … "sun"
	HourFrom int      `json:"hour_from,omitempty"`
	HourTo   int      `json:"hour_to,omitempty"` // exclusive; 0 with HourFrom 0 means all day
	// Who and what.
	Tiers    []string `json:"tiers,omitempty"`     // member tiers it applies to; empty for all
	MinSpend int64    `json:"min_spend,omitempty"` // minor units of eligible amount
	// Effect: a multiplier on base points (basis points, 20000 = double) or a
	// fixed bonus.
	MultiplierBP int64 `json:"multiplier_bp,omitempty"`
	Bonus        int64 `json:"bonus,omitempty"`
	// Stackable campaigns all apply; of the others only the largest.
	Stackable bool `json:"stackable,omitempty"`
}

// maxCampaignBonus bounds a fixed bonus.
const maxCampaignBonus = 1_000_000

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

func (d *Document) validateCampaigns() error {
	seen := map[string]bool{}
	for i, c := range d.Campaigns {
		path := fmt.Sprintf("rules: campaigns[%d]", i)
		switch {
		case c.ID == "" || c.Name == "":
			return fmt.Errorf("%s: needs an id and a name", path)
		case seen[c.ID]:
			return fmt.Errorf("%s.id: %q is used twice", path, c.ID)
		case (c.MultiplierBP == 0) == (c.Bonus == 0):
			return fmt.Errorf("%s: give multiplier_bp or bonus, one of them", path)
		case c.MultiplierBP != 0 && (c.MultiplierBP <= bpOne || c.MultiplierBP > maxMultiplierBP):
			return fmt.Errorf("%s.multiplier_bp: between %d and %d", path, bpOne+1, maxMultiplierBP)
		case c.Bonus < 0 || c.Bonus > maxCampaignBonus:
			return fmt.Errorf("%s.bonus: between 1 and %d", path, maxCampaignBonus)
		case c.MinSpend < 0:
			return fmt.Errorf("%s.min_spend: must not be negative", path)
		case c.HourFrom < 0 || c.HourFrom > 23 || c.HourTo < 0 || c.HourTo > 24 || (c.HourTo != 0 && c.HourTo <= c.HourFrom):
			return fmt.Errorf("%s: hours run from hour_from (0-23) to hour_to (after it, up to 24)", path)
		}
		for _, f := range []struct{ name, v string }{{"from", c.From}, {"to", c.To}} {
			if f.v != "" {
				if _, err := time.Parse(time.DateOnly, f.v); err != nil {
					return fmt.Errorf("%s.%s: not a date like 2026-11-24", path, f.name)
				}
			}
		}
		for j, w := range c.Weekdays {
			if _, ok := weekdays[w]; !ok {
				return fmt.Errorf("%s.weekdays[%d]: %q is not mon, tue, wed, thu, fri, sat or sun", path, j, w)
			}
		}
		for j, t := range c.Tiers {
			if !d.hasTier(t) {
				return fmt.Errorf("%s.tiers[%d]: unknown tier %q", path, j, t)
			}
		}
		seen[c.ID] = true
	}
	return nil
}

// active reports whether the campaign applies to a checkout at t (the
// store's local time) by a member of tier with eligible spend.
func (c Campaign) active(t time.Time, tier string, eligible int64) bool {
	day := t.Format(time.DateOnly)
	if (c.From != "" && day < c.From) || (c.To != "" && day > c.To) {
		return false
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
	if c.HourTo != 0 && (t.Hour() < c.HourFrom || t.Hour() >= c.HourTo) {
		return false
	}
	if len(c.Tiers) > 0 && !contains(c.Tiers, tier) {
		return false
	}
	return eligible >= c.MinSpend
}

// points is what the campaign adds to base points.
func (c Campaign) points(base int64) int64 {
	if c.Bonus != 0 {
		return c.Bonus
	}
	extra := c.MultiplierBP - bpOne
	return base/bpOne*extra + base%bpOne*extra/bpOne
}

// campaignLines evaluates the campaigns: every stackable one that applies,
// and of the others the one adding most (the first on a tie).
func (d *Document) campaignLines(t time.Time, tier string, eligible, base int64) []Line {
	var lines []Line
	var best *Line
	for _, c := range d.Campaigns {
		if !c.active(t, tier, eligible) {
			continue
		}
		l := Line{Label: c.Name, Points: c.points(base)}
		if l.Points <= 0 {
			continue
		}
		if c.Stackable {
			lines = append(lines, l)
		} else if best == nil || l.Points > best.Points {
			best = &l
		}
	}
	if best != nil {
		lines = append(lines, *best)
	}
	return lines
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
