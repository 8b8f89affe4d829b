package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/offline-loyalty/terminal/agent/store"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/money"
	"github.com/offline-loyalty/terminal/rules"
)

// Housekeeping is what one run of expiry and the tier review did.
type Housekeeping struct {
	Expired    int   `json:"expired"`    // expire events written
	Points     int64 `json:"points"`     // points they took
	Downgraded int   `json:"downgraded"` // tier_change events of the review
	// Deferred counts members left for a later run because this terminal's
	// view of them is not current (older than the rules' stale_after, and
	// the link not current): a terminal that reports to head office only
	// expires or downgrades on a fresh balance.
	Deferred int `json:"deferred"`
}

// housekeepingTask is one decision a run found due.
type housekeepingTask struct {
	member, card string
	expire       *rules.Expiring
	review       string // the review day, for a downgrade
}

// errNotDue is a task that stopped being due between the scan and its write.
var errNotDue = errors.New("no longer due")

// Expire writes the expire events that are due (both expiry policies) and the
// downgrades of the tier review, each as its own idempotent operation whose
// ref is derived from the decision ("expire:M-…:2025-10",
// "review:M-…:2027-01-01"): a second run, here or on another terminal of the
// same member, writes nothing new, and head office applies each once.
func (a *Agent) Expire(ctx context.Context) (Housekeeping, error) {
	var h Housekeeping
	tasks, err := a.dueTasks(&h)
	if err != nil {
		return h, err
	}
	for _, t := range tasks {
		if err := ctx.Err(); err != nil {
			return h, err
		}
		var err error
		if t.expire != nil {
			err = a.expireLot(ctx, t, &h)
		} else {
			err = a.reviewTier(ctx, t, &h)
		}
		if err != nil && !errors.Is(err, errNotDue) {
			return h, fmt.Errorf("member %s: %w", t.member, err)
		}
	}
	return h, nil
}

// dueTasks scans the members, in a read transaction, for what is due now.
func (a *Agent) dueTasks(h *Housekeeping) ([]housekeepingTask, error) {
	doc, now := a.Rules(), a.now().In(a.loc)
	review, hasReview := doc.ReviewDay(now)
	var tasks []housekeepingTask
	err := a.st.View(func(tx *store.Tx) error {
		reports := tx.Meta("store") != ""
		return tx.ForEach(store.Members, func(_ string, raw []byte) error {
			var m memberRecord
			if err := m.UnmarshalBinary(raw); err != nil {
				return fmt.Errorf("%w: member: %v", store.ErrCorrupt, err)
			}
			if len(m.Cards) == 0 {
				return nil
			}
			due := doc.Expiries(m.ID, m.Lots, m.Balance, m.LastVisit, now)
			down := hasReview && reviewDowngrades(doc, &m, review, a.loc)
			if len(due) == 0 && !down {
				return nil
			}
			if reports && !a.fresh(&m, now, doc.OfflineLimit.StaleAfter.Duration) {
				h.Deferred++
				return nil
			}
			for i := range due {
				tasks = append(tasks, housekeepingTask{member: m.ID, card: m.Cards[0], expire: &due[i]})
			}
			if down {
				tasks = append(tasks, housekeepingTask{member: m.ID, card: m.Cards[0], review: review})
			}
			return nil
		})
	})
	return tasks, err
}

// reviewDowngrades reports whether the review of day takes the member down:
// their tier was reached before it and their spend over the 12 months before
// its month no longer qualifies.
func reviewDowngrades(doc *rules.Document, m *memberRecord, day string, loc *time.Location) bool {
	at, err := time.ParseInLocation(time.DateOnly, day, loc)
	if err != nil || !m.TierSince.Before(at) || !m.Enrolled.Before(at) {
		return false
	}
	q := doc.Qualify(reviewSpend(m, at))
	return doc.Rank(q.ID) < doc.Rank(m.Tier)
}

