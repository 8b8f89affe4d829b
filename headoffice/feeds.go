package headoffice

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/sync/syncproto"
)

// The terminals of one store read the same member feed, and after a change
// they are woken together and mostly stand at the same positions: the page
// past those positions is read once and shared, with the chain head of every
// terminal of the store that has asked lately read in the same snapshot (so
// each gets its own exact AsOf).
//
// A caller passes the time it subscribed to change signals (Changes) and
// gets a page read after it: any change before that time is in the page,
// and any change after it wakes the caller to ask again. So a page read once
// serves every terminal of the store woken by the same changes, however the
// wake-ups are spread, and no change is ever missed.
const (
	// activeFor is how long a terminal counts as a reader of its store's
	// feed after it last asked.
	activeFor = 2 * time.Minute
	// keepPages is how long a page is kept for others to share.
	keepPages = 10 * time.Second
	// maxPages bounds the pages kept.
	maxPages = 4096
)

type pageKey struct {
	store            string
	members, blocked uint64
}

type pageEntry struct {
	ready     chan struct{} // closed when page and err are set
	page      FeedPage
	err       error
	started   time.Time // before the read began (monotonic)
	taken     time.Time // the same, on the Office's clock, for the snapshots
	terminals map[ChainKey]bool
}

// feedCache holds the pages read lately, and who reads each store's feed.
type feedCache struct {
	active map[string]map[ChainKey]time.Time // by store
	pages  map[pageKey]*pageEntry
}

// Pending returns the next downstream messages for a terminal of store, in
// epoch, and moves its cursors past them; since is when the caller took its
// change signals from Changes (see above). No messages means the terminal
// has everything that changed before since.
func (o *Office) Pending(ctx context.Context, terminal, store, epoch string, cur *syncproto.Cursors, since time.Time) ([]syncproto.Message, error) {
	var out []syncproto.Message
	o.runsRules(terminal, cur.Rules)
	if err := o.checkRulesAhead(ctx, terminal, epoch, cur.Rules); err != nil {
		return nil, err
	}
	if int64(cur.Rules) < o.rulesVersion.Load() {
		var doc []byte
		var v int
		if err := o.store.View(ctx, func(tx ReadTx) error {
			var err error
			doc, v, err = tx.Rules()
			return err
		}); err != nil {
			return nil, err
		}
		if v > cur.Rules {
			out = append(out, syncproto.Message{Type: syncproto.TypeRules, Rules: doc, RulesVersion: v})
			cur.Rules = v
		}
	}
	key := ChainKey{terminal, epoch}
	e, err := o.page(ctx, store, key, cur.Members, cur.Blocked, since)
	if err != nil {
		return nil, err
	}
	page, asOf := e.page, e.page.AsOf[key]
	// A member goes to the terminals of the stores where they shop (an
	// imported member not seen yet, to all); others look a card up when it
	// first appears at their till.
	if len(page.Members) > 0 {
		msg := syncproto.Message{Type: syncproto.TypeMembers, Cursor: page.MemberCursor, Members: make([]syncproto.Member, len(page.Members))}
		for i, m := range page.Members {
			msg.Members[i] = snapshot(m, asOf, e.taken)
		}
		out = append(out, msg)
	}
	cur.Members = max(cur.Members, page.MemberCursor)
	if len(page.Blocks) > 0 {
		msg := syncproto.Message{Type: syncproto.TypeBlocked, BlockCursor: page.BlockCursor, Blocked: make([]syncproto.Block, len(page.Blocks))}
		for i, b := range page.Blocks {
			msg.Blocked[i] = syncproto.Block{Card: b.Card, Blocked: b.Blocked}
		}
		out = append(out, msg)
	}
	cur.Blocked = max(cur.Blocked, page.BlockCursor)
	return out, nil
}

// page returns the feed page of store past the cursors for terminal key: a
// page read after since that includes key's chain head, or a new read.
func (o *Office) page(ctx context.Context, store string, key ChainKey, members, blocked uint64, since time.Time) (*pageEntry, error) {
	now := time.Now()
	pk := pageKey{store, members, blocked}
	o.mu.Lock()
	fc := &o.feeds
	readers := fc.active[store]
	if readers == nil {
		readers = map[ChainKey]time.Time{}
		fc.active[store] = readers
	}
	readers[key] = now
	if e := fc.pages[pk]; e != nil && !e.started.Before(since) && e.terminals[key] {
		o.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err == nil {
			return e, nil
		}
		return o.readPage(ctx, pk, []ChainKey{key})
	}
	terms := make([]ChainKey, 0, len(readers))
	for k, at := range readers {
		if now.Sub(at) > activeFor {
			delete(readers, k)
			continue
		}
		terms = append(terms, k)
	}
	SortChainKeys(terms)
	e := &pageEntry{ready: make(chan struct{}), started: now, taken: o.now(), terminals: make(map[ChainKey]bool, len(terms))}
	for _, k := range terms {
		e.terminals[k] = true
	}
	for k, old := range fc.pages {
		if now.Sub(old.started) > keepPages || len(fc.pages) >= maxPages {
			delete(fc.pages, k)
		}
	}
	fc.pages[pk] = e
	o.mu.Unlock()
	e.page, e.err = o.store.FeedPage(ctx, FeedQuery{Store: store, MemberCursor: members, BlockCursor: blocked, Max: syncproto.MaxFeed, Terminals: terms})
	close(e.ready)
	if e.err != nil {
		o.mu.Lock()
		if fc.pages[pk] == e {
			delete(fc.pages, pk)
		}
		o.mu.Unlock()
		return nil, e.err
	}
	return e, nil
}

