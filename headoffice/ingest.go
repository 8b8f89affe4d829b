package headoffice

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/rules"
)

// Ingest verifies and stores a batch of one terminal database's events,
// applies them to the members, and returns the highest sequence now durable
// for it. Events at or below the stored head are duplicates: acked, not
// applied again (one whose bytes differ is flagged). An event past head+1 is
// a gap: the batch stops there and the terminal resends from the ack. An
// event that does not link to the head is refused and flagged.
//
// A refused batch returns the ack of what was stored before the refusal and
// an error wrapping ErrChain or ErrMalformedEvent; any other error means
// nothing of the batch is known to be stored.
//
// terminal and store are the session's (the terminal that proved its key),
// whatever the events claim.
//
// Batches of different terminals that arrive while others are being written
// share one transaction (group commit): with thousands of terminals each
// sending an event at a time, a transaction and its statements per event
// would be the whole of the database's work.
func (o *Office) Ingest(ctx context.Context, terminal, store, epoch string, b ledger.Batch) (uint64, error) {
	c := &ingestCall{key: ChainKey{terminal, epoch}, store: store, batch: b, done: make(chan ingestReply, 1)}
	select {
	case o.ingestQ <- c:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-o.stop:
		return 0, errStopped
	}
	// Once queued the batch may be committed whatever happens here; a caller
	// that stops waiting is told nothing was stored, and its terminal
	// resends from what is durable.
	select {
	case r := <-c.done:
		return r.ack, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// errStopped is a call on a closed Office.
var errStopped = errors.New("head office is stopping")

// Group commit limits.
const (
	// ingestWorkers is how many groups are written at once. More write
	// smaller groups, and a transaction's cost is in its statements more
	// than in its rows: BenchmarkFanInPostgres gave a p99 ack of 78-87 ms
	// with 4, 60-63 ms with 2.
	ingestWorkers = 2
	// maxGroup and maxGroupEvents bound one group's transaction.
	maxGroup       = 256
	maxGroupEvents = 8000
	// ingestWait bounds the transaction of one group.
	ingestWait = 30 * time.Second
)

// ChainKey is one terminal database's chain: the terminal and its epoch.
type ChainKey struct{ Terminal, Epoch string }

type ingestCall struct {
	key   ChainKey
	store string
	batch ledger.Batch
	done  chan ingestReply
}

type ingestReply struct {
	ack uint64
	err error
}

// ingestWorker writes the queued batches, those that arrived during its
// previous transaction together, until the Office stops.
func (o *Office) ingestWorker() {
	defer o.workers.Done()
	for {
		var group []*ingestCall
		select {
		case c := <-o.ingestQ:
			group = append(group, c)
		case <-o.stop:
			return
		}
		events := group[0].batch.Len()
	drain:
		for len(group) < maxGroup && events < maxGroupEvents {
			select {
			case c := <-o.ingestQ:
				group = append(group, c)
				events += c.batch.Len()
			default:
				break drain
			}
		}
		o.ingestGroup(group)
	}
}

// ingestGroup writes a group in one transaction. If the transaction fails,
// each batch is written again alone, so that one that cannot be written
// fails alone.
func (o *Office) ingestGroup(group []*ingestCall) {
	ctx, cancel := context.WithTimeout(context.Background(), ingestWait)
	defer cancel()
	start := time.Now()
	results, err := o.ingestTx(ctx, group)
	if err != nil {
		o.metrics.failed.Inc()
	} else {
		o.metrics.commit.Observe(time.Since(start).Seconds())
		events := 0
		for i, c := range group {
			events += c.batch.Len()
			for _, f := range results[i].flags {
				o.metrics.flags.WithLabelValues(f.Kind).Inc()
			}
		}
		o.metrics.groupEvents.Observe(float64(events))
	}
	if err != nil && len(group) > 1 {
		for _, c := range group {
			o.ingestGroup([]*ingestCall{c})
		}
		return
	}
	for i, c := range group {
		if err != nil {
			c.done <- ingestReply{err: err}
			continue
		}
		c.done <- ingestReply{ack: results[i].ack, err: results[i].refused}
	}
}

// ingestTx applies and stores a group's batches in one transaction: the
// chains and members they concern are locked together (each kind in key
// order), the batches planned in arrival order on the shared state, and
// each member written once.
func (o *Office) ingestTx(ctx context.Context, group []*ingestCall) ([]ingestResult, error) {
	now := o.now()
	keySet := map[ChainKey]bool{}
	idSet := map[string]bool{}
	for _, c := range group {
		keySet[c.key] = true
		for i, e := range c.batch.Events {
			if c.batch.Errs[i] == nil {
				idSet[e.Member] = true
			}
		}
	}
	keys := make([]ChainKey, 0, len(keySet))
	for k := range keySet {
		keys = append(keys, k)
	}
	SortChainKeys(keys)
	ids := make([]string, 0, len(idSet))
	for id := range idSet {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var results []ingestResult
	err := o.store.Update(ctx, func(tx Tx) error {
		chains, locked, err := tx.Lock(keys, ids)
		if err != nil {
			return err
		}
		state := make(map[string]*Member, len(locked))
		for id, m := range locked {
			state[id] = &m
		}
		if err := lockMergeTargets(tx, state); err != nil {
			return err
		}
		holders, err := cardHolders(tx, group, state)
		if err != nil {
			return err
		}
		results = results[:0]
		changed := map[string]bool{}
		for _, c := range group {
			r := plan(chains[c.key], state, holders, c.batch, c.key.Terminal, c.store, c.key.Epoch, now)
			chains[c.key] = r.chain
			for _, id := range r.changed {
				changed[id] = true
			}
			results = append(results, r)
		}
		for i := range results {
			if err := results[i].write(tx, group[i].key, now); err != nil {
				return err
			}
		}
		ids := make([]string, 0, len(changed))
		for id := range changed {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if err := tx.PutMember(*state[id]); err != nil {
				return err
			}
		}
		return nil
	})
	return results, err
}

// maxMerges bounds a chain of merged members (a merged into b, b into c).
const maxMerges = 8

// resolve is the member an event for id applies to: id's, or, for a member
// merged into another, that one's.
func resolve(state map[string]*Member, id string) *Member {
	m := state[id]
	for i := 0; m != nil && m.MergedInto != "" && i < maxMerges; i++ {
		next := state[m.MergedInto]
		if next == nil {
			break
		}
		m = next
	}
	return m
}

// lockMergeTargets locks, too, the members that locked merged members were
// merged into (a second lock, only when there are such members; a store
// retries a transaction that this makes wait in a cycle).
func lockMergeTargets(tx Tx, state map[string]*Member) error {
	for range maxMerges {
		var want []string
		for _, m := range state {
			if m.MergedInto != "" && state[m.MergedInto] == nil && !slices.Contains(want, m.MergedInto) {
				want = append(want, m.MergedInto)
			}
		}
		if len(want) == 0 {
			return nil
		}
		sort.Strings(want)
		more, err := tx.LockMembers(want)
		if err != nil {
			return err
		}
		for _, id := range want {
			m, ok := more[id]
			if !ok {
				return fmt.Errorf("%w: a member was merged into %s, which does not exist", ErrCorrupt, id)
			}
			state[id] = &m
		}
	}
	return nil
}

// cardHolders reads who holds the cards the group's events bring to a
// member that does not have them yet (one read, only when there are such
// cards): an enrollment of a card another member holds is a duplicate.
func cardHolders(tx Tx, group []*ingestCall, state map[string]*Member) (map[string]string, error) {
	need := map[string]bool{}
	for _, c := range group {
		for i, e := range c.batch.Events {
			if c.batch.Errs[i] != nil || e.Card == "" || e.Type == ledger.CardReplace {
				continue
			}
			if m := state[e.Member]; m == nil || !slices.Contains(m.Cards, e.Card) {
				need[e.Card] = true
			}
		}
	}
	holders := map[string]string{}
	if len(need) == 0 {
		return holders, nil
	}
	cards := make([]string, 0, len(need))
	for c := range need {
		cards = append(cards, c)
	}
	sort.Strings(cards)
	found, err := tx.Cards(cards)
	if err != nil {
		return nil, err
	}
	for card, c := range found {
		if c.Member != "" {
			holders[card] = c.Member
		}
	}
	return holders, nil
}

// SortChainKeys sorts keys by terminal, then epoch: the order in which a
// store locks chains.
func SortChainKeys(keys []ChainKey) {
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Terminal != keys[j].Terminal {
			return keys[i].Terminal < keys[j].Terminal
		}
		return keys[i].Epoch < keys[j].Epoch
	})
}

// ingestResult is what applying a batch changes, decided before anything is
// written.
type ingestResult struct {
	ack     uint64
	refused error
	chain   Chain
	fresh   []StoredEvent // the events past the stored head, in order
	resent  []StoredEvent // the events at or below it
	changed []string      // ids of the members changed, in id order
	cards   []cardWrite
	flags   []Flag
	figures map[string]*Figures // by day
	seen    []MemberDay
}

type cardWrite struct {
	card string
	// replace blocks card and gives newCard to member: the old card's
	// record must be read inside the transaction.
	replace bool
	newCard string
	member  string
}

// plan applies a batch to the chain head and the members in state, in
// memory; members it creates are added to state. Nothing else is touched,
// so that a store may run it again, after a retry, on a new state.
func plan(chain Chain, state map[string]*Member, holders map[string]string, b ledger.Batch, terminal, store, epoch string, now time.Time) ingestResult {
	r := ingestResult{figures: map[string]*Figures{}}
	seenDay := map[MemberDay]bool{}
	changed := map[string]bool{}
	for i, raw := range b.Raws {
		e := b.Events[i]
		if err := b.Errs[i]; err != nil {
			switch {
			case errors.Is(err, ledger.ErrChain): // its content does not match its hash
				r.flags = append(r.flags, Flag{Time: now, Kind: "chain_break", Terminal: terminal, Epoch: epoch, Detail: "tampered event: " + err.Error()})
				r.refused = fmt.Errorf("%w: %v", ErrChain, err)
			case errors.Is(err, ledger.ErrRange):
				r.flags = append(r.flags, Flag{Time: now, Kind: "out_of_range", Terminal: terminal, Epoch: epoch, Detail: err.Error()})
				r.refused = fmt.Errorf("%w: %v", ErrRange, err)
			default:
				r.refused = fmt.Errorf("%w: %v", ErrMalformedEvent, err)
			}
			break
		}
		if why := foreign(e, terminal, store, epoch); why != "" {
			r.flags = append(r.flags, Flag{Time: now, Kind: "chain_break", Terminal: terminal, Epoch: epoch, Seq: e.Seq, Detail: why})
			r.refused = fmt.Errorf("%w at seq %d: %s", ErrChain, e.Seq, why)
			break
		}
		if e.Seq <= chain.LastSeq {
			r.resent = append(r.resent, StoredEvent{Seq: e.Seq, Raw: raw})
			continue
		}
		if e.Seq > chain.LastSeq+1 {
			break
		}
		if err := ledger.Follows(e, chain.LastSeq, chain.LastHash); err != nil {
			r.flags = append(r.flags, Flag{Time: now, Kind: "chain_break", Terminal: terminal, Epoch: epoch, Seq: e.Seq, Detail: err.Error()})
			r.refused = fmt.Errorf("%w at seq %d: %v", ErrChain, e.Seq, err)
			break
		}
		if e.Time.After(now.Add(SkewAhead)) || e.Time.Before(now.Add(-SkewBehind)) {
			r.flags = append(r.flags, Flag{Time: now, Kind: "clock_skew", Terminal: terminal, Epoch: epoch, Seq: e.Seq,
				Detail: fmt.Sprintf("event dated %s, head office's clock %s", e.Time.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))})
			r.refused = fmt.Errorf("%w at seq %d: dated %s, outside %s ahead and %s behind head office's clock", ErrSkew, e.Seq, e.Time.UTC().Format(time.RFC3339), SkewAhead, SkewBehind)
			break
		}
		if why := outOfRange(resolve(state, e.Member), e); why != "" {
			r.flags = append(r.flags, Flag{Time: now, Kind: "out_of_range", Terminal: terminal, Epoch: epoch, Seq: e.Seq, Member: e.Member, Detail: why})
			r.refused = fmt.Errorf("%w at seq %d: %s", ErrRange, e.Seq, why)
			break
		}
		m := resolve(state, e.Member)
		if m == nil {
			// Enrolled at a terminal (or an event for a member head office
			// has not imported): the event creates the member.
			m = &Member{ID: e.Member, Status: "active", Enrolled: e.Time, Tier: e.Tier}
			state[e.Member] = m
		}
		r.fresh = append(r.fresh, StoredEvent{Seq: e.Seq, Raw: raw})
		changed[m.ID] = true
		r.apply(m, e, terminal, store, now, holders)
		f, md := FiguresOf(e, terminal, store)
		if r.figures[f.Day] == nil {
			r.figures[f.Day] = &Figures{Terminal: terminal, Store: store, Day: f.Day}
		}
		r.figures[f.Day].Add(f)
		if md != nil && !seenDay[*md] {
			seenDay[*md] = true
			r.seen = append(r.seen, *md)
		}
		chain = Chain{LastSeq: e.Seq, LastHash: e.Hash}
	}
	r.chain, r.ack = chain, chain.LastSeq
	for id := range changed {
		r.changed = append(r.changed, id)
	}
	sort.Strings(r.changed)
	return r
}

