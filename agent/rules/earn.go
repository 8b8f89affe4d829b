package rules

import (
	"fmt"
	"time"
)

// Item is one line of a basket, as pushed by the POS.
type Item struct {
	SKU      string `json:"sku"`
	Category string `json:"category,omitempty"`
	Quantity int64  `json:"qty"`
	Amount   int64  `json:"amount"` // minor units for the whole line
}

// Member is what the rules need to know about the member at checkout.
type Member struct {
	ID   string
	Tier string
}

// Checkout is one purchase to evaluate.
type Checkout struct {
	Ref    string    // the checkout's idempotency key; seeds deterministic draws
	Amount int64     // minor units, the total paid
	Items  []Item    // optional basket; without it the whole amount is eligible
	Time   time.Time // the checkout's time in the store's time zone (campaign days and hours)
	Store  string
}

// Line is one line of an earn's explanation.
type Line struct {
	Label  string `json:"label"`
	Points int64  `json:"points"`
}

// EarnResult is the points a checkout earns and why.
type EarnResult struct {
	Points   int64  `json:"points"`
	Eligible int64  `json:"eligible"` // minor units that earn points
	Lines    []Line `json:"lines"`
}

// Eligible returns the part of the checkout that earns points: the whole amount
// without a basket, otherwise the sum of items outside excluded categories,
// capped at the amount paid.
func (d *Document) Eligible(c Checkout) int64 {
	if len(c.Items) == 0 {
		return c.Amount
	}
	excluded := make(map[string]bool, len(d.Earn.ExcludedCategories))
	for _, cat := range d.Earn.ExcludedCategories {
		excluded[cat] = true
	}
	var sum int64
	for _, it := range c.Items {
		if !excluded[it.Category] && it.Amount > 0 {
			sum += it.Amount
		}
	}
	return min(sum, c.Amount)
}

// EvaluateEarn returns the points the checkout earns for the member. minorPerUnit
// is 10^exponent of the currency (100 for EUR).
func (d *Document) EvaluateEarn(c Checkout, m Member, minorPerUnit int64) EarnResult {
	eligible := d.Eligible(c)
	base := eligible / minorPerUnit * d.Earn.PointsPerUnit
	res := EarnResult{Points: base, Eligible: eligible}
	res.Lines = append(res.Lines, Line{Label: "base", Points: base})
	if t := d.Tier(m.Tier); t.MultiplierBP > bpOne {
		// The tier's share above x1, rounded down: Gold x1.5 on 120 base
		// points is "+60 Gold x1.5".
		extra := t.MultiplierBP - bpOne
		bonus := base/bpOne*extra + base%bpOne*extra/bpOne // no overflow for any base
		if bonus > 0 {
			res.Points += bonus
			res.Lines = append(res.Lines, Line{Label: t.Name + " " + multiplierLabel(t.MultiplierBP), Points: bonus})
		}
	}
	for _, l := range d.campaignLines(c.Time, m.Tier, eligible, base) {
		res.Points += l.Points
		res.Lines = append(res.Lines, l)
	}
	return res
}

// String renders a line the way the screen and receipt show it: "+120 base".
func (l Line) String() string { return fmt.Sprintf("%+d %s", l.Points, l.Label) }
