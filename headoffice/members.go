package headoffice

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/rules"
	"github.com/offline-loyalty/terminal/sync/syncproto"
)

// maxImport bounds a members CSV.
const maxImport = 256 << 20

// importHeader is the members CSV's header.
const importHeader = "card,member,name,email,tier,balance"

// ImportMembers loads members and cards from CSV with the header
// card,member,name,email,tier,balance (balance in points). An existing member
// is updated and its balance replaced; the whole file is one transaction, so
// a bad row changes nothing.
func (o *Office) ImportMembers(ctx context.Context, r io.Reader) (int, error) {
	cr := csv.NewReader(io.LimitReader(r, maxImport))
	cr.FieldsPerRecord = 6
	head, err := cr.Read()
	if err != nil {
		return 0, fmt.Errorf("%w: members CSV: %v", ErrInvalid, err)
	}
	if strings.Join(head, ",") != importHeader {
		return 0, fmt.Errorf("%w: members CSV header must be %s", ErrInvalid, importHeader)
	}
	type row struct {
		card, member, name, email, tier string
		balance                         int64
	}
	var rows []row
	ids := map[string]bool{}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("%w: members CSV: %v", ErrInvalid, err)
		}
		bal, err := strconv.ParseInt(rec[5], 10, 64)
		if err != nil || rec[0] == "" || rec[1] == "" {
			return 0, fmt.Errorf("%w: members CSV line %d: needs a card, a member id and an integer balance", ErrInvalid, line)
		}
		rows = append(rows, row{rec[0], rec[1], rec[2], rec[3], rec[4], bal})
		ids[rec[1]] = true
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	now := o.now()
	err = o.store.Update(ctx, func(tx Tx) error {
		locked, err := tx.LockMembers(sorted)
		if err != nil {
			return err
		}
		members := make(map[string]*Member, len(sorted))
		for _, r := range rows {
			m := members[r.member]
			if m == nil {
				mm, ok := locked[r.member]
				if !ok {
					mm = Member{ID: r.member, Status: "active", Enrolled: now}
				}
				m = &mm
				members[r.member] = m
			}
			m.Name, m.Email, m.Tier, m.Balance = r.name, r.email, r.tier, r.balance
			if m.Tier == "" {
				m.Tier = "bronze"
			}
			if !slices.Contains(m.Cards, r.card) {
				m.Cards = append(m.Cards, r.card)
			}
			c, _, err := tx.Card(r.card)
			if err != nil {
				return err
			}
			c.Member = r.member
			if err := tx.PutCard(r.card, c, false); err != nil {
				return err
			}
		}
		for _, id := range sorted {
			if err := tx.PutMember(*members[id]); err != nil {
				return err
			}
		}
		return o.audit(tx, Change{Operator: Actor(ctx), Action: "members.import", Subject: "members",
			After: fmt.Sprintf("%d rows, %d members", len(rows), len(sorted))})
	})
	if err != nil {
		return 0, err
	}
	return len(rows), nil
}

// MemberView is a member as head office's admin verbs show it.
type MemberView struct {
	syncproto.Member
	Email string `json:"email,omitempty"`
}

// MemberByCard returns the authoritative member a card belongs to.
func (o *Office) MemberByCard(ctx context.Context, card string) (MemberView, error) {
	var v MemberView
	err := o.store.View(ctx, func(tx ReadTx) error {
		c, ok, err := tx.Card(card)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: no member has card %s", ErrNotFound, cardnum.Mask(card))
		}
		ms, err := tx.Members([]string{c.Member})
		if err != nil {
			return err
		}
		m, ok := ms[c.Member]
		if !ok {
			return fmt.Errorf("%w: member %s", ErrNotFound, c.Member)
		}
		v = MemberView{Member: snapshot(m, 0, o.now()), Email: m.Email}
		if c.Blocked {
			v.Status = "blocked"
		}
		return nil
	})
	return v, err
}

