package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"time"

	"github.com/offline-loyalty/terminal/agent/store"
	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/rules"
)

// This file is the agent's side of the sync link: the outbox (the tail of the
// ledger past head office's ack) and the downstream feeds.

// outboxPrealloc and outboxSlab size OutboxAfter's allocations: a batch is
// usually a thousand events of a few hundred bytes.
const (
	outboxPrealloc = 1024
	outboxSlab     = 256 << 10
)

// OutboxAfter returns up to limit encoded events with a sequence above after,
// in order: the events to send to head office.
func (a *Agent) OutboxAfter(after uint64, limit int) ([][]byte, error) {
	out := make([][]byte, 0, min(limit, outboxPrealloc))
	var slab []byte // events are copied out of the transaction into shared slabs
	err := a.st.View(func(tx *store.Tx) error {
		tx.Events(after, func(_ uint64, b []byte) bool {
			if cap(slab)-len(slab) < len(b) {
				slab = make([]byte, 0, max(len(b), outboxSlab))
			}
			slab = append(slab, b...)
			out = append(out, slab[len(slab)-len(b):len(slab):len(slab)])
			return len(out) < limit
		})
		return nil
	})
	return out, err
}

// Acked returns the highest sequence head office has made durable.
func (a *Agent) Acked() uint64 {
	var v uint64
	_ = a.st.View(func(tx *store.Tx) error { v = tx.MetaUint("acked"); return nil })
	return v
}

// MarkAcked records head office's durable ack. Acks never move back, and an
// ack past the last written sequence is refused as a protocol error.
func (a *Agent) MarkAcked(seq uint64) error {
	now := a.now()
	return a.st.Write(context.Background(), func(tx *store.Tx) error {
		if seq <= tx.MetaUint("acked") {
			return nil
		}
		if last, _ := tx.LastEvent(); seq > last {
			return fmt.Errorf("ack %d is past the last event %d", seq, last)
		}
		if err := tx.SetMetaUint("acked", seq); err != nil {
			return err
		}
		return tx.SetMeta("last_sync", now.UTC().Format(time.RFC3339Nano))
	})
}

// OutboxSignal receives a value after commits that add events (at most one
// is buffered): the sync client's cue to send.
func (a *Agent) OutboxSignal() <-chan struct{} { return a.outbox }

// ObserveClock merges head office's hybrid logical clock into the terminal's.
func (a *Agent) ObserveClock(hlc uint64) {
	_ = a.st.Write(context.Background(), func(tx *store.Tx) error {
		if cur := tx.MetaUint("hlc"); ledger.ObserveHLC(cur, hlc) != cur {
			return tx.SetMetaUint("hlc", hlc)
		}
		return nil
	})
}

// Cursors returns the downstream feed positions applied so far.
func (a *Agent) Cursors() Cursors {
	c := Cursors{Rules: a.Rules().Version}
	_ = a.st.View(func(tx *store.Tx) error {
		c.Members, c.Blocked = tx.MetaUint("cursor_members"), tx.MetaUint("cursor_blocked")
		return nil
	})
	return c
}

// ApplyRules installs a rules document from head office if it is newer than
// the one in force. An invalid document is refused and changes nothing.
func (a *Agent) ApplyRules(doc []byte) error {
	d, err := rules.Parse(doc)
	if err != nil {
		return err
	}
	applied := false
	err = a.st.Write(context.Background(), func(tx *store.Tx) error {
		applied = false
		if d.Version <= a.Rules().Version {
			return nil
		}
		applied = true
		return tx.SetMeta("rules", string(doc))
	})
	if err != nil {
		return err
	}
	if applied {
		a.rules.Store(d)
		a.notify(Notice{Kind: NoticeStatus})
	}
	return nil
}

// ApplyMembers applies head office's member snapshots and advances the
// member-feed cursor, in one transaction.
func (a *Agent) ApplyMembers(ms []MemberSnapshot, cursor uint64) error {
	for _, s := range ms {
		if s.Member == "" {
			return errors.New("member snapshot without a member id")
		}
	}
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	included, err := a.includedPoints(ms)
	if err != nil {
		return err
	}
	return a.st.Write(context.Background(), func(tx *store.Tx) error {
		o := &op{a: a, tx: tx, now: a.now()}
		o.day = o.now.In(a.loc).Format(time.DateOnly)
		for i := range ms {
			if err := o.applySnapshot(&ms[i], included[ms[i].Member]); err != nil {
				return err
			}
		}
		if cursor > tx.MetaUint("cursor_members") {
			return tx.SetMetaUint("cursor_members", cursor)
		}
		return nil
	})
}

// includedPoints sums, per member, this terminal's events that a snapshot
// includes and the member's record does not yet (sequence in the record's
// AsOfSeq, the snapshot's AsOfSeq]. It reads in a read transaction, outside
// the writer, so that checkouts never wait on it; events in that range never
// change, and events written meanwhile come after it.
func (a *Agent) includedPoints(ms []MemberSnapshot) (map[string]int64, error) {
	type span struct{ lo, hi uint64 }
	spans := map[string]span{}
	sums := map[string]int64{}
	err := a.st.View(func(tx *store.Tx) error {
		last, _ := tx.LastEvent()
		lo, hi := uint64(math.MaxUint64), uint64(0)
		for _, s := range ms {
			var m memberRecord
			ok, err := tx.Get(store.Members, s.Member, &m)
			if err != nil {
				return err
			}
			top := min(s.AsOfSeq, last)
			if !ok || top <= m.AsOfSeq {
				continue
			}
			spans[s.Member] = span{m.AsOfSeq, top}
			lo, hi = min(lo, m.AsOfSeq), max(hi, top)
		}
		if len(spans) == 0 {
			return nil
		}
		var decodeErr error
		tx.Events(lo, func(seq uint64, b []byte) bool {
			if seq > hi {
				return false
			}
			member, points, ok := ledger.MemberPoints(b)
			if !ok {
				e, err := ledger.Decode(b)
				if err != nil {
					decodeErr = fmt.Errorf("%w: event %d: %v", store.ErrCorrupt, seq, err)
					return false
				}
				member, points = e.Member, e.Points
			}
			if sp, ok := spans[member]; ok && seq > sp.lo && seq <= sp.hi {
				sums[member] += points
			}
			return true
		})
		return decodeErr
	})
	return sums, err
}