// The window around head office's clock an event's time must be in: a till
// offline for a long time sends events weeks old, and a till's clock may
// run ahead; an event dated years away is a clock gone wrong (or a forged
// event) and would put points in lots that never expire.
const (
	SkewAhead  = 24 * time.Hour
	SkewBehind = 400 * 24 * time.Hour
)

// MaxBalance bounds a member's balance and spend either way: an event that
// would take one past it is refused, so that no sum of them overflows.
const MaxBalance int64 = 1_000_000_000_000_000

// foreign says why an event does not belong to the session it came in on
// ("" when it does): another epoch, another terminal (but the id a till has
// before it joins), another store.
func foreign(e ledger.Event, terminal, store, epoch string) string {
	switch {
	case e.Epoch != epoch:
		return fmt.Sprintf("an event of epoch %s on a session of epoch %s", e.Epoch, epoch)
	case e.Terminal != terminal && !(ledger.Provisional(e.Terminal) && e.Store == ""):
		return fmt.Sprintf("an event of terminal %s on a session of terminal %s", e.Terminal, terminal)
	case e.Store != "" && e.Store != store:
		return fmt.Sprintf("an event of store %s from a terminal of store %s", e.Store, store)
	}
	return ""
}

// outOfRange says why applying e to m (nil: a new member) would take a
// balance or spend out of range ("" when it would not).
func outOfRange(m *Member, e ledger.Event) string {
	var bal, life int64
	if m != nil {
		bal, life = m.Balance, m.Lifetime
	}
	if b := bal + e.Points; b > MaxBalance || b < -MaxBalance {
		return fmt.Sprintf("%d points would take the balance of %d out of range", e.Points, bal)
	}
	if life+e.Amount > MaxBalance || life-e.Amount < -MaxBalance {
		return fmt.Sprintf("an amount of %d would take the member's spend out of range", e.Amount)
	}
	return ""
}

