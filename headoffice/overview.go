package headoffice

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"time"

	"github.com/offline-loyalty/terminal/rules"
)

// Overview is the console's first page: a period's report with its days,
// and what the points outstanding are worth.
type Overview struct {
	Report
	Total StoreFigures  `json:"total"` // the stores added up
	Today StoreFigures  `json:"today"` // the stores' figures of today (UTC), whatever the period
	Days  []DayFigures  `json:"days"`  // each day of the period with figures, oldest first
	Rules RulesSnapshot `json:"rules"`
	// AverageOrder is sales per checkout, minor units (0 without checkouts).
	AverageOrder int64 `json:"average_order"`
	// RedemptionPermille is points redeemed per thousand issued in the
	// period (nil when none were issued: a rate of nothing is no rate).
	RedemptionPermille *int64 `json:"redemption_permille"`
	// BreakagePermille is the share of all points ever issued that expired,
	// per thousand: the estimate of how much of the liability will never be
	// redeemed.
	BreakagePermille int64 `json:"breakage_permille"`
	// LiabilityValue is the points outstanding in money, minor units:
	// points × value per point × (1 − breakage).
	LiabilityValue int64 `json:"liability_value"`
	// LiabilityAsOf is when the points outstanding were summed: a sum over
	// every member, taken at most every liabilityEvery, not per page.
	LiabilityAsOf time.Time `json:"liability_as_of"`
}

// liabilityEvery is how stale the overview's sum of all balances may get.
const liabilityEvery = time.Minute

// liabilityCache holds the last sum of all balances.
type liabilityCache struct {
	mu      sync.Mutex
	points  int64
	at      time.Time
	running bool
}

// liabilityNow returns the sum of all balances as of at most
// liabilityEvery ago: a fresh one the first time, and after that the last
// one while a newer one is summed in the background.
func (o *Office) liabilityNow(ctx context.Context) (int64, time.Time, error) {
	c := &o.liability
	c.mu.Lock()
	if !c.at.IsZero() {
		points, at := c.points, c.at
		if time.Since(at) > liabilityEvery && !c.running {
			c.running = true
			o.background.Add(1)
			go func() {
				defer o.background.Done()
				ctx, cancel := context.WithTimeout(context.Background(), readWait)
				defer cancel()
				p, err := o.sumLiability(ctx)
				c.mu.Lock()
				defer c.mu.Unlock()
				c.running = false
				if err == nil {
					c.points, c.at = p, time.Now()
				}
			}()
		}
		c.mu.Unlock()
		return points, at, nil
	}
	c.mu.Unlock()
	p, err := o.sumLiability(ctx)
	if err != nil {
		return 0, time.Time{}, err
	}
	now := time.Now()
	c.mu.Lock()
	c.points, c.at = p, now
	c.mu.Unlock()
	return p, now, nil
}

func (o *Office) sumLiability(ctx context.Context) (int64, error) {
	var p int64
	err := o.store.View(ctx, func(tx ReadTx) error {
		var err error
		p, err = tx.Liability()
		return err
	})
	return p, err
}

// RulesSnapshot is what of the running rules the overview uses.
type RulesSnapshot struct {
	Version  int    `json:"version"`
	Currency string `json:"currency"`
}

// DayFigures are one day's figures across the period's stores.
type DayFigures struct {
	Day       string `json:"day"`
	Checkouts int64  `json:"checkouts"`
	Sales     int64  `json:"sales"`
	Issued    int64  `json:"issued"`
	Redeemed  int64  `json:"redeemed"`
}

