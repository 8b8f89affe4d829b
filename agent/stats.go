package agent

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/agent/ledger"
	"github.com/offline-loyalty/terminal/agent/store"
)

// rewardReturnWindow: a member who redeemed and checks out again within it
// counts as a returning redeemer (SPEC section 3, reward-return rate).
const rewardReturnWindow = 30 * 24 * time.Hour

// topRewardsShown is how many rewards the day's figures list.
const topRewardsShown = 5

// breakageBP is the share of outstanding points expected never to be
// redeemed, in basis points, used for the liability figure.
const breakageBP = 2000

// dayRecord holds one day's aggregates, updated in the transaction of every
// event so that reading them never scans the ledger.
type dayRecord struct {
	Checkouts       int64            `json:"checkouts"`
	MemberCheckouts int64            `json:"member_checkouts"`
	UniqueMembers   int64            `json:"unique_members"`
	MemberSpend     int64            `json:"member_spend"`
	Issued          int64            `json:"issued"`
	Redeemed        int64            `json:"redeemed"`
	Donated         int64            `json:"donated"`
	Expired         int64            `json:"expired"`
	Reversed        int64            `json:"reversed"`
	Enrollments     int64            `json:"enrollments"`
	Voids           int64            `json:"voids"`
	Refunds         int64            `json:"refunds"`
	WelcomeBack     int64            `json:"welcome_back"`
	Hours           [24]HourStats    `json:"hours"`
	Rewards         map[string]int64 `json:"rewards,omitempty"`
}

// updateDay applies fn to the aggregates of the day of the operation.
func (o *op) updateDay(fn func(d *dayRecord, h *HourStats)) error {
	var d dayRecord
	if _, err := o.tx.Get(store.Days, o.day, &d); err != nil {
		return err
	}
	fn(&d, &d.Hours[o.now.In(o.a.loc).Hour()])
	return o.tx.Put(store.Days, o.day, &d)
}

func (o *op) addMetaInt(key string, delta int64) error {
	v, _ := strconv.ParseInt(o.tx.Meta(key), 10, 64)
	return o.tx.SetMeta(key, strconv.FormatInt(v+delta, 10))
}

func (o *op) addLiability(points int64) error { return o.addMetaInt("liability_points", points) }

func (o *op) countEarn(e *ledger.Event, firstToday, returned bool) error {
	if returned {
		if err := o.addMetaInt("rr_returned", 1); err != nil {
			return err
		}
	}
	welcome := false
	for _, l := range e.Lines {
		if strings.HasPrefix(l.Label, "welcome back") {
			welcome = true
		}
	}
	return o.updateDay(func(d *dayRecord, h *HourStats) {
		d.Checkouts++
		d.MemberCheckouts++
		if firstToday {
			d.UniqueMembers++
		}
		if welcome {
			d.WelcomeBack++
		}
		d.MemberSpend += e.Amount
		d.Issued += e.Points
		h.Checkouts++
		h.MemberCheckouts++
		h.PointsIssued += e.Points
	})
}

func (o *op) countRedeemer() error { return o.addMetaInt("rr_redeemers", 1) }

func (o *op) countBurn(e *ledger.Event) error {
	return o.updateDay(func(d *dayRecord, h *HourStats) {
		switch e.Type {
		case ledger.Donate:
			d.Donated += -e.Points
		default:
			d.Redeemed += -e.Points
			h.PointsRedeemed += -e.Points
			if e.Reward != "" {
				if d.Rewards == nil {
					d.Rewards = map[string]int64{}
				}
				d.Rewards[e.Reward]++
			}
		}
	})
}

func (o *op) countReversal(e *ledger.Event, co *checkoutRecord) error {
	return o.updateDay(func(d *dayRecord, _ *HourStats) {
		if e.Type == ledger.Void {
			d.Voids++
			if co.Day == o.day && co.Amount > 0 {
				// A voided checkout of today no longer counts as a checkout.
				d.Checkouts--
				d.MemberCheckouts--
				d.MemberSpend -= e.Amount
			}
		} else {
			d.Refunds++
			d.MemberSpend -= e.Amount
		}
		if e.Points < 0 {
			d.Reversed += -e.Points
		}
	})
}

