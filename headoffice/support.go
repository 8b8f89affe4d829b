package headoffice

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/rules"
)

// What support staff do to members and cards from the console. Each change
// is one transaction with its audit entry, and goes down the feeds to the
// terminals of the member's stores (blocks to every terminal).

// MaxAdjust bounds one correction from head office, either way.
const MaxAdjust int64 = 1_000_000

// AdjustMember adds points (negative to take them back) to a member's
// balance, for reason, as operator by. A correction may not take the balance
// below zero, nor be made to a merged member.
func (o *Office) AdjustMember(ctx context.Context, id string, points int64, reason, by string) (Member, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case points == 0 || points > MaxAdjust || points < -MaxAdjust:
		return Member{}, fmt.Errorf("%w: an adjustment is 1 to %d points either way", ErrInvalid, MaxAdjust)
	case reason == "" || len(reason) > 200:
		return Member{}, fmt.Errorf("%w: an adjustment needs a reason (up to 200 characters)", ErrInvalid)
	}
	now := o.now().UTC()
	var out Member
	err := o.store.Update(ctx, func(tx Tx) error {
		ms, err := tx.LockMembers([]string{id})
		if err != nil {
			return err
		}
		m, ok := ms[id]
		switch {
		case !ok:
			return fmt.Errorf("%w: member %s", ErrNotFound, id)
		case m.MergedInto != "":
			return fmt.Errorf("%w: member %s was merged into %s; adjust that one", ErrInvalid, id, m.MergedInto)
		case m.Balance+points < 0:
			return fmt.Errorf("%w: the balance is %d; taking %d would make it negative", ErrInvalid, m.Balance, -points)
		}
		before := m.Balance
		m.Balance += points
		if m.Lots == nil {
			m.Lots = map[string]int64{}
		}
		if points > 0 {
			rules.Lots(m.Lots).Add(now.Format("2006-01"), points)
		} else {
			rules.Lots(m.Lots).Take(-points)
		}
		if err := tx.PutMember(m); err != nil {
			return err
		}
		// Head office's corrections are figures of their own "store", so
		// that the report's points add up to the balances.
		if err := tx.AddFigures([]Figures{{Terminal: ConsoleTerminal, Store: ConsoleTerminal, Day: now.Format(time.DateOnly), Adjusted: points}}, nil); err != nil {
			return err
		}
		out = m
		return o.audit(tx, Change{Operator: by, Action: "member.adjust", Subject: "member " + id,
			Before: fmt.Sprintf("balance %d", before), After: fmt.Sprintf("balance %d (%+d)", m.Balance, points), Reason: reason})
	})
	return out, err
}

// ConsoleTerminal is the terminal and store head office's own corrections
// are counted under in the figures.
const ConsoleTerminal = "headoffice"

// SetCardBlocked blocks or unblocks member's card, for reason. A blocked
// card is refused at every terminal once the blocklist reaches it.
func (o *Office) SetCardBlocked(ctx context.Context, member, card string, blocked bool, reason, by string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 200 {
		return fmt.Errorf("%w: blocking or unblocking a card needs a reason (up to 200 characters)", ErrInvalid)
	}
	return o.store.Update(ctx, func(tx Tx) error {
		c, ok, err := tx.Card(card)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: no card %s", ErrNotFound, cardnum.Mask(card))
		}
		if c.Member != member {
			return fmt.Errorf("%w: card %s is not member %s's", ErrInvalid, cardnum.Mask(card), member)
		}
		if c.Blocked == blocked {
			return nil
		}
		c.Blocked = blocked
		if err := tx.PutCard(card, c, true); err != nil {
			return err
		}
		state := map[bool]string{true: "blocked", false: "active"}
		action := map[bool]string{true: "card.block", false: "card.unblock"}
		return o.audit(tx, Change{Operator: by, Action: action[blocked], Subject: "member " + c.Member,
			Before: "card " + cardnum.Mask(card) + " " + state[!blocked], After: "card " + cardnum.Mask(card) + " " + state[blocked], Reason: reason})
	})
}

// MemberDetail is a member as the console shows it: the record, each card
// with its state, and the changes made to it.
type MemberDetail struct {
	Member
	CardStates []CardState
	Changes    []Change
}

// CardState is one of a member's cards.
type CardState struct {
	Number  string // the full number, for the forms; pages show Masked
	Masked  string
	Blocked bool
}

// Member returns a member with its cards and its last changes.
func (o *Office) Member(ctx context.Context, id string) (MemberDetail, error) {
	var d MemberDetail
	err := o.store.View(ctx, func(tx ReadTx) error {
		ms, err := tx.Members([]string{id})
		if err != nil {
			return err
		}
		m, ok := ms[id]
		if !ok {
			return fmt.Errorf("%w: member %s", ErrNotFound, id)
		}
		d.Member = m
		cards, err := tx.Cards(m.Cards)
		if err != nil {
			return err
		}
		for _, n := range m.Cards {
			d.CardStates = append(d.CardStates, CardState{Number: n, Masked: cardnum.Mask(n), Blocked: cards[n].Blocked})
		}
		return nil
	})
	if err != nil {
		return d, err
	}
	d.Changes, err = o.AuditLog(ctx, "member "+id, 50)
	return d, err
}

