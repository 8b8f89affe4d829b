// Package agent is the terminal's domain: it decides every earn and burn and
// records it durably in the local ledger before anyone is told it succeeded.
//
// Agent is the one owner of the data directory. The local API, the CLI, the
// Fyne app and the sync client all call its methods; none of them touch the
// database or decide anything about points themselves. The agent never waits
// on the network to answer a checkout.
package agent

import (
	"fmt"
	"time"

	"github.com/offline-loyalty/terminal/agent/store"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/rules"
)

// EarnRequest is a purchase by a member. Amount is decimal text in the rules'
// currency ("12.50" or "12,50"), parsed exactly.
type EarnRequest struct {
	Card   string       `json:"card"`
	Amount string       `json:"amount"`
	Ref    string       `json:"ref,omitempty"` // idempotency key; generated when empty
	Items  []rules.Item `json:"items,omitempty"`
	// ManagerPIN approves a sale over the rules' max_amount.
	ManagerPIN string `json:"manager_pin,omitempty"`
}

// EarnResult is what an earn wrote. A retry with the same Ref returns the
// first result unchanged.
type EarnResult struct {
	Ref     string        `json:"ref"`
	Member  string        `json:"member"`
	Points  int64         `json:"points"`
	Lines   []ledger.Line `json:"lines"`
	Balance int64         `json:"balance"`
	Seq     uint64        `json:"seq"`
	// NewTier is the tier the sale raised the member to (its id and display
	// name), "" when it did not.
	NewTier     string `json:"new_tier,omitempty"`
	NewTierName string `json:"new_tier_name,omitempty"`
}

// RedeemRequest burns points: either a catalog reward or points as discount.
type RedeemRequest struct {
	Card   string `json:"card"`
	Reward string `json:"reward,omitempty"`
	Points int64  `json:"points,omitempty"`
	Ref    string `json:"ref,omitempty"`
}

// DonateRequest gives points to a charity partner.
type DonateRequest struct {
	Card    string `json:"card"`
	Points  int64  `json:"points"`
	Charity string `json:"charity"`
	Ref     string `json:"ref,omitempty"`
}

// VoidRequest cancels a checkout of the same shift in full.
type VoidRequest struct {
	Ref string `json:"ref"`
	// ManagerPIN approves a void over the rules' approval.void_points.
	ManagerPIN string `json:"manager_pin,omitempty"`
}

// RefundRequest returns goods of a checkout: Amount (decimal text) of it.
// Return distinguishes several partial returns of one checkout; a retry with
// the same Ref, Amount and Return changes nothing.
type RefundRequest struct {
	Ref    string `json:"ref"`
	Amount string `json:"amount"`
	Return string `json:"return,omitempty"`
	// ManagerPIN approves a refund over the rules' approval.refund_amount.
	ManagerPIN string `json:"manager_pin,omitempty"`
}

// EnrollRequest creates a member at the till.
type EnrollRequest struct {
	Card    string `json:"card"`
	Name    string `json:"name,omitempty"`
	Email   string `json:"email,omitempty"`
	Phone   string `json:"phone,omitempty"`
	Consent bool   `json:"consent,omitempty"`
	// Birthday is the day of the year, MM-DD (a full date YYYY-MM-DD is
	// accepted and only its day kept), for birthday campaigns.
	Birthday string `json:"birthday,omitempty"`
	Ref      string `json:"ref,omitempty"`
}

// Result is what a burn, donation, void, refund or enrollment wrote. Points is
// the signed change to the balance.
type Result struct {
	Ref     string `json:"ref"`
	Type    string `json:"type"`
	Member  string `json:"member"`
	Points  int64  `json:"points"`
	Value   int64  `json:"value,omitempty"` // burn_discount: money off, minor units
	Reward  string `json:"reward,omitempty"`
	Charity string `json:"charity,omitempty"`
	Balance int64  `json:"balance"`
	Seq     uint64 `json:"seq"`
}

