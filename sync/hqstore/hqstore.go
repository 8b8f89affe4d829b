// Package hqstore keeps head office's data in one bbolt file: registered
// terminals and their join codes, every terminal's events per (terminal,
// epoch) with the head of its hash chain, the authoritative members and
// cards, the downstream feeds, the rules document and the flags raised.
//
// It stores and reads; what an event means for a balance is decided by the
// caller (syncserver) inside the transactions this package offers.
package hqstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
)

// FileName is the head-office database inside its data directory.
const FileName = "headoffice.db"

const (
	lockTimeout = time.Second // a second process fails fast instead of hanging
	fileMode    = 0o600
	// maxBatch caps how many Batch calls share one commit.
	maxBatch = 1024
	// appendFill is how full the event pages are left when they split.
	appendFill = 0.95
	// sharedMembers caps the decoded members SharedMember keeps.
	sharedMembers = 16384
)

// Errors.
var (
	ErrLocked   = errors.New("head office data directory is in use by another process")
	ErrCorrupt  = errors.New("head office database is corrupt")
	ErrNotFound = errors.New("not found")
)

var (
	bMeta      = []byte("meta")
	bTerminals = []byte("terminals")
	bCodes     = []byte("codes")
	bChains    = []byte("chains")
	bEvents    = []byte("events")
	bMembers   = []byte("members")
	bCards     = []byte("cards")
	bMemberFd  = []byte("member_feed")
	bBlockFd   = []byte("block_feed")
	bFlags     = []byte("flags")
	buckets    = [][]byte{bMeta, bTerminals, bCodes, bChains, bEvents, bMembers, bCards, bMemberFd, bBlockFd, bFlags}
)

// DB is an open head-office database.
type DB struct {
	db        *bolt.DB
	calls     chan *call
	done      chan struct{}
	closeOnce sync.Once
	stopped   chan struct{}
	shared    memberCache
}

// Open opens or creates the database in dir (0700 directory, 0600 file).
func Open(dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, fileMode, &bolt.Options{Timeout: lockTimeout, FreelistType: bolt.FreelistMapType})
	switch {
	case errors.Is(err, bolterr.ErrTimeout):
		return nil, fmt.Errorf("%w (%s)", ErrLocked, dir)
	case errors.Is(err, bolterr.ErrInvalid), errors.Is(err, bolterr.ErrVersionMismatch), errors.Is(err, bolterr.ErrChecksum):
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	case err != nil:
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	d := &DB{db: db, calls: make(chan *call), done: make(chan struct{}), stopped: make(chan struct{}),
		shared: memberCache{m: map[string]decodedMember{}}}
	go d.writer()
	return d, nil
}

// Close closes the database once the commit under way is done; Batch calls
// after it fail with ErrClosed.
func (d *DB) Close() error {
	d.closeOnce.Do(func() { close(d.done) })
	<-d.stopped
	return d.db.Close()
}

// View runs fn in a read transaction.
func (d *DB) View(fn func(*Tx) error) error {
	return d.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx, &d.shared}) })
}

// Update runs fn in a read-write transaction and commits it.
func (d *DB) Update(fn func(*Tx) error) error {
	return d.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx, &d.shared}) })
}

// ErrClosed is a Batch call on a closed database.
var ErrClosed = errors.New("hqstore: database closed")

// call is one Batch call waiting for its commit.
type call struct {
	fn  func(*Tx) error
	err chan error
}

// Batch runs fn in a read-write transaction shared with concurrent callers
// and returns once it is durable. Callers share a commit only when they
// arrive while the previous commit is being written (group commit): an idle
// database commits at once, a busy one in larger transactions, never waiting
// on a timer. fn may run more than once and must have no side effects outside
// the transaction; an error from fn fails that call alone.
func (d *DB) Batch(fn func(*Tx) error) error {
	c := &call{fn: fn, err: make(chan error, 1)}
	select {
	case d.calls <- c:
	case <-d.done:
		return ErrClosed
	}
	return <-c.err
}

