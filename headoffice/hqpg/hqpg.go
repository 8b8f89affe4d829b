// Package hqpg is head office's store on PostgreSQL, through pgx: any number
// of head office processes serve terminals from one database. The
// database's own keys make ingest idempotent (one row per terminal, epoch and
// sequence), row locks order the writers of one terminal's chain and of one
// member whichever process they run in, and changes reach every process
// through PostgreSQL itself (LISTEN/NOTIFY, with a poll behind it).
//
// It stores and reads; what an event means for a balance is decided by
// headoffice inside the transactions this package offers. The schema is an
// ordered list of migrations embedded in the binary (migrate.go).
package hqpg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/offline-loyalty/terminal/headoffice"
)

const (
	// defaultConns is the pool size unless the URL sets pool_max_conns: a
	// connection is held for one transaction at a time, never across a
	// network wait on a terminal.
	defaultConns = 16
	// connectWait bounds connecting and checking the schema at open.
	connectWait = 10 * time.Second
	// retries is how often a transaction is run again after a deadlock or
	// serialisation failure before its error is returned.
	retries = 8
	// pumpPeriod is how often each serving process gives pending feed
	// entries their positions, besides right after its own commits: the
	// delay before a change made by another process reaches terminals.
	pumpPeriod = 250 * time.Millisecond
	// pumpGap is the least time between two pump rounds of a process.
	pumpGap = 100 * time.Millisecond
	// pumpBatch bounds the entries one pump transaction positions.
	pumpBatch = 10000
	// rollbackWait bounds the ROLLBACK after a failed transaction.
	rollbackWait = 5 * time.Second
	// listenRetry is the first wait before the listener reconnects.
	listenRetry = 100 * time.Millisecond
	// feedChannel is the channel the pump notifies with the stores whose
	// feeds moved.
	feedChannel = "hq_feed"
	// maxPayload is NOTIFY's payload limit with room to spare; a longer
	// list of stores is sent as "every store".
	maxPayload = 7000
)

// Options configure a DB.
type Options struct {
	Logger *slog.Logger
	// Serve runs what a serving head office needs: the pump that positions
	// feed entries, and the listener that hears other processes' changes.
	// The admin verbs, which only read and write, leave it off.
	Serve bool
}

// DB is head office's store on one PostgreSQL database.
type DB struct {
	pool   *pgxpool.Pool
	url    string
	log    *slog.Logger
	notify *headoffice.Notifier
	kick   chan struct{} // wakes the pump after a local commit
	cancel context.CancelFunc
	done   chan struct{}
}

var _ headoffice.Store = (*DB)(nil)

// ErrURL is a database URL that cannot be parsed.
var ErrURL = errors.New("bad database URL")

// Open connects to the database at url (postgres://...) and checks that its
// schema is this program's (ErrSchemaOld: run Migrate; ErrSchemaNew: a newer
// program migrated it).
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURL, err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultConns
	}
	cctx, cancel := context.WithTimeout(ctx, connectWait)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if err := pool.Ping(cctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database unreachable: %w", err)
	}
	if err := checkSchema(cctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	d := &DB{pool: pool, url: url, log: opts.Logger, notify: headoffice.NewNotifier(), kick: make(chan struct{}, 1), done: make(chan struct{})}
	if d.log == nil {
		d.log = slog.Default()
	}
	bg, stop := context.WithCancel(context.Background())
	d.cancel = stop
	if !opts.Serve {
		close(d.done)
		return d, nil
	}
	// Listening before Open returns: no change made after it is missed.
	conn, err := d.listenConn(ctx)
	if err != nil {
		stop()
		pool.Close()
		return nil, fmt.Errorf("database listener: %w", err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.listen(bg, conn) }()
	go func() { defer wg.Done(); d.pumpLoop(bg) }()
	go func() { wg.Wait(); close(d.done) }()
	return d, nil
}

// Close stops the pump and listener and closes the pool.
func (d *DB) Close() error {
	d.cancel()
	<-d.done
	d.notify.Close()
	d.pool.Close()
	return nil
}

// Changes receives the stores whose feeds moved, from the notifications of
// the pumps of every process on the database (this one's included).
func (d *DB) Changes() <-chan []string { return d.notify.C() }

// Ready reports whether the database answers and its schema is this
// program's (a newer program may have migrated it since Open).
func (d *DB) Ready(ctx context.Context) error {
	if err := d.pool.Ping(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	return checkSchema(ctx, d.pool)
}

// Pool is the connection pool, for tools that read the database directly
// (migrate-store's verification, benchmarks).
func (d *DB) Pool() *pgxpool.Pool { return d.pool }

// retryable reports whether a transaction failed only because it lost a
// race with another one, and may simply run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001") // deadlock_detected, serialization_failure
}

// Update runs fn in a read-write transaction (READ COMMITTED, with row locks
// taken by the reads that precede writes) and commits it. A deadlock or
// serialisation failure runs it again. It returns once PostgreSQL has
// committed (synchronous_commit decides what that means on disk).
func (d *DB) Update(ctx context.Context, fn func(headoffice.Tx) error) error {
	for attempt := 0; ; attempt++ {
		t, err := d.update(ctx, fn)
		if retryable(err) && attempt < retries {
			continue
		}
		if err == nil && t.feedMoved {
			select {
			case d.kick <- struct{}{}:
			default:
			}
		}
		return dbError(err)
	}
}

// update runs fn once on a connection of its own, committing or rolling
// back.
func (d *DB) update(ctx context.Context, fn func(headoffice.Tx) error) (*Tx, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	t := &Tx{ctx: ctx, q: conn.Conn(), write: true}
	err = fn(t)
	if err == nil {
		err = t.commit()
	}
	if err != nil && t.begun {
		// A connection that cannot roll back is closed, and the pool
		// drops it.
		rctx, cancel := context.WithTimeout(context.Background(), rollbackWait)
		if _, rerr := conn.Exec(rctx, "ROLLBACK"); rerr != nil {
			_ = conn.Conn().Close(rctx)
		}
		cancel()
	}
	return t, err
}

// dbError marks errors from the database so that the operator reads where
// they came from; head office's own refusals pass as they are.
func dbError(err error) error {
	var pe *pgconn.PgError
	if err != nil && (errors.As(err, &pe) || pgconn.SafeToRetry(err) || pgconn.Timeout(err)) {
		return fmt.Errorf("database: %w", err)
	}
	return err
}

// View runs fn in a read-only transaction over one snapshot.
func (d *DB) View(ctx context.Context, fn func(headoffice.ReadTx) error) error {
	err := pgx.BeginTxFunc(ctx, d.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		return fn(&Tx{ctx: ctx, q: tx, begun: true})
	})
	return dbError(err)
}

