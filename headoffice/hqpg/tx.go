package hqpg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/offline-loyalty/terminal/headoffice"
)

// copyFrom is the batch size from which events go in through CopyFrom; a
// smaller batch (a terminal sending as it sells) goes in as one INSERT of
// arrays, one round trip instead of three.
const copyFrom = 32

// Tx is a transaction. Writes of members, cards, flags, figures, new events
// and chain heads are gathered and sent together, in one round trip, before
// the next read and with the COMMIT; the BEGIN goes with the first
// statement. A group of batches that reads its locks and then writes costs
// two round trips.
type Tx struct {
	ctx   context.Context
	q     pgq  // the connection (write) or the read-only transaction (View)
	begun bool // BEGIN has been sent
	write bool

	members   map[string]headoffice.Member
	cards     map[string]cardWrite
	flags     []headoffice.Flag
	figures   []headoffice.Figures
	seen      []headoffice.MemberDay
	chains    map[[2]string]headoffice.Chain
	feedMoved bool // a member or card went on a feed: the pump has work
	staged    bool // the staging table holds rows of this transaction
	// placeholder are the ids locked that are not members; onStores the
	// members read for update that have stores (so are not on everyone's
	// feed).
	placeholder, onStores map[string]bool
	// freshEvents are new events gathered for the next flush.
	freshEvents []freshEvent
}

type freshEvent struct {
	terminal, epoch string
	e               headoffice.StoredEvent
}

var _ headoffice.Tx = (*Tx)(nil)

type cardWrite struct {
	c            headoffice.Card
	blockChanged bool
}

// pgq is what a transaction runs statements on: a connection, or pgx's
// transaction for reads.
type pgq interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error)
}

func (t *Tx) queryRow(sql string, args ...any) pgx.Row {
	return t.q.QueryRow(t.ctx, sql, args...)
}

// begin sends BEGIN if no statement has started the transaction yet.
func (t *Tx) begin() error {
	if t.begun {
		return nil
	}
	if _, err := t.q.Exec(t.ctx, "BEGIN"); err != nil {
		return err
	}
	t.begun = true
	return nil
}

// read starts the transaction and sends the gathered writes, so that what
// follows reads them.
func (t *Tx) read() error {
	if err := t.flush(false); err != nil {
		return err
	}
	return t.begin()
}

// commit sends the gathered writes and COMMIT in one round trip.
func (t *Tx) commit() error { return t.flush(true) }