// snapshot is a member as sent to a terminal whose durable sequence (in its
// current epoch) is asOf, with the spend of the months a rolling 12-month
// window can still include.
func snapshot(m Member, asOf uint64, now time.Time) syncproto.Member {
	now = now.UTC()
	oldest := time.Date(now.Year(), now.Month()-12, 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
	var months map[string]int64
	for month, v := range m.Months {
		if month >= oldest {
			if months == nil {
				months = map[string]int64{}
			}
			months[month] = v
		}
	}
	return syncproto.Member{Member: m.ID, Name: m.Name, Cards: m.Cards, Tier: m.Tier, Balance: m.Balance,
		Spend12m: rules.RollingSpend(m.Months, now), Months: months, Birthday: m.Birthday, Lots: m.Lots,
		Lifetime: m.Lifetime, LastVisit: m.LastVisit, Enrolled: m.Enrolled, Status: m.Status, AsOfSeq: asOf, Taken: now}
}

// MergeMembers makes from part of into: the same person enrolled twice (a
// duplicate_enrollment flag). from's balance, lots, spend and cards move to
// into; from stays, with status "merged" and no balance, so that both
// histories are kept, and its events still to come from terminals apply to
// into. Both go down the member feeds: the terminals of their stores get
// into's card list and balance. The merge is recorded as a flag
// (member_merged) with who asked for it.
func (o *Office) MergeMembers(ctx context.Context, into, from, by string) (MemberView, error) {
	if into == "" || from == "" || into == from {
		return MemberView{}, fmt.Errorf("%w: merge two different members", ErrInvalid)
	}
	var out Member
	now := o.now()
	err := o.store.Update(ctx, func(tx Tx) error {
		ids := []string{into, from}
		sort.Strings(ids)
		locked, err := tx.LockMembers(ids)
		if err != nil {
			return err
		}
		a, okA := locked[into]
		b, okB := locked[from]
		switch {
		case !okA || !okB:
			return fmt.Errorf("%w: member %s or %s", ErrNotFound, into, from)
		case a.MergedInto != "" || b.MergedInto != "":
			return fmt.Errorf("%w: a member merged already is not merged again", ErrInvalid)
		}
		b0 := b.Balance
		bal := a.Balance + b.Balance
		if bal > MaxBalance || bal < -MaxBalance {
			return fmt.Errorf("%w: the merged balance would be out of range", ErrInvalid)
		}
		a.Balance, a.Lifetime = bal, SatAdd(a.Lifetime, b.Lifetime)
		for _, kv := range []struct {
			dst *map[string]int64
			src map[string]int64
		}{{&a.Lots, b.Lots}, {&a.Months, b.Months}} {
			for k, v := range kv.src {
				if *kv.dst == nil {
					*kv.dst = map[string]int64{}
				}
				(*kv.dst)[k] += v
			}
		}
		if b.LastVisit.After(a.LastVisit) {
			a.LastVisit = b.LastVisit
		}
		if b.Enrolled.Before(a.Enrolled) {
			a.Enrolled = b.Enrolled
		}
		for _, st := range b.Stores {
			if !slices.Contains(a.Stores, st) {
				a.Stores = append(a.Stores, st)
			}
		}
		a.Decided = append(a.Decided, b.Decided...)
		for _, card := range b.Cards {
			c, _, err := tx.Card(card)
			if err != nil {
				return err
			}
			c.Member = into
			if err := tx.PutCard(card, c, false); err != nil {
				return err
			}
			if !slices.Contains(a.Cards, card) {
				a.Cards = append(a.Cards, card)
			}
		}
		b.Status, b.MergedInto, b.Balance, b.Lots, b.Months, b.Lifetime, b.Cards = "merged", into, 0, nil, nil, 0, []string{}
		for _, m := range []Member{a, b} {
			if err := tx.PutMember(m); err != nil {
				return err
			}
		}
		out = a
		if err := o.audit(tx, Change{Operator: or(by, Actor(ctx)), Action: "member.merge", Subject: "member " + into,
			Before: fmt.Sprintf("balance %d; member %s balance %d", a.Balance-b0, from, b0), After: fmt.Sprintf("balance %d; %s merged into it", a.Balance, from)}); err != nil {
			return err
		}
		return tx.AddFlag(Flag{Time: now, Kind: "member_merged", Member: into,
			Detail: fmt.Sprintf("member %s merged into %s by %s", from, into, or(by, "an operator"))})
	})
	if err != nil {
		return MemberView{}, err
	}
	return MemberView{Member: snapshot(out, 0, now), Email: out.Email}, nil
}

func or(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}
