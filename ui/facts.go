package ui

import (
	"slices"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/rules"
)

// MemberFacts is the member panel's view model beyond agent.MemberView: what
// the rules engine knows about tiers, expiry and the member's occasion. Zero
// values hide their elements.
type MemberFacts struct {
	Tier        string    // the tier's display name
	NextTier    string    // display name of the next tier; "" hides the progress bar
	SpendToNext int64     // minor units still to spend to reach NextTier
	Progress    float64   // 0..1 of the way to NextTier (bar geometry, not money)
	Expiring    int64     // points that expire soon
	ExpiresOn   time.Time // when they expire
	WelcomeBack bool      // the member earns a welcome-back bonus today
	Birthday    bool      // it is the member's birthday (month)
	// Locked reports whether a reward needing tier is out of the member's
	// reach; nil locks nothing (the agent still refuses it).
	Locked func(tier string) bool
}

// FactsFunc computes a member's facts from the rules in force.
type FactsFunc func(doc *rules.Document, m agent.MemberView, now time.Time) MemberFacts

// LadderFacts is the facts function that knows only the order of the tiers,
// lowest first: it names the member's tier, locks the rewards of tiers above
// it and passes on what the agent says of the member today (expiring points,
// welcome back, birthday month). With a nil ladder it locks nothing.
func LadderFacts(ladder []string) FactsFunc {
	return func(_ *rules.Document, m agent.MemberView, _ time.Time) MemberFacts {
		f := MemberFacts{Tier: tierName(m.Tier), Expiring: m.Expiring, WelcomeBack: m.WelcomeBack, Birthday: m.BirthdayMonth}
		if m.ExpiresOn != nil {
			f.ExpiresOn = *m.ExpiresOn
		}
		if ladder != nil {
			mine := slices.Index(ladder, m.Tier)
			f.Locked = func(tier string) bool {
				return tier != "" && slices.Index(ladder, tier) > mine
			}
		}
		return f
	}
}

// tierName is a tier id shown as a name ("gold" → "Gold").
func tierName(id string) string {
	if id == "" {
		return ""
	}
	return strings.ToUpper(id[:1]) + id[1:]
}