// readPage reads a page for one terminal, not shared.
func (o *Office) readPage(ctx context.Context, pk pageKey, terms []ChainKey) (*pageEntry, error) {
	taken := o.now()
	p, err := o.store.FeedPage(ctx, FeedQuery{Store: pk.store, MemberCursor: pk.members, BlockCursor: pk.blocked, Max: syncproto.MaxFeed, Terminals: terms})
	if err != nil {
		return nil, err
	}
	return &pageEntry{page: p, taken: taken}, nil
}

// Lookup returns head office's snapshot of the member holding card, for a
// terminal (in epoch) that does not know the card; ErrNotFound when no member
// holds it.
func (o *Office) Lookup(ctx context.Context, terminal, epoch, card string) (syncproto.Member, error) {
	var snap syncproto.Member
	err := o.store.View(ctx, func(tx ReadTx) error {
		c, ok, err := tx.Card(card)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: head office does not know card %s", ErrNotFound, cardnum.Mask(card))
		}
		ms, err := tx.Members([]string{c.Member})
		if err != nil {
			return err
		}
		m, ok := ms[c.Member]
		if !ok {
			return fmt.Errorf("%w: head office does not know card %s", ErrNotFound, cardnum.Mask(card))
		}
		chain, err := tx.Chain(terminal, epoch)
		if err != nil {
			return err
		}
		snap = snapshot(m, chain.LastSeq, o.now())
		return nil
	})
	return snap, err
}

// Epochs returns the epochs of the terminal's chains, in order.
func (o *Office) Epochs(ctx context.Context, terminal string) ([]string, error) {
	var out []string
	err := o.store.View(ctx, func(tx ReadTx) error {
		return tx.Chains(func(t, epoch string, _ Chain) error {
			if t == terminal {
				out = append(out, epoch)
			}
			return nil
		})
	})
	sort.Strings(out)
	return out, err
}

// History returns what head office holds of a terminal's events of an
// earlier epoch past after, up to until (0: all), at most limit events and
// about budget bytes, and the sequence up to which it returned everything it
// holds: a terminal whose ledger was repaired or restored from a backup (now
// epoch current) gets back the events it lost. The first time a rebuilt
// ledger asks, head office flags it (ledger_rebuilt) with what it sends back
// and from where events the till may have written never reached it.
func (o *Office) History(ctx context.Context, terminal, current, epoch string, after, until uint64, limit, budget int) ([][]byte, uint64, error) {
	var raws [][]byte
	var covered, held uint64
	err := o.store.View(ctx, func(tx ReadTx) error {
		c, err := tx.Chain(terminal, epoch)
		if err != nil {
			return err
		}
		held = c.LastSeq
		upper := c.LastSeq
		if until != 0 {
			upper = min(until, c.LastSeq)
		}
		covered = max(after, upper)
		if until != 0 {
			covered = max(covered, until)
		}
		if upper <= after {
			return nil
		}
		evs, err := tx.EventsAfter(terminal, epoch, after, limit)
		if err != nil {
			return err
		}
		size := 0
		for _, e := range evs {
			if e.Seq > upper {
				break
			}
			raws = append(raws, e.Raw)
			size += len(e.Raw)
			if len(raws) == limit || size >= budget {
				covered = e.Seq
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if epoch != current {
		if err := o.flagRebuilt(ctx, terminal, current, epoch, after, until, held); err != nil {
			return nil, 0, err
		}
	}
	return raws, covered, nil
}

// flagRebuilt raises, once per rebuilt ledger (terminal and new epoch), the
// flag that says what head office holds of the epoch it lost.
func (o *Office) flagRebuilt(ctx context.Context, terminal, current, epoch string, after, until, held uint64) error {
	asked := fmt.Sprintf("events after seq %d", after)
	if until != 0 {
		asked = fmt.Sprintf("events %d-%d", after+1, until)
	}
	var back string
	switch {
	case held > after && (until == 0 || until > after):
		back = fmt.Sprintf("head office holds epoch %s up to seq %d and sends them back", epoch, held)
	default:
		back = fmt.Sprintf("head office holds epoch %s up to seq %d: nothing to send back", epoch, held)
	}
	f := Flag{Time: o.now(), Kind: "ledger_rebuilt", Terminal: terminal, Epoch: current,
		Detail: fmt.Sprintf("the terminal's ledger was rebuilt (restored from a backup or repaired) as epoch %s and asked for epoch %s's %s; %s; "+
			"anything the till wrote after seq %d of epoch %s never reached head office and is lost", current, epoch, asked, back, held, epoch)}
	return o.store.Update(ctx, func(tx Tx) error { return tx.AddFlag(f) })
}
