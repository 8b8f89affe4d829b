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
	ID        string
	Tier      string
	Checkouts int64     // purchases before this one: 0 makes it the first
	Birthday  string    // "MM-DD", or "" when not given
	LastVisit time.Time // the last purchase before this one; zero for none
}

// birthdayMonth reports whether t is in the month of the member's birthday.
func (m *Member) birthdayMonth(t time.Time) bool {
	return len(m.Birthday) == 5 && m.Birthday[:2] == t.Format("01")
}

// Checkout is one purchase to evaluate.
type Checkout struct {
	Ref    string    // the checkout's idempotency key
	Amount int64     // minor units, the total paid
	Items  []Item    // optional basket; without it the whole amount is eligible
	Time   time.Time // the checkout's time in the store's time zone (campaign days and hours)
	Store  string
	// What budgets have already given: points per campaign id, and surprise
	// points in the store today.
	CampaignUsed map[string]int64
	SurpriseUsed int64
	// The checkout's surprise draw (Draw), when it has one (Drawn): a quote
	// has none, since the draw of a checkout is known only as it is made.
	Draw  int64
	Drawn bool
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
	// What the checkout takes from budgets and counts as, for the caller to
	// record: points per campaign, surprise points, a welcome back.
	Campaigns   map[string]int64 `json:"campaigns,omitempty"`
	Surprise    int64            `json:"surprise,omitempty"`
	WelcomeBack bool             `json:"welcome_back,omitempty"`
}

// Eligible returns the part of the checkout that earns points: the whole amount
// without a basket, otherwise the sum of items outside excluded categories,
// capped at the amount paid.
func (d *Document) Eligible(c *Checkout) int64 {
	if len(c.Items) == 0 {
		return c.Amount
	}
	var sum int64
	for i := range c.Items {
		it := &c.Items[i]
		if it.Amount > 0 && !contains(d.Earn.ExcludedCategories, it.Category) {
			sum += it.Amount
		}
	}
	return min(sum, c.Amount)
}

// EvaluateEarn returns the points the checkout earns for the member: base
// points, the tier's bonus, campaigns, welcome back and the surprise draw, in
// that order, each with its line. minorPerUnit is 10^exponent of the
// currency (100 for EUR). It is a pure function of its arguments.
func (d *Document) EvaluateEarn(c Checkout, m Member, minorPerUnit int64) EarnResult {
	eligible := d.Eligible(&c)
	base := eligible / minorPerUnit * d.Earn.PointsPerUnit
	res := EarnResult{Points: base, Eligible: eligible, Lines: make([]Line, 1, 4)}
	res.Lines[0] = Line{Label: "base", Points: base}
	add := func(l Line) {
		res.Points += l.Points
		res.Lines = append(res.Lines, l)
	}
	if t := d.Tier(m.Tier); t.MultiplierBP > bpOne {
		// The tier's share above x1, rounded down: Gold x1.5 on 120 base
		// points is "+60 Gold x1.5".
		if bonus := bpShare(base, t.MultiplierBP-bpOne); bonus > 0 {
			add(Line{Label: t.Name + " " + multiplierLabel(t.MultiplierBP), Points: bonus})
		}
	}
	for _, a := range d.campaigns(&c, &m, eligible, base) {
		if res.Campaigns == nil {
			res.Campaigns = map[string]int64{}
		}
		res.Campaigns[a.id] += a.line.Points
		add(a.line)
	}
	if d.WelcomeBackDue(m.LastVisit, c.Time) {
		res.WelcomeBack = true
		add(Line{Label: "welcome back", Points: d.WelcomeBack.Bonus})
	}
	if s := d.Surprise; s != nil && eligible > 0 && eligible >= s.MinSpend && c.Drawn && c.Draw < s.ProbabilityBP {
		if p := min(s.Bonus, s.DailyBudget-c.SurpriseUsed); p > 0 {
			res.Surprise = p
			add(Line{Label: "surprise", Points: p})
		}
	}
	return res
}

// String renders a line the way the screen and receipt show it: "+120 base".
func (l Line) String() string { return fmt.Sprintf("%+d %s", l.Points, l.Label) }
