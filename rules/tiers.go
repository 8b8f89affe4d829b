package rules

import (
	"fmt"
	"strconv"
	"strings"
)

// Tier is a level of the program, qualified by rolling 12-month spend.
type Tier struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Names are the name in other languages, by code: {"tr": "Gümüş"}.
	Names Names `json:"names,omitempty"`
	// MinSpend is the qualifying spend over the last 12 months, minor units.
	MinSpend int64 `json:"min_spend"`
	// MultiplierBP multiplies base points, in basis points (15000 = x1.5).
	MultiplierBP int64 `json:"multiplier_bp"`
}

// bpOne is a multiplier of 1 in basis points.
const bpOne = 10_000

// maxMultiplierBP bounds a tier multiplier (x10), so that points arithmetic on
// the largest amount cannot overflow.
const maxMultiplierBP = 100_000

func (d *Document) validateTiers(p *problems) {
	if len(d.Tiers) == 0 {
		p.addf("tiers: at least one tier is required")
		return
	}
	seen := map[string]bool{}
	for i, t := range d.Tiers {
		t.Names.check(p, fmt.Sprintf("tiers[%d].names", i))
		switch {
		case t.ID == "" || t.Name == "":
			p.addf("tiers[%d]: needs an id and a name", i)
		case seen[t.ID]:
			p.addf("tiers[%d].id: %q is used twice", i, t.ID)
		}
		switch {
		case i == 0 && t.MinSpend != 0:
			p.addf("tiers[0].min_spend: the first tier starts at 0")
		case i > 0 && t.MinSpend <= d.Tiers[i-1].MinSpend:
			p.addf("tiers[%d].min_spend: must be above the tier before", i)
		}
		if t.MultiplierBP < bpOne || t.MultiplierBP > maxMultiplierBP {
			p.addf("tiers[%d].multiplier_bp: between %d (x1) and %d (x10)", i, bpOne, maxMultiplierBP)
		}
		seen[t.ID] = true
	}
}

func (d *Document) hasTier(id string) bool {
	for _, t := range d.Tiers {
		if t.ID == id {
			return true
		}
	}
	return false
}

// StartTier is the tier a new member starts in.
func (d *Document) StartTier() string { return d.Tiers[0].ID }

// TierIDs lists the tiers, lowest first.
func (d *Document) TierIDs() []string {
	ids := make([]string, len(d.Tiers))
	for i, t := range d.Tiers {
		ids[i] = t.ID
	}
	return ids
}

// rank is a tier's place on the ladder (0 lowest); an unknown tier ranks
// lowest.
func (d *Document) rank(id string) int {
	for i, t := range d.Tiers {
		if t.ID == id {
			return i
		}
	}
	return 0
}

// Tier returns the tier with the given id; an unknown id is the start tier.
func (d *Document) Tier(id string) Tier { return d.Tiers[d.rank(id)] }

// TierAllows reports whether a member of tier may take a reward that
// requires tier required ("" requires nothing).
func (d *Document) TierAllows(tier, required string) bool {
	return required == "" || d.rank(tier) >= d.rank(required)
}

// Upgrade returns the tier a member of tier current qualifies for with the
// given rolling spend, when it is higher. Tiers go up at once; going down
// happens only at head office's review, never at the till.
func (d *Document) Upgrade(current string, spend12m int64) (Tier, bool) {
	best := d.rank(current)
	for i := best + 1; i < len(d.Tiers); i++ {
		if spend12m >= d.Tiers[i].MinSpend {
			best = i
		}
	}
	if best == d.rank(current) {
		return Tier{}, false
	}
	return d.Tiers[best], true
}

// NextTier returns the tier above current and the spend still needed to
// reach it; ok is false at the top.
func (d *Document) NextTier(current string, spend12m int64) (next Tier, toGo int64, ok bool) {
	r := d.rank(current)
	if r+1 >= len(d.Tiers) {
		return Tier{}, 0, false
	}
	next = d.Tiers[r+1]
	return next, max(0, next.MinSpend-spend12m), true
}

// multiplierLabel writes a multiplier in basis points as "x1.5".
func multiplierLabel(bp int64) string {
	s := strconv.FormatInt(bp/bpOne, 10)
	if frac := bp % bpOne; frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%04d", frac), "0")
	}
	return "x" + s
}

// Rank is a tier's place on the ladder, 0 the lowest.
func (d *Document) Rank(id string) int { return d.rank(id) }
