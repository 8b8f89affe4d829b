package headoffice

import (
	"context"
	"errors"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Store is where head office keeps its data. Two implement it: the embedded
// bbolt file (headoffice/hqbolt, one process) and PostgreSQL
// (headoffice/hqpg, any number of head office processes on one database).
//
// A store stores and reads; what an event means for a balance is decided by
// the Office, inside the transactions the store offers.
type Store interface {
	// Update runs fn in a read-write transaction and commits it; it returns
	// once the commit is durable. fn may run more than once (a store retries
	// it after a deadlock, or shares one commit between callers and replays
	// the others when one fails) and must have no side effects outside the
	// transaction. An error from fn rolls back its writes.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction over one consistent snapshot.
	View(ctx context.Context, fn func(ReadTx) error) error
	// FeedPage reads what a terminal has not seen of the downstream feeds,
	// in one consistent snapshot with the head of the terminal's chain.
	FeedPage(ctx context.Context, q FeedQuery) (FeedPage, error)
	// Changes receives the stores whose terminals have something new on
	// their feeds (AllStores for every store), whichever process made the
	// change. Sends never block: a slow reader misses signals, never data,
	// since feeds are read from cursors.
	Changes() <-chan []string
	// Ready reports whether the store is open and answers (on a database:
	// reachable, with this program's schema).
	Ready(ctx context.Context) error
	Close() error
}

// ReadTx reads head office's data.
type ReadTx interface {
	// Meta returns a metadata value (nil when unset).
	Meta(key string) ([]byte, error)
	// MetaRange calls fn for every metadata value whose key starts with
	// prefix, in byte order of the keys (reverse: from the last), until fn
	// returns an error; ErrStop ends it without one.
	MetaRange(prefix string, reverse bool, fn func(key string, v []byte) error) error
	Terminal(id string) (Terminal, bool, error)
	Terminals(fn func(Terminal) error) error
	// Chain returns the head of (terminal, epoch)'s chain; zero when none
	// of its events has arrived.
	Chain(terminal, epoch string) (Chain, error)
	// Chains calls fn for every chain head, by terminal and epoch.
	Chains(fn func(terminal, epoch string, c Chain) error) error
	// Events calls fn with the exact bytes of every stored event of
	// terminal ("" for all), by terminal, epoch and sequence (in byte order
	// of the ids), until fn returns an error.
	Events(terminal string, fn func(raw []byte) error) error
	// EventsAfter returns up to max stored events of (terminal, epoch) past
	// sequence after, in order.
	EventsAfter(terminal, epoch string, after uint64, max int) ([]StoredEvent, error)
	// Members returns the members with these ids that exist. Their maps may
	// be shared with other readers: the caller must not modify them.
	Members(ids []string) (map[string]Member, error)
	// EachMember calls fn for every member.
	EachMember(fn func(Member) error) error
	// FindMembers returns up to max members whose name or email contains
	// text (lower case; letters compared without case), in no set order.
	FindMembers(text string, max int) ([]Member, error)
	Card(card string) (Card, bool, error)
	// Cards returns those of these cards that exist.
	Cards(cards []string) (map[string]Card, error)
	// EachCard calls fn for every card.
	EachCard(fn func(card string, c Card) error) error
	// Rules returns the newest published rules document and its version
	// (nil and 0 when none has been published).
	Rules() ([]byte, int, error)
	// EachRules calls fn for every published version, oldest first.
	EachRules(fn func(version int, doc []byte) error) error
	// Flags calls fn for every flag raised.
	Flags(fn func(Flag) error) error
	// Figures calls fn for the daily figures of every terminal on the days
	// from..to (YYYY-MM-DD, inclusive; "" leaves that end open).
	Figures(from, to string, fn func(Figures) error) error
	// UniqueMembers returns, by store, how many different members
	// checked out on the days from..to.
	UniqueMembers(from, to string) (map[string]int64, error)
	// Liability is the sum of every member's balance.
	Liability() (int64, error)

	// What moving a chain from one store to another reads besides the
	// above: every metadata value, join code and member-day, and the
	// highest feed position given so far.
	EachMeta(fn func(key string, v []byte) error) error
	EachCode(fn func(codeHash []byte, terminal string) error) error
	EachMemberDay(fn func(MemberDay) error) error
	FeedHead() (uint64, error)
}

// Tx reads and writes head office's data in one transaction.
type Tx interface {
	ReadTx
	SetMeta(key string, v []byte) error
	DeleteMeta(key string) error
	PutTerminal(Terminal) error
	// CodeTerminal returns the terminal a join code hash was issued for
	// ("" when none); in a write transaction it locks the code, so that a
	// code is used once whichever process is asked.
	CodeTerminal(codeHash []byte) (string, error)
	// SetCode records (terminal != "") or retires (terminal == "") a code.
	SetCode(codeHash []byte, terminal string) error
	// Lock returns the heads of these chains (zero for one with no events
	// yet) and the members with these ids that exist, and locks them all
	// until the transaction ends, chains first: one terminal database's
	// events are applied one transaction at a time, and one member changed
	// by one transaction at a time, whichever process receives them. Both
	// lists are sorted (SortChainKeys, sort.Strings).
	Lock(chains []ChainKey, members []string) (map[ChainKey]Chain, map[string]Member, error)
	PutChain(terminal, epoch string, c Chain) error
	// PutEvents stores a terminal database's new events (fresh) and checks
	// the resent ones. The store's unique key on terminal, epoch and
	// sequence refuses a fresh event whose sequence is stored already: the
	// call fails and the transaction writes nothing. A resent event is left
	// as stored (stored if missing); it is returned in conflicts when its
	// bytes differ from the stored ones.
	PutEvents(terminal, epoch string, fresh, resent []StoredEvent) (conflicts []uint64, err error)
	// LockMembers returns the members with these ids that exist, each its
	// own copy, and locks those ids (existing or not) until the transaction
	// ends.
	LockMembers(ids []string) (map[string]Member, error)
	// PutMember writes a member and puts it on the member feed of its
	// stores (of all stores while it has none).
	PutMember(Member) error
	// PutCard writes a card; when blockChanged, the card goes on the
	// blocklist feed.
	PutCard(card string, c Card, blockChanged bool) error
	// AddFlag records a flag once per kind and subject.
	AddFlag(Flag) error
	// AddFigures adds to the daily figures of terminals and records which
	// members checked out where and when.
	AddFigures(figs []Figures, seen []MemberDay) error
	// PutRules publishes a rules document as version; all stores' feeds
	// move.
	PutRules(version int, doc []byte) error
	// RaiseFeedHead makes every feed position given from now on higher
	// than n, so that terminals whose cursors came from another store
	// receive everything again rather than miss anything.
	RaiseFeedHead(n uint64) error
}

// AllStores stands for every store: in Changes, a change every terminal
// must see; in a member's feed, a member no store has seen yet.
const AllStores = "*"

// ErrStop ends an iteration early without an error.
var ErrStop = errors.New("stop")

// ErrCorrupt is a stored record the store cannot read.
var ErrCorrupt = errors.New("head office data is corrupt")

// Terminal is a registered terminal.
type Terminal struct {
	ID          string    `json:"id"`
	Store       string    `json:"store"`
	Name        string    `json:"name"`
	Key         []byte    `json:"key,omitempty"` // ed25519 public key, set at join
	CodeHash    []byte    `json:"code_hash,omitempty"`
	CodeExpires time.Time `json:"code_expires"`
	Created     time.Time `json:"created"`
	Joined      time.Time `json:"joined"`
	// Revoked is when head office stopped trusting the terminal's key
	// (zero while it is trusted): its connections are refused.
	Revoked   time.Time `json:"revoked,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
}

// Chain is the head of one terminal database's hash chain at head office.
type Chain struct {
	LastSeq  uint64 `json:"last_seq"`
	LastHash string `json:"last_hash"`
}

// StoredEvent is an event's sequence and exact bytes.
type StoredEvent struct {
	Seq uint64
	Raw []byte
}

// Member is a member's authoritative record.
type Member struct {
	ID        string           `json:"id"`
	Name      string           `json:"name,omitempty"`
	Email     string           `json:"email,omitempty"`
	Cards     []string         `json:"cards"`
	Tier      string           `json:"tier"`
	Balance   int64            `json:"balance"`
	Months    map[string]int64 `json:"months,omitempty"` // qualifying spend by YYYY-MM
	Lifetime  int64            `json:"lifetime"`
	LastVisit time.Time        `json:"last_visit"`
	Enrolled  time.Time        `json:"enrolled"`
	Status    string           `json:"status"`
	Birthday  string           `json:"birthday,omitempty"` // MM-DD
	// Lots are the unspent earned points by month (YYYY-MM, UTC), oldest
	// spent first, sent to terminals so that they all expire the same lots.
	Lots map[string]int64 `json:"lots,omitempty"`
	// Decided are the refs of the expiries and tier reviews applied, so that
	// the same decision from a second terminal is applied once.
	Decided []string `json:"decided,omitempty"`
	// Stores where the member has shopped; their terminals receive the
	// member's snapshots. Empty (an imported member not seen yet) means all.
	Stores []string `json:"stores,omitempty"`
	// MergedInto is the member this one was merged into (Status "merged"):
	// its events, from terminals that still know it, apply to that member.
	MergedInto string `json:"merged_into,omitempty"`
}

// FeedStores are the member feeds a member is on: its stores, or AllStores
// while it has none.
func (m Member) FeedStores() []string {
	if len(m.Stores) == 0 {
		return []string{AllStores}
	}
	return m.Stores
}

// Card is a card's record.
type Card struct {
	Member  string `json:"member"`
	Blocked bool   `json:"blocked,omitempty"`
}

// Flag is something head office noticed and reports: a broken hash chain, a
// negative balance after concurrent offline burns.
type Flag struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"` // "chain_break", "negative_balance", "conflicting_duplicate", "duplicate_decision"
	Terminal string    `json:"terminal,omitempty"`
	Epoch    string    `json:"epoch,omitempty"`
	Seq      uint64    `json:"seq,omitempty"`
	Member   string    `json:"member,omitempty"`
	Balance  int64     `json:"balance,omitempty"`
	Detail   string    `json:"detail"`
}

// Key is what makes a flag unique: one per kind and subject.
func (f Flag) Key() string {
	return f.Kind + "\x00" + f.Terminal + "\x00" + f.Epoch + "\x00" + uintString(f.Seq) + "\x00" + f.Member
}

// Figures are one terminal's figures of one day (UTC), kept up to date as
// its events are applied, so that a report never reads the events.
type Figures struct {
	Terminal    string `json:"terminal"`
	Store       string `json:"store"`
	Day         string `json:"day"` // YYYY-MM-DD
	Events      int64  `json:"events"`
	Checkouts   int64  `json:"checkouts"`
	Sales       int64  `json:"sales"`  // minor units, net of voids and refunds
	Issued      int64  `json:"issued"` // net of the points voids and refunds took back
	Redeemed    int64  `json:"redeemed"`
	Donated     int64  `json:"donated"`
	Enrollments int64  `json:"enrollments"`
	Adjusted    int64  `json:"adjusted,omitempty"`  // managers' corrections, signed
	Expired     int64  `json:"expired,omitempty"`   // points expired
	Reversals   int64  `json:"reversals,omitempty"` // voids and refunds
}

// Add adds o's counts to f.
func (f *Figures) Add(o Figures) {
	f.Events = SatAdd(f.Events, o.Events)
	f.Checkouts = SatAdd(f.Checkouts, o.Checkouts)
	f.Sales = SatAdd(f.Sales, o.Sales)
	f.Issued = SatAdd(f.Issued, o.Issued)
	f.Redeemed = SatAdd(f.Redeemed, o.Redeemed)
	f.Donated = SatAdd(f.Donated, o.Donated)
	f.Enrollments = SatAdd(f.Enrollments, o.Enrollments)
	f.Adjusted = SatAdd(f.Adjusted, o.Adjusted)
	f.Expired = SatAdd(f.Expired, o.Expired)
	f.Reversals = SatAdd(f.Reversals, o.Reversals)
}

// SatAdd is a+b, held at the ends of int64 instead of wrapping: figures and
// totals add up bounded events, but enough of them (from a terminal that
// sends them on purpose) could otherwise wrap a sum.
func SatAdd(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

// MemberDay records that a member checked out at a store on a day.
type MemberDay struct {
	Store  string
	Day    string
	Member string
}

// FeedQuery asks for the downstream feeds of a store's terminals past their
// cursors.
type FeedQuery struct {
	Store        string
	MemberCursor uint64
	BlockCursor  uint64
	Max          int // entries of each feed
	// Terminals are the terminal databases whose chain heads are read with
	// the members, so that each knows which of its events the balances
	// include.
	Terminals []ChainKey
}

// FeedPage is what terminals at the query's cursors have not seen, read in
// one snapshot.
type FeedPage struct {
	// AsOf is, for each terminal database of the query, the sequence head
	// office had applied when the members were read: their balances
	// include its events up to it.
	AsOf         map[ChainKey]uint64
	Members      []Member // changed members, in feed order; shared, not to be modified
	MemberCursor uint64   // the position of the last one (the query's when none)
	Blocks       []Block
	BlockCursor  uint64
}

// Block is a card whose blocked state changed.
type Block struct {
	Card    string
	Blocked bool
}

func uintString(n uint64) string { return strconv.FormatUint(n, 10) }

// Notifier gathers the stores whose feeds moved and hands them to one reader
// (a Store's Changes). Notify never blocks and never loses a store: while
// the reader is busy, changes accumulate and go out together.
type Notifier struct {
	mu      sync.Mutex
	pending map[string]bool
	signal  chan struct{}
	out     chan []string
	done    chan struct{}
	once    sync.Once
}

// NewNotifier starts a Notifier; Close stops it.
func NewNotifier() *Notifier {
	n := &Notifier{pending: map[string]bool{}, signal: make(chan struct{}, 1), out: make(chan []string), done: make(chan struct{})}
	go n.run()
	return n
}

// Notify records that the feeds of these stores moved.
func (n *Notifier) Notify(stores ...string) {
	if len(stores) == 0 {
		return
	}
	n.mu.Lock()
	for _, s := range stores {
		n.pending[s] = true
	}
	n.mu.Unlock()
	select {
	case n.signal <- struct{}{}:
	default:
	}
}

// C receives the stores changed since the last receive.
func (n *Notifier) C() <-chan []string { return n.out }

// Close stops the Notifier.
func (n *Notifier) Close() { n.once.Do(func() { close(n.done) }) }

func (n *Notifier) run() {
	for {
		select {
		case <-n.signal:
		case <-n.done:
			return
		}
		n.mu.Lock()
		stores := make([]string, 0, len(n.pending))
		for s := range n.pending {
			stores = append(stores, s)
		}
		clear(n.pending)
		n.mu.Unlock()
		sort.Strings(stores)
		select {
		case n.out <- stores:
		case <-n.done:
			return
		}
	}
}
