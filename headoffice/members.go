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
		return nil
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
