package syncserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/rules"
	"github.com/offline-loyalty/terminal/sync/hqstore"
	"github.com/offline-loyalty/terminal/sync/syncproto"
)

// This file is head office's ledger: ingesting a terminal's events and
// applying them to the authoritative members.

// errChain is a batch refused because an event does not follow the stored
// head of the terminal's chain (altered, deleted or reordered history).
var errChain = errors.New("hash chain broken")

// batch is an upstream message's events, decoded: parsing and checking each
// event's own hash is pure and the bulk of the work, so it is done on all
// cores before, not inside, the write transaction every connection shares,
// and while the connection's previous batch commits.
type batch struct {
	raws   []json.RawMessage
	events []ledger.Event
	errs   []error
}

func decodeBatch(raws []json.RawMessage) batch {
	events, errs := decodeAll(raws)
	return batch{raws: raws, events: events, errs: errs}
}

// merge returns b's events followed by next's, in new slices.
func (b batch) merge(next batch) batch {
	return batch{raws: slices.Concat(b.raws, next.raws), events: slices.Concat(b.events, next.events), errs: slices.Concat(b.errs, next.errs)}
}

// ingest verifies and stores a batch of one terminal database's events in one
// transaction and returns the highest sequence now durable for it. Events at
// or below the stored head are duplicates: acked, not applied again. An event
// past head+1 is a gap: the batch stops there and the terminal resends from
// the ack. An event that does not link to the head is refused and flagged.
func (s *Server) ingest(terminal, store, epoch string, b batch) (uint64, error) {
	now := s.now()
	raws, events, decodeErrs := b.raws, b.events, b.errs
	var ack uint64
	var refused error
	var touched []*hqstore.Member // the members written, with their stores
	err := s.db.Batch(func(tx *hqstore.Tx) error {
		refused = nil
		chain, err := tx.Chain(terminal, epoch)
		if err != nil {
			return err
		}
		// Members touched by the batch are read once and written once.
		members := map[string]*hqstore.Member{}
		for i, raw := range raws {
			e := events[i]
			if err := decodeErrs[i]; err != nil {
				refused = fmt.Errorf("%w: %v", errMalformedEvent, err)
				break
			}
			if e.Epoch != epoch {
				refused = fmt.Errorf("%w: event of epoch %s on a session of epoch %s", errMalformedEvent, e.Epoch, epoch)
				break
			}
			if e.Seq <= chain.LastSeq {
				if stored := tx.Event(terminal, epoch, e.Seq); !bytes.Equal(stored, raw) {
					if err := tx.AddFlag(hqstore.Flag{Time: now, Kind: "conflicting_duplicate", Terminal: terminal, Epoch: epoch, Seq: e.Seq,
						Detail: "a resent event differs from the one stored"}); err != nil {
						return err
					}
				}
				continue
			}
			if e.Seq > chain.LastSeq+1 {
				break
			}
			if err := ledger.Follows(e, chain.LastSeq, chain.LastHash); err != nil {
				if err := tx.AddFlag(hqstore.Flag{Time: now, Kind: "chain_break", Terminal: terminal, Epoch: epoch, Seq: e.Seq,
					Detail: err.Error()}); err != nil {
					return err
				}
				refused = fmt.Errorf("%w at seq %d: %v", errChain, e.Seq, err)
				break
			}
			if err := tx.PutEvent(terminal, epoch, e.Seq, raw); err != nil {
				return err
			}
			if err := apply(tx, members, e, terminal, store, now); err != nil {
				return err
			}
			chain = hqstore.Chain{LastSeq: e.Seq, LastHash: e.Hash}
		}
		touched = touched[:0]
		for _, m := range members {
			if err := tx.PutMember(*m); err != nil {
				return err
			}
			touched = append(touched, m)
		}
		ack = chain.LastSeq
		return tx.PutChain(terminal, epoch, chain)
	})
	if err != nil {
		return 0, err
	}
	// A member's feed entries are at its stores, or at all stores while it
	// has none (hqstore.PutMember): only those terminals are woken.
	stores := map[string]bool{}
	for _, m := range touched {
		if len(m.Stores) == 0 {
			s.changed()
			return ack, refused
		}
		for _, st := range m.Stores {
			stores[st] = true
		}
	}
	s.changedStores(stores)
	return ack, refused
}

var errMalformedEvent = errors.New("malformed event")

// decodeAll decodes a batch's events on all cores.
func decodeAll(raws []json.RawMessage) ([]ledger.Event, []error) {
	events := make([]ledger.Event, len(raws))
	errs := make([]error, len(raws))
	workers := min(runtime.GOMAXPROCS(0), len(raws))
	var wg stdsync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(raws); i += workers {
				events[i], errs[i] = ledger.Decode(raws[i])
			}
		}()
	}
	wg.Wait()
	return events, errs
}

