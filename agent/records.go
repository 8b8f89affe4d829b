package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/offline-loyalty/terminal/agent/store"
	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/rules"
)

// Errors callers branch on. Their messages are what the cashier reads.
var (
	ErrUnknownCard        = errors.New("unknown card")
	ErrBlockedCard        = errors.New("card is blocked")
	ErrInsufficientPoints = errors.New("insufficient points")
	ErrOfflineLimit       = errors.New("over the offline redemption limit")
	ErrUnknownReward      = errors.New("unknown reward")
	ErrUnknownCharity     = errors.New("unknown charity")
	ErrUnknownCheckout    = errors.New("unknown checkout")
	ErrCardExists         = errors.New("card is already enrolled")
	ErrInvalid            = errors.New("invalid request")
	ErrTierRequired       = errors.New("reward needs a higher tier")
	ErrVoid               = errors.New("cannot void")
	ErrRefund             = errors.New("cannot refund")
	ErrBadPIN             = errors.New("wrong PIN")
	ErrPINWait            = errors.New("too many wrong PINs: wait before trying again")
	ErrPINLocked          = errors.New("manager PIN locked after too many wrong attempts")
	ErrRewardUnavailable  = errors.New("reward is not available today")

	// The ledger file's errors, for callers that do not reach into the
	// store: another process holds the directory, the file is damaged, the
	// agent is closing.
	ErrLocked  = store.ErrLocked
	ErrCorrupt = store.ErrCorrupt
	ErrClosed  = store.ErrClosed
	// ErrDiskFull is an operation the disk had no room for: nothing of it
	// was written, and the till goes on serving reads.
	ErrDiskFull = store.ErrDiskFull
)

// memberRecord is a member as stored on this terminal: head office's last
// snapshot (Base, taken at BaseAt, covering this terminal's events up to
// AsOfSeq) plus this terminal's own changes since (Pending). Balance is
// always Base + Pending.
type memberRecord struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	Email     string    `json:"email,omitempty"`
	Phone     string    `json:"phone,omitempty"`
	Consent   bool      `json:"consent,omitempty"`
	Tier      string    `json:"tier"`
	Status    string    `json:"status"`
	Cards     []string  `json:"cards"`
	Base      int64     `json:"base"`
	BaseAt    time.Time `json:"base_at"`
	AsOfSeq   uint64    `json:"as_of_seq"`
	Pending   int64     `json:"pending"` // sum of this terminal's changes past AsOfSeq, kept per event in the pending bucket
	Balance   int64     `json:"balance"`
	Spend12m  int64     `json:"spend_12m"`
	Lifetime  int64     `json:"lifetime"`
	LastVisit time.Time `json:"last_visit"`
	Enrolled  time.Time `json:"enrolled"`
	Checkouts int64     `json:"checkouts"`
	LastDay   string    `json:"last_day,omitempty"` // last day with a checkout here, for unique members a day
	// BurnDay and BurnedDay count points burned on this terminal on one day,
	// for the offline redemption limit.
	BurnDay   string `json:"burn_day,omitempty"`
	BurnedDay int64  `json:"burned_day,omitempty"`
	// RedeemOpen is when the member last redeemed and has not come back since
	// (for the reward-return rate); zero when closed.
	RedeemOpen time.Time `json:"redeem_open"`
	Birthday   string    `json:"birthday,omitempty"` // MM-DD
	// Lots are the unspent earned points by month, for expiry; Months the
	// qualifying spend by month, for the rolling 12-month spend.
	Lots   rules.Lots       `json:"lots,omitempty"`
	Months map[string]int64 `json:"months,omitempty"`
	// TierSince is when the member reached their tier; a yearly review
	// only looks at tiers reached before it.
	TierSince time.Time `json:"tier_since"`
}

// ruleMember is what the rules engine sees of the member at a checkout.
func (m *memberRecord) ruleMember() rules.Member {
	purchases := m.Checkouts
	if purchases == 0 && (m.Lifetime != 0 || !m.LastVisit.IsZero()) {
		purchases = 1 // shopped elsewhere, as head office's snapshot says
	}
	return rules.Member{ID: m.ID, Tier: m.Tier, Checkouts: purchases, Birthday: m.Birthday, LastVisit: m.LastVisit}
}