// MemberView is a member as the terminal sees them: head office's last
// snapshot plus this terminal's own events since.
type MemberView struct {
	Member      string     `json:"member"`
	Name        string     `json:"name"`
	Card        string     `json:"card"` // masked
	Tier        string     `json:"tier"`
	Balance     int64      `json:"balance"`
	Pending     int64      `json:"pending"` // this terminal's changes head office has not confirmed
	LastVisit   *time.Time `json:"last_visit"`
	Enrolled    time.Time  `json:"enrolled"`
	Status      string     `json:"status"`
	Spend12m    int64      `json:"spend_12m"` // rolling 12-month qualifying spend, minor units
	Lifetime    int64      `json:"lifetime_spend"`
	Email       string     `json:"email,omitempty"`
	Phone       string     `json:"phone,omitempty"`
	Consent     bool       `json:"consent"`
	BalanceAsOf *time.Time `json:"balance_as_of"` // when head office's snapshot was taken; nil if never
	Currency    string     `json:"currency"`
	Birthday    string     `json:"birthday,omitempty"` // MM-DD
	// What the cashier should know today: points expiring in the next 30
	// days (and the first day they go), a welcome-back bonus on this visit,
	// the member's birthday month.
	Expiring      int64      `json:"expiring_30d"`
	ExpiresOn     *time.Time `json:"expires_on,omitempty"`
	WelcomeBack   bool       `json:"welcome_back"`
	BirthdayMonth bool       `json:"birthday_month"`
	// The member's place on the tier ladder of the rules in force: the
	// tier's display name, the tiers whose rewards are open to the member
	// (theirs and every one below it), and the next tier with the spend
	// still needed to reach it and the way there done so far, in thousandths
	// of the spend between the two tiers' thresholds (NextTier is "" at the
	// top).
	TierName     string   `json:"tier_name"`
	OpenTiers    []string `json:"open_tiers"`
	NextTier     string   `json:"next_tier,omitempty"`
	NextTierName string   `json:"next_tier_name,omitempty"`
	SpendToNext  int64    `json:"spend_to_next,omitempty"`
	TierProgress int64    `json:"tier_progress_permille"`
}

// Status is the terminal's health at a glance.
type Status struct {
	Terminal     string     `json:"terminal"`
	Store        string     `json:"store"`
	Epoch        string     `json:"epoch"`
	Online       bool       `json:"online"`
	Current      bool       `json:"current"`       // online with head office's feeds caught up: no offline limit applies
	Queue        uint64     `json:"queue"`         // events head office has not acked
	OldestUnsent *time.Time `json:"oldest_unsent"` // time of the oldest of them
	LastSync     *time.Time `json:"last_sync"`
	LinkError    string     `json:"link_error,omitempty"`
	Scanner      string     `json:"scanner"` // "none", "connected", "disconnected", ...
	RulesVersion int        `json:"rules_version"`
	Seq          uint64     `json:"seq"`   // last sequence written
	Acked        uint64     `json:"acked"` // last sequence head office made durable
	// Log is the ledger's write-ahead log: its segments and size, and how
	// far the ledger file is behind it.
	Log LogStatus `json:"log"`
	// Problems says, one sentence each, what is wrong with the terminal
	// (none when healthy): the words of pos-agent status.
	Problems []string `json:"problems"`
}

// LogStatus is the state of the ledger's write-ahead log (see
// docs/architecture.md).
type LogStatus = store.LogStatus

// Identity names the terminal's ledger: the terminal id, its store and the
// random epoch of its database.
type Identity struct {
	Terminal string `json:"terminal"`
	Store    string `json:"store"`
	Epoch    string `json:"epoch"`
}

// Joined reports whether the terminal has joined head office, which
// assigned it to a store.
func (id Identity) Joined() bool { return id.Store != "" }

