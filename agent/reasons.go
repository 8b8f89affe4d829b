package agent

import "errors"

// reasons are the stable codes of the agent's refusals, for the programs
// that branch on them (the local API's answers) and the metrics that count
// them. The first match wins.
var reasons = []struct {
	err  error
	code string
}{
	{ErrInvalid, "invalid"},
	{ErrUnknownCard, "unknown_card"},
	{ErrUnknownReward, "unknown_reward"},
	{ErrUnknownCharity, "unknown_charity"},
	{ErrUnknownCheckout, "unknown_checkout"},
	{ErrBlockedCard, "blocked_card"},
	{ErrBadPIN, "bad_pin"},
	{ErrPINWait, "pin_wait"},
	{ErrPINLocked, "pin_locked"},
	{ErrBadToken, "bad_token"},
	{ErrApproval, "approval_required"},
	{ErrInsufficientPoints, "insufficient_points"},
	{ErrOfflineLimit, "offline_limit"},
	{ErrCardExists, "card_exists"},
	{ErrTierRequired, "tier_required"},
	{ErrRewardUnavailable, "reward_unavailable"},
	{ErrVoid, "cannot_void"},
	{ErrRefund, "cannot_refund"},
	{ErrDiskFull, "disk_full"},
	{ErrCorrupt, "corrupt"},
	{ErrClosed, "closed"},
}

// Reason is the stable code of an error the agent returned: "invalid",
// "unknown_card", ..., and "internal" for an error that is none of its
// refusals ("" for nil).
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return "internal"
}

// ReasonError is the refusal whose Reason is code (nil for none), for a
// client that got the code over the wire.
func ReasonError(code string) error {
	for _, r := range reasons {
		if r.code == code {
			return r.err
		}
	}
	return nil
}

// Reasons are the codes Reason returns for the agent's refusals, in order
// ("internal" aside).
func Reasons() []string {
	codes := make([]string, len(reasons))
	for i, r := range reasons {
		codes[i] = r.code
	}
	return codes
}
