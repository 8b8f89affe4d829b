// Package hqbolt is head office's embedded store: one bbolt file in a data
// directory, for a chain served by one head office process, with nothing to
// install. It keeps registered terminals and their join codes, every
// terminal's events per (terminal, epoch) with the head of its hash chain,
// the authoritative members and cards, the downstream feeds, the published
// rules, the daily figures and the flags raised.
//
// It stores and reads; what an event means for a balance is decided by
// headoffice inside the transactions this package offers.
package hqbolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/internal/boltfile"
	"github.com/offline-loyalty/terminal/ledger"
)

// FileName is the head-office database inside its data directory.
const FileName = "headoffice.db"

const (
	lockTimeout = time.Second // a second process fails fast instead of hanging
	fileMode    = 0o600
	// maxBatch caps how many Update calls share one commit.
	maxBatch = 1024
	// appendFill is how full the event pages are left when they split.
	appendFill = 0.95
	// sharedMembers caps the decoded members Members keeps.
	sharedMembers = 16384
	// schema is the layout version this program writes: 2 added the rules
	// history and the daily figures.
	schema = 2
)

// Errors.
var (
	ErrLocked = errors.New("head office data directory is in use by another process")
	ErrClosed = errors.New("hqbolt: database closed")
)

var (
	bMeta       = []byte("meta")
	bTerminals  = []byte("terminals")
	bCodes      = []byte("codes")
	bChains     = []byte("chains")
	bEvents     = []byte("events")
	bMembers    = []byte("members")
	bCards      = []byte("cards")
	bMemberFd   = []byte("member_feed")
	bBlockFd    = []byte("block_feed")
	bFlags      = []byte("flags")
	bRules      = []byte("rules")
	bFigures    = []byte("figures")
	bMemberDays = []byte("member_days")
	buckets     = [][]byte{bMeta, bTerminals, bCodes, bChains, bEvents, bMembers, bCards, bMemberFd, bBlockFd, bFlags, bRules, bFigures, bMemberDays}
)

// DB is an open head-office database.
type DB struct {
	db        *bolt.DB
	path      string
	calls     chan *call
	done      chan struct{}
	closeOnce sync.Once
	stopped   chan struct{}
	shared    memberCache
	notify    *headoffice.Notifier
}

var _ headoffice.Store = (*DB)(nil)