// MemberHit is one member a search found.
type MemberHit struct {
	ID, Name, Email, Tier, Status string
	Balance                       int64
	Card                          string // masked: the card matched, or the first
}

// maxHits bounds a search's answer; minSearch is the shortest part of a
// name or email searched for (shorter ones match too much to be of use,
// and no index serves them).
const (
	maxHits   = 50
	minSearch = 3
)

// SearchMembers finds members by card number or member id (exactly), or by
// a part of at least three characters of their name or email (any case),
// up to maxHits of them, by id.
func (o *Office) SearchMembers(ctx context.Context, q string) ([]MemberHit, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, nil
	}
	if len(q) > 100 {
		return nil, fmt.Errorf("%w: a search is up to 100 characters", ErrInvalid)
	}
	var hits []MemberHit
	hit := func(m Member, card string) MemberHit {
		if card == "" && len(m.Cards) > 0 {
			card = m.Cards[0]
		}
		masked := ""
		if card != "" {
			masked = cardnum.Mask(card)
		}
		return MemberHit{ID: m.ID, Name: m.Name, Email: m.Email, Tier: m.Tier, Status: m.Status, Balance: m.Balance, Card: masked}
	}
	err := o.store.View(ctx, func(tx ReadTx) error {
		if c, ok, err := tx.Card(q); err != nil {
			return err
		} else if ok {
			ms, err := tx.Members([]string{c.Member})
			if err != nil {
				return err
			}
			if m, ok := ms[c.Member]; ok {
				hits = append(hits, hit(m, q))
				return nil
			}
		}
		ms, err := tx.Members([]string{q})
		if err != nil {
			return err
		}
		if m, ok := ms[q]; ok {
			hits = append(hits, hit(m, ""))
			return nil
		}
		if utf8.RuneCountInString(q) < minSearch {
			return fmt.Errorf("%w: type at least %d characters of a name or email, or a whole card number or member id", ErrInvalid, minSearch)
		}
		found, err := tx.FindMembers(strings.ToLower(q), maxHits)
		for _, m := range found {
			hits = append(hits, hit(m, ""))
		}
		return err
	})
	sort.Slice(hits, func(i, j int) bool { return hits[i].ID < hits[j].ID })
	return slices.Clip(hits), err
}

// maxCard bounds a card number, as the terminals do.
const maxCard = 64

func checkCardNumber(card string) error {
	if card == "" || len(card) > maxCard || strings.ContainsFunc(card, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%w: a card number is 1 to %d characters with no space", ErrInvalid, maxCard)
	}
	return nil
}

// ReplaceCard gives a member a new card in place of one lost or worn out:
// the new card is the member's, the old one is blocked at every terminal,
// and the member keeps balance and history.
func (o *Office) ReplaceCard(ctx context.Context, member, old, card, reason, by string) error {
	reason = strings.TrimSpace(reason)
	switch {
	case checkCardNumber(card) != nil:
		return checkCardNumber(card)
	case card == old:
		return fmt.Errorf("%w: the new card is the old one", ErrInvalid)
	case reason == "" || len(reason) > 200:
		return fmt.Errorf("%w: replacing a card needs a reason (up to 200 characters)", ErrInvalid)
	}
	return o.store.Update(ctx, func(tx Tx) error {
		ms, err := tx.LockMembers([]string{member})
		if err != nil {
			return err
		}
		m, ok := ms[member]
		switch {
		case !ok:
			return fmt.Errorf("%w: member %s", ErrNotFound, member)
		case !slices.Contains(m.Cards, old):
			return fmt.Errorf("%w: card %s is not member %s's", ErrInvalid, cardnum.Mask(old), member)
		}
		if _, taken, err := tx.Card(card); err != nil {
			return err
		} else if taken {
			return fmt.Errorf("%w: card %s is in use already", ErrInvalid, cardnum.Mask(card))
		}
		oc, _, err := tx.Card(old)
		if err != nil {
			return err
		}
		if err := tx.PutCard(old, Card{Member: member, Blocked: true}, !oc.Blocked); err != nil {
			return err
		}
		if err := tx.PutCard(card, Card{Member: member}, false); err != nil {
			return err
		}
		m.Cards = append(m.Cards, card)
		if err := tx.PutMember(m); err != nil {
			return err
		}
		return o.audit(tx, Change{Operator: by, Action: "card.replace", Subject: "member " + member,
			Before: "card " + cardnum.Mask(old) + " active", After: "card " + cardnum.Mask(old) + " blocked, card " + cardnum.Mask(card) + " active", Reason: reason})
	})
}

// ExportMember returns what head office holds of a member, for the member
// who asks for their data, and records who exported it.
func (o *Office) ExportMember(ctx context.Context, id, by string) (MemberDetail, error) {
	d, err := o.Member(ctx, id)
	if err != nil {
		return d, err
	}
	d.Changes, err = o.AuditLog(ctx, "member "+id, 10_000)
	if err != nil {
		return d, err
	}
	err = o.store.Update(ctx, func(tx Tx) error {
		return o.audit(tx, Change{Operator: by, Action: "member.export", Subject: "member " + id, After: "exported"})
	})
	return d, err
}