// send runs a batch, with BEGIN before it when the transaction has not
// started, and returns the command tag of its last statement.
func (t *Tx) send(b *pgx.Batch) (pgconn.CommandTag, error) {
	n := len(b.QueuedQueries)
	if !t.begun {
		b.QueuedQueries = append([]*pgx.QueuedQuery{{SQL: "BEGIN"}}, b.QueuedQueries...)
	}
	br := t.q.SendBatch(t.ctx, b)
	var tag pgconn.CommandTag
	var err error
	if !t.begun {
		if _, err = br.Exec(); err == nil {
			t.begun = true
		}
	}
	for i := 0; i < n && err == nil; i++ {
		tag, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func found(err error) (bool, error) {
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// forUpdate is the locking clause of a read in a write transaction.
func (t *Tx) forUpdate() string {
	if t.write {
		return " FOR UPDATE"
	}
	return ""
}

// Meta returns a metadata value.
func (t *Tx) Meta(key string) ([]byte, error) {
	if err := t.read(); err != nil {
		return nil, err
	}
	var v []byte
	ok, err := found(t.queryRow(`SELECT value FROM meta WHERE key = $1`+t.forUpdate(), key).Scan(&v))
	if !ok {
		return nil, err
	}
	return v, nil
}

// SetMeta writes a metadata value.
func (t *Tx) SetMeta(key string, v []byte) error {
	if err := t.begin(); err != nil {
		return err
	}
	_, err := t.q.Exec(t.ctx, `INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, v)
	return err
}

// DeleteMeta removes a metadata value.
func (t *Tx) DeleteMeta(key string) error {
	if err := t.begin(); err != nil {
		return err
	}
	_, err := t.q.Exec(t.ctx, `DELETE FROM meta WHERE key = $1`, key)
	return err
}

// MetaRange calls fn for the metadata values under prefix, in key order
// (the column's collation is C, byte order) or reversed.
func (t *Tx) MetaRange(prefix string, reverse bool, fn func(string, []byte) error) error {
	if err := t.read(); err != nil {
		return err
	}
	order := "ASC"
	if reverse {
		order = "DESC"
	}
	// A prefix ending in ASCII bounds the range for the index; the test
	// of the prefix stays for any other.
	upper := "\U0010FFFF"
	if n := len(prefix); n > 0 && prefix[n-1] < 0x7f {
		upper = prefix[:n-1] + string(prefix[n-1]+1)
	}
	rows, err := t.q.Query(t.ctx, `SELECT key, value FROM meta WHERE key >= $1 AND key < $2 AND starts_with(key, $1) ORDER BY key `+order, prefix, upper)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		if err := fn(k, v); err != nil {
			if errors.Is(err, headoffice.ErrStop) {
				return nil
			}
			return err
		}
	}
	return rows.Err()
}

func decode[T any](what, key string, doc []byte) (T, error) {
	var v T
	if err := json.Unmarshal(doc, &v); err != nil {
		return v, fmt.Errorf("%w: %s %q: %v", headoffice.ErrCorrupt, what, key, err)
	}
	return v, nil
}

func decodeMember(doc []byte) (headoffice.Member, error) {
	return decode[headoffice.Member]("member", "", doc)
}

// Terminal reads a terminal.
func (t *Tx) Terminal(id string) (headoffice.Terminal, bool, error) {
	if err := t.read(); err != nil {
		return headoffice.Terminal{}, false, err
	}
	var doc []byte
	ok, err := found(t.queryRow(`SELECT doc FROM terminals WHERE id = $1`+t.forUpdate(), id).Scan(&doc))
	if !ok {
		return headoffice.Terminal{}, false, err
	}
	v, err := decode[headoffice.Terminal]("terminal", id, doc)
	return v, err == nil, err
}

// PutTerminal writes a terminal.
func (t *Tx) PutTerminal(v headoffice.Terminal) error {
	if err := t.begin(); err != nil {
		return err
	}
	doc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = t.q.Exec(t.ctx, `INSERT INTO terminals (id, store, doc) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET store = excluded.store, doc = excluded.doc`, v.ID, v.Store, doc)
	return err
}

// each calls fn for every row of a query of one bytea column, decoded.
func each[T any](t *Tx, what, sql string, fn func(T) error, args ...any) error {
	if err := t.read(); err != nil {
		return err
	}
	rows, err := t.q.Query(t.ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return err
		}
		v, err := decode[T](what, "", doc)
		if err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Terminals calls fn for every terminal.
func (t *Tx) Terminals(fn func(headoffice.Terminal) error) error {
	return each(t, "terminal", `SELECT doc FROM terminals ORDER BY id`, fn)
}

// CodeTerminal returns (and in a write transaction locks) the terminal a
// join code was issued for: a second process joining with the same code
// waits, then finds it used.
func (t *Tx) CodeTerminal(codeHash []byte) (string, error) {
	if err := t.read(); err != nil {
		return "", err
	}
	var id string
	_, err := found(t.queryRow(`SELECT terminal FROM codes WHERE hash = $1`+t.forUpdate(), codeHash).Scan(&id))
	return id, err
}

// SetCode records or retires a join code.
func (t *Tx) SetCode(codeHash []byte, terminal string) error {
	if err := t.begin(); err != nil {
		return err
	}
	var err error
	if terminal == "" {
		_, err = t.q.Exec(t.ctx, `DELETE FROM codes WHERE hash = $1`, codeHash)
	} else {
		_, err = t.q.Exec(t.ctx, `INSERT INTO codes (hash, terminal) VALUES ($1, $2)
			ON CONFLICT (hash) DO UPDATE SET terminal = excluded.terminal`, codeHash, terminal)
	}
	return err
}

// Chain reads the head of (terminal, epoch).
func (t *Tx) Chain(terminal, epoch string) (headoffice.Chain, error) {
	if err := t.read(); err != nil {
		return headoffice.Chain{}, err
	}
	var c headoffice.Chain
	var seq int64
	ok, err := found(t.queryRow(`SELECT last_seq, last_hash FROM chains WHERE terminal = $1 AND epoch = $2`, terminal, epoch).Scan(&seq, &c.LastHash))
	if ok {
		c.LastSeq = uint64(seq)
	}
	return c, err
}

// Lock reads and locks chain heads and members, chains first, each in key
// order, in one round trip (with the BEGIN). Chains and members not seen
// yet get a row first (a chain at seq 0, a member with no doc) and are
// locked in a second round trip, so that they too have a row to lock: a
// second transaction creating the same ones waits for this one.
func (t *Tx) Lock(keys []headoffice.ChainKey, ids []string) (map[headoffice.ChainKey]headoffice.Chain, map[string]headoffice.Member, error) {
	if err := t.flush(false); err != nil {
		return nil, nil, err
	}
	chains := make(map[headoffice.ChainKey]headoffice.Chain, len(keys))
	members := make(map[string]headoffice.Member, len(ids))
	if err := t.lockRound(keys, ids, false, chains, members); err != nil {
		return nil, nil, err
	}
	var newKeys []headoffice.ChainKey
	for _, k := range keys {
		if _, ok := chains[k]; !ok {
			newKeys = append(newKeys, k)
		}
	}
	var newIDs []string
	for _, id := range ids {
		if _, ok := members[id]; !ok && !t.placeholder[id] {
			newIDs = append(newIDs, id)
		}
	}
	if len(newKeys) > 0 || len(newIDs) > 0 {
		if err := t.lockRound(newKeys, newIDs, true, chains, members); err != nil {
			return nil, nil, err
		}
	}
	t.noteStores(members)
	return chains, members, nil
}

const (
	lockChainsSQL = `SELECT c.terminal, c.epoch, c.last_seq, c.last_hash FROM chains c
		JOIN unnest($1::text[], $2::text[]) AS k(terminal, epoch) ON c.terminal = k.terminal AND c.epoch = k.epoch
		ORDER BY c.terminal, c.epoch FOR UPDATE OF c`
	lockMembersSQL = `SELECT id, doc FROM members WHERE id = ANY($1) ORDER BY id FOR UPDATE`
)

// lockRound locks chains and members in one batch; create inserts their
// rows first.
func (t *Tx) lockRound(keys []headoffice.ChainKey, ids []string, create bool, chains map[headoffice.ChainKey]headoffice.Chain, members map[string]headoffice.Member) error {
	b := &pgx.Batch{}
	if !t.begun {
		b.Queue("BEGIN")
	}
	terms, epochs := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		terms[i], epochs[i] = k.Terminal, k.Epoch
	}
	if len(keys) > 0 {
		if create {
			b.Queue(`INSERT INTO chains (terminal, epoch, last_seq, last_hash)
				SELECT terminal, epoch, 0, '' FROM unnest($1::text[], $2::text[]) AS k(terminal, epoch) ORDER BY 1, 2 ON CONFLICT DO NOTHING`, terms, epochs)
		}
		b.Queue(lockChainsSQL, terms, epochs)
	}
	if len(ids) > 0 {
		if create {
			b.Queue(`INSERT INTO members (id) SELECT unnest($1::text[]) ORDER BY 1 ON CONFLICT DO NOTHING`, ids)
		}
		b.Queue(lockMembersSQL, ids)
	}
	if len(b.QueuedQueries) == 0 {
		return nil
	}
	br := t.q.SendBatch(t.ctx, b)
	defer br.Close()
	if !t.begun {
		if _, err := br.Exec(); err != nil {
			return err
		}
		t.begun = true
	}
	if len(keys) > 0 {
		if create {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var k headoffice.ChainKey
			var c headoffice.Chain
			var seq int64
			if err := rows.Scan(&k.Terminal, &k.Epoch, &seq, &c.LastHash); err != nil {
				rows.Close()
				return err
			}
			c.LastSeq = uint64(seq)
			chains[k] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	if len(ids) > 0 {
		if create {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		err = t.scanMemberRows(rows, members)
		rows.Close()
		if err != nil {
			return err
		}
	}
	return br.Close()
}

// Chains calls fn for every chain head with events.
func (t *Tx) Chains(fn func(terminal, epoch string, c headoffice.Chain) error) error {
	if err := t.read(); err != nil {
		return err
	}
	rows, err := t.q.Query(t.ctx, `SELECT terminal, epoch, last_seq, last_hash FROM chains WHERE last_seq > 0 ORDER BY terminal, epoch`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var terminal, epoch string
		var c headoffice.Chain
		var seq int64
		if err := rows.Scan(&terminal, &epoch, &seq, &c.LastHash); err != nil {
			return err
		}
		c.LastSeq = uint64(seq)
		if err := fn(terminal, epoch, c); err != nil {
			return err
		}
	}
	return rows.Err()
}

// PutChain writes the head of (terminal, epoch) at the next flush.
func (t *Tx) PutChain(terminal, epoch string, c headoffice.Chain) error {
	if t.chains == nil {
		t.chains = map[[2]string]headoffice.Chain{}
	}
	t.chains[[2]string{terminal, epoch}] = c
	return nil
}

// PutEvents stores new events under the unique key (terminal, epoch, seq),
// which refuses one stored already; a large batch is copied straight into
// the table. Resent events go through the staging table (CopyFrom has no ON
// CONFLICT) and INSERT ... ON CONFLICT DO NOTHING, and those whose bytes
// differ from the stored ones are returned.
func (t *Tx) PutEvents(terminal, epoch string, fresh, resent []headoffice.StoredEvent) ([]uint64, error) {
	if len(fresh) > 0 {
		var err error
		if len(fresh) >= copyFrom {
			if err := t.read(); err != nil {
				return nil, err
			}
			var n int64
			n, err = t.q.CopyFrom(t.ctx, pgx.Identifier{"events"}, []string{"terminal", "epoch", "seq", "raw"}, pgx.CopyFromSlice(len(fresh), func(i int) ([]any, error) {
				return []any{terminal, epoch, int64(fresh[i].Seq), fresh[i].Raw}, nil
			}))
			if err == nil && n != int64(len(fresh)) {
				err = fmt.Errorf("%d of %d events copied", n, len(fresh))
			}
		} else {
			// Sent with the other writes at the next flush, with the new
			// events of the other terminals of this transaction.
			for _, e := range fresh {
				t.freshEvents = append(t.freshEvents, freshEvent{terminal, epoch, e})
			}
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
			return nil, fmt.Errorf("%w: %s/%s: events past the chain head are stored already: %v", headoffice.ErrCorrupt, terminal, epoch, err)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(resent) == 0 {
		return nil, nil
	}
	// Resent events may repeat fresh ones of this same transaction (merged
	// batches that overlap): those go in first.
	if err := t.read(); err != nil {
		return nil, err
	}
	// The statement's snapshot is taken before its insert: the join sees the
	// rows that were there already, so exactly the conflicting ones. It reads
	// the stored events in the batch's range of sequences only (bounds
	// passed as values, so that the planner scans that range and not the
	// whole chain).
	const tail = `,
		ins AS (INSERT INTO events (terminal, epoch, seq, raw) SELECT $1, $2, seq, raw FROM s ORDER BY seq ON CONFLICT DO NOTHING)
		SELECT coalesce((SELECT array_agg(s.seq ORDER BY s.seq) FROM s JOIN events e ON e.terminal = $1 AND e.epoch = $2 AND e.seq = s.seq
			WHERE e.seq BETWEEN $3 AND $4 AND e.raw <> s.raw), '{}')`
	lo, hi := int64(resent[0].Seq), int64(resent[0].Seq)
	for _, e := range resent {
		lo, hi = min(lo, int64(e.Seq)), max(hi, int64(e.Seq))
	}
	var row pgx.Row
	if len(resent) >= copyFrom {
		// CopyFrom has no ON CONFLICT: a large resent batch is copied into
		// a staging table of the connection's own first (made on first
		// use: most connections never need it).
		stage := `CREATE TEMP TABLE IF NOT EXISTS hq_staging (seq bigint NOT NULL, raw bytea NOT NULL) ON COMMIT DELETE ROWS`
		if t.staged {
			stage = `TRUNCATE hq_staging`
		}
		if _, err := t.q.Exec(t.ctx, stage); err != nil {
			return nil, err
		}
		t.staged = true
		if _, err := t.q.CopyFrom(t.ctx, pgx.Identifier{"hq_staging"}, []string{"seq", "raw"}, pgx.CopyFromSlice(len(resent), func(i int) ([]any, error) {
			return []any{int64(resent[i].Seq), resent[i].Raw}, nil
		})); err != nil {
			return nil, err
		}
		row = t.queryRow(`WITH s AS (SELECT seq, raw FROM hq_staging)`+tail, terminal, epoch, lo, hi)
	} else {
		seqs, raws := eventArrays(resent)
		row = t.queryRow(`WITH s AS (SELECT * FROM unnest($5::bigint[], $6::bytea[]) AS s(seq, raw))`+tail, terminal, epoch, lo, hi, seqs, raws)
	}
	var conflicts []int64
	if err := row.Scan(&conflicts); err != nil {
		return nil, err
	}
	out := make([]uint64, len(conflicts))
	for i, c := range conflicts {
		out[i] = uint64(c)
	}
	return out, nil
}

func eventArrays(events []headoffice.StoredEvent) ([]int64, [][]byte) {
	seqs, raws := make([]int64, len(events)), make([][]byte, len(events))
	for i, e := range events {
		seqs[i], raws[i] = int64(e.Seq), e.Raw
	}
	return seqs, raws
}

// Events calls fn with the stored events of terminal ("" for all), by
// terminal, epoch and sequence.
func (t *Tx) Events(terminal string, fn func(raw []byte) error) error {
	if err := t.read(); err != nil {
		return err
	}
	sql, args := `SELECT raw FROM events ORDER BY terminal, epoch, seq`, []any{}
	if terminal != "" {
		sql, args = `SELECT raw FROM events WHERE terminal = $1 ORDER BY terminal, epoch, seq`, []any{terminal}
	}
	rows, err := t.q.Query(t.ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var raw []byte
	for rows.Next() {
		if err := rows.Scan(&raw); err != nil {
			return err
		}
		if err := fn(raw); err != nil {
			return err
		}
	}
	return rows.Err()
}

// EventsAfter returns up to max events of (terminal, epoch) past after.
func (t *Tx) EventsAfter(terminal, epoch string, after uint64, max int) ([]headoffice.StoredEvent, error) {
	if err := t.read(); err != nil {
		return nil, err
	}
	rows, err := t.q.Query(t.ctx, `SELECT seq, raw FROM events WHERE terminal = $1 AND epoch = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
		terminal, epoch, int64(after), max)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []headoffice.StoredEvent
	for rows.Next() {
		var seq int64
		var raw []byte
		if err := rows.Scan(&seq, &raw); err != nil {
			return nil, err
		}
		out = append(out, headoffice.StoredEvent{Seq: uint64(seq), Raw: raw})
	}
	return out, rows.Err()
}

func (t *Tx) readMembers(ids []string, lock bool) (map[string]headoffice.Member, error) {
	if err := t.read(); err != nil {
		return nil, err
	}
	out := make(map[string]headoffice.Member, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	sorted := append([]string(nil), ids...)
	sort.Strings(sorted)
	if !lock {
		return out, t.scanMembers(out, `SELECT id, doc FROM members WHERE id = ANY($1) AND doc IS NOT NULL`, sorted)
	}
	const lockSQL = lockMembersSQL
	if err := t.scanMembers(out, lockSQL, sorted); err != nil {
		return nil, err
	}
	var missing []string
	for _, id := range sorted {
		if _, ok := out[id]; !ok && !t.placeholder[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		// Ids that are not members yet get a row to lock (doc NULL): a
		// second transaction creating the same member waits for this one.
		if _, err := t.q.Exec(t.ctx, `INSERT INTO members (id) SELECT unnest($1::text[]) ORDER BY 1 ON CONFLICT DO NOTHING`, missing); err != nil {
			return nil, err
		}
		if err := t.scanMembers(out, lockSQL, missing); err != nil {
			return nil, err
		}
	}
	t.noteStores(out)
	return out, nil
}

// noteStores remembers which members read for update have stores, so are
// not on everyone's feed: a write need not take them off it.
func (t *Tx) noteStores(members map[string]headoffice.Member) {
	for id, m := range members {
		if len(m.Stores) > 0 {
			if t.onStores == nil {
				t.onStores = map[string]bool{}
			}
			t.onStores[id] = true
		}
	}
}

// scanMembers adds the members a query of (id, doc) returns to out.
func (t *Tx) scanMembers(out map[string]headoffice.Member, sql string, ids []string) error {
	rows, err := t.q.Query(t.ctx, sql, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	return t.scanMemberRows(rows, out)
}

// scanMemberRows adds the members rows of (id, doc) hold to out; a row with
// no doc (a lock holder) is not a member.
func (t *Tx) scanMemberRows(rows pgx.Rows, out map[string]headoffice.Member) error {
	for rows.Next() {
		var id string
		var doc []byte
		if err := rows.Scan(&id, &doc); err != nil {
			return err
		}
		if doc == nil {
			if t.placeholder == nil {
				t.placeholder = map[string]bool{}
			}
			t.placeholder[id] = true
			continue
		}
		m, err := decode[headoffice.Member]("member", id, doc)
		if err != nil {
			return err
		}
		out[id] = m
	}
	return rows.Err()
}

// Members returns the members with these ids.
func (t *Tx) Members(ids []string) (map[string]headoffice.Member, error) {
	return t.readMembers(ids, false)
}

// LockMembers returns the members with these ids and locks the ids.
func (t *Tx) LockMembers(ids []string) (map[string]headoffice.Member, error) {
	return t.readMembers(ids, true)
}

// EachMember calls fn for every member.
func (t *Tx) EachMember(fn func(headoffice.Member) error) error {
	return each(t, "member", `SELECT doc FROM members WHERE doc IS NOT NULL ORDER BY id`, fn)
}

// FindMembers finds members by a part of their name or email through the
// trigram indexes (migration 3).
func (t *Tx) FindMembers(text string, max int) ([]headoffice.Member, error) {
	if err := t.read(); err != nil {
		return nil, err
	}
	pattern := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(text) + "%"
	rows, err := t.q.Query(t.ctx, `SELECT doc FROM members WHERE doc IS NOT NULL AND (lower(name) LIKE $1 OR lower(email) LIKE $1) LIMIT $2`, pattern, max)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []headoffice.Member
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		m, err := decodeMember(doc)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// PutMember writes a member, and puts it on its stores' feeds, at the next
// flush.
func (t *Tx) PutMember(m headoffice.Member) error {
	if t.members == nil {
		t.members = map[string]headoffice.Member{}
	}
	t.members[m.ID] = m
	return nil
}

// Card reads a card.
func (t *Tx) Card(card string) (headoffice.Card, bool, error) {
	if err := t.read(); err != nil {
		return headoffice.Card{}, false, err
	}
	var c headoffice.Card
	ok, err := found(t.queryRow(`SELECT member, blocked FROM cards WHERE card = $1`+t.forUpdate(), card).Scan(&c.Member, &c.Blocked))
	return c, ok, err
}

// Cards reads those of cards that exist, in one query.
func (t *Tx) Cards(cards []string) (map[string]headoffice.Card, error) {
	if err := t.read(); err != nil {
		return nil, err
	}
	rows, err := t.q.Query(t.ctx, `SELECT card, member, blocked FROM cards WHERE card = ANY($1)`, cards)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]headoffice.Card{}
	for rows.Next() {
		var card string
		var c headoffice.Card
		if err := rows.Scan(&card, &c.Member, &c.Blocked); err != nil {
			return nil, err
		}
		out[card] = c
	}
	return out, rows.Err()
}

// EachCard calls fn for every card.
func (t *Tx) EachCard(fn func(string, headoffice.Card) error) error {
	if err := t.read(); err != nil {
		return err
	}
	rows, err := t.q.Query(t.ctx, `SELECT card, member, blocked FROM cards ORDER BY card`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var card string
		var c headoffice.Card
		if err := rows.Scan(&card, &c.Member, &c.Blocked); err != nil {
			return err
		}
		if err := fn(card, c); err != nil {
			return err
		}
	}
	return rows.Err()
}

// PutCard writes a card at the next flush; when blockChanged it goes on the
// blocklist feed.
func (t *Tx) PutCard(card string, c headoffice.Card, blockChanged bool) error {
	if t.cards == nil {
		t.cards = map[string]cardWrite{}
	}
	w := t.cards[card]
	t.cards[card] = cardWrite{c: c, blockChanged: blockChanged || w.blockChanged}
	return nil
}

// Rules returns the newest published rules document.
func (t *Tx) Rules() ([]byte, int, error) {
	if err := t.read(); err != nil {
		return nil, 0, err
	}
	var doc []byte
	var v int
	ok, err := found(t.queryRow(`SELECT version, doc FROM rules ORDER BY version DESC LIMIT 1`).Scan(&v, &doc))
	if !ok {
		return nil, 0, err
	}
	return doc, v, nil
}

// EachRules calls fn for every published version, oldest first.
func (t *Tx) EachRules(fn func(int, []byte) error) error {
	if err := t.read(); err != nil {
		return err
	}
	rows, err := t.q.Query(t.ctx, `SELECT version, doc FROM rules ORDER BY version`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		var doc []byte
		if err := rows.Scan(&v, &doc); err != nil {
			return err
		}
		if err := fn(v, doc); err != nil {
			return err
		}
	}
	return rows.Err()
}

// PutRules publishes a rules document. Concurrent publishers of versions
// wait for each other (the lock on the newest version's row, taken by
// Rules in the same transaction, does not cover a table with no rows yet;
// the primary key refuses a second publication of one version).
func (t *Tx) PutRules(version int, doc []byte) error {
	if err := t.begin(); err != nil {
		return err
	}
	if _, err := t.q.Exec(t.ctx, `LOCK TABLE rules IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return err
	}
	var newest int
	if err := t.queryRow(`SELECT coalesce(max(version), 0) FROM rules`).Scan(&newest); err != nil {
		return err
	}
	if version <= newest {
		return fmt.Errorf("%w: version %d is not above the published version %d", headoffice.ErrInvalid, version, newest)
	}
	if _, err := t.q.Exec(t.ctx, `INSERT INTO rules (version, doc) VALUES ($1, $2)`, version, doc); err != nil {
		return err
	}
	// Rare, and every terminal must hear of it: notified with the commit.
	_, err := t.q.Exec(t.ctx, `SELECT pg_notify($1, $2)`, feedChannel, headoffice.AllStores)
	return err
}

// AddFlag records a flag once per kind and subject, at the next flush.
func (t *Tx) AddFlag(f headoffice.Flag) error {
	t.flags = append(t.flags, f)
	return nil
}

// Flags calls fn for every flag.
func (t *Tx) Flags(fn func(headoffice.Flag) error) error {
	return each(t, "flag", `SELECT doc FROM flags ORDER BY key`, fn)
}

// AddFigures adds to terminals' daily figures at the next flush.
func (t *Tx) AddFigures(figs []headoffice.Figures, seen []headoffice.MemberDay) error {
	t.figures = append(t.figures, figs...)
	t.seen = append(t.seen, seen...)
	return nil
}

// dayBounds turns an open end of a period into one that covers everything.
func dayBounds(from, to string) (string, string) {
	if to == "" {
		to = "9999-12-31"
	}
	return from, to
}

// Figures calls fn for the terminals' daily figures within from..to.
func (t *Tx) Figures(from, to string, fn func(headoffice.Figures) error) error {
	if err := t.read(); err != nil {
		return err
	}
	from, to = dayBounds(from, to)
	rows, err := t.q.Query(t.ctx, `SELECT day, terminal, store, events, checkouts, sales, issued, redeemed, donated, enrollments, adjusted, expired, reversals
		FROM figures WHERE day >= $1 AND day <= $2 ORDER BY day, terminal`, from, to)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var f headoffice.Figures
		if err := rows.Scan(&f.Day, &f.Terminal, &f.Store, &f.Events, &f.Checkouts, &f.Sales, &f.Issued, &f.Redeemed, &f.Donated, &f.Enrollments,
			&f.Adjusted, &f.Expired, &f.Reversals); err != nil {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return rows.Err()
}

// UniqueMembers counts, by store, the members who checked out within
// from..to.
func (t *Tx) UniqueMembers(from, to string) (map[string]int64, error) {
	if err := t.read(); err != nil {
		return nil, err
	}
	from, to = dayBounds(from, to)
	rows, err := t.q.Query(t.ctx, `SELECT store, count(DISTINCT member) FROM member_days WHERE day >= $1 AND day <= $2 GROUP BY store`, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}

// Liability sums every member's balance.
func (t *Tx) Liability() (int64, error) {
	if err := t.read(); err != nil {
		return 0, err
	}
	var sum int64
	err := t.queryRow(`SELECT ` + sat(`coalesce(sum(balance), 0)`) + ` FROM members WHERE doc IS NOT NULL`).Scan(&sum)
	return sum, err
}

// flush sends the gathered writes in one round trip, each kind as one
// statement over arrays, in key order (the order in which every transaction
// locks rows, so that two never wait for each other in a circle).
func (t *Tx) flush(commit bool) error {
	if len(t.members) == 0 && len(t.cards) == 0 && len(t.flags) == 0 && len(t.figures) == 0 && len(t.seen) == 0 && len(t.chains) == 0 && len(t.freshEvents) == 0 {
		if !commit || !t.begun {
			return nil // nothing was written: nothing to commit either
		}
	}
	b := &pgx.Batch{}
	if len(t.freshEvents) > 0 {
		n := len(t.freshEvents)
		terms, epochs, seqs, raws := make([]string, n), make([]string, n), make([]int64, n), make([][]byte, n)
		for i, f := range t.freshEvents {
			terms[i], epochs[i], seqs[i], raws[i] = f.terminal, f.epoch, int64(f.e.Seq), f.e.Raw
		}
		// No ON CONFLICT: the unique key refuses an event stored already,
		// and the transaction with it.
		b.Queue(`INSERT INTO events (terminal, epoch, seq, raw) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[])`, terms, epochs, seqs, raws)
		t.freshEvents = nil
	}
	if len(t.members) > 0 {
		ids := sortedKeys(t.members)
		names, emails, docs := make([]string, len(ids)), make([]string, len(ids)), make([][]byte, len(ids))
		balances := make([]int64, len(ids))
		var feedStores, feedIDs, seen []string
		for i, id := range ids {
			m := t.members[id]
			doc, err := json.Marshal(m)
			if err != nil {
				return err
			}
			names[i], emails[i], balances[i], docs[i] = m.Name, m.Email, m.Balance, doc
			for _, s := range m.FeedStores() {
				feedStores, feedIDs = append(feedStores, s), append(feedIDs, id)
			}
			// Seen at a store now, and maybe on everyone's feed before.
			if len(m.Stores) > 0 && !t.onStores[id] {
				seen = append(seen, id)
			}
		}
		b.Queue(`INSERT INTO members (id, name, email, balance, doc)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bytea[])
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email, balance = excluded.balance, doc = excluded.doc`,
			ids, names, emails, balances, docs)
		b.Queue(`INSERT INTO feed (kind, store, subject) SELECT 'm', s, id FROM unnest($1::text[], $2::text[]) AS u(s, id)
			ORDER BY s, id ON CONFLICT (kind, store, subject) DO UPDATE SET pos = NULL, changed = nextval('feed_changes')`, feedStores, feedIDs)
		if len(seen) > 0 {
			// A member seen at a store is no longer on everyone's feed.
			b.Queue(`DELETE FROM feed WHERE kind = 'm' AND store = '*' AND subject = ANY($1)`, seen)
		}
		t.feedMoved = true
		t.members = nil
	}
	if len(t.cards) > 0 {
		cards := sortedKeys(t.cards)
		members, blocked := make([]string, len(cards)), make([]bool, len(cards))
		var moved []string
		for i, c := range cards {
			w := t.cards[c]
			members[i], blocked[i] = w.c.Member, w.c.Blocked
			if w.blockChanged {
				moved = append(moved, c)
			}
		}
		b.Queue(`INSERT INTO cards (card, member, blocked) SELECT * FROM unnest($1::text[], $2::text[], $3::boolean[])
			ON CONFLICT (card) DO UPDATE SET member = excluded.member, blocked = excluded.blocked`, cards, members, blocked)
		if len(moved) > 0 {
			b.Queue(`INSERT INTO feed (kind, store, subject) SELECT 'b', '*', c FROM unnest($1::text[]) AS c
				ON CONFLICT (kind, store, subject) DO UPDATE SET pos = NULL, changed = nextval('feed_changes')`, moved)
			t.feedMoved = true
		}
		t.cards = nil
	}
	if len(t.flags) > 0 {
		byKey := map[string]headoffice.Flag{}
		for _, f := range t.flags {
			if _, ok := byKey[f.Key()]; !ok {
				byKey[f.Key()] = f
			}
		}
		keys := sortedKeys(byKey)
		raw, kinds, docs := make([][]byte, len(keys)), make([]string, len(keys)), make([][]byte, len(keys))
		for i, k := range keys {
			doc, err := json.Marshal(byKey[k])
			if err != nil {
				return err
			}
			raw[i], kinds[i], docs[i] = []byte(k), byKey[k].Kind, doc
		}
		b.Queue(`INSERT INTO flags (key, kind, doc) SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[]) ON CONFLICT DO NOTHING`, raw, kinds, docs)
		t.flags = nil
	}
	if len(t.figures) > 0 {
		sum := map[string]headoffice.Figures{}
		for _, f := range t.figures {
			k := f.Day + "\x00" + f.Terminal
			cur := sum[k]
			cur.Day, cur.Terminal, cur.Store = f.Day, f.Terminal, f.Store
			cur.Add(f)
			sum[k] = cur
		}
		keys := sortedKeys(sum)
		n := len(keys)
		days, terms, stores := make([]string, n), make([]string, n), make([]string, n)
		cols := make([][]int64, 10)
		for i := range cols {
			cols[i] = make([]int64, n)
		}
		for i, k := range keys {
			f := sum[k]
			days[i], terms[i], stores[i] = f.Day, f.Terminal, f.Store
			for j, v := range []int64{f.Events, f.Checkouts, f.Sales, f.Issued, f.Redeemed, f.Donated, f.Enrollments, f.Adjusted, f.Expired, f.Reversals} {
				cols[j][i] = v
			}
		}
		b.Queue(`INSERT INTO figures (day, terminal, store, events, checkouts, sales, issued, redeemed, donated, enrollments, adjusted, expired, reversals)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],
				$11::bigint[], $12::bigint[], $13::bigint[])
			ON CONFLICT (day, terminal) DO UPDATE SET `+satSet("events", "checkouts", "sales", "issued", "redeemed", "donated", "enrollments", "adjusted", "expired", "reversals"),
			days, terms, stores, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9])
		t.figures = nil
	}
	if len(t.seen) > 0 {
		set := map[headoffice.MemberDay]bool{}
		for _, md := range t.seen {
			set[md] = true
		}
		all := make([]headoffice.MemberDay, 0, len(set))
		for md := range set {
			all = append(all, md)
		}
		sort.Slice(all, func(i, j int) bool {
			a, b := all[i], all[j]
			if a.Day != b.Day {
				return a.Day < b.Day
			}
			if a.Store != b.Store {
				return a.Store < b.Store
			}
			return a.Member < b.Member
		})
		days, stores, members := make([]string, len(all)), make([]string, len(all)), make([]string, len(all))
		for i, md := range all {
			days[i], stores[i], members[i] = md.Day, md.Store, md.Member
		}
		b.Queue(`INSERT INTO member_days (day, store, member) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`, days, stores, members)
		t.seen = nil
	}
	if len(t.chains) > 0 {
		keys := make([][2]string, 0, len(t.chains))
		for k := range t.chains {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
		})
		terms, epochs, hashes := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys))
		seqs := make([]int64, len(keys))
		for i, k := range keys {
			c := t.chains[k]
			terms[i], epochs[i], seqs[i], hashes[i] = k[0], k[1], int64(c.LastSeq), c.LastHash
		}
		b.Queue(`INSERT INTO chains (terminal, epoch, last_seq, last_hash) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
			ON CONFLICT (terminal, epoch) DO UPDATE SET last_seq = excluded.last_seq, last_hash = excluded.last_hash`, terms, epochs, seqs, hashes)
		t.chains = nil
	}
	if commit {
		b.Queue("COMMIT")
	}
	tag, err := t.send(b)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "events_pkey" {
		return fmt.Errorf("%w: events past a chain head are stored already: %v", headoffice.ErrCorrupt, err)
	}
	if err == nil && commit && tag.String() != "COMMIT" {
		// PostgreSQL answers a COMMIT of a failed transaction with ROLLBACK.
		return fmt.Errorf("database: transaction rolled back (%s)", tag)
	}
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// EachMeta calls fn for every metadata value.
func (t *Tx) EachMeta(fn func(string, []byte) error) error { return t.MetaRange("", false, fn) }

// EachCode calls fn for every join code.
func (t *Tx) EachCode(fn func([]byte, string) error) error {
	if err := t.read(); err != nil {
		return err
	}
	rows, err := t.q.Query(t.ctx, `SELECT hash, terminal FROM codes ORDER BY hash`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var h []byte
		var id string
		if err := rows.Scan(&h, &id); err != nil {
			return err
		}
		if err := fn(h, id); err != nil {
			return err
		}
	}
	return rows.Err()
}

// EachMemberDay calls fn for every member seen at a store on a day.
func (t *Tx) EachMemberDay(fn func(headoffice.MemberDay) error) error {
	if err := t.read(); err != nil {
		return err
	}
	rows, err := t.q.Query(t.ctx, `SELECT day, store, member FROM member_days ORDER BY day, store, member`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var md headoffice.MemberDay
		if err := rows.Scan(&md.Day, &md.Store, &md.Member); err != nil {
			return err
		}
		if err := fn(md); err != nil {
			return err
		}
	}
	return rows.Err()
}

// FeedHead is the highest feed position given (or that will be given by a
// pump under way).
func (t *Tx) FeedHead() (uint64, error) {
	if err := t.read(); err != nil {
		return 0, err
	}
	var n int64
	err := t.queryRow(`SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM feed_positions`).Scan(&n)
	return uint64(n), err
}

// RaiseFeedHead makes the pump give positions above n.
func (t *Tx) RaiseFeedHead(n uint64) error {
	if err := t.begin(); err != nil {
		return err
	}
	_, err := t.q.Exec(t.ctx, `SELECT setval('feed_positions', greatest($1, (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM feed_positions)))`, int64(max(n, 1)))
	return err
}

// sat is a numeric SQL expression held at the ends of bigint (as
// headoffice.SatAdd holds Go's sums), so that a sum never fails the
// transaction with an overflow.
func sat(expr string) string {
	return "least(greatest(" + expr + ", -9223372036854775808), 9223372036854775807)::bigint"
}

// satSet is the SET list of an upsert that adds the new row's columns to
// the stored ones, each sum held by sat.
func satSet(cols ...string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = c + " = " + sat("figures."+c+"::numeric + excluded."+c)
	}
	return strings.Join(parts, ", ")
}