// Open opens or creates the database in dir (0700 directory, 0600 file, both
// set on every open) and upgrades a file of an earlier schema. An existing
// file is checked whole first — bbolt's consistency check and every
// terminal's hash chain — and a damaged one is refused (ErrCorrupt) without
// anything written to it.
func Open(dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, FileName)
	_, statErr := os.Stat(path)
	existed := statErr == nil
	db, err := boltfile.Open(path, fileMode, &bolt.Options{Timeout: lockTimeout, FreelistType: bolt.FreelistMapType})
	var dmg *boltfile.Damage
	switch {
	case errors.Is(err, boltfile.ErrLocked):
		return nil, fmt.Errorf("%w (%s)", ErrLocked, dir)
	case errors.As(err, &dmg):
		return nil, damaged(dmg)
	case err != nil:
		return nil, err
	}
	if err := os.Chmod(path, fileMode); err != nil {
		db.Close()
		return nil, err
	}
	if existed {
		if err := boltfile.Recover(path, func() error { return db.View(verifyChains) }); err != nil {
			db.Close()
			if errors.As(err, &dmg) {
				return nil, damaged(dmg)
			}
			return nil, fmt.Errorf("%w: %s: %v", headoffice.ErrCorrupt, path, err)
		}
	}
	if err := boltfile.Recover(path, func() error { return db.Update(upgrade) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d := &DB{db: db, path: path, calls: make(chan *call), done: make(chan struct{}), stopped: make(chan struct{}),
		shared: memberCache{m: map[string]decodedMember{}}, notify: headoffice.NewNotifier()}
	go d.writer()
	return d, nil
}

// damaged is the one-line refusal of a damaged file.
func damaged(d *boltfile.Damage) error {
	return fmt.Errorf("%w: %s: %s (nothing was written to it)", headoffice.ErrCorrupt, d.Path, d.What)
}

// verifyChains checks every stored event: it decodes, its hash matches its
// content, it follows the one before in its chain from seq 1, and each
// chain ends at its recorded head.
func verifyChains(tx *bolt.Tx) error {
	const chunk = 4096
	var raws [][]byte
	var keys []storedAt
	cur := headoffice.ChainKey{}
	var prev headoffice.Chain
	heads := map[headoffice.ChainKey]headoffice.Chain{}
	check := func() error {
		b := ledger.DecodeBatch(raws)
		for i, e := range b.Events {
			k := keys[i]
			if b.Errs[i] != nil {
				return fmt.Errorf("%w: event %s/%s/%d: %v", headoffice.ErrCorrupt, k.key.Terminal, k.key.Epoch, k.seq, b.Errs[i])
			}
			if k.key != cur {
				if cur != (headoffice.ChainKey{}) {
					heads[cur] = prev
				}
				cur, prev = k.key, headoffice.Chain{}
			}
			if e.Seq != k.seq || e.Epoch != k.key.Epoch {
				return fmt.Errorf("%w: event stored as %s/%s/%d says it is %s/%d", headoffice.ErrCorrupt, k.key.Terminal, k.key.Epoch, k.seq, e.Epoch, e.Seq)
			}
			if err := ledger.Follows(e, prev.LastSeq, prev.LastHash); err != nil {
				return fmt.Errorf("%w: chain %s/%s: %v", headoffice.ErrCorrupt, k.key.Terminal, k.key.Epoch, err)
			}
			prev = headoffice.Chain{LastSeq: e.Seq, LastHash: e.Hash}
		}
		raws, keys = raws[:0], keys[:0]
		return nil
	}
	if err := tx.Bucket(bEvents).ForEach(func(k, v []byte) error {
		parts := bytes.SplitN(k, []byte{0}, 3)
		if len(parts) != 3 || len(parts[2]) != 8 {
			return fmt.Errorf("%w: event key %q", headoffice.ErrCorrupt, k)
		}
		raws = append(raws, v)
		keys = append(keys, storedAt{headoffice.ChainKey{Terminal: string(parts[0]), Epoch: string(parts[1])}, binary.BigEndian.Uint64(parts[2])})
		if len(raws) == chunk {
			return check()
		}
		return nil
	}); err != nil {
		return err
	}
	if err := check(); err != nil {
		return err
	}
	if cur != (headoffice.ChainKey{}) {
		heads[cur] = prev
	}
	for key, got := range heads {
		var c headoffice.Chain
		raw := tx.Bucket(bChains).Get([]byte(chainKey(key.Terminal, key.Epoch)))
		if raw == nil {
			return fmt.Errorf("%w: chain %s/%s has events up to %d and no head", headoffice.ErrCorrupt, key.Terminal, key.Epoch, got.LastSeq)
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("%w: chain %s/%s: %v", headoffice.ErrCorrupt, key.Terminal, key.Epoch, err)
		}
		if c != got {
			return fmt.Errorf("%w: chain %s/%s: its head says %d, its events end at %d", headoffice.ErrCorrupt, key.Terminal, key.Epoch, c.LastSeq, got.LastSeq)
		}
	}
	return nil
}

// storedAt is where a stored event belongs.
type storedAt struct {
	key headoffice.ChainKey
	seq uint64
}

// upgrade creates the buckets and brings a file of an earlier schema to
// this one; it refuses a newer schema.
func upgrade(tx *bolt.Tx) error {
	for _, b := range buckets {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return fmt.Errorf("%w: %v", headoffice.ErrCorrupt, err)
		}
	}
	meta := tx.Bucket(bMeta)
	have := 1
	if v := meta.Get([]byte("schema")); v != nil {
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("%w: schema %q", headoffice.ErrCorrupt, v)
		}
		have = n
	}
	switch {
	case have > schema:
		return fmt.Errorf("schema %d is newer than this program's %d: use a newer headoffice", have, schema)
	case have < 2:
		if err := upgradeTo2(tx); err != nil {
			return err
		}
	}
	return meta.Put([]byte("schema"), []byte(strconv.Itoa(schema)))
}