func (o *op) countEnroll(tier string) error {
	if err := o.addMetaInt("tier/"+tier, 1); err != nil {
		return err
	}
	return o.updateDay(func(d *dayRecord, _ *HourStats) { d.Enrollments++ })
}

// Stats returns the figures of a day ("YYYY-MM-DD"; "" for today).
func (a *Agent) Stats(day string) (Stats, error) {
	if day == "" {
		day = a.now().In(a.loc).Format(time.DateOnly)
	} else if _, err := time.Parse(time.DateOnly, day); err != nil {
		return Stats{}, fmt.Errorf("%w: day %q is not YYYY-MM-DD", ErrInvalid, day)
	}
	doc := a.Rules()
	st := a.Status()
	s := Stats{Day: day, Terminal: st.Terminal, Store: st.Store, Currency: doc.Currency, TierDistribution: map[string]int{},
		Sync: SyncHealth{Queue: st.Queue, OldestUnsent: st.OldestUnsent, LastSync: st.LastSync}}
	var d dayRecord
	err := a.st.View(func(tx *store.Tx) error {
		if _, err := tx.Get(store.Days, day, &d); err != nil {
			return err
		}
		for _, t := range tierIDs(doc) {
			n, _ := strconv.Atoi(tx.Meta("tier/" + t))
			s.TierDistribution[t] = n
		}
		s.LiabilityPoints, _ = strconv.ParseInt(tx.Meta("liability_points"), 10, 64)
		redeemers, _ := strconv.ParseInt(tx.Meta("rr_redeemers"), 10, 64)
		returned, _ := strconv.ParseInt(tx.Meta("rr_returned"), 10, 64)
		s.RewardReturnBP = ratioBP(returned, redeemers)
		return nil
	})
	if err != nil {
		return Stats{}, err
	}
	s.Checkouts, s.MemberCheckouts, s.UniqueMembers = d.Checkouts, d.MemberCheckouts, d.UniqueMembers
	s.MemberSpend = d.MemberSpend
	if d.MemberCheckouts > 0 {
		s.AvgOrderValue = d.MemberSpend / d.MemberCheckouts
	}
	if d.UniqueMembers > 0 {
		s.FrequencyX100 = d.Checkouts * 100 / d.UniqueMembers
	}
	s.PointsIssued, s.PointsRedeemed, s.PointsDonated = d.Issued, d.Redeemed, d.Donated
	s.PointsExpired, s.PointsReversed = d.Expired, d.Reversed
	s.RedemptionRateBP = ratioBP(d.Redeemed, d.Issued)
	s.Enrollments, s.Voids, s.Refunds, s.WelcomeBack = d.Enrollments, d.Voids, d.Refunds, d.WelcomeBack
	s.Hours = d.Hours
	for r, n := range d.Rewards {
		s.TopRewards = append(s.TopRewards, RewardCount{Reward: r, Count: n})
	}
	sort.Slice(s.TopRewards, func(i, j int) bool {
		if s.TopRewards[i].Count != s.TopRewards[j].Count {
			return s.TopRewards[i].Count > s.TopRewards[j].Count
		}
		return s.TopRewards[i].Reward < s.TopRewards[j].Reward
	})
	if len(s.TopRewards) > topRewardsShown {
		s.TopRewards = s.TopRewards[:topRewardsShown]
	}
	if dc := doc.Discount; dc.Points > 0 && s.LiabilityPoints > 0 {
		value := mulDiv(s.LiabilityPoints, dc.Value, dc.Points)
		s.Liability = mulDiv(value, 10000-breakageBP, 10000)
	}
	return s, nil
}

// ratioBP is num/den in basis points, 0 when den is 0.
func ratioBP(num, den int64) int64 {
	if den <= 0 || num <= 0 {
		return 0
	}
	return mulDiv(num, 10000, den)
}
