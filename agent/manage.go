package agent

import (
	"context"
	"fmt"

	"github.com/offline-loyalty/terminal/agent/store"
	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/ledger"
)

// maxReason bounds an adjustment's reason.
const maxReason = 200

// Adjust corrects a member's balance by a signed number of points, with a
// reason (a manager's operation: the UI asks for the manager PIN first). A
// correction below zero is refused unless the rules allow negative balances.
func (a *Agent) Adjust(ctx context.Context, r AdjustRequest) (_ Result, err error) {
	defer func() { a.done(opAdjust, err) }()
	if err := checkCard(r.Card); err != nil {
		return Result{}, err
	}
	if err := checkRef(r.Ref); err != nil {
		return Result{}, err
	}
	if r.Points == 0 || r.Points > maxPoints || r.Points < -maxPoints {
		return Result{}, fmt.Errorf("%w: an adjustment is a non-zero number of points up to %d", ErrInvalid, maxPoints)
	}
	if r.Reason == "" {
		return Result{}, fmt.Errorf("%w: an adjustment needs a reason", ErrInvalid)
	}
	if err := checkText("reason", r.Reason, maxReason); err != nil {
		return Result{}, err
	}
	if r.Ref == "" {
		r.Ref = newRef()
	}
	approver, err := a.approver(ctx, r.ManagerPIN)
	if err != nil {
		return Result{}, err
	}
	a.resolveCard(ctx, r.Card)
	return decodeResult[Result](a.do(ctx, r.Ref, "adjust", func(o *op, co *checkoutRecord) (any, error) {
		approvedBy, err := o.approve(approver, fmt.Errorf("an adjustment of %+d points to a balance", r.Points))
		if err != nil {
			return nil, err
		}
		m, err := usableMember(o.tx, r.Card)
		if err != nil {
			return nil, err
		}
		if err := o.checkClawback(m, r.Points); err != nil {
			return nil, err
		}
		e := ledger.Event{Type: ledger.Adjust, Member: m.ID, Card: r.Card, Points: r.Points, Ref: r.Ref, Reason: r.Reason, Approver: approvedBy}
		if err := o.appendEvent(&e); err != nil {
			return nil, err
		}
		if err := o.applyToMember(m, &e); err != nil {
			return nil, err
		}
		if err := o.updateDay(func(d *dayRecord, _ *HourStats) { d.Liability += e.Points }); err != nil {
			return nil, err
		}
		if co.Member == "" {
			co.Member, co.Card, co.Day, co.Time = m.ID, r.Card, o.day, o.now
		}
		return Result{Ref: r.Ref, Type: string(ledger.Adjust), Member: m.ID, Points: e.Points, Balance: m.Balance, Seq: e.Seq}, nil
	}))
}

// ReplaceCard blocks a lost or damaged card and gives its member a new one.
// The balance belongs to the member, so it moves with them.
func (a *Agent) ReplaceCard(ctx context.Context, r ReplaceCardRequest) (_ Result, err error) {
	defer func() { a.done(opReplaceCard, err) }()
	if err := checkCard(r.Card); err != nil {
		return Result{}, err
	}
	if err := checkCard(r.NewCard); err != nil {
		return Result{}, err
	}
	if err := checkRef(r.Ref); err != nil {
		return Result{}, err
	}
	if r.Card == r.NewCard {
		return Result{}, fmt.Errorf("%w: the new card is the old one", ErrInvalid)
	}
	if r.Ref == "" {
		r.Ref = newRef()
	}
	a.resolveCard(ctx, r.Card)
	return decodeResult[Result](a.do(ctx, r.Ref, "card_replace", func(o *op, co *checkoutRecord) (any, error) {
		m, err := usableMember(o.tx, r.Card)
		if err != nil {
			return nil, err
		}
		if ok, err := o.tx.Get(store.Cards, r.NewCard, &cardRecord{}); err != nil {
			return nil, err
		} else if ok {
			return nil, fmt.Errorf("%w: %s", ErrCardExists, cardnum.Mask(r.NewCard))
		}
		e := ledger.Event{Type: ledger.CardReplace, Member: m.ID, Card: r.Card, NewCard: r.NewCard, Ref: r.Ref}
		if err := o.appendEvent(&e); err != nil {
			return nil, err
		}
		if err := o.tx.Put(store.Cards, r.Card, cardRecord{Member: m.ID, Blocked: true}); err != nil {
			return nil, err
		}
		if err := o.tx.Put(store.Cards, r.NewCard, cardRecord{Member: m.ID}); err != nil {
			return nil, err
		}
		m.Cards = append(m.Cards, r.NewCard)
		if err := o.applyToMember(m, &e); err != nil {
			return nil, err
		}
		if co.Member == "" {
			co.Member, co.Card, co.Day, co.Time = m.ID, r.NewCard, o.day, o.now
		}
		return Result{Ref: r.Ref, Type: string(ledger.CardReplace), Member: m.ID, Balance: m.Balance, Seq: e.Seq}, nil
	}))
}