// Overview reports the days from..to (YYYY-MM-DD, inclusive) for store (""
// for all), with the figures of each day and the liability's worth under
// the running rules.
func (o *Office) Overview(ctx context.Context, from, to, store string) (Overview, error) {
	var ov0 Overview
	rep, err := o.report(ctx, from, to, store, false)
	if err != nil {
		return Overview{}, err
	}
	if rep.Liability, ov0.LiabilityAsOf, err = o.liabilityNow(ctx); err != nil {
		return Overview{}, err
	}
	first, err1 := time.Parse(time.DateOnly, from)
	last, err2 := time.Parse(time.DateOnly, to)
	switch {
	case err1 != nil || err2 != nil:
		return Overview{}, fmt.Errorf("%w: an overview needs both ends of its period", ErrInvalid)
	case last.Before(first):
		return Overview{}, fmt.Errorf("%w: the period ends (%s) before it starts (%s)", ErrInvalid, to, from)
	case last.Sub(first) > maxOverviewDays*24*time.Hour:
		return Overview{}, fmt.Errorf("%w: an overview covers at most %d days", ErrInvalid, maxOverviewDays)
	}
	ov := Overview{Report: rep, Total: StoreFigures{Store: "all"}, LiabilityAsOf: ov0.LiabilityAsOf}
	for _, s := range rep.Stores {
		ov.Total.add(s)
	}
	// Every day of the period has its place on the chart, with or
	// without figures.
	days := map[string]*DayFigures{}
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		days[d.Format(time.DateOnly)] = &DayFigures{Day: d.Format(time.DateOnly)}
	}
	var issuedEver, expiredEver int64
	doc := rules.Default()
	today := o.now().UTC().Format(time.DateOnly)
	ov.Today.Store = "all"
	err = o.store.View(ctx, func(tx ReadTx) error {
		raw, _, err := tx.Rules()
		if err != nil {
			return err
		}
		if raw != nil {
			if d, err := rules.Parse(raw); err == nil {
				doc = d
			}
		}
		if err := tx.Figures(from, to, func(f Figures) error {
			if store != "" && f.Store != store {
				return nil
			}
			d := days[f.Day]
			if d == nil {
				return nil
			}
			d.Checkouts = SatAdd(d.Checkouts, f.Checkouts)
			d.Sales = SatAdd(d.Sales, f.Sales)
			d.Issued = SatAdd(d.Issued, f.Issued)
			d.Redeemed = SatAdd(d.Redeemed, f.Redeemed)
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Figures(today, today, func(f Figures) error {
			if store == "" || f.Store == store {
				ov.Today.add(storeFigures(f))
			}
			return nil
		}); err != nil {
			return err
		}
		// Breakage is measured over the whole history, not the period.
		return tx.Figures("", "", func(f Figures) error {
			issuedEver = SatAdd(issuedEver, f.Issued)
			expiredEver = SatAdd(expiredEver, f.Expired)
			return nil
		})
	})
	if err != nil {
		return Overview{}, err
	}
	for _, d := range days {
		ov.Days = append(ov.Days, *d)
	}
	sort.Slice(ov.Days, func(i, j int) bool { return ov.Days[i].Day < ov.Days[j].Day })
	ov.Rules = RulesSnapshot{Version: doc.Version, Currency: doc.Currency}
	if ov.Total.Checkouts > 0 {
		ov.AverageOrder = ov.Total.Sales / ov.Total.Checkouts
	}
	if ov.Total.PointsIssued > 0 {
		r := ov.Total.PointsRedeemed * 1000 / ov.Total.PointsIssued
		ov.RedemptionPermille = &r
	}
	if issuedEver > 0 {
		ov.BreakagePermille = min(expiredEver*1000/issuedEver, 1000)
	}
	ov.LiabilityValue = liabilityValue(rep.Liability, doc.Discount.Value, doc.Discount.Points, ov.BreakagePermille)
	return ov, nil
}

// maxOverviewDays bounds an overview's period (a year and a bit).
const maxOverviewDays = 400

// liabilityValue is points × value/per × (1000 − breakage)/1000 in minor
// units, rounded down, computed without overflow.
func liabilityValue(points, value, per, breakagePermille int64) int64 {
	if points <= 0 || value <= 0 || per <= 0 {
		return 0
	}
	v := new(big.Int).Mul(big.NewInt(points), big.NewInt(value))
	v.Mul(v, big.NewInt(1000-breakagePermille))
	v.Quo(v, new(big.Int).Mul(big.NewInt(per), big.NewInt(1000)))
	if !v.IsInt64() {
		return 1<<63 - 1
	}
	return v.Int64()
}