// writer commits the queued Batch calls, all that arrived during the
// previous commit in one transaction.
func (d *DB) writer() {
	defer close(d.stopped)
	batch := make([]*call, 0, maxBatch)
	for {
		select {
		case c := <-d.calls:
			batch = append(batch[:0], c)
		case <-d.done:
			return
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case c := <-d.calls:
				batch = append(batch, c)
			default:
				break drain
			}
		}
		d.commit(batch)
	}
}

// commit runs the calls in one transaction. A call that fails rolls it back,
// is answered with its error after running alone, and the others are retried
// together (the same contract as bbolt's Batch).
func (d *DB) commit(calls []*call) {
	for len(calls) > 0 {
		failed := -1
		err := d.db.Update(func(tx *bolt.Tx) error {
			for i, c := range calls {
				if err := c.fn(&Tx{tx, &d.shared}); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, c := range calls {
				c.err <- err
			}
			return
		}
		c := calls[failed]
		c.err <- d.db.Update(func(tx *bolt.Tx) error { return c.fn(&Tx{tx, &d.shared}) })
		calls = append(calls[:failed:failed], calls[failed+1:]...)
	}
}

// Tx is a transaction.
type Tx struct {
	tx     *bolt.Tx
	shared *memberCache
}

func (t *Tx) get(bucket []byte, key string, v any) (bool, error) {
	b := t.tx.Bucket(bucket).Get([]byte(key))
	if b == nil {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("%w: %s %q: %v", ErrCorrupt, bucket, key, err)
	}
	return true, nil
}

func (t *Tx) put(bucket []byte, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucket).Put([]byte(key), b)
}

// Meta returns a metadata value.
func (t *Tx) Meta(key string) []byte { return bytes.Clone(t.tx.Bucket(bMeta).Get([]byte(key))) }

// SetMeta writes a metadata value.
func (t *Tx) SetMeta(key string, v []byte) error { return t.tx.Bucket(bMeta).Put([]byte(key), v) }

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
}

// Terminal reads a terminal.
func (t *Tx) Terminal(id string) (Terminal, bool, error) {
	var v Terminal
	ok, err := t.get(bTerminals, id, &v)
	return v, ok, err
}

// PutTerminal writes a terminal.
func (t *Tx) PutTerminal(v Terminal) error { return t.put(bTerminals, v.ID, v) }

// Terminals calls fn for every terminal.
func (t *Tx) Terminals(fn func(Terminal) error) error {
	return t.tx.Bucket(bTerminals).ForEach(func(_, b []byte) error {
		var v Terminal
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("%w: terminal: %v", ErrCorrupt, err)
		}
		return fn(v)
	})
}

// CodeTerminal returns the terminal a join code hash was issued for.
func (t *Tx) CodeTerminal(codeHash []byte) string {
	return string(t.tx.Bucket(bCodes).Get(codeHash))
}

// SetCode records (terminal != "") or retires (terminal == "") a join code.
func (t *Tx) SetCode(codeHash []byte, terminal string) error {
	if terminal == "" {
		return t.tx.Bucket(bCodes).Delete(codeHash)
	}
	return t.tx.Bucket(bCodes).Put(codeHash, []byte(terminal))
}

// Chain is the head of one terminal database's hash chain at head office.
type Chain struct {
	LastSeq  uint64 `json:"last_seq"`
	LastHash string `json:"last_hash"`
}

func chainKey(terminal, epoch string) string { return terminal + "\x00" + epoch }

// Chain reads the chain head of (terminal, epoch).
func (t *Tx) Chain(terminal, epoch string) (Chain, error) {
	var c Chain
	_, err := t.get(bChains, chainKey(terminal, epoch), &c)
	return c, err
}

// PutChain writes the chain head of (terminal, epoch).
func (t *Tx) PutChain(terminal, epoch string, c Chain) error {
	return t.put(bChains, chainKey(terminal, epoch), c)
}

func eventKey(terminal, epoch string, seq uint64) []byte {
	k := []byte(chainKey(terminal, epoch) + "\x00")
	return binary.BigEndian.AppendUint64(k, seq)
}