// FeedPage reads the feeds of a store's terminals past their cursors: the
// chain heads of its terminals, the members and the blocklist in one
// snapshot (one round trip: a read-only repeatable-read transaction sent as
// one batch), so that the balances include exactly each terminal's events up
// to its AsOf.
func (d *DB) FeedPage(ctx context.Context, q headoffice.FeedQuery) (headoffice.FeedPage, error) {
	p := headoffice.FeedPage{MemberCursor: q.MemberCursor, BlockCursor: q.BlockCursor, AsOf: make(map[headoffice.ChainKey]uint64, len(q.Terminals))}
	terms, epochs := make([]string, len(q.Terminals)), make([]string, len(q.Terminals))
	for i, k := range q.Terminals {
		terms[i], epochs[i] = k.Terminal, k.Epoch
		p.AsOf[k] = 0
	}
	b := &pgx.Batch{}
	b.Queue(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`)
	b.Queue(`SELECT c.terminal, c.epoch, c.last_seq FROM chains c
		JOIN unnest($1::text[], $2::text[]) AS k(terminal, epoch) ON c.terminal = k.terminal AND c.epoch = k.epoch`, terms, epochs)
	b.Queue(`SELECT f.pos, m.doc FROM feed f JOIN members m ON m.id = f.subject
		WHERE f.kind = 'm' AND f.store IN ($1, '*') AND f.pos > $2 AND m.doc IS NOT NULL
		ORDER BY f.pos LIMIT $3`, q.Store, int64(q.MemberCursor), q.Max)
	b.Queue(`SELECT f.pos, f.subject, c.blocked FROM feed f JOIN cards c ON c.card = f.subject
		WHERE f.kind = 'b' AND f.store = '*' AND f.pos > $1 ORDER BY f.pos LIMIT $2`, int64(q.BlockCursor), q.Max)
	b.Queue(`COMMIT`)
	br := d.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return p, dbError(err)
	}
	read := func(scan func(pgx.Rows) error) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	if err := read(func(rows pgx.Rows) error {
		var k headoffice.ChainKey
		var seq int64
		if err := rows.Scan(&k.Terminal, &k.Epoch, &seq); err != nil {
			return err
		}
		p.AsOf[k] = uint64(seq)
		return nil
	}); err != nil {
		return p, dbError(err)
	}
	if err := read(func(rows pgx.Rows) error {
		var pos int64
		var doc []byte
		if err := rows.Scan(&pos, &doc); err != nil {
			return err
		}
		m, err := decodeMember(doc)
		if err != nil {
			return err
		}
		p.Members = append(p.Members, m)
		p.MemberCursor = uint64(pos)
		return nil
	}); err != nil {
		return p, dbError(err)
	}
	if err := read(func(rows pgx.Rows) error {
		var pos int64
		var blk headoffice.Block
		if err := rows.Scan(&pos, &blk.Card, &blk.Blocked); err != nil {
			return err
		}
		p.Blocks = append(p.Blocks, blk)
		p.BlockCursor = uint64(pos)
		return nil
	}); err != nil {
		return p, dbError(err)
	}
	if _, err := br.Exec(); err != nil {
		return p, dbError(err)
	}
	return p, dbError(br.Close())
}
