package ui

import (
	"slices"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/rules"
)

// MemberFacts is what the member panel shows of an agent.MemberView, in
// the panel's terms. Zero values hide their elements.
type MemberFacts struct {
	Tier        string    // the tier's display name
	NextTier    string    // display name of the next tier; "" hides the progress bar
	SpendToNext int64     // minor units still to spend to reach NextTier
	Progress    float64   // 0..1 of the way to NextTier (bar geometry, not money)
	Expiring    int64     // points that expire soon
	ExpiresOn   time.Time // when they expire
	WelcomeBack bool      // the member earns a welcome-back bonus today
	Birthday    bool      // it is the member's birthday (month)
}

// factsOf takes the panel's facts from the agent's view of the member.
func factsOf(m agent.MemberView) MemberFacts {
	f := MemberFacts{Tier: m.TierName, NextTier: m.NextTierName, SpendToNext: m.SpendToNext,
		Progress: float64(m.TierProgress) / 1000, Expiring: m.Expiring, WelcomeBack: m.WelcomeBack, Birthday: m.BirthdayMonth}
	if m.ExpiresOn != nil {
		f.ExpiresOn = *m.ExpiresOn
	}
	return f
}

// locked reports whether a reward needing tier is out of the member's
// reach (the agent refuses it too).
func locked(m agent.MemberView, tier string) bool {
	return tier != "" && !slices.Contains(m.OpenTiers, tier)
}

// tierLabel is a tier's display name in the rules in force, or its id when
// the rules have no such tier.
func tierLabel(doc *rules.Document, id string) string {
	for _, t := range doc.Tiers {
		if t.ID == id {
			return t.Name
		}
	}
	return id
}