// cardRecord maps a card number to its member.
type cardRecord struct {
	Member  string `json:"member"`
	Blocked bool   `json:"blocked,omitempty"`
}

// checkoutRecord is a checkout as this terminal knows it: what void and
// refund need to reverse it, and the first result of every operation done
// under its ref, which retries return (idempotency).
type checkoutRecord struct {
	Ref       string    `json:"ref"`
	Member    string    `json:"member"`
	Card      string    `json:"card"`
	EarnEvent string    `json:"earn_event,omitempty"`
	Day       string    `json:"day"`
	Time      time.Time `json:"time"`
	Amount    int64     `json:"amount"`   // purchase amount, minor units
	Earned    int64     `json:"earned"`   // points earned
	Burned    int64     `json:"burned"`   // points burned under the same ref (rewards, discount, donations)
	Refunded  int64     `json:"refunded"` // amount returned so far
	Clawed    int64     `json:"clawed"`   // points clawed back by refunds so far
	Voided    bool      `json:"voided,omitempty"`
	// Results holds the first result of each operation on the checkout:
	// "earn", "redeem", "burn_discount", "donate", "void", "enroll",
	// "refund:<amount>" or "refund:return:<id>".
	Results map[string]json.RawMessage `json:"results,omitempty"`
}

// Limits on request fields.
const (
	maxCardLen = 64  // longest card number or token accepted
	maxRefLen  = 128 // idempotency keys from POS systems
	maxNameLen = 100
	maxContact = 254 // RFC 5321 path limit for email
)

func checkCard(card string) error {
	if card == "" {
		return fmt.Errorf("%w: card is required", ErrInvalid)
	}
	if len(card) > maxCardLen {
		return fmt.Errorf("%w: card number longer than %d characters", ErrInvalid, maxCardLen)
	}
	for _, r := range card {
		if r <= ' ' || r == 0x7f || r > 0x7e {
			return fmt.Errorf("%w: card number has a space or control character", ErrInvalid)
		}
	}
	return nil
}

func checkRef(ref string) error {
	if len(ref) > maxRefLen {
		return fmt.Errorf("%w: ref longer than %d characters", ErrInvalid, maxRefLen)
	}
	for _, r := range ref {
		if r < ' ' || r == 0x7f {
			return fmt.Errorf("%w: ref has a control character", ErrInvalid)
		}
	}
	return nil
}

func checkText(field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%w: %s longer than %d characters", ErrInvalid, field, max)
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return fmt.Errorf("%w: %s has a control character", ErrInvalid, field)
		}
	}
	return nil
}

// memberByCard loads the card and member records for card.
func memberByCard(tx *store.Tx, card string) (*memberRecord, *cardRecord, error) {
	var c cardRecord
	ok, err := tx.Get(store.Cards, card, &c)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, fmt.Errorf("%w %s: enroll the member or check the number", ErrUnknownCard, cardnum.Mask(card))
	}
	var m memberRecord
	ok, err = tx.Get(store.Members, c.Member, &m)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, fmt.Errorf("%w: card %s points to missing member %s", store.ErrCorrupt, cardnum.Mask(card), c.Member)
	}
	return &m, &c, nil
}

// usableMember is memberByCard for operations: blocked cards and members are
// refused.
func usableMember(tx *store.Tx, card string) (*memberRecord, error) {
	m, c, err := memberByCard(tx, card)
	if err != nil {
		return nil, err
	}
	if c.Blocked {
		return nil, fmt.Errorf("%w: %s", ErrBlockedCard, cardnum.Mask(card))
	}
	if m.Status == statusBlocked {
		return nil, fmt.Errorf("%w: member %s is blocked", ErrBlockedCard, m.ID)
	}
	return m, nil
}

const (
	statusActive  = "active"
	statusBlocked = "blocked"
)
