package agent

import (
	"context"
	"encoding/json"
	"time"

	"github.com/offline-loyalty/terminal/agent/store"
	"github.com/offline-loyalty/terminal/ledger"
)

// Slip is the loyalty slip of one earn, as a receipt printer prints it.
type Slip struct {
	Seq     uint64        // the earn's sequence
	Store   string        // the store the terminal belongs to ("" before a join)
	Time    time.Time     // when the earn was committed
	Member  string        // the member's name
	Card    string        // the card scanned (a printer prints it masked)
	Earned  int64         // points the checkout earned
	Balance int64         // the member's balance right after the earn
	Lines   []ledger.Line // how the points were made up
	// NewTier is the display name of the tier the earn raised the member
	// to ("" when it did not), for the slip to announce.
	NewTier   string
	NewTierID string // its id in the rules
	// What the member should know as the slip is printed: points expiring
	// in the next 30 days and the first day they go, the next tier with
	// the spend still needed for it (minor units of Currency) and the way
	// there in thousandths (NextTier is "" at the top).
	Expiring     int64
	ExpiresOn    time.Time
	NextTier     string
	NextTierID   string // its id in the rules
	SpendToNext  int64
	TierProgress int64
	Currency     string
}

// slipBatch is how many events FollowSlips reads at a time.
const slipBatch = 256

// FollowSlips calls print with the slip of every earn committed after
// sequence after — from the app or from the POS — in ledger order, until
// ctx ends (its error is returned). An earn is committed before its slip is
// printed, so print never holds up a checkout; a slip that cannot be read
// is passed to fail and skipped.
func (a *Agent) FollowSlips(ctx context.Context, after uint64, print func(Slip), fail func(seq uint64, err error)) error {
	notices, stop := a.Watch()
	defer stop()
	for {
		for {
			evs, err := a.OutboxAfter(after, slipBatch)
			if err != nil {
				fail(after+1, err)
				break
			}
			for _, b := range evs {
				e, err := ledger.Decode(b)
				if err != nil {
					after++
					fail(after, err)
					continue
				}
				after = e.Seq
				if e.Type != ledger.Earn {
					continue
				}
				s, err := a.slip(e)
				if err != nil {
					fail(e.Seq, err)
					continue
				}
				print(s)
			}
			if len(evs) < slipBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-notices:
		}
	}
}

// slip is the slip of earn event e: the member's name as it is now, the
// balance as the earn left it (kept with the checkout's result).
func (a *Agent) slip(e ledger.Event) (Slip, error) {
	s := Slip{Seq: e.Seq, Store: e.Store, Time: e.Time, Card: e.Card, Earned: e.Points, Lines: e.Lines}
	err := a.st.View(func(tx *store.Tx) error {
		m, _, err := memberByCard(tx, e.Card)
		if err != nil {
			return err
		}
		s.Member, s.Balance = m.Name, m.Balance
		if s.Store == "" {
			s.Store = tx.Meta("store")
		}
		var v MemberView
		a.memberFacts(&v, m)
		s.Expiring, s.NextTier, s.SpendToNext, s.TierProgress, s.Currency = v.Expiring, v.NextTierName, v.SpendToNext, v.TierProgress, a.Rules().Currency
		s.NextTierID = v.NextTier
		if v.ExpiresOn != nil {
			s.ExpiresOn = *v.ExpiresOn
		}
		var co checkoutRecord
		if _, err := tx.Get(store.Checkouts, e.Ref, &co); err != nil {
			return err
		}
		var r EarnResult
		if raw, ok := co.Results["earn"]; ok && json.Unmarshal(raw, &r) == nil && r.Seq == e.Seq {
			s.Balance, s.NewTier, s.NewTierID = r.Balance, r.NewTierName, r.NewTier
		}
		return nil
	})
	return s, err
}
