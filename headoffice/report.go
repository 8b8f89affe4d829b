package headoffice

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// StoreFigures are one store's figures for a period.
type StoreFigures struct {
	Store          string `json:"store"`
	Events         int64  `json:"events"`
	Checkouts      int64  `json:"checkouts"`
	Sales          int64  `json:"sales"`         // minor units, net of voids and refunds
	PointsIssued   int64  `json:"points_issued"` // net of the points voids and refunds took back
	PointsRedeemed int64  `json:"points_redeemed"`
	PointsDonated  int64  `json:"points_donated"`
	PointsAdjusted int64  `json:"points_adjusted"` // managers' corrections, signed
	PointsExpired  int64  `json:"points_expired"`
	Reversals      int64  `json:"reversals"` // voids and refunds
	Enrollments    int64  `json:"enrollments"`
	Members        int64  `json:"unique_members"`
}

// storeFigures are a terminal-day's figures as a store's.
func storeFigures(f Figures) StoreFigures {
	return StoreFigures{Store: f.Store, Events: f.Events, Checkouts: f.Checkouts, Sales: f.Sales, PointsIssued: f.Issued,
		PointsRedeemed: f.Redeemed, PointsDonated: f.Donated, PointsAdjusted: f.Adjusted, PointsExpired: f.Expired,
		Reversals: f.Reversals, Enrollments: f.Enrollments}
}

// add adds o's counts to s.
func (s *StoreFigures) add(o StoreFigures) {
	s.Events = SatAdd(s.Events, o.Events)
	s.Checkouts = SatAdd(s.Checkouts, o.Checkouts)
	s.Sales = SatAdd(s.Sales, o.Sales)
	s.PointsIssued = SatAdd(s.PointsIssued, o.PointsIssued)
	s.PointsRedeemed = SatAdd(s.PointsRedeemed, o.PointsRedeemed)
	s.PointsDonated = SatAdd(s.PointsDonated, o.PointsDonated)
	s.PointsAdjusted = SatAdd(s.PointsAdjusted, o.PointsAdjusted)
	s.PointsExpired = SatAdd(s.PointsExpired, o.PointsExpired)
	s.Reversals = SatAdd(s.Reversals, o.Reversals)
	s.Enrollments = SatAdd(s.Enrollments, o.Enrollments)
	s.Members = SatAdd(s.Members, o.Members)
}

// Report is the head-office report across stores.
type Report struct {
	From             string         `json:"from,omitempty"`
	To               string         `json:"to,omitempty"`
	Stores           []StoreFigures `json:"stores"`
	Terminals        int            `json:"terminals"`
	NegativeBalances []Flag         `json:"negative_balances"`
	ChainBreaks      []Flag         `json:"chain_breaks"`
	Other            []Flag         `json:"other_flags"`
	Liability        int64          `json:"liability_points"` // sum of all members' balances
}

// Report adds up the figures of the days (UTC) within [from, to]
// (YYYY-MM-DD, either may be empty) for store ("" for all). It reads the
// daily figures kept as events are applied, never the events.
func (o *Office) Report(ctx context.Context, from, to, store string) (Report, error) {
	return o.report(ctx, from, to, store, true)
}

// report is Report, with the liability summed over every member or left to
// the caller.
func (o *Office) report(ctx context.Context, from, to, store string, liability bool) (Report, error) {
	for _, d := range []string{from, to} {
		if d != "" {
			if _, err := time.Parse(time.DateOnly, d); err != nil {
				return Report{}, fmt.Errorf("%w: day %q is not YYYY-MM-DD", ErrInvalid, d)
			}
		}
	}
	rep := Report{From: from, To: to, Stores: []StoreFigures{}, NegativeBalances: []Flag{}, ChainBreaks: []Flag{}, Other: []Flag{}}
	figs := map[string]*StoreFigures{}
	err := o.store.View(ctx, func(tx ReadTx) error {
		if err := tx.Terminals(func(t Terminal) error {
			if store == "" || t.Store == store {
				rep.Terminals++
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Figures(from, to, func(f Figures) error {
			if store != "" && f.Store != store {
				return nil
			}
			s := figs[f.Store]
			if s == nil {
				s = &StoreFigures{Store: f.Store}
				figs[f.Store] = s
			}
			s.add(storeFigures(f))
			return nil
		}); err != nil {
			return err
		}
		unique, err := tx.UniqueMembers(from, to)
		if err != nil {
			return err
		}
		for st, n := range unique {
			if s := figs[st]; s != nil {
				s.Members = n
			}
		}
		if liability {
			if rep.Liability, err = tx.Liability(); err != nil {
				return err
			}
		}
		return tx.Flags(func(f Flag) error {
			switch f.Kind {
			case "negative_balance":
				rep.NegativeBalances = append(rep.NegativeBalances, f)
			case "chain_break":
				rep.ChainBreaks = append(rep.ChainBreaks, f)
			default:
				rep.Other = append(rep.Other, f)
			}
			return nil
		})
	})
	for _, f := range figs {
		rep.Stores = append(rep.Stores, *f)
	}
	sort.Slice(rep.Stores, func(i, j int) bool { return rep.Stores[i].Store < rep.Stores[j].Store })
	return rep, err
}

// Events calls fn with the exact bytes of every ingested event of terminal
// ("" for all), by terminal, epoch and sequence.
func (o *Office) Events(ctx context.Context, terminal string, fn func([]byte) error) error {
	return o.store.View(ctx, func(tx ReadTx) error { return tx.Events(terminal, fn) })
}

// Flags returns every flag raised, newest first, of kind ("" for all).
func (o *Office) Flags(ctx context.Context, kind string) ([]Flag, error) {
	var out []Flag
	err := o.store.View(ctx, func(tx ReadTx) error {
		return tx.Flags(func(f Flag) error {
			if kind == "" || f.Kind == kind {
				out = append(out, f)
			}
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out, err
}