// upgradeTo2 moves the published rules document into the rules history and
// builds the daily figures from the stored events, once.
func upgradeTo2(tx *bolt.Tx) error {
	meta := tx.Bucket(bMeta)
	if doc := meta.Get([]byte("rules")); doc != nil {
		if err := tx.Bucket(bRules).Put(versionKey(rulesVersionOf(doc)), bytes.Clone(doc)); err != nil {
			return err
		}
		if err := meta.Delete([]byte("rules")); err != nil {
			return err
		}
	}
	stores := map[string]string{}
	if err := tx.Bucket(bTerminals).ForEach(func(_, b []byte) error {
		var t headoffice.Terminal
		if err := json.Unmarshal(b, &t); err != nil {
			return fmt.Errorf("%w: terminal: %v", headoffice.ErrCorrupt, err)
		}
		stores[t.ID] = t.Store
		return nil
	}); err != nil {
		return err
	}
	w := &Tx{tx: tx}
	figs := map[string]*headoffice.Figures{}
	var seen []headoffice.MemberDay
	if err := tx.Bucket(bEvents).ForEach(func(k, v []byte) error {
		terminal, _, ok := bytes.Cut(k, []byte{0})
		if !ok {
			return fmt.Errorf("%w: event key %q", headoffice.ErrCorrupt, k)
		}
		e, err := ledger.Decode(v)
		if err != nil {
			return fmt.Errorf("%w: event %q: %v", headoffice.ErrCorrupt, k, err)
		}
		f, md := headoffice.FiguresOf(e, string(terminal), stores[string(terminal)])
		key := f.Day + "\x00" + f.Terminal
		if figs[key] == nil {
			figs[key] = &headoffice.Figures{Terminal: f.Terminal, Store: f.Store, Day: f.Day}
		}
		figs[key].Add(f)
		if md != nil {
			seen = append(seen, *md)
		}
		return nil
	}); err != nil {
		return err
	}
	all := make([]headoffice.Figures, 0, len(figs))
	for _, f := range figs {
		all = append(all, *f)
	}
	return w.AddFigures(all, seen)
}

func rulesVersionOf(doc []byte) int {
	var v struct {
		Version int `json:"version"`
	}
	_ = json.Unmarshal(doc, &v)
	return v.Version
}

func versionKey(v int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// Close closes the database once the commit under way is done; Update calls
// after it fail with ErrClosed.
func (d *DB) Close() error {
	d.closeOnce.Do(func() { close(d.done) })
	<-d.stopped
	d.notify.Close()
	return d.db.Close()
}

// Changes receives the stores whose feeds moved after a commit.
func (d *DB) Changes() <-chan []string { return d.notify.C() }

// Backup writes a consistent copy of the database, a whole bbolt file of one
// committed state, to w while head office runs (bbolt's Tx.WriteTo). The
// ingest goes on meanwhile, unless a commit has to grow the file's memory
// map, which waits for the copy to end.
func (d *DB) Backup(w io.Writer) (int64, error) {
	var n int64
	err := d.guard(func() error {
		return d.db.View(func(tx *bolt.Tx) error {
			var err error
			n, err = tx.WriteTo(w)
			return err
		})
	})
	return n, err
}

// Ready reports whether the database is open and its file reads.
func (d *DB) Ready(ctx context.Context) error {
	select {
	case <-d.done:
		return ErrClosed
	default:
	}
	return d.View(ctx, func(tx headoffice.ReadTx) error {
		_, err := tx.Meta(headoffice.MetaQRKey)
		return err
	})
}

// View runs fn in a read transaction.
func (d *DB) View(ctx context.Context, fn func(headoffice.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.guard(func() error {
		return d.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx, shared: &d.shared}) })
	})
}

// guard runs fn with a panic or memory fault inside bbolt (a damaged page)
// turned into ErrCorrupt: the operation is refused and head office goes on.
func (d *DB) guard(fn func() error) error {
	err := boltfile.Recover(d.path, fn)
	var dmg *boltfile.Damage
	if errors.As(err, &dmg) {
		return damaged(dmg)
	}
	return err
}

// call is one Update call waiting for its commit.
type call struct {
	fn      func(headoffice.Tx) error
	err     chan error
	replied bool
}

// reply answers a call once.
func (c *call) reply(err error) {
	if !c.replied {
		c.replied = true
		c.err <- err
	}
}

// Update runs fn in a read-write transaction shared with concurrent callers
// and returns once it is durable. Callers share a commit only when they
// arrive while the previous commit is being written (group commit): an idle
// database commits at once, a busy one in larger transactions, never waiting
// on a timer. fn may run more than once; an error from fn fails that call
// alone.
func (d *DB) Update(ctx context.Context, fn func(headoffice.Tx) error) error {
	c := &call{fn: fn, err: make(chan error, 1)}
	select {
	case d.calls <- c:
	case <-d.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-c.err
}

// writer commits the queued Update calls, all that arrived during the
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
		// A panic inside bbolt (a damaged page) fails the calls not yet
		// answered; the writer goes on.
		if err := d.guard(func() error { d.commit(batch); return nil }); err != nil {
			for _, c := range batch {
				c.reply(err)
			}
		}
	}
}

