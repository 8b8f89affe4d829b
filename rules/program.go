package rules

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sort"
	"time"
)

// Surprise is surprise and delight: each eligible checkout has a chance of a
// bonus, drawn deterministically from its ref so that head office can verify
// every draw, within a daily budget per store.
type Surprise struct {
	ProbabilityBP int64 `json:"probability_bp"` // chance per checkout in basis points (100 = 1%)
	Bonus         int64 `json:"bonus"`
	DailyBudget   int64 `json:"daily_budget"` // points a store gives a day
	MinSpend      int64 `json:"min_spend,omitempty"`
}

// DrawKeySize is the size of a terminal's draw key.
const DrawKeySize = 32

// Draw is a checkout's surprise draw, 0 to 9999: the first 8 bytes of
// HMAC-SHA256, keyed with the terminal's draw key, of the epoch and the
// sequence of the checkout's earn event, big-endian, modulo 10000. A
// checkout wins when its draw is below probability_bp. Nobody at the till
// chooses what it draws from (the sequence is the ledger's next, the key
// head office's), and head office, which derives every terminal's key,
// recomputes every draw (headoffice audit surprise).
func Draw(key []byte, epoch string, seq uint64) int64 {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(epoch))
	m.Write([]byte{0})
	m.Write(binary.BigEndian.AppendUint64(nil, seq))
	return int64(binary.BigEndian.Uint64(m.Sum(nil)[:8]) % bpOne)
}

// WelcomeBack rewards a member whose last purchase was at least AfterDays
// days before this one.
type WelcomeBack struct {
	AfterDays int   `json:"after_days"`
	Bonus     int64 `json:"bonus"`
}

// WelcomeBackDue reports whether a purchase at now by a member last seen at
// lastVisit (zero for never) earns the welcome-back bonus.
func (d *Document) WelcomeBackDue(lastVisit, now time.Time) bool {
	w := d.WelcomeBack
	return w != nil && !lastVisit.IsZero() && !now.Before(lastVisit.AddDate(0, 0, w.AfterDays))
}

// Expiry policies.
const (
	// ExpireEarned: the points earned in a month expire at the end of the
	// month Months later (earned in November 2026, with 12, expire when
	// December 2027 begins). Burns spend the oldest points first.
	ExpireEarned = "earned"
	// ExpireInactive: all points expire Months after the member's last
	// purchase.
	ExpireInactive = "inactivity"
)

// Expiry says when points expire.
type Expiry struct {
	Policy string `json:"policy"` // "earned" or "inactivity"
	Months int    `json:"months"`
}

// Review is the yearly tier review: members whose rolling 12-month spend no
// longer qualifies for their tier go down on this day (MM-DD, store time).
// Between reviews tiers only go up.
type Review struct {
	Date string `json:"date"`
}

func (d *Document) validateExtras(p *problems) {
	if s := d.Surprise; s != nil {
		if s.ProbabilityBP <= 0 || s.ProbabilityBP > bpOne {
			p.addf("surprise.probability_bp: between 1 and %d", bpOne)
		}
		if s.Bonus <= 0 || s.Bonus > maxBonus || s.DailyBudget <= 0 || s.DailyBudget > maxBonus {
			p.addf("surprise: bonus and daily_budget between 1 and %d", maxBonus)
		}
		if s.MinSpend < 0 {
			p.addf("surprise.min_spend: must not be negative")
		}
	}
	if w := d.WelcomeBack; w != nil {
		if w.AfterDays <= 0 || w.AfterDays > 3660 {
			p.addf("welcome_back.after_days: between 1 and 3660")
		}
		if w.Bonus <= 0 || w.Bonus > maxBonus {
			p.addf("welcome_back.bonus: between 1 and %d", maxBonus)
		}
	}
	if e := d.Expiry; e != nil {
		if e.Policy != ExpireEarned && e.Policy != ExpireInactive {
			p.addf("expiry.policy: %q is not %q or %q", e.Policy, ExpireEarned, ExpireInactive)
		}
		if e.Months <= 0 || e.Months > 120 {
			p.addf("expiry.months: between 1 and 120")
		}
	}
	if r := d.Review; r != nil {
		if _, err := time.Parse("01-02", r.Date); err != nil || r.Date == "02-29" {
			p.addf("review.date: not a day of the year like 01-01")
		}
	}
}

