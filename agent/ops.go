package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/agent/store"
	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/money"
	"github.com/offline-loyalty/terminal/rules"
)

// op is one operation inside a write transaction: it reads, decides, then
// appends its event and updates the records that derive from it.
type op struct {
	a   *Agent
	tx  *store.Tx
	now time.Time
	doc *rules.Document
	day string
}

// do runs fn as one idempotent operation on the checkout ref: if the
// operation opKey was done on that checkout before, its first result is
// returned and nothing is written; otherwise fn's event, records and stats
// and the result are committed in one transaction before do returns. fn
// updates the checkout record it is given; do stores it with the result.
//
// The result comes back as fn returned it when this call wrote it (fresh),
// and as its stored JSON otherwise; decodeResult takes either.
func (a *Agent) do(ctx context.Context, ref, opKey string, fn func(o *op, co *checkoutRecord) (any, error)) (fresh any, stored []byte, err error) {
	now := a.now()
	doc := a.Rules()
	start := time.Now()
	err = a.st.Write(ctx, func(tx *store.Tx) error {
		// The write may run more than once (a shared commit that aborted is
		// retried alone): each run starts from nothing.
		fresh, stored = nil, nil
		var co checkoutRecord
		if _, err := tx.Get(store.Checkouts, ref, &co); err != nil {
			return err
		}
		if raw, ok := co.Results[opKey]; ok {
			stored = raw
			return nil
		}
		o := &op{a: a, tx: tx, now: now, doc: doc, day: now.In(a.loc).Format(time.DateOnly)}
		res, err := fn(o, &co)
		if err != nil {
			return err
		}
		b, err := json.Marshal(res)
		if err != nil {
			return fmt.Errorf("encode result: %w", err)
		}
		co.Ref = ref
		if co.Results == nil {
			co.Results = map[string]json.RawMessage{}
		}
		co.Results[opKey] = b
		fresh, stored = res, b
		return tx.Put(store.Checkouts, ref, &co)
	})
	if err != nil {
		return nil, nil, err
	}
	if fresh == nil {
		a.metrics.replayed.Inc()
	} else {
		a.metrics.commit.Observe(time.Since(start).Seconds())
	}
	return fresh, stored, nil
}

// decodeResult returns do's result as a T: the value itself when it is
// fresh, else decoded from its stored JSON (a retry's answer is the first
// one's, read back).
func decodeResult[T any](fresh any, stored []byte, err error) (T, error) {
	var v T
	if err != nil {
		return v, err
	}
	if f, ok := fresh.(T); ok {
		return f, nil
	}
	if err := json.Unmarshal(stored, &v); err != nil {
		return v, fmt.Errorf("%w: stored result: %v", store.ErrCorrupt, err)
	}
	return v, nil
}