// PutEvent stores an event's exact bytes.
func (t *Tx) PutEvent(terminal, epoch string, seq uint64, raw []byte) error {
	b := t.tx.Bucket(bEvents)
	// Each terminal's events are appended at the end of its key range: full
	// pages when they split, not half-empty ones (bbolt's default, made for
	// random inserts), halve the pages every commit writes.
	b.FillPercent = appendFill
	return b.Put(eventKey(terminal, epoch, seq), raw)
}

// Event returns the stored bytes of an event, or nil.
func (t *Tx) Event(terminal, epoch string, seq uint64) []byte {
	return bytes.Clone(t.tx.Bucket(bEvents).Get(eventKey(terminal, epoch, seq)))
}

// Events calls fn with every stored event of terminal ("" for all), ordered
// by terminal, epoch and sequence, until fn returns an error.
func (t *Tx) Events(terminal string, fn func(raw []byte) error) error {
	c := t.tx.Bucket(bEvents).Cursor()
	var prefix []byte
	if terminal != "" {
		prefix = []byte(terminal + "\x00")
	}
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
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
	// FeedKeys are the member's entries in the member feed, by store
	// (allStores for a member with no store).
	FeedKeys map[string]uint64 `json:"feed_keys,omitempty"`
}

// allStores is the member feed of members no store has seen yet, which every
// terminal reads besides its own store's.
const allStores = "*"

// Member reads a member.
func (t *Tx) Member(id string) (Member, bool, error) {
	var m Member
	ok, err := t.get(bMembers, id, &m)
	return m, ok, err
}

// SharedMember returns a member like Member, but decoded once and shared
// for as long as the member's stored bytes stay the same: it is for the
// readers that send the same member to many terminals. The caller must not
// modify it or anything it holds.
func (t *Tx) SharedMember(id string) (*Member, bool, error) {
	b := t.tx.Bucket(bMembers).Get([]byte(id))
	if b == nil {
		return nil, false, nil
	}
	if m := t.shared.get(id, b); m != nil {
		return m, true, nil
	}
	m := new(Member)
	if err := json.Unmarshal(b, m); err != nil {
		return nil, true, fmt.Errorf("%w: %s %q: %v", ErrCorrupt, bMembers, id, err)
	}
	t.shared.put(id, b, m)
	return m, true, nil
}

// memberCache holds decoded members with the bytes they were decoded from;
// an entry counts only while the stored bytes are the same.
type memberCache struct {
	mu sync.Mutex
	m  map[string]decodedMember
}

type decodedMember struct {
	raw []byte
	m   *Member
}

func (c *memberCache) get(id string, raw []byte) *Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[id]; ok && bytes.Equal(e.raw, raw) {
		return e.m
	}
	return nil
}

func (c *memberCache) put(id string, raw []byte, m *Member) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= sharedMembers {
		// Forget a quarter, chosen at random by map order.
		for k := range c.m {
			delete(c.m, k)
			if len(c.m) < sharedMembers*3/4 {
				break
			}
		}
	}
	c.m[id] = decodedMember{raw: bytes.Clone(raw), m: m}
}

// Members calls fn for every member.
func (t *Tx) Members(fn func(Member) error) error {
	return t.tx.Bucket(bMembers).ForEach(func(_, b []byte) error {
		var m Member
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("%w: member: %v", ErrCorrupt, err)
		}
		return fn(m)
	})
}

// PutMember writes a member and moves its entries to the end of the member
// feed of each of its stores (or of all stores, for a member no store has
// seen), so that the terminals of those stores receive it once more.
func (t *Tx) PutMember(m Member) error {
	fd := t.tx.Bucket(bMemberFd)
	seq, err := fd.NextSequence()
	if err != nil {
		return err
	}
	stores := m.Stores
	if len(stores) == 0 {
		stores = []string{allStores}
	}
	keys := make(map[string]uint64, len(stores))
	for store, old := range m.FeedKeys {
		if err := fd.Delete(feedKey(store, old)); err != nil {
			return err
		}
	}
	for _, store := range stores {
		if err := fd.Put(feedKey(store, seq), []byte(m.ID)); err != nil {
			return err
		}
		keys[store] = seq
	}
	m.FeedKeys = keys
	return t.put(bMembers, m.ID, m)
}

