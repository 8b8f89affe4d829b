package agent

import "github.com/offline-loyalty/terminal/agent/rules"

// startTier is the tier a new member starts in.
func startTier(*rules.Document) string { return "bronze" }

// tierIDs lists the program's tiers, lowest first.
func tierIDs(*rules.Document) []string { return []string{"bronze", "silver", "gold", "platinum"} }