// applySnapshot replaces the member's base with head office's balance and
// keeps, as pending, only this terminal's changes the snapshot does not
// include (included is the sum of those it includes that were pending).
func (o *op) applySnapshot(s *MemberSnapshot, included int64) error {
	var m memberRecord
	known, err := o.tx.Get(store.Members, s.Member, &m)
	if err != nil {
		return err
	}
	if known && (s.AsOfSeq < m.AsOfSeq || (!m.BaseAt.IsZero() && s.Taken.Before(m.BaseAt))) {
		return nil // older than what the terminal has
	}
	oldBalance, oldTier := m.Balance, m.Tier
	if !known {
		m = memberRecord{ID: s.Member}
	}
	if s.Tier != oldTier {
		m.TierSince = o.now // when head office's tier reached this terminal: a review spares it until the next
	}
	m.Name, m.Tier, m.Status = s.Name, s.Tier, s.Status
	if s.Birthday != "" {
		m.Birthday = s.Birthday
	}
	if m.Status == "" {
		m.Status = statusActive
	}
	if last, _ := o.tx.LastEvent(); s.AsOfSeq > m.AsOfSeq {
		m.AsOfSeq = min(s.AsOfSeq, last)
	}
	m.Pending -= included
	m.Base, m.BaseAt = s.Balance, s.Taken
	m.Balance = m.Base + m.Pending
	m.Spend12m, m.Lifetime, m.Enrolled = s.Spend12m, s.Lifetime, s.Enrolled
	if s.Months != nil {
		m.Months = maps.Clone(s.Months)
		m.Spend12m = rules.RollingSpend(m.Months, o.now.In(o.a.loc))
	}
	// Head office's lots replace the terminal's, so that every terminal
	// expires the same lots under the same refs; this terminal's events
	// past the snapshot are fitted on top (points gained count as earned
	// this month, points spent leave the oldest lots).
	if s.Lots != nil {
		m.Lots = rules.Lots(maps.Clone(s.Lots))
	}
	if m.Lots == nil {
		m.Lots = rules.Lots{}
	}
	m.Lots.Fit(m.Balance, o.month(o.now))
	if s.LastVisit.After(m.LastVisit) {
		m.LastVisit = s.LastVisit
	}
	for _, c := range s.Cards {
		var cr cardRecord
		if _, err := o.tx.Get(store.Cards, c, &cr); err != nil {
			return err
		}
		if cr.Member != s.Member {
			if err := o.tx.Put(store.Cards, c, cardRecord{Member: s.Member, Blocked: cr.Blocked}); err != nil {
				return err
			}
		}
	}
	m.Cards = s.Cards
	if err := o.tx.Put(store.Members, m.ID, &m); err != nil {
		return err
	}
	if d := m.Balance - oldBalance; d != 0 {
		if err := o.updateDay(func(day *dayRecord, _ *HourStats) { day.Liability += d }); err != nil {
			return err
		}
	}
	if !known || oldTier != m.Tier {
		if known {
			if err := o.addMetaInt("tier/"+oldTier, -1); err != nil {
				return err
			}
		}
		return o.addMetaInt("tier/"+m.Tier, 1)
	}
	return nil
}

// ApplyBlocked applies head office's blocklist changes and advances the
// blocklist cursor, in one transaction.
func (a *Agent) ApplyBlocked(bs []CardBlock, cursor uint64) error {
	return a.st.Write(context.Background(), func(tx *store.Tx) error {
		for _, b := range bs {
			var cr cardRecord
			if _, err := tx.Get(store.Cards, b.Card, &cr); err != nil {
				return err
			}
			cr.Blocked = b.Blocked
			if err := tx.Put(store.Cards, b.Card, cr); err != nil {
				return err
			}
		}
		if cursor > tx.MetaUint("cursor_blocked") {
			return tx.SetMetaUint("cursor_blocked", cursor)
		}
		return nil
	})
}

// resolveCard asks head office about a card this terminal does not know, when
// an online lookup is installed, within lookupBudget. Whatever happens, the
// operation then goes on with what the terminal knows.
func (a *Agent) resolveCard(ctx context.Context, card string) {
	a.mu.Lock()
	lookup := a.lookup
	a.mu.Unlock()
	if lookup == nil {
		return
	}
	known := false
	_ = a.st.View(func(tx *store.Tx) error {
		known, _ = tx.Get(store.Cards, card, &cardRecord{})
		return nil
	})
	if known {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, lookupBudget)
	defer cancel()
	snap, err := lookup(ctx, card)
	if err != nil || snap == nil {
		if err != nil {
			a.log.Info("online lookup failed", "card", cardnum.Mask(card), "err", err)
		}
		return
	}
	if err := a.ApplyMembers([]MemberSnapshot{*snap}, 0); err != nil {
		a.log.Warn("online lookup: applying snapshot", "card", cardnum.Mask(card), "err", err)
	}
}