// apply moves a member by one event.
func (r *ingestResult) apply(m *Member, e ledger.Event, terminal, store string, now time.Time, holders map[string]string) {
	if store != "" && !slices.Contains(m.Stores, store) {
		m.Stores = append(m.Stores, store)
	}
	if e.Card != "" && !slices.Contains(m.Cards, e.Card) && e.Type != ledger.CardReplace {
		if h := holders[e.Card]; h != "" && h != m.ID {
			// The same card enrolled for two members (at two tills offline):
			// the card stays with the first, the second member keeps its
			// events, and the enrollment's flag asks head office to merge
			// them (the second member's later events with the card are
			// applied to it, without the card).
			if e.Type == ledger.Enroll {
				r.flags = append(r.flags, Flag{Time: now, Kind: "duplicate_enrollment", Terminal: terminal, Epoch: e.Epoch, Seq: e.Seq, Member: m.ID,
					Detail: fmt.Sprintf("card %s is member %s's; enrolled again as member %s", cardnum.Mask(e.Card), h, m.ID)})
			}
		} else {
			holders[e.Card] = m.ID
			m.Cards = append(m.Cards, e.Card)
			r.cards = append(r.cards, cardWrite{card: e.Card, member: m.ID})
		}
	}
	if decision(e) {
		// Expiry and the tier review are decided on every terminal that
		// knows the member, under a ref derived from the decision: the
		// first to arrive counts, the others are kept in their chains but
		// change nothing.
		if slices.Contains(m.Decided, e.Ref) {
			r.flags = append(r.flags, Flag{Time: now, Kind: "duplicate_decision", Terminal: terminal, Epoch: e.Epoch, Seq: e.Seq,
				Member: m.ID, Detail: fmt.Sprintf("%s %s was applied from another terminal", e.Type, e.Ref)})
			return
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
		r.cards = append(r.cards, cardWrite{card: e.Card, replace: true, newCard: e.NewCard, member: m.ID})
		if !slices.Contains(m.Cards, e.Card) {
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
		r.flags = append(r.flags, Flag{Time: now, Kind: "negative_balance", Terminal: terminal, Epoch: e.Epoch, Seq: e.Seq,
			Member: m.ID, Balance: m.Balance, Detail: fmt.Sprintf("%s of %d points took the balance to %d", e.Type, -e.Points, m.Balance)})
	}
}

// write stores what plan decided but the members, which the group writes
// once.
func (r *ingestResult) write(tx Tx, key ChainKey, now time.Time) error {
	// The chain head was read and locked in this transaction: the events
	// past it are new, and the store's unique key refuses them if they are
	// not (a damaged store), failing the whole transaction.
	conflicts, err := tx.PutEvents(key.Terminal, key.Epoch, r.fresh, r.resent)
	if err != nil {
		return err
	}
	for _, seq := range conflicts {
		r.flags = append(r.flags, Flag{Time: now, Kind: "conflicting_duplicate", Terminal: key.Terminal, Epoch: key.Epoch, Seq: seq,
			Detail: "a resent event differs from the one stored"})
	}
	for _, c := range r.cards {
		if !c.replace {
			if err := tx.PutCard(c.card, Card{Member: c.member}, false); err != nil {
				return err
			}
			continue
		}
		old, _, err := tx.Card(c.card)
		if err != nil {
			return err
		}
		old.Member, old.Blocked = c.member, true
		if err := tx.PutCard(c.card, old, true); err != nil {
			return err
		}
		if err := tx.PutCard(c.newCard, Card{Member: c.member}, false); err != nil {
			return err
		}
	}
	for _, f := range r.flags {
		if err := tx.AddFlag(f); err != nil {
			return err
		}
	}
	if len(r.figures) > 0 {
		figs := make([]Figures, 0, len(r.figures))
		for _, f := range r.figures {
			figs = append(figs, *f)
		}
		sort.Slice(figs, func(i, j int) bool { return figs[i].Day < figs[j].Day })
		if err := tx.AddFigures(figs, r.seen); err != nil {
			return err
		}
	}
	if len(r.fresh) == 0 {
		return nil
	}
	return tx.PutChain(key.Terminal, key.Epoch, r.chain)
}

// FiguresOf is what one event adds to its terminal's figures of its day (UTC),
// and the member's checkout at the store that day, if it is one.
func FiguresOf(e ledger.Event, terminal, store string) (Figures, *MemberDay) {
	f := Figures{Terminal: terminal, Store: store, Day: e.Time.UTC().Format(time.DateOnly), Events: 1}
	var md *MemberDay
	switch e.Type {
	case ledger.Earn:
		f.Checkouts, f.Sales, f.Issued = 1, e.Amount, e.Points
		md = &MemberDay{Store: store, Day: f.Day, Member: e.Member}
	case ledger.Redeem, ledger.BurnDiscount:
		f.Redeemed = -e.Points
	case ledger.Donate:
		f.Donated = -e.Points
	case ledger.Enroll:
		f.Enrollments = 1
	case ledger.Void, ledger.Refund:
		// Counted on the day of the reversal: sales and points issued are
		// net of what was taken back, and a voided sale (a void is of the
		// shift's own checkouts) is no checkout, as the till counts it.
		f.Sales, f.Issued, f.Reversals = -e.Amount, e.Points, 1
		if e.Type == ledger.Void && e.Amount > 0 {
			f.Checkouts = -1
		}
	case ledger.Adjust:
		f.Adjusted = e.Points
	case ledger.Expire:
		f.Expired = -e.Points
	}
	return f, md
}

func addSpend(m *Member, month string, amount int64) {
	if m.Months == nil {
		m.Months = map[string]int64{}
	}
	m.Months[month] += amount
	m.Lifetime += amount
}

// decision reports whether the event is a terminal's decision on the member's
// account rather than a purchase: an expiry, or a tier review's downgrade.
func decision(e ledger.Event) bool {
	return e.Type == ledger.Expire || (e.Type == ledger.TierChange && strings.HasPrefix(e.Ref, "review:"))
}
