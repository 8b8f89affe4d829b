package agent

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/agent/store"
	"github.com/offline-loyalty/terminal/ledger"
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
// event so that reading them never scans the ledger. It is written on every
// checkout, so it has a fixed binary layout (dayRecordSize bytes) instead of
// JSON; the per-reward counts, written only on redemptions, are a separate
// record under the day's key plus rewardsSuffix.
type dayRecord struct {
	Checkouts       int64
	MemberCheckouts int64
	UniqueMembers   int64
	MemberSpend     int64
	Issued          int64
	Redeemed        int64
	Donated         int64
	Expired         int64
	Reversed        int64
	Enrollments     int64
	Voids           int64
	Refunds         int64
	WelcomeBack     int64
	Liability       int64 // net change of members' outstanding points
	Hours           [24]HourStats
}

const (
	dayRecordSize = (14 + 24*4) * 8
	rewardsSuffix = "/rewards"
)

// The day record must stay small enough to be kept inline (store.PutDay):
// this fails to compile if it grows past that.
var _ [store.MaxDayRecord - dayRecordSize]struct{}

// fields lists the record's numbers in their stored order (the struct's
// field order, as encoding/binary lays it out).
func (d *dayRecord) fields() [dayRecordSize / 8]*int64 {
	f := [dayRecordSize / 8]*int64{&d.Checkouts, &d.MemberCheckouts, &d.UniqueMembers, &d.MemberSpend, &d.Issued,
		&d.Redeemed, &d.Donated, &d.Expired, &d.Reversed, &d.Enrollments, &d.Voids, &d.Refunds, &d.WelcomeBack, &d.Liability}
	for h := range d.Hours {
		hs := &d.Hours[h]
		copy(f[14+4*h:], []*int64{&hs.Checkouts, &hs.MemberCheckouts, &hs.PointsIssued, &hs.PointsRedeemed})
	}
	return f
}

// encode writes the record in its fixed layout: big-endian int64s, written
// out by hand because every checkout pays for it (encoding/binary's
// reflection cost ten times as much).
func (d *dayRecord) encode() []byte {
	b := make([]byte, 0, dayRecordSize)
	for _, v := range d.fields() {
		b = binary.BigEndian.AppendUint64(b, uint64(*v))
	}
	return b
}

func decodeDay(b []byte) (dayRecord, error) {
	var d dayRecord
	if b == nil {
		return d, nil
	}
	if len(b) != dayRecordSize {
		return d, fmt.Errorf("%w: day record of %d bytes, want %d", store.ErrCorrupt, len(b), dayRecordSize)
	}
	for i, v := range d.fields() {
		*v = int64(binary.BigEndian.Uint64(b[8*i:]))
	}
	return d, nil
}

// updateDay applies fn to the aggregates of the day of the operation. The
// record is read and stored once per commit, however many operations of the
// commit update it (store.Tx.Deferred).
func (o *op) updateDay(fn func(d *dayRecord, h *HourStats)) error {
	day := o.day
	v, err := o.tx.Deferred("day "+day, func(tx *store.Tx) (any, error) {
		d, err := decodeDay(tx.Day(day))
		return &d, err
	}, func(tx *store.Tx, v any) error {
		return tx.PutDay(day, v.(*dayRecord).encode())
	})
	if err != nil {
		return err
	}
	d := v.(*dayRecord)
	fn(d, &d.Hours[o.now.In(o.a.loc).Hour()])
	return nil
}

func (o *op) addMetaInt(key string, delta int64) error {
	v, _ := strconv.ParseInt(o.tx.Meta(key), 10, 64)
	return o.tx.SetMeta(key, strconv.FormatInt(v+delta, 10))
}

func (o *op) countEarn(e *ledger.Event, firstToday, returned, welcome bool) error {
	if returned {
		if err := o.addMetaInt("rr_returned", 1); err != nil {
			return err
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
		d.Liability += e.Points
		h.Checkouts++
		h.MemberCheckouts++
		h.PointsIssued += e.Points
	})
}

func (o *op) countRedeemer() error { return o.addMetaInt("rr_redeemers", 1) }

func (o *op) countBurn(e *ledger.Event) error {
	if err := o.updateDay(func(d *dayRecord, h *HourStats) {
		d.Liability += e.Points
		switch e.Type {
		case ledger.Donate:
			d.Donated += -e.Points
		default:
			d.Redeemed += -e.Points
			h.PointsRedeemed += -e.Points
		}
	}); err != nil {
		return err
	}
	if e.Reward == "" {
		return nil
	}
	rewards := map[string]int64{}
	if _, err := o.tx.Get(store.Days, o.day+rewardsSuffix, &rewards); err != nil {
		return err
	}
	rewards[e.Reward]++
	return o.tx.Put(store.Days, o.day+rewardsSuffix, rewards)
}

func (o *op) countReversal(e *ledger.Event, co *checkoutRecord) error {
	return o.updateDay(func(d *dayRecord, _ *HourStats) {
		d.Liability += e.Points
		if e.Type == ledger.Void {
			d.Voids++
			if co.Day == o.day && co.Amount > 0 {
				// A voided checkout of today no longer counts as a
				// checkout: not in the day's figures, not in its hour's.
				d.Checkouts--
				d.MemberCheckouts--
				d.MemberSpend -= e.Amount
				h := &d.Hours[co.Time.In(o.a.loc).Hour()]
				h.Checkouts--
				h.MemberCheckouts--
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
	rewards := map[string]int64{}
	err := a.st.View(func(tx *store.Tx) error {
		var err error
		if d, err = decodeDay(tx.Day(day)); err != nil {
			return err
		}
		if _, err := tx.Get(store.Days, day+rewardsSuffix, &rewards); err != nil {
			return err
		}
		for _, t := range doc.TierIDs() {
			n, _ := strconv.Atoi(tx.Meta("tier/" + t))
			s.TierDistribution[t] = n
		}
		// Outstanding points are the sum of every day's net change: a few
		// hundred small records a year, never the ledger.
		if err := tx.ForEachDay(func(key string, raw []byte) error {
			if strings.HasSuffix(key, rewardsSuffix) {
				return nil
			}
			dr, err := decodeDay(raw)
			s.LiabilityPoints += dr.Liability
			return err
		}); err != nil {
			return err
		}
		redeemers, _ := strconv.ParseInt(tx.Meta("rr_redeemers"), 10, 64)
		returned, _ := strconv.ParseInt(tx.Meta("rr_returned"), 10, 64)
		s.RewardReturnBP = rateBP(returned, redeemers)
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
	s.RedemptionRateBP = rateBP(d.Redeemed, d.Issued)
	s.Enrollments, s.Voids, s.Refunds, s.WelcomeBack = d.Enrollments, d.Voids, d.Refunds, d.WelcomeBack
	s.Hours = d.Hours
	for r, n := range rewards {
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

// rateBP is num/den in basis points, nil (no rate: not 0 %, not 100 %)
// when den is not positive.
func rateBP(num, den int64) *int64 {
	if den <= 0 {
		return nil
	}
	v := int64(0)
	if num > 0 {
		v = mulDiv(num, 10000, den)
	}
	return &v
}