// LinkState is what the sync client reports about the link to head office.
type LinkState struct {
	Online   bool
	LastSync time.Time // last time head office acked or sent something
	Error    string    // last link error, one line
	// Current: head office said this connection's feeds are caught up;
	// while it lasts, a change to a member reaches the terminal within
	// seconds, so head office's snapshots are current however old.
	Current bool
}

// MemberSnapshot is head office's authoritative view of a member, sent down to
// terminals. Balance includes this terminal's events up to AsOfSeq (of the
// terminal's current epoch); the terminal adds its own later events on top.
type MemberSnapshot struct {
	Member    string           `json:"member"`
	Name      string           `json:"name,omitempty"`
	Cards     []string         `json:"cards"`
	Tier      string           `json:"tier"`
	Balance   int64            `json:"balance"`
	Spend12m  int64            `json:"spend_12m"`
	Lifetime  int64            `json:"lifetime_spend"`
	LastVisit time.Time        `json:"last_visit"`
	Enrolled  time.Time        `json:"enrolled"`
	Status    string           `json:"status"` // "active" or "blocked"
	AsOfSeq   uint64           `json:"as_of_seq"`
	Taken     time.Time        `json:"taken"`              // when head office computed it
	Birthday  string           `json:"birthday,omitempty"` // MM-DD
	Months    map[string]int64 `json:"months,omitempty"`   // qualifying spend by YYYY-MM, for the rolling 12 months
	Lots      map[string]int64 `json:"lots,omitempty"`     // unspent earned points by YYYY-MM, for expiry
}

// CardBlock blocks (or unblocks) one card.
type CardBlock struct {
	Card    string `json:"card"`
	Blocked bool   `json:"blocked"`
}

// Cursors are the positions of the downstream feeds this terminal has applied.
type Cursors struct {
	Rules   int    `json:"rules"`   // version of the rules document in force
	Members uint64 `json:"members"` // head office's member-feed cursor
	Blocked uint64 `json:"blocked"` // head office's blocklist-feed cursor
}

// Stats are the figures of SPEC section 3 for one day of this terminal. They
// are kept up to date as events are written, so reading them never scans the
// ledger. Ratios are integers: *_bp fields are basis points (1/100 of a
// percent), FrequencyX100 is checkouts per unique member times 100.
type Stats struct {
	Day              string         `json:"day"` // YYYY-MM-DD, terminal local time
	Terminal         string         `json:"terminal"`
	Store            string         `json:"store"`
	Currency         string         `json:"currency"`
	Checkouts        int64          `json:"checkouts"`
	MemberCheckouts  int64          `json:"member_checkouts"`
	UniqueMembers    int64          `json:"unique_members"`
	FrequencyX100    int64          `json:"frequency_x100"`
	MemberSpend      int64          `json:"member_spend"`       // minor units
	AvgOrderValue    int64          `json:"avg_order_value"`    // members' average, minor units
	PointsIssued     int64          `json:"points_issued"`      // earned
	PointsRedeemed   int64          `json:"points_redeemed"`    // rewards and discounts
	PointsDonated    int64          `json:"points_donated"`     // to charity partners
	PointsExpired    int64          `json:"points_expired"`     // breakage
	PointsReversed   int64          `json:"points_reversed"`    // clawed back by voids and refunds
	RedemptionRateBP *int64         `json:"redemption_rate_bp"` // redeemed / issued; null when nothing was issued
	Enrollments      int64          `json:"enrollments"`
	Voids            int64          `json:"voids"`
	Refunds          int64          `json:"refunds"`
	WelcomeBack      int64          `json:"welcome_back"`
	TierDistribution map[string]int `json:"tier_distribution"` // members known to the terminal, by tier
	TopRewards       []RewardCount  `json:"top_rewards"`
	RewardReturnBP   *int64         `json:"reward_return_bp"` // of members who redeemed, those who came back within 30 days; null when nobody redeemed
	LiabilityPoints  int64          `json:"liability_points"` // outstanding points of members known here
	Liability        int64          `json:"liability"`        // minor units: points × value per point × (1 − breakage)
	Hours            [24]HourStats  `json:"hours"`
	Sync             SyncHealth     `json:"sync"`
}