// reviewSpend is the member's qualifying spend over the 12 months before the
// review's month.
func reviewSpend(m *memberRecord, at time.Time) int64 {
	if m.Months == nil {
		return m.Spend12m
	}
	return rules.RollingSpend(m.Months, at.AddDate(0, 0, -at.Day()))
}

// expireLot writes one expire event, rechecking inside the write that it is
// still due.
func (a *Agent) expireLot(ctx context.Context, t housekeepingTask, h *Housekeeping) error {
	var took int64 // set only when this run writes the event, not when a stored result is returned
	_, _, err := a.do(ctx, t.expire.Ref, "expire", func(o *op, co *checkoutRecord) (any, error) {
		m, err := o.member(t.member)
		if err != nil {
			return nil, err
		}
		var due *rules.Expiring
		for _, e := range o.doc.Expiries(m.ID, m.Lots, m.Balance, m.LastVisit, o.now.In(o.a.loc)) {
			if e.Ref == t.expire.Ref {
				due = &e
			}
		}
		if due == nil || due.Points <= 0 {
			return nil, errNotDue
		}
		e := ledger.Event{Type: ledger.Expire, Member: m.ID, Card: t.card, Points: -due.Points, Ref: due.Ref, Reason: due.Reason}
		if err := o.appendEvent(&e); err != nil {
			return nil, err
		}
		if err := o.applyToMember(m, &e); err != nil {
			return nil, err
		}
		if err := o.updateDay(func(d *dayRecord, _ *HourStats) {
			d.Expired += due.Points
			d.Liability -= due.Points
		}); err != nil {
			return nil, err
		}
		took = due.Points
		return Result{Ref: due.Ref, Type: string(ledger.Expire), Member: m.ID, Points: e.Points, Balance: m.Balance, Seq: e.Seq}, nil
	})
	if err == nil && took > 0 {
		h.Expired++
		h.Points += took
	}
	return err
}

// reviewTier writes one downgrade of the tier review.
func (a *Agent) reviewTier(ctx context.Context, t housekeepingTask, h *Housekeeping) error {
	ref := "review:" + t.member + ":" + t.review
	wrote := false
	_, _, err := a.do(ctx, ref, "review", func(o *op, co *checkoutRecord) (any, error) {
		m, err := o.member(t.member)
		if err != nil {
			return nil, err
		}
		if !reviewDowngrades(o.doc, m, t.review, o.a.loc) {
			return nil, errNotDue
		}
		at, _ := time.ParseInLocation(time.DateOnly, t.review, o.a.loc)
		spend := reviewSpend(m, at)
		tier := o.doc.Qualify(spend)
		e := ledger.Event{Type: ledger.TierChange, Member: m.ID, Card: t.card, Ref: ref, Tier: tier.ID,
			Reason: fmt.Sprintf("review %s: 12-month spend %s %s", t.review, money.Format(spend, o.doc.Currency), o.doc.Currency)}
		if err := o.appendEvent(&e); err != nil {
			return nil, err
		}
		if err := o.addMetaInt("tier/"+m.Tier, -1); err != nil {
			return nil, err
		}
		if err := o.addMetaInt("tier/"+tier.ID, 1); err != nil {
			return nil, err
		}
		m.Tier, m.TierSince = tier.ID, o.now
		if err := o.applyToMember(m, &e); err != nil {
			return nil, err
		}
		wrote = true
		return Result{Ref: ref, Type: string(ledger.TierChange), Member: m.ID, Balance: m.Balance, Seq: e.Seq}, nil
	})
	if err == nil && wrote {
		h.Downgraded++
	}
	return err
}

// member loads a member record by id.
func (o *op) member(id string) (*memberRecord, error) {
	var m memberRecord
	ok, err := o.tx.Get(store.Members, id, &m)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: member %s is missing", store.ErrCorrupt, id)
	}
	return &m, nil
}