// Lots are a member's unspent earned points by the month they were earned
// (YYYY-MM), for expiry by age.
type Lots map[string]int64

// Add adds points earned in month.
func (l Lots) Add(month string, points int64) {
	if points > 0 {
		l[month] += points
	}
}

// Take spends points from the oldest lots first; what the lots do not cover
// is spent from nothing (a balance below its lots' sum, or negative).
func (l Lots) Take(points int64) {
	for _, m := range l.months() {
		if points <= 0 {
			return
		}
		t := min(points, l[m])
		l[m] -= t
		points -= t
		if l[m] == 0 {
			delete(l, m)
		}
	}
}

// Fit makes the lots sum to balance: a surplus is taken from the oldest lots,
// a shortfall is added as earned in month (the youngest, so that points of
// unknown age never expire early).
func (l Lots) Fit(balance int64, month string) {
	var sum int64
	for _, p := range l {
		sum += p
	}
	switch {
	case sum > balance:
		l.Take(sum - max(balance, 0))
	case sum < balance:
		l.Add(month, balance-sum)
	}
}

func (l Lots) months() []string {
	ms := make([]string, 0, len(l))
	for m := range l {
		ms = append(ms, m)
	}
	sort.Strings(ms)
	return ms
}

// Expiring is points that expire on one day, and the ref that makes their
// expire event idempotent across runs and terminals.
type Expiring struct {
	Ref    string    `json:"ref"`
	Points int64     `json:"points"`
	On     time.Time `json:"on"`
	Reason string    `json:"reason"`
}

// Expiries lists the member's points that expire by until (store time), oldest
// first: for the earned policy one entry per lot, for inactivity the whole
// balance. Nothing when the program has no expiry.
func (d *Document) Expiries(member string, lots Lots, balance int64, lastVisit, until time.Time) []Expiring {
	e := d.Expiry
	if e == nil || balance <= 0 {
		return nil
	}
	loc := until.Location()
	if e.Policy == ExpireInactive {
		if lastVisit.IsZero() {
			return nil
		}
		on := lastVisit.In(loc).AddDate(0, e.Months, 0)
		if on.After(until) {
			return nil
		}
		last := lastVisit.In(loc).Format(time.DateOnly)
		return []Expiring{{Ref: "expire:" + member + ":idle:" + last, Points: balance, On: on,
			Reason: fmt.Sprintf("no purchase since %s (%d months)", last, e.Months)}}
	}
	var out []Expiring
	left := balance
	for _, m := range lots.months() {
		start, err := time.ParseInLocation("2006-01", m, loc)
		if err != nil || left <= 0 {
			continue
		}
		on := start.AddDate(0, e.Months+1, 0)
		if on.After(until) {
			break // months are in order: the later lots expire later
		}
		p := min(lots[m], left)
		left -= p
		out = append(out, Expiring{Ref: "expire:" + member + ":" + m, Points: p, On: on,
			Reason: fmt.Sprintf("earned %s, %d months", m, e.Months)})
	}
	return out
}

// RollingSpend sums qualifying spend by month (YYYY-MM) over the 12 months
// ending with now's month.
func RollingSpend(months map[string]int64, now time.Time) int64 {
	first := time.Date(now.Year(), now.Month()-11, 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
	last := now.Format("2006-01")
	var sum int64
	for m, v := range months {
		if m >= first && m <= last {
			sum += v
		}
	}
	return sum
}

// ReviewDay returns the last review day on or before now (YYYY-MM-DD, in
// now's location); ok is false when the program has no review.
func (d *Document) ReviewDay(now time.Time) (day string, ok bool) {
	if d.Review == nil {
		return "", false
	}
	md := d.Review.Date
	day = fmt.Sprintf("%04d-%s", now.Year(), md)
	if day > now.Format(time.DateOnly) {
		day = fmt.Sprintf("%04d-%s", now.Year()-1, md)
	}
	return day, true
}

// Qualify returns the highest tier spend12m qualifies for: at a review, the
// member's new tier, which may be lower than their current one.
func (d *Document) Qualify(spend12m int64) Tier {
	best := 0
	for i, t := range d.Tiers {
		if spend12m >= t.MinSpend {
			best = i
		}
	}
	return d.Tiers[best]
}