// HourStats are one hour's figures of a day.
type HourStats struct {
	Checkouts       int64 `json:"checkouts"`
	MemberCheckouts int64 `json:"member_checkouts"`
	PointsIssued    int64 `json:"points_issued"`
	PointsRedeemed  int64 `json:"points_redeemed"`
}

// RewardCount is how often a reward was redeemed.
type RewardCount struct {
	Reward string `json:"reward"`
	Count  int64  `json:"count"`
}

// SyncHealth is the outbox's state.
type SyncHealth struct {
	Queue        uint64     `json:"queue"`
	OldestUnsent *time.Time `json:"oldest_unsent"`
	LastSync     *time.Time `json:"last_sync"`
}

// Notice tells watchers (the UI) that something changed.
type Notice struct {
	Kind NoticeKind `json:"kind"`
	Scan *Scan      `json:"scan,omitempty"` // NoticeScan: what was read
}

// NoticeKind says what a Notice is about.
type NoticeKind int

// The kinds of notices.
const (
	NoticeEvent  NoticeKind = iota + 1 // a ledger event was committed
	NoticeStatus                       // link, scanner or rules state changed
	NoticeBasket                       // the POS pushed a basket
	NoticeScan                         // the till's scanner read something
)

var noticeKinds = [...]string{NoticeEvent: "event", NoticeStatus: "status", NoticeBasket: "basket", NoticeScan: "scan"}

// MarshalText names the kind, as the local API's watch stream carries it.
func (k NoticeKind) MarshalText() ([]byte, error) {
	if k <= 0 || int(k) >= len(noticeKinds) {
		return nil, fmt.Errorf("notice kind %d", int(k))
	}
	return []byte(noticeKinds[k]), nil
}

// UnmarshalText reads a kind MarshalText wrote.
func (k *NoticeKind) UnmarshalText(b []byte) error {
	for i, name := range noticeKinds {
		if i > 0 && name == string(b) {
			*k = NoticeKind(i)
			return nil
		}
	}
	return fmt.Errorf("%w: notice kind %q", ErrInvalid, b)
}

// Scan is one read of the till's scanner, decoded by its driver: Kind is
// "card", "qr" or "magstripe", Card the member card it carries. A read
// that did not decode has Error set, saying why, and no card.
type Scan struct {
	Kind      string `json:"kind"`
	Symbology string `json:"symbology,omitempty"`
	Card      string `json:"card,omitempty"`
	Error     string `json:"error,omitempty"`
}

// AdjustRequest is a manager's correction of a member's balance.
type AdjustRequest struct {
	Card   string `json:"card"`
	Points int64  `json:"points"` // signed change
	Reason string `json:"reason"`
	Ref    string `json:"ref,omitempty"`
	// ManagerPIN approves it: every adjustment needs a manager.
	ManagerPIN string `json:"manager_pin,omitempty"`
}

// ReplaceCardRequest blocks a member's card and gives them a new one; the
// balance stays with the member.
type ReplaceCardRequest struct {
	Card    string `json:"card"`
	NewCard string `json:"new_card"`
	Ref     string `json:"ref,omitempty"`
}

// Quote is what a checkout would earn, computed like an earn but written
// nowhere.
type Quote struct {
	Member       string        `json:"member"`
	Tier         string        `json:"tier"`
	Points       int64         `json:"points"`
	Lines        []ledger.Line `json:"lines"`
	Eligible     int64         `json:"eligible"` // minor units that earn points
	Balance      int64         `json:"balance"`  // the balance before the checkout
	RulesVersion int           `json:"rules_version"`
}