// commit runs the calls in one transaction. A call that fails rolls it back,
// is answered with its error after running alone, and the others are retried
// together (the same contract as bbolt's Batch).
func (d *DB) commit(calls []*call) {
	for len(calls) > 0 {
		failed := -1
		var txs []*Tx
		err := d.db.Update(func(tx *bolt.Tx) error {
			txs = txs[:0]
			for i, c := range calls {
				t := &Tx{tx: tx, shared: &d.shared, write: true}
				txs = append(txs, t)
				if err := c.fn(t); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			if err == nil {
				for _, t := range txs {
					d.notify.Notify(t.changed...)
				}
			}
			for _, c := range calls {
				c.reply(err)
			}
			return
		}
		c := calls[failed]
		var t *Tx
		err = d.db.Update(func(tx *bolt.Tx) error {
			t = &Tx{tx: tx, shared: &d.shared, write: true}
			return c.fn(t)
		})
		if err == nil {
			d.notify.Notify(t.changed...)
		}
		c.reply(err)
		calls = append(calls[:failed:failed], calls[failed+1:]...)
	}
}

// Tx is a transaction.
type Tx struct {
	tx      *bolt.Tx
	shared  *memberCache
	write   bool
	changed []string // stores whose feeds this transaction moved
}

var _ headoffice.Tx = (*Tx)(nil)

func (t *Tx) get(bucket []byte, key string, v any) (bool, error) {
	b := t.tx.Bucket(bucket).Get([]byte(key))
	if b == nil {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("%w: %s %q: %v", headoffice.ErrCorrupt, bucket, key, err)
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

func each[T any](b *bolt.Bucket, what string, fn func(k []byte, v T) error) error {
	return b.ForEach(func(k, raw []byte) error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("%w: %s %q: %v", headoffice.ErrCorrupt, what, k, err)
		}
		return fn(k, v)
	})
}

// Meta returns a metadata value.
func (t *Tx) Meta(key string) ([]byte, error) {
	return bytes.Clone(t.tx.Bucket(bMeta).Get([]byte(key))), nil
}

// SetMeta writes a metadata value.
func (t *Tx) SetMeta(key string, v []byte) error { return t.tx.Bucket(bMeta).Put([]byte(key), v) }

// DeleteMeta removes a metadata value.
func (t *Tx) DeleteMeta(key string) error { return t.tx.Bucket(bMeta).Delete([]byte(key)) }

// MetaRange calls fn for the metadata values under prefix, in key order or
// reversed.
func (t *Tx) MetaRange(prefix string, reverse bool, fn func(string, []byte) error) error {
	c := t.tx.Bucket(bMeta).Cursor()
	p := []byte(prefix)
	var k, v []byte
	next := c.Next
	if reverse {
		next = c.Prev
		// The first key past every key with the prefix, then one back.
		if end := prefixEnd(p); end == nil {
			k, v = c.Last()
		} else if k, _ = c.Seek(end); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	} else {
		k, v = c.Seek(p)
	}
	for ; k != nil && bytes.HasPrefix(k, p); k, v = next() {
		if err := fn(string(k), bytes.Clone(v)); err != nil {
			if errors.Is(err, headoffice.ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// prefixEnd is the smallest key greater than every key starting with p (nil
// when there is none: p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Terminal reads a terminal.
func (t *Tx) Terminal(id string) (headoffice.Terminal, bool, error) {
	var v headoffice.Terminal
	ok, err := t.get(bTerminals, id, &v)
	return v, ok, err
}

// PutTerminal writes a terminal.
func (t *Tx) PutTerminal(v headoffice.Terminal) error { return t.put(bTerminals, v.ID, v) }

// Terminals calls fn for every terminal.
func (t *Tx) Terminals(fn func(headoffice.Terminal) error) error {
	return each(t.tx.Bucket(bTerminals), "terminal", func(_ []byte, v headoffice.Terminal) error { return fn(v) })
}

// CodeTerminal returns the terminal a join code hash was issued for.
func (t *Tx) CodeTerminal(codeHash []byte) (string, error) {
	return string(t.tx.Bucket(bCodes).Get(codeHash)), nil
}

// SetCode records (terminal != "") or retires (terminal == "") a join code.
func (t *Tx) SetCode(codeHash []byte, terminal string) error {
	if terminal == "" {
		return t.tx.Bucket(bCodes).Delete(codeHash)
	}
	return t.tx.Bucket(bCodes).Put(codeHash, []byte(terminal))
}

func chainKey(terminal, epoch string) string { return terminal + "\x00" + epoch }

// Chain reads the chain head of (terminal, epoch). One writer at a time
// holds the whole file, so there is nothing more to lock.
func (t *Tx) Chain(terminal, epoch string) (headoffice.Chain, error) {
	var c headoffice.Chain
	_, err := t.get(bChains, chainKey(terminal, epoch), &c)
	return c, err
}

// Lock reads chain heads and members for update (the single writer holds
// the file).
func (t *Tx) Lock(keys []headoffice.ChainKey, ids []string) (map[headoffice.ChainKey]headoffice.Chain, map[string]headoffice.Member, error) {
	out := make(map[headoffice.ChainKey]headoffice.Chain, len(keys))
	for _, k := range keys {
		c, err := t.Chain(k.Terminal, k.Epoch)
		if err != nil {
			return nil, nil, err
		}
		out[k] = c
	}
	ms, err := t.LockMembers(ids)
	return out, ms, err
}

// Chains calls fn for every chain head.
func (t *Tx) Chains(fn func(terminal, epoch string, c headoffice.Chain) error) error {
	return each(t.tx.Bucket(bChains), "chain", func(k []byte, c headoffice.Chain) error {
		terminal, epoch, _ := bytes.Cut(k, []byte{0})
		return fn(string(terminal), string(epoch), c)
	})
}

// PutChain writes the chain head of (terminal, epoch).
func (t *Tx) PutChain(terminal, epoch string, c headoffice.Chain) error {
	return t.put(bChains, chainKey(terminal, epoch), c)
}

func eventKey(terminal, epoch string, seq uint64) []byte {
	k := []byte(chainKey(terminal, epoch) + "\x00")
	return binary.BigEndian.AppendUint64(k, seq)
}

// PutEvents stores new events, refusing one stored already, and checks the
// resent ones.
func (t *Tx) PutEvents(terminal, epoch string, fresh, resent []headoffice.StoredEvent) ([]uint64, error) {
	b := t.tx.Bucket(bEvents)
	// Each terminal's events are appended at the end of its key range: full
	// pages when they split, not half-empty ones (bbolt's default, made for
	// random inserts), halve the pages every commit writes.
	b.FillPercent = appendFill
	for _, e := range fresh {
		k := eventKey(terminal, epoch, e.Seq)
		if b.Get(k) != nil {
			return nil, fmt.Errorf("%w: %s/%s: event %d is stored already", headoffice.ErrCorrupt, terminal, epoch, e.Seq)
		}
		if err := b.Put(k, e.Raw); err != nil {
			return nil, err
		}
	}
	var conflicts []uint64
	for _, e := range resent {
		k := eventKey(terminal, epoch, e.Seq)
		if old := b.Get(k); old != nil {
			if !bytes.Equal(old, e.Raw) {
				conflicts = append(conflicts, e.Seq)
			}
			continue
		}
		if err := b.Put(k, e.Raw); err != nil {
			return nil, err
		}
	}
	return conflicts, nil
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

// EventsAfter returns up to max events of (terminal, epoch) past after.
func (t *Tx) EventsAfter(terminal, epoch string, after uint64, max int) ([]headoffice.StoredEvent, error) {
	prefix := []byte(chainKey(terminal, epoch) + "\x00")
	var out []headoffice.StoredEvent
	c := t.tx.Bucket(bEvents).Cursor()
	for k, v := c.Seek(eventKey(terminal, epoch, after+1)); k != nil && bytes.HasPrefix(k, prefix) && len(out) < max; k, v = c.Next() {
		if len(k) != len(prefix)+8 {
			return nil, fmt.Errorf("%w: event key %q", headoffice.ErrCorrupt, k)
		}
		out = append(out, headoffice.StoredEvent{Seq: binary.BigEndian.Uint64(k[len(prefix):]), Raw: bytes.Clone(v)})
	}
	return out, nil
}

// record is a member as stored: the member and its entries in the member
// feed, by store.
type record struct {
	headoffice.Member
	FeedKeys map[string]uint64 `json:"feed_keys,omitempty"`
}

func (t *Tx) record(id string) (record, bool, error) {
	var r record
	ok, err := t.get(bMembers, id, &r)
	return r, ok, err
}

// LockMembers reads members for update (the single writer holds the file).
func (t *Tx) LockMembers(ids []string) (map[string]headoffice.Member, error) {
	out := make(map[string]headoffice.Member, len(ids))
	for _, id := range ids {
		r, ok, err := t.record(id)
		if err != nil {
			return nil, err
		}
		if ok {
			out[id] = r.Member
		}
	}
	return out, nil
}

// Members returns the members with these ids, decoded once and shared for
// as long as their stored bytes stay the same: they are for readers that
// send the same member to many terminals.
func (t *Tx) Members(ids []string) (map[string]headoffice.Member, error) {
	out := make(map[string]headoffice.Member, len(ids))
	for _, id := range ids {
		m, ok, err := t.sharedMember(id)
		if err != nil {
			return nil, err
		}
		if ok {
			out[id] = *m
		}
	}
	return out, nil
}

func (t *Tx) sharedMember(id string) (*headoffice.Member, bool, error) {
	b := t.tx.Bucket(bMembers).Get([]byte(id))
	if b == nil {
		return nil, false, nil
	}
	if t.shared != nil && !t.write {
		if m := t.shared.get(id, b); m != nil {
			return m, true, nil
		}
	}
	r := new(record)
	if err := json.Unmarshal(b, r); err != nil {
		return nil, true, fmt.Errorf("%w: %s %q: %v", headoffice.ErrCorrupt, bMembers, id, err)
	}
	if t.shared != nil && !t.write {
		t.shared.put(id, b, &r.Member)
	}
	return &r.Member, true, nil
}

// EachMember calls fn for every member.
func (t *Tx) EachMember(fn func(headoffice.Member) error) error {
	return each(t.tx.Bucket(bMembers), "member", func(_ []byte, r record) error { return fn(r.Member) })
}

// FindMembers reads the members until max contain text in their name or
// email: the embedded store keeps no index of them.
func (t *Tx) FindMembers(text string, max int) ([]headoffice.Member, error) {
	var out []headoffice.Member
	err := t.EachMember(func(m headoffice.Member) error {
		if strings.Contains(strings.ToLower(m.Name), text) || strings.Contains(strings.ToLower(m.Email), text) {
			out = append(out, m)
			if len(out) >= max {
				return headoffice.ErrStop
			}
		}
		return nil
	})
	if errors.Is(err, headoffice.ErrStop) {
		err = nil
	}
	return out, err
}

// PutMember writes a member and moves its entries to the end of the member
// feed of each of its stores (or of all stores, for a member no store has
// seen), so that the terminals of those stores receive it once more.
func (t *Tx) PutMember(m headoffice.Member) error {
	old, _, err := t.record(m.ID)
	if err != nil {
		return err
	}
	fd := t.tx.Bucket(bMemberFd)
	seq, err := fd.NextSequence()
	if err != nil {
		return err
	}
	stores := m.FeedStores()
	keys := make(map[string]uint64, len(stores))
	for store, k := range old.FeedKeys {
		if err := fd.Delete(feedKey(store, k)); err != nil {
			return err
		}
	}
	for _, store := range stores {
		if err := fd.Put(feedKey(store, seq), []byte(m.ID)); err != nil {
			return err
		}
		keys[store] = seq
	}
	t.changed = append(t.changed, stores...)
	return t.put(bMembers, m.ID, record{Member: m, FeedKeys: keys})
}

func feedKey(store string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(store+"\x00"), seq)
}

// memberFeed returns up to max member ids changed after cursor that a
// terminal of store receives (its store's and those no store has seen), in
// change order, and the cursor of the last one returned (cursor itself when
// none).
func (t *Tx) memberFeed(store string, cursor uint64, max int) ([]string, uint64) {
	type entry struct {
		seq uint64
		id  string
	}
	var all []entry
	for _, s := range []string{store, headoffice.AllStores} {
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

// blockFeed returns up to max cards whose blocked state changed after
// cursor, and the cursor of the last one returned.
func (t *Tx) blockFeed(cursor uint64, max int) ([]string, uint64) {
	var cards []string
	c := t.tx.Bucket(bBlockFd).Cursor()
	for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, cursor+1)); k != nil && len(cards) < max; k, v = c.Next() {
		cards = append(cards, string(v))
		cursor = binary.BigEndian.Uint64(k)
	}
	return cards, cursor
}

// FeedPage reads a terminal's feeds past its cursors in one read
// transaction.
func (d *DB) FeedPage(ctx context.Context, q headoffice.FeedQuery) (headoffice.FeedPage, error) {
	var p headoffice.FeedPage
	err := d.View(ctx, func(rt headoffice.ReadTx) error {
		tx := rt.(*Tx)
		p.AsOf = make(map[headoffice.ChainKey]uint64, len(q.Terminals))
		for _, k := range q.Terminals {
			chain, err := tx.Chain(k.Terminal, k.Epoch)
			if err != nil {
				return err
			}
			p.AsOf[k] = chain.LastSeq
		}
		ids, next := tx.memberFeed(q.Store, q.MemberCursor, q.Max)
		p.MemberCursor = next
		for _, id := range ids {
			m, ok, err := tx.sharedMember(id)
			if err != nil {
				return err
			}
			if ok {
				p.Members = append(p.Members, *m)
			}
		}
		cards, nextB := tx.blockFeed(q.BlockCursor, q.Max)
		p.BlockCursor = nextB
		for _, card := range cards {
			c, _, err := tx.card(card)
			if err != nil {
				return err
			}
			p.Blocks = append(p.Blocks, headoffice.Block{Card: card, Blocked: c.Blocked})
		}
		return nil
	})
	return p, err
}

// cardRecord is a card as stored, with its entry in the blocklist feed.
type cardRecord struct {
	headoffice.Card
	FeedKey uint64 `json:"feed_key,omitempty"`
}

func (t *Tx) card(card string) (cardRecord, bool, error) {
	var c cardRecord
	ok, err := t.get(bCards, card, &c)
	return c, ok, err
}

// Card reads a card.
func (t *Tx) Card(card string) (headoffice.Card, bool, error) {
	c, ok, err := t.card(card)
	return c.Card, ok, err
}

// Cards reads those of cards that exist.
func (t *Tx) Cards(cards []string) (map[string]headoffice.Card, error) {
	out := map[string]headoffice.Card{}
	for _, card := range cards {
		c, ok, err := t.card(card)
		if err != nil {
			return nil, err
		}
		if ok {
			out[card] = c.Card
		}
	}
	return out, nil
}

// EachCard calls fn for every card.
func (t *Tx) EachCard(fn func(string, headoffice.Card) error) error {
	return each(t.tx.Bucket(bCards), "card", func(k []byte, c cardRecord) error { return fn(string(k), c.Card) })
}

// PutCard writes a card. When blockChanged, the card moves to the end of the
// blocklist feed, which every terminal reads.
func (t *Tx) PutCard(card string, c headoffice.Card, blockChanged bool) error {
	old, _, err := t.card(card)
	if err != nil {
		return err
	}
	rec := cardRecord{Card: c, FeedKey: old.FeedKey}
	if blockChanged {
		fd := t.tx.Bucket(bBlockFd)
		if rec.FeedKey != 0 {
			if err := fd.Delete(binary.BigEndian.AppendUint64(nil, rec.FeedKey)); err != nil {
				return err
			}
		}
		seq, err := fd.NextSequence()
		if err != nil {
			return err
		}
		rec.FeedKey = seq
		if err := fd.Put(binary.BigEndian.AppendUint64(nil, seq), []byte(card)); err != nil {
			return err
		}
		t.changed = append(t.changed, headoffice.AllStores)
	}
	return t.put(bCards, card, rec)
}

// Rules returns the newest published rules document.
func (t *Tx) Rules() ([]byte, int, error) {
	k, v := t.tx.Bucket(bRules).Cursor().Last()
	if k == nil {
		return nil, 0, nil
	}
	if len(k) != 8 {
		return nil, 0, fmt.Errorf("%w: rules key %x", headoffice.ErrCorrupt, k)
	}
	return bytes.Clone(v), int(binary.BigEndian.Uint64(k)), nil
}

// EachRules calls fn for every published version, oldest first.
func (t *Tx) EachRules(fn func(int, []byte) error) error {
	return t.tx.Bucket(bRules).ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("%w: rules key %x", headoffice.ErrCorrupt, k)
		}
		return fn(int(binary.BigEndian.Uint64(k)), bytes.Clone(v))
	})
}

// PutRules publishes a rules document.
func (t *Tx) PutRules(version int, doc []byte) error {
	t.changed = append(t.changed, headoffice.AllStores)
	return t.tx.Bucket(bRules).Put(versionKey(version), doc)
}

// AddFlag records a flag once per kind and subject.
func (t *Tx) AddFlag(f headoffice.Flag) error {
	if t.tx.Bucket(bFlags).Get([]byte(f.Key())) != nil {
		return nil
	}
	return t.put(bFlags, f.Key(), f)
}

// Flags calls fn for every flag.
func (t *Tx) Flags(fn func(headoffice.Flag) error) error {
	return each(t.tx.Bucket(bFlags), "flag", func(_ []byte, f headoffice.Flag) error { return fn(f) })
}

// AddFigures adds to terminals' daily figures (keyed by day, then terminal,
// so that a period is one range) and records the members seen.
func (t *Tx) AddFigures(figs []headoffice.Figures, seen []headoffice.MemberDay) error {
	for _, f := range figs {
		key := f.Day + "\x00" + f.Terminal
		var cur headoffice.Figures
		if _, err := t.get(bFigures, key, &cur); err != nil {
			return err
		}
		cur.Terminal, cur.Store, cur.Day = f.Terminal, f.Store, f.Day
		cur.Add(f)
		if err := t.put(bFigures, key, cur); err != nil {
			return err
		}
	}
	b := t.tx.Bucket(bMemberDays)
	for _, md := range seen {
		if err := b.Put([]byte(md.Day+"\x00"+md.Store+"\x00"+md.Member), nil); err != nil {
			return err
		}
	}
	return nil
}

// dayRange calls fn for the keys of bucket whose day prefix is within
// from..to.
func dayRange(b *bolt.Bucket, from, to string, fn func(k, v []byte) error) error {
	c := b.Cursor()
	for k, v := c.Seek([]byte(from)); k != nil; k, v = c.Next() {
		day, _, _ := bytes.Cut(k, []byte{0})
		if to != "" && string(day) > to {
			return nil
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Figures calls fn for the terminals' daily figures within from..to.
func (t *Tx) Figures(from, to string, fn func(headoffice.Figures) error) error {
	return dayRange(t.tx.Bucket(bFigures), from, to, func(k, v []byte) error {
		var f headoffice.Figures
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("%w: figures %q: %v", headoffice.ErrCorrupt, k, err)
		}
		return fn(f)
	})
}

// UniqueMembers counts, by store, the members who checked out within
// from..to.
func (t *Tx) UniqueMembers(from, to string) (map[string]int64, error) {
	seen := map[string]map[string]bool{}
	err := dayRange(t.tx.Bucket(bMemberDays), from, to, func(k, _ []byte) error {
		parts := bytes.SplitN(k, []byte{0}, 3)
		if len(parts) != 3 {
			return fmt.Errorf("%w: member day %q", headoffice.ErrCorrupt, k)
		}
		store := string(parts[1])
		if seen[store] == nil {
			seen[store] = map[string]bool{}
		}
		seen[store][string(parts[2])] = true
		return nil
	})
	out := make(map[string]int64, len(seen))
	for s, m := range seen {
		out[s] = int64(len(m))
	}
	return out, err
}

// Liability sums every member's balance.
func (t *Tx) Liability() (int64, error) {
	var sum int64
	err := t.EachMember(func(m headoffice.Member) error { sum = headoffice.SatAdd(sum, m.Balance); return nil })
	return sum, err
}

// memberCache holds decoded members with the bytes they were decoded from;
// an entry counts only while the stored bytes are the same.
type memberCache struct {
	mu sync.Mutex
	m  map[string]decodedMember
}

type decodedMember struct {
	raw []byte
	m   *headoffice.Member
}

func (c *memberCache) get(id string, raw []byte) *headoffice.Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[id]; ok && bytes.Equal(e.raw, raw) {
		return e.m
	}
	return nil
}

func (c *memberCache) put(id string, raw []byte, m *headoffice.Member) {
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

// EachMeta calls fn for every metadata value.
func (t *Tx) EachMeta(fn func(string, []byte) error) error { return t.MetaRange("", false, fn) }

// EachCode calls fn for every join code.
func (t *Tx) EachCode(fn func([]byte, string) error) error {
	return t.tx.Bucket(bCodes).ForEach(func(k, v []byte) error { return fn(bytes.Clone(k), string(v)) })
}

// EachMemberDay calls fn for every member seen at a store on a day.
func (t *Tx) EachMemberDay(fn func(headoffice.MemberDay) error) error {
	return t.tx.Bucket(bMemberDays).ForEach(func(k, _ []byte) error {
		parts := bytes.SplitN(k, []byte{0}, 3)
		if len(parts) != 3 {
			return fmt.Errorf("%w: member day %q", headoffice.ErrCorrupt, k)
		}
		return fn(headoffice.MemberDay{Day: string(parts[0]), Store: string(parts[1]), Member: string(parts[2])})
	})
}

// FeedHead is the highest position either feed has given.
func (t *Tx) FeedHead() (uint64, error) {
	return max(t.tx.Bucket(bMemberFd).Sequence(), t.tx.Bucket(bBlockFd).Sequence()), nil
}

// RaiseFeedHead makes both feeds give positions above n.
func (t *Tx) RaiseFeedHead(n uint64) error {
	for _, b := range [][]byte{bMemberFd, bBlockFd} {
		if bk := t.tx.Bucket(b); bk.Sequence() < n {
			if err := bk.SetSequence(n); err != nil {
				return err
			}
		}
	}
	return nil
}