// apply moves the authoritative member by one event. Members are taken from
// and left in the batch's cache; the caller writes them.
func apply(tx *hqstore.Tx, members map[string]*hqstore.Member, e ledger.Event, terminal, store string, now time.Time) error {
	m := members[e.Member]
	if m == nil {
		mm, ok, err := tx.Member(e.Member)
		if err != nil {
			return err
		}
		if !ok {
			// Enrolled at a terminal (or an event for a member head office
			// has not imported): the event creates the member.
			mm = hqstore.Member{ID: e.Member, Status: "active", Enrolled: e.Time, Tier: e.Tier}
		}
		m = &mm
		members[e.Member] = m
	}
	if store != "" && !contains(m.Stores, store) {
		m.Stores = append(m.Stores, store)
	}
	if e.Card != "" && !contains(m.Cards, e.Card) && e.Type != ledger.CardReplace {
		m.Cards = append(m.Cards, e.Card)
		if err := tx.PutCard(e.Card, hqstore.Card{Member: m.ID}, false); err != nil {
			return err
		}
	}
	if decision(e) {
		// Expiry and the tier review are decided on every terminal that
		// knows the member, under a ref derived from the decision: the
		// first to arrive counts, the others are kept in their chains but
		// change nothing.
		if contains(m.Decided, e.Ref) {
			return tx.AddFlag(hqstore.Flag{Time: now, Kind: "duplicate_decision", Terminal: terminal, Epoch: e.Epoch, Seq: e.Seq,
				Member: m.ID, Detail: fmt.Sprintf("%s %s was applied from another terminal", e.Type, e.Ref)})
		}
		m.Decided = append(m.Decided, e.Ref)
	}
	month := e.Time.UTC().Format("2006-01")
	switch e.Type {
	case ledger.Enroll:
		m.Name, m.Email, m.Enrolled, m.Birthday = e.Name, e.Email, e.Time, e.Birthday
		if e.Tier != "" {
			m.Tier = e.Tier
		}
	case ledger.Earn:
		addSpend(m, month, e.Amount)
		if e.Time.After(m.LastVisit) {
			m.LastVisit = e.Time
		}
	case ledger.Void, ledger.Refund:
		addSpend(m, month, -e.Amount)
	case ledger.TierChange:
		m.Tier = e.Tier
	case ledger.CardReplace:
		old, _, err := tx.Card(e.Card)
		if err != nil {
			return err
		}
		old.Member, old.Blocked = m.ID, true
		if err := tx.PutCard(e.Card, old, true); err != nil {
			return err
		}
		if err := tx.PutCard(e.NewCard, hqstore.Card{Member: m.ID}, false); err != nil {
			return err
		}
		if !contains(m.Cards, e.Card) {
			m.Cards = append(m.Cards, e.Card)
		}
		m.Cards = append(m.Cards, e.NewCard)
	}
	m.Balance += e.Points
	if e.Points != 0 {
		if m.Lots == nil {
			m.Lots = map[string]int64{}
		}
		if e.Points > 0 {
			rules.Lots(m.Lots).Add(month, e.Points)
		} else {
			rules.Lots(m.Lots).Take(-e.Points)
		}
	}
	if m.Balance < 0 && e.Points < 0 {
		if err := tx.AddFlag(hqstore.Flag{Time: now, Kind: "negative_balance", Terminal: terminal, Epoch: e.Epoch, Seq: e.Seq,
			Member: m.ID, Balance: m.Balance, Detail: fmt.Sprintf("%s of %d points took the balance to %d", e.Type, -e.Points, m.Balance)}); err != nil {
			return err
		}
	}
	return nil
}

func addSpend(m *hqstore.Member, month string, amount int64) {
	if m.Months == nil {
		m.Months = map[string]int64{}
	}
	m.Months[month] += amount
	m.Lifetime += amount
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// snapshot is a member as sent to a terminal whose durable sequence (in its
// current epoch) is asOf, with the spend of the months a rolling 12-month
// window can still include.
func snapshot(m hqstore.Member, asOf uint64, now time.Time) syncproto.Member {
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

// decision reports whether the event is a terminal's decision on the member's
// account rather than a purchase: an expiry, or a tier review's downgrade.
func decision(e ledger.Event) bool {
	return e.Type == ledger.Expire || (e.Type == ledger.TierChange && strings.HasPrefix(e.Ref, "review:"))
}