// appendEvent gives e its place in the chain (sequence, id, clocks, identity,
// hashes) and stores it. It is an operation's first write.
func (o *op) appendEvent(e *ledger.Event) error {
	last, head, lastHLC, err := chainHead(o.tx)
	if err != nil {
		return err
	}
	seq := last + 1
	hlc := ledger.NextHLC(lastHLC, o.now)
	e.Terminal = o.tx.Meta("terminal")
	e.Store = o.tx.Meta("store")
	e.Epoch = o.tx.Meta("epoch")
	e.Seq = seq
	e.ID = e.Epoch + "-" + strconv.FormatUint(seq, 10)
	e.Time = o.now
	e.HLC = hlc
	e.RulesVersion = o.doc.Version
	if e.Amount != 0 && e.Currency == "" {
		e.Currency = o.doc.Currency
	}
	e.PrevHash = head
	// An event head office (or this ledger's own check at open) would
	// refuse is never written.
	if err := e.Check(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return o.tx.AppendEvent(seq, e.Seal(head))
}

// chainHead returns the last event's sequence and hash and the clock to
// continue from: the later of the last event's and any clock observed from
// head office since. They are read from the last event rather than kept in
// metadata, so that an operation writes one page fewer.
func chainHead(tx *store.Tx) (seq uint64, hash string, hlc uint64, err error) {
	seq, b := tx.LastEvent()
	hlc = tx.MetaUint("hlc")
	if b == nil {
		return 0, "", hlc, nil
	}
	hash, lastHLC, ok := ledger.Head(b)
	if !ok {
		return 0, "", 0, fmt.Errorf("%w: last event %d: unreadable", store.ErrCorrupt, seq)
	}
	return seq, hash, max(hlc, lastHLC), nil
}

// applyToMember moves the member's balance by the event's points, keeps the
// expiry lots in step (points gained are a lot of this month, points lost
// leave the oldest lots first) and saves the member.
func (o *op) applyToMember(m *memberRecord, e *ledger.Event) error {
	if e.Points != 0 {
		m.Balance += e.Points
		m.Pending += e.Points
		if m.Lots == nil {
			m.Lots = rules.Lots{}
		}
		if e.Points > 0 {
			m.Lots.Add(o.month(o.now), e.Points)
		} else {
			m.Lots.Take(-e.Points)
		}
	}
	return o.tx.Put(store.Members, m.ID, m)
}

// month is t's month in the store's time zone, YYYY-MM.
func (o *op) month(t time.Time) string { return t.In(o.a.loc).Format("2006-01") }

// addSpend adds qualifying spend (negative for returns) to the month of the
// purchase at, and recomputes the rolling 12-month spend.
func (o *op) addSpend(m *memberRecord, at time.Time, amount int64) {
	if m.Months == nil {
		m.Months = map[string]int64{}
		if m.Spend12m != 0 {
			m.Months[o.month(o.now)] = m.Spend12m // a record from before spend was kept by month
		}
	}
	m.Months[o.month(at)] += amount
	m.Lifetime += amount
	now := o.now.In(o.a.loc)
	oldest := time.Date(now.Year(), now.Month()-12, 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
	for k := range m.Months {
		if k < oldest {
			delete(m.Months, k) // no window will include it again
		}
	}
	m.Spend12m = rules.RollingSpend(m.Months, now)
}

// budgetsUsed reads what this terminal has given from the rules' budgets:
// points per budgeted campaign, and surprise points today.
func budgetsUsed(tx *store.Tx, doc *rules.Document, day string) (map[string]int64, int64) {
	var used map[string]int64
	for _, c := range doc.Campaigns {
		if c.Budget > 0 {
			if used == nil {
				used = map[string]int64{}
			}
			used[c.ID], _ = strconv.ParseInt(tx.Meta("campaign/"+c.ID), 10, 64)
		}
	}
	var surprise int64
	if doc.Surprise != nil {
		surprise, _ = strconv.ParseInt(tx.Meta("surprise/"+day), 10, 64)
	}
	return used, surprise
}

// spendBudgets records what an earn took from the budgets.
func (o *op) spendBudgets(res *rules.EarnResult) error {
	for _, c := range o.doc.Campaigns {
		if p := res.Campaigns[c.ID]; p > 0 && c.Budget > 0 {
			if err := o.addMetaInt("campaign/"+c.ID, p); err != nil {
				return err
			}
		}
	}
	if res.Surprise > 0 {
		return o.addMetaInt("surprise/"+o.day, res.Surprise)
	}
	return nil
}

func newRef() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error since Go 1.24
	return "R-" + hex.EncodeToString(b)
}

// Earn records a purchase and the points it earns.
func (a *Agent) Earn(ctx context.Context, r EarnRequest) (_ EarnResult, err error) {
	defer func() { a.done(opEarn, err) }()
	doc := a.Rules()
	amount, err := money.Parse(r.Amount, doc.Currency)
	if err != nil {
		return EarnResult{}, fmt.Errorf("%w: amount %q: %v", ErrInvalid, r.Amount, err)
	}
	if err := checkCard(r.Card); err != nil {
		return EarnResult{}, err
	}
	if err := checkRef(r.Ref); err != nil {
		return EarnResult{}, err
	}
	if err := checkItems(r.Items); err != nil {
		return EarnResult{}, err
	}
	if r.Ref == "" {
		r.Ref = newRef()
	}
	approver, err := a.approver(ctx, r.ManagerPIN)
	if err != nil {
		return EarnResult{}, err
	}
	a.resolveCard(ctx, r.Card)
	return decodeResult[EarnResult](a.do(ctx, r.Ref, "earn", func(o *op, co *checkoutRecord) (any, error) {
		// Checked here, after a retry's stored answer: a sale taken under
		// earlier rules still answers as it did.
		approvedBy, err := o.approve(approver, o.doc.CheckAmount(amount))
		if err != nil {
			return nil, err
		}
		m, err := usableMember(o.tx, r.Card)
		if err != nil {
			return nil, err
		}
		if co.Member != "" && co.Member != m.ID {
			return nil, fmt.Errorf("%w: ref %s belongs to another member's checkout", ErrInvalid, r.Ref)
		}
		if co.Voided {
			return nil, fmt.Errorf("%w: checkout %s was voided", ErrInvalid, r.Ref)
		}
		used, surprise := budgetsUsed(o.tx, o.doc, o.day)
		d, err := draw(o.tx)
		if err != nil {
			return nil, err
		}
		res := o.doc.EvaluateEarn(rules.Checkout{Ref: r.Ref, Amount: amount, Items: r.Items, Time: o.now.In(o.a.loc), Store: o.tx.Meta("store"),
			CampaignUsed: used, SurpriseUsed: surprise, Draw: d, Drawn: true}, m.ruleMember(), o.a.minorPerUnit())
		e := ledger.Event{Type: ledger.Earn, Member: m.ID, Card: r.Card, Points: res.Points, Amount: amount, Ref: r.Ref, Lines: toLedgerLines(res.Lines),
			Approver: approvedBy}
		if err := o.appendEvent(&e); err != nil {
			return nil, err
		}
		firstToday := m.LastDay != o.day
		m.LastDay = o.day
		// A member who redeemed comes back on a later day, within the
		// window or not; a purchase on the day of the redemption (the same
		// checkout, often) is not a return.
		returned := false
		if !m.RedeemOpen.IsZero() && m.RedeemOpen.In(o.a.loc).Format(time.DateOnly) != o.day {
			returned = o.now.Sub(m.RedeemOpen) <= rewardReturnWindow
			m.RedeemOpen = time.Time{}
		}
		o.addSpend(m, o.now, amount)
		m.LastVisit = o.now
		m.Checkouts++
		if err := o.applyToMember(m, &e); err != nil {
			return nil, err
		}
		co.Member, co.Card, co.EarnEvent, co.Day, co.Time = m.ID, r.Card, e.ID, o.day, o.now
		co.Amount, co.Earned = amount, res.Points
		if err := o.countEarn(&e, firstToday, returned, res.WelcomeBack); err != nil {
			return nil, err
		}
		if err := o.spendBudgets(&res); err != nil {
			return nil, err
		}
		up, err := o.upgradeTier(m, r.Card, r.Ref)
		if err != nil {
			return nil, err
		}
		return EarnResult{Ref: r.Ref, Member: m.ID, Points: e.Points, Lines: e.Lines, Balance: m.Balance, Seq: e.Seq,
			NewTier: up.ID, NewTierName: up.Name}, nil
	}))
}

// Quote evaluates what a checkout would earn for the member, as Earn would
// now, without writing anything, and without the surprise: a checkout's
// draw is known only as it is made.
func (a *Agent) Quote(ctx context.Context, r EarnRequest) (Quote, error) {
	doc := a.Rules()
	amount, err := money.Parse(r.Amount, doc.Currency)
	if err != nil {
		return Quote{}, fmt.Errorf("%w: amount %q: %v", ErrInvalid, r.Amount, err)
	}
	if why := doc.CheckAmount(amount); why != nil {
		approver, err := a.approver(ctx, r.ManagerPIN)
		if err != nil {
			return Quote{}, err
		}
		if approver == "" {
			return Quote{}, fmt.Errorf("%w: %v", ErrApproval, why)
		}
	}
	if err := checkCard(r.Card); err != nil {
		return Quote{}, err
	}
	if err := checkItems(r.Items); err != nil {
		return Quote{}, err
	}
	a.resolveCard(ctx, r.Card)
	now := a.now()
	var q Quote
	err = a.st.View(func(tx *store.Tx) error {
		m, err := usableMember(tx, r.Card)
		if err != nil {
			return err
		}
		used, surprise := budgetsUsed(tx, doc, now.In(a.loc).Format(time.DateOnly))
		res := doc.EvaluateEarn(rules.Checkout{Ref: r.Ref, Amount: amount, Items: r.Items, Time: now.In(a.loc), Store: tx.Meta("store"),
			CampaignUsed: used, SurpriseUsed: surprise}, m.ruleMember(), a.minorPerUnit())
		q = Quote{Member: m.ID, Tier: m.Tier, Points: res.Points, Lines: toLedgerLines(res.Lines), Eligible: res.Eligible,
			Balance: m.Balance, RulesVersion: doc.Version}
		return nil
	})
	return q, err
}

func toLedgerLines(ls []rules.Line) []ledger.Line {
	out := make([]ledger.Line, len(ls))
	for i, l := range ls {
		out[i] = ledger.Line{Label: l.Label, Points: l.Points}
	}
	return out
}

// upgradeTier moves the member up when the checkout's spend qualifies them
// for a higher tier, with a tier_change event in the same transaction.
// Tiers never go down at the till: that is head office's review.
func (o *op) upgradeTier(m *memberRecord, card, ref string) (up rules.Tier, err error) {
	t, ok := o.doc.Upgrade(m.Tier, m.Spend12m)
	if !ok {
		return rules.Tier{}, nil
	}
	e := ledger.Event{Type: ledger.TierChange, Member: m.ID, Card: card, Ref: ref, Tier: t.ID,
		Reason: fmt.Sprintf("12-month spend %s %s", money.Format(m.Spend12m, o.doc.Currency), o.doc.Currency)}
	if err := o.appendEvent(&e); err != nil {
		return rules.Tier{}, err
	}
	if err := o.addMetaInt("tier/"+m.Tier, -1); err != nil {
		return rules.Tier{}, err
	}
	if err := o.addMetaInt("tier/"+t.ID, 1); err != nil {
		return rules.Tier{}, err
	}
	m.Tier, m.TierSince = t.ID, o.now
	return t, o.applyToMember(m, &e)
}

// maxPoints bounds any number of points a request may name, far above any
// balance, so that converting points to money can never overflow.
const maxPoints = 1_000_000_000_000

// maxItems bounds a basket pushed by a POS.
const maxItems = 500

func checkItems(items []rules.Item) error {
	if len(items) > maxItems {
		return fmt.Errorf("%w: basket has %d items, limit %d", ErrInvalid, len(items), maxItems)
	}
	for i, it := range items {
		if it.Amount < 0 || it.Amount > money.MaxAmount || it.Quantity < 0 {
			return fmt.Errorf("%w: items[%d]: negative or oversized amount or quantity", ErrInvalid, i)
		}
		if err := checkText(fmt.Sprintf("items[%d].sku", i), it.SKU, maxRefLen); err != nil {
			return err
		}
		if err := checkText(fmt.Sprintf("items[%d].category", i), it.Category, maxRefLen); err != nil {
			return err
		}
	}
	return nil
}

// burn is a redeem, discount or donation: validated against the balance and
// the offline limit, then written.
type burn struct {
	tier    string // the tier a reward requires, "" for none
	typ     ledger.Type
	card    string
	ref     string
	points  int64
	value   int64
	reward  string
	charity string
}

func (a *Agent) burn(ctx context.Context, b burn) (Result, error) {
	if err := checkCard(b.card); err != nil {
		return Result{}, err
	}
	if err := checkRef(b.ref); err != nil {
		return Result{}, err
	}
	if b.ref == "" {
		b.ref = newRef()
	}
	a.resolveCard(ctx, b.card)
	return decodeResult[Result](a.do(ctx, b.ref, string(b.typ), func(o *op, co *checkoutRecord) (any, error) {
		m, err := usableMember(o.tx, b.card)
		if err != nil {
			return nil, err
		}
		if !o.doc.TierAllows(m.Tier, b.tier) {
			return nil, fmt.Errorf("%w: %s is for %s members and up", ErrTierRequired, b.reward, o.doc.Tier(b.tier).Name)
		}
		if b.points > m.Balance {
			return nil, fmt.Errorf("%w: balance %d, needs %d", ErrInsufficientPoints, m.Balance, b.points)
		}
		if err := o.checkOfflineLimit(m, b.points); err != nil {
			return nil, err
		}
		if co.Member != "" && co.Member != m.ID {
			return nil, fmt.Errorf("%w: ref %s belongs to another member's checkout", ErrInvalid, b.ref)
		}
		if co.Voided {
			return nil, fmt.Errorf("%w: checkout %s was voided", ErrInvalid, b.ref)
		}
		e := ledger.Event{Type: b.typ, Member: m.ID, Card: b.card, Points: -b.points, Amount: b.value,
			Ref: b.ref, Reward: b.reward, Charity: b.charity}
		if err := o.appendEvent(&e); err != nil {
			return nil, err
		}
		if m.BurnDay != o.day {
			m.BurnDay, m.BurnedDay = o.day, 0
		}
		m.BurnedDay += b.points
		if b.typ != ledger.Donate && m.RedeemOpen.IsZero() {
			m.RedeemOpen = o.now
			if err := o.countRedeemer(); err != nil {
				return nil, err
			}
		}
		if err := o.applyToMember(m, &e); err != nil {
			return nil, err
		}
		if co.Member == "" {
			co.Member, co.Card, co.Day, co.Time = m.ID, b.card, o.day, o.now
		}
		co.Burned += b.points
		if err := o.countBurn(&e); err != nil {
			return nil, err
		}
		return Result{Ref: b.ref, Type: string(b.typ), Member: m.ID, Points: e.Points, Value: b.value,
			Reward: b.reward, Charity: b.charity, Balance: m.Balance, Seq: e.Seq}, nil
	}))
}

// checkOfflineLimit refuses a burn over the daily limit while the terminal's
// view of the member is older than the rules allow. A terminal that never
// joined a head office is the whole of its program: its view is the truth,
// and no limit applies.
func (o *op) checkOfflineLimit(m *memberRecord, points int64) error {
	lim := o.doc.OfflineLimit
	if lim.PointsPerDay <= 0 || o.tx.Meta("store") == "" {
		return nil
	}
	if o.a.fresh(m, o.now, lim.StaleAfter.Duration) {
		return nil
	}
	used := int64(0)
	if m.BurnDay == o.day {
		used = m.BurnedDay
	}
	if used+points > lim.PointsPerDay {
		return fmt.Errorf("%w: %d of %d points left today for this member while head office's balance is not current",
			ErrOfflineLimit, max(0, lim.PointsPerDay-used), lim.PointsPerDay)
	}
	return nil
}

// Redeem burns points for a catalog reward or, with Points, as money off.
func (a *Agent) Redeem(ctx context.Context, r RedeemRequest) (_ Result, err error) {
	defer func() { a.done(opRedeem, err) }()
	doc := a.Rules()
	switch {
	case r.Reward != "" && r.Points != 0:
		return Result{}, fmt.Errorf("%w: give a reward or points, not both", ErrInvalid)
	case r.Reward != "":
		rw, ok := doc.Reward(r.Reward)
		if !ok {
			return Result{}, fmt.Errorf("%w %q", ErrUnknownReward, r.Reward)
		}
		if !rw.Available(a.now().In(a.loc).Format(time.DateOnly)) {
			return Result{}, fmt.Errorf("%w: %s runs %s to %s", ErrRewardUnavailable, rw.ID, or(rw.From, "any day"), or(rw.To, "any day"))
		}
		return a.burn(ctx, burn{typ: ledger.Redeem, card: r.Card, ref: r.Ref, points: rw.Points, reward: rw.ID, tier: rw.Tier})
	case r.Points > maxPoints:
		return Result{}, fmt.Errorf("%w: %d points is more than any balance can hold", ErrInvalid, r.Points)
	case r.Points > 0:
		d := doc.Discount
		if d.Points <= 0 || d.Value <= 0 {
			return Result{}, fmt.Errorf("%w: points as discount is not offered", ErrInvalid)
		}
		if r.Points < d.MinPoints {
			return Result{}, fmt.Errorf("%w: points as discount needs at least %d points", ErrInvalid, d.MinPoints)
		}
		if r.Points%d.Points != 0 {
			return Result{}, fmt.Errorf("%w: points as discount goes in steps of %d points", ErrInvalid, d.Points)
		}
		value := mulDiv(r.Points, d.Value, d.Points)
		return a.burn(ctx, burn{typ: ledger.BurnDiscount, card: r.Card, ref: r.Ref, points: r.Points, value: value})
	default:
		return Result{}, fmt.Errorf("%w: give a reward id or a positive number of points", ErrInvalid)
	}
}

func or(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

// Donate gives points to a charity partner.
func (a *Agent) Donate(ctx context.Context, r DonateRequest) (_ Result, err error) {
	defer func() { a.done(opDonate, err) }()
	c, ok := a.Rules().Charity(r.Charity)
	if !ok {
		return Result{}, fmt.Errorf("%w %q", ErrUnknownCharity, r.Charity)
	}
	if r.Points <= 0 || r.Points > maxPoints {
		return Result{}, fmt.Errorf("%w: points to donate must be between 1 and %d", ErrInvalid, maxPoints)
	}
	return a.burn(ctx, burn{typ: ledger.Donate, card: r.Card, ref: r.Ref, points: r.Points, charity: c.ID})
}

// Void cancels a checkout of today's shift in full: its earned points are
// clawed back and its burned points given back.
func (a *Agent) Void(ctx context.Context, r VoidRequest) (_ Result, err error) {
	defer func() { a.done(opVoid, err) }()
	if r.Ref == "" {
		return Result{}, fmt.Errorf("%w: ref is required", ErrInvalid)
	}
	if err := checkRef(r.Ref); err != nil {
		return Result{}, err
	}
	approver, err := a.approver(ctx, r.ManagerPIN)
	if err != nil {
		return Result{}, err
	}
	return decodeResult[Result](a.do(ctx, r.Ref, "void", func(o *op, co *checkoutRecord) (any, error) {
		m, err := o.checkoutMember(co, r.Ref)
		if err != nil {
			return nil, err
		}
		if co.Voided {
			return nil, fmt.Errorf("%w: checkout %s is voided already", ErrVoid, r.Ref)
		}
		if co.Day != o.day {
			return nil, fmt.Errorf("%w: checkout %s is from %s, not today's shift: use refund", ErrVoid, r.Ref, co.Day)
		}
		delta := -(co.Earned - co.Clawed) + co.Burned
		approvedBy, err := o.approve(approver, o.doc.CheckVoid(delta))
		if err != nil {
			return nil, err
		}
		if err := o.checkClawback(m, delta); err != nil {
			return nil, err
		}
		e := ledger.Event{Type: ledger.Void, Member: m.ID, Card: co.Card, Points: delta, Amount: co.Amount - co.Refunded,
			Ref: r.Ref, Target: co.EarnEvent, Reason: "void", Approver: approvedBy}
		if err := o.appendEvent(&e); err != nil {
			return nil, err
		}
		o.addSpend(m, co.Time, -e.Amount)
		if err := o.applyToMember(m, &e); err != nil {
			return nil, err
		}
		co.Voided = true
		if err := o.countReversal(&e, co); err != nil {
			return nil, err
		}
		return Result{Ref: r.Ref, Type: string(ledger.Void), Member: m.ID, Points: e.Points, Balance: m.Balance, Seq: e.Seq}, nil
	}))
}

// Refund records returned goods: the points earned on the returned part of
// the checkout are clawed back pro rata, rounding so that returning
// everything claws back exactly what was earned.
func (a *Agent) Refund(ctx context.Context, r RefundRequest) (_ Result, err error) {
	defer func() { a.done(opRefund, err) }()
	amount, err := money.Parse(r.Amount, a.Rules().Currency)
	if err != nil {
		return Result{}, fmt.Errorf("%w: amount %q: %v", ErrInvalid, r.Amount, err)
	}
	if r.Ref == "" {
		return Result{}, fmt.Errorf("%w: ref is required", ErrInvalid)
	}
	if err := checkRef(r.Ref); err != nil {
		return Result{}, err
	}
	if err := checkRef(r.Return); err != nil {
		return Result{}, err
	}
	key := "refund:" + strconv.FormatInt(amount, 10)
	if r.Return != "" {
		key = "refund:return:" + r.Return
	}
	approver, err := a.approver(ctx, r.ManagerPIN)
	if err != nil {
		return Result{}, err
	}
	return decodeResult[Result](a.do(ctx, r.Ref, key, func(o *op, co *checkoutRecord) (any, error) {
		m, err := o.checkoutMember(co, r.Ref)
		if err != nil {
			return nil, err
		}
		switch {
		case co.Voided:
			return nil, fmt.Errorf("%w: checkout %s was voided", ErrRefund, r.Ref)
		case co.Amount == 0:
			return nil, fmt.Errorf("%w: checkout %s had no purchase", ErrRefund, r.Ref)
		case amount > co.Amount-co.Refunded:
			return nil, fmt.Errorf("%w: only %s of checkout %s is left to return", ErrRefund,
				money.Format(co.Amount-co.Refunded, o.doc.Currency), r.Ref)
		}
		approvedBy, err := o.approve(approver, o.doc.CheckRefund(amount))
		if err != nil {
			return nil, err
		}
		clawTotal := mulDiv(co.Earned, co.Refunded+amount, co.Amount)
		claw := clawTotal - co.Clawed
		if err := o.checkClawback(m, -claw); err != nil {
			return nil, err
		}
		e := ledger.Event{Type: ledger.Refund, Member: m.ID, Card: co.Card, Points: -claw, Amount: amount,
			Ref: r.Ref, Target: co.EarnEvent, Reason: r.Return, Approver: approvedBy}
		if err := o.appendEvent(&e); err != nil {
			return nil, err
		}
		o.addSpend(m, co.Time, -amount)
		if err := o.applyToMember(m, &e); err != nil {
			return nil, err
		}
		co.Refunded += amount
		co.Clawed = clawTotal
		if err := o.countReversal(&e, co); err != nil {
			return nil, err
		}
		return Result{Ref: r.Ref, Type: string(ledger.Refund), Member: m.ID, Points: e.Points, Value: amount, Balance: m.Balance, Seq: e.Seq}, nil
	}))
}

// checkoutMember returns the member of a checkout that void or refund
// reverses; a ref with no purchase or burn on this terminal is unknown.
func (o *op) checkoutMember(co *checkoutRecord, ref string) (*memberRecord, error) {
	if co.Member == "" || (co.Amount == 0 && co.Burned == 0) {
		return nil, fmt.Errorf("%w %q", ErrUnknownCheckout, ref)
	}
	var m memberRecord
	ok, err := o.tx.Get(store.Members, co.Member, &m)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: checkout %s points to missing member %s", store.ErrCorrupt, ref, co.Member)
	}
	return &m, nil
}

// checkClawback refuses a reversal that would take the balance below zero when
// the rules do not allow members to owe points.
func (o *op) checkClawback(m *memberRecord, delta int64) error {
	if delta >= 0 || o.doc.Refund.AllowNegative || m.Balance+delta >= 0 {
		return nil
	}
	return fmt.Errorf("%w: the points were already spent (balance %d, clawback %d) and the rules do not allow a negative balance",
		ErrInsufficientPoints, m.Balance, -delta)
}

// mulDiv returns floor(a*b/c) for non-negative a, b and positive c without
// overflowing in the product.
func mulDiv(a, b, c int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(c) {
		// The quotient does not fit: callers keep a*b/c ≤ max(a, b), so this
		// cannot happen for valid inputs.
		panic("agent: mulDiv overflow")
	}
	q, _ := bits.Div64(hi, lo, uint64(c))
	return int64(q)
}

// Enroll creates a member with a card at the till; it works offline.
func (a *Agent) Enroll(ctx context.Context, r EnrollRequest) (_ Result, err error) {
	defer func() { a.done(opEnroll, err) }()
	if err := checkCard(r.Card); err != nil {
		return Result{}, err
	}
	if err := checkRef(r.Ref); err != nil {
		return Result{}, err
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"name", r.Name, maxNameLen}, {"email", r.Email, maxContact}, {"phone", r.Phone, maxNameLen}} {
		if err := checkText(f.name, f.v, f.max); err != nil {
			return Result{}, err
		}
	}
	if r.Email != "" && (!strings.Contains(r.Email, "@") || strings.ContainsAny(r.Email, " ,;")) {
		return Result{}, fmt.Errorf("%w: email %q is not an address", ErrInvalid, r.Email)
	}
	if r.Phone != "" && strings.Trim(r.Phone, "+0123456789 -()") != "" {
		return Result{}, fmt.Errorf("%w: phone %q has characters a phone number does not", ErrInvalid, r.Phone)
	}
	birthday, err := parseBirthday(r.Birthday)
	if err != nil {
		return Result{}, err
	}
	if r.Ref == "" {
		r.Ref = newRef()
	}
	a.resolveCard(ctx, r.Card)
	return decodeResult[Result](a.do(ctx, r.Ref, "enroll", func(o *op, co *checkoutRecord) (any, error) {
		if ok, err := o.tx.Get(store.Cards, r.Card, &cardRecord{}); err != nil {
			return nil, err
		} else if ok {
			return nil, fmt.Errorf("%w: %s", ErrCardExists, cardnum.Mask(r.Card))
		}
		id := make([]byte, 8)
		_, _ = rand.Read(id)
		tier := o.doc.StartTier()
		seq, _ := o.tx.LastEvent()
		m := &memberRecord{ID: "M-" + hex.EncodeToString(id), Name: r.Name, Email: r.Email, Phone: r.Phone, Consent: r.Consent,
			Tier: tier, TierSince: o.now, Status: statusActive, Cards: []string{r.Card}, Enrolled: o.now, AsOfSeq: seq, Birthday: birthday}
		e := ledger.Event{Type: ledger.Enroll, Member: m.ID, Card: r.Card, Ref: r.Ref, Tier: tier,
			Name: r.Name, Email: r.Email, Phone: r.Phone, Consent: r.Consent, Birthday: birthday}
		if err := o.appendEvent(&e); err != nil {
			return nil, err
		}
		if err := o.tx.Put(store.Cards, r.Card, cardRecord{Member: m.ID}); err != nil {
			return nil, err
		}
		if err := o.applyToMember(m, &e); err != nil {
			return nil, err
		}
		if err := o.countEnroll(tier); err != nil {
			return nil, err
		}
		if co.Member == "" {
			co.Member, co.Card, co.Day, co.Time = m.ID, r.Card, o.day, o.now
		}
		return Result{Ref: r.Ref, Type: string(ledger.Enroll), Member: m.ID, Balance: m.Balance, Seq: e.Seq}, nil
	}))
}

// parseBirthday accepts MM-DD or YYYY-MM-DD and keeps the day of the year.
func parseBirthday(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	layout := "01-02"
	if len(s) == len(time.DateOnly) {
		layout = time.DateOnly
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return "", fmt.Errorf("%w: birthday %q is not MM-DD or YYYY-MM-DD", ErrInvalid, s)
	}
	return t.Format("01-02"), nil
}
