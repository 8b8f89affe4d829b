package ui

import (
	"slices"
	"time"

	"fyne.io/fyne/v2/lang"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/rules"
	"github.com/offline-loyalty/terminal/ui/i18n"
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

// factsOf takes the panel's facts from the agent's view of the member, the
// tiers named in the language on screen by doc, the rules in force.
func factsOf(m agent.MemberView, doc *rules.Document) MemberFacts {
	f := MemberFacts{Tier: m.TierName, NextTier: m.NextTierName, SpendToNext: m.SpendToNext,
		Progress: float64(m.TierProgress) / 1000, Expiring: m.Expiring, WelcomeBack: m.WelcomeBack, Birthday: m.BirthdayMonth}
	if m.ExpiresOn != nil {
		f.ExpiresOn = *m.ExpiresOn
	}
	if m.Tier != "" {
		f.Tier = tierLabel(doc, m.Tier, m.TierName)
	}
	if m.NextTier != "" {
		f.NextTier = tierLabel(doc, m.NextTier, m.NextTierName)
	}
	return f
}

// locked reports whether a reward needing tier is out of the member's
// reach (the agent refuses it too).
func locked(m agent.MemberView, tier string) bool {
	return tier != "" && !slices.Contains(m.OpenTiers, tier)
}

// tierLabel is a tier's name in the language on screen in the rules in
// force, or fallback when the rules have no such tier.
func tierLabel(doc *rules.Document, id, fallback string) string {
	if n := doc.TierName(id, i18n.Current()); n != "" {
		return n
	}
	return fallback
}

// rewardLabel is a reward's name in the language on screen.
func rewardLabel(r rules.Reward) string { return r.Names.In(i18n.Current(), r.Name) }

// lineLabel is an earn line's label in the language on screen: the base,
// welcome-back and surprise lines are the program's words, a campaign's or
// tier's line the rules' name (rules.Document.LineLabel).
func lineLabel(doc *rules.Document, label string) string {
	switch label {
	case "base":
		return lang.L("base")
	case "welcome back":
		return lang.L("welcome back")
	case "surprise":
		return lang.L("surprise")
	}
	return doc.LineLabel(label, i18n.Current())
}