func feedKey(store string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(store+"\x00"), seq)
}

// MemberFeed returns up to max member ids changed after cursor that a
// terminal of store receives (its store's and those no store has seen), in
// change order, and the cursor of the last one returned (cursor itself when
// none).
func (t *Tx) MemberFeed(store string, cursor uint64, max int) ([]string, uint64) {
	type entry struct {
		seq uint64
		id  string
	}
	var all []entry
	for _, s := range []string{store, allStores} {
		prefix := []byte(s + "\x00")
		c := t.tx.Bucket(bMemberFd).Cursor()
		n := 0
		for k, v := c.Seek(feedKey(s, cursor+1)); k != nil && bytes.HasPrefix(k, prefix) && n < max; k, v = c.Next() {
			all = append(all, entry{binary.BigEndian.Uint64(k[len(prefix):]), string(v)})
			n++
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seq < all[j].seq })
	if len(all) > max {
		all = all[:max]
	}
	ids := make([]string, len(all))
	for i, e := range all {
		ids[i] = e.id
		cursor = e.seq
	}
	return ids, cursor
}

func feed(b *bolt.Bucket, cursor uint64, max int) ([]string, uint64) {
	var ids []string
	c := b.Cursor()
	for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, cursor+1)); k != nil && len(ids) < max; k, v = c.Next() {
		ids = append(ids, string(v))
		cursor = binary.BigEndian.Uint64(k)
	}
	return ids, cursor
}

// Card is a card's record.
type Card struct {
	Member  string `json:"member"`
	Blocked bool   `json:"blocked,omitempty"`
	FeedKey uint64 `json:"feed_key,omitempty"` // its entry in the blocklist feed
}

// Card reads a card.
func (t *Tx) Card(card string) (Card, bool, error) {
	var c Card
	ok, err := t.get(bCards, card, &c)
	return c, ok, err
}

// PutCard writes a card. When blockChanged, the card moves to the end of the
// blocklist feed.
func (t *Tx) PutCard(card string, c Card, blockChanged bool) error {
	if blockChanged {
		fd := t.tx.Bucket(bBlockFd)
		if c.FeedKey != 0 {
			if err := fd.Delete(binary.BigEndian.AppendUint64(nil, c.FeedKey)); err != nil {
				return err
			}
		}
		seq, err := fd.NextSequence()
		if err != nil {
			return err
		}
		c.FeedKey = seq
		if err := fd.Put(binary.BigEndian.AppendUint64(nil, seq), []byte(card)); err != nil {
			return err
		}
	}
	return t.put(bCards, card, c)
}

// BlockFeed returns up to max cards whose blocked state changed after
// cursor, and the cursor of the last one returned.
func (t *Tx) BlockFeed(cursor uint64, max int) ([]string, uint64) {
	return feed(t.tx.Bucket(bBlockFd), cursor, max)
}

// Flag is something head office noticed and reports: a broken hash chain, a
// negative balance after concurrent offline burns.
type Flag struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"` // "chain_break", "negative_balance", "conflicting_duplicate"
	Terminal string    `json:"terminal,omitempty"`
	Epoch    string    `json:"epoch,omitempty"`
	Seq      uint64    `json:"seq,omitempty"`
	Member   string    `json:"member,omitempty"`
	Balance  int64     `json:"balance,omitempty"`
	Detail   string    `json:"detail"`
}

// AddFlag records a flag once per kind and subject.
func (t *Tx) AddFlag(f Flag) error {
	key := f.Kind + "\x00" + f.Terminal + "\x00" + f.Epoch + "\x00" + strconv.FormatUint(f.Seq, 10) + "\x00" + f.Member
	if t.tx.Bucket(bFlags).Get([]byte(key)) != nil {
		return nil
	}
	return t.put(bFlags, key, f)
}

// Flags calls fn for every flag.
func (t *Tx) Flags(fn func(Flag) error) error {
	return t.tx.Bucket(bFlags).ForEach(func(_, b []byte) error {
		var f Flag
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("%w: flag: %v", ErrCorrupt, err)
		}
		return fn(f)
	})
}
