package hqpg

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations is head office's schema, one step each, applied in order, each
// in one transaction. Add new steps at the end; never change a step that has
// shipped. A database's version is how many it has applied.
//
// Text keys are in the "C" collation so that the database orders them byte
// for byte as the embedded store does (events by terminal, epoch, sequence).
var migrations = []string{
	// 1: the whole of head office as the embedded store has it.
	`
CREATE TABLE meta (
	key   text COLLATE "C" PRIMARY KEY,
	value bytea NOT NULL
);
CREATE TABLE terminals (
	id    text COLLATE "C" PRIMARY KEY,
	store text COLLATE "C" NOT NULL,
	doc   bytea NOT NULL
);
CREATE TABLE codes (
	hash     bytea PRIMARY KEY,
	terminal text COLLATE "C" NOT NULL
);
CREATE TABLE chains (
	terminal  text COLLATE "C" NOT NULL,
	epoch     text COLLATE "C" NOT NULL,
	last_seq  bigint NOT NULL,
	last_hash text NOT NULL,
	PRIMARY KEY (terminal, epoch)
);
-- Ingest is idempotent in the database itself: an event is stored once per
-- (terminal, epoch, seq), whichever process receives it how often.
CREATE TABLE events (
	terminal text COLLATE "C" NOT NULL,
	epoch    text COLLATE "C" NOT NULL,
	seq      bigint NOT NULL,
	raw      bytea NOT NULL,
	PRIMARY KEY (terminal, epoch, seq)
);
-- A row with doc NULL holds the lock of an id that is not a member yet, so
-- that two transactions creating the same member wait for each other.
CREATE TABLE members (
	id      text COLLATE "C" PRIMARY KEY,
	name    text,
	email   text,
	balance bigint NOT NULL DEFAULT 0,
	doc     bytea
);
CREATE TABLE cards (
	card    text COLLATE "C" PRIMARY KEY,
	member  text COLLATE "C" NOT NULL,
	blocked boolean NOT NULL DEFAULT false
);
-- The downstream feeds: kind 'm' a member on a store's feed (store '*': a
-- member no store has seen), kind 'b' a card on the blocklist feed (store
-- '*'). A change sets pos NULL and draws changed; the pump gives committed
-- entries their positions in the order of changed (see pump.go).
CREATE SEQUENCE feed_positions;
CREATE SEQUENCE feed_changes;
CREATE TABLE feed (
	kind    "char" NOT NULL,
	store   text COLLATE "C" NOT NULL,
	subject text COLLATE "C" NOT NULL,
	changed bigint NOT NULL DEFAULT nextval('feed_changes'),
	pos     bigint,
	PRIMARY KEY (kind, store, subject)
);
CREATE INDEX feed_by_pos ON feed (kind, store, pos) WHERE pos IS NOT NULL;
CREATE INDEX feed_pending ON feed (changed) WHERE pos IS NULL;
CREATE TABLE rules (
	version   integer PRIMARY KEY,
	doc       bytea NOT NULL,
	published timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE flags (
	key  bytea PRIMARY KEY,
	kind text NOT NULL,
	doc  bytea NOT NULL
);
CREATE TABLE figures (
	day         text COLLATE "C" NOT NULL,
	terminal    text COLLATE "C" NOT NULL,
	store       text COLLATE "C" NOT NULL,
	events      bigint NOT NULL,
	checkouts   bigint NOT NULL,
	sales       bigint NOT NULL,
	issued      bigint NOT NULL,
	redeemed    bigint NOT NULL,
	donated     bigint NOT NULL,
	enrollments bigint NOT NULL,
	PRIMARY KEY (day, terminal)
);
CREATE TABLE member_days (
	day    text COLLATE "C" NOT NULL,
	store  text COLLATE "C" NOT NULL,
	member text COLLATE "C" NOT NULL,
	PRIMARY KEY (day, store, member)
);
`,
	// 2: figures net of voids and refunds, with adjustments and expiry.
	`
ALTER TABLE figures ADD COLUMN adjusted bigint NOT NULL DEFAULT 0;
ALTER TABLE figures ADD COLUMN expired bigint NOT NULL DEFAULT 0;
ALTER TABLE figures ADD COLUMN reversals bigint NOT NULL DEFAULT 0;
`,
	// 3: the console finds members by a part of their name or email
	// (pg_trgm ships with PostgreSQL and is a trusted extension: the
	// database's owner may create it).
	`
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX members_name_trgm ON members USING gin (lower(name) gin_trgm_ops);
CREATE INDEX members_email_trgm ON members USING gin (lower(email) gin_trgm_ops);
`,
}

// SchemaVersion is the schema this program reads and writes.
var SchemaVersion = len(migrations)

// Errors about the database's schema.
var (
	ErrSchemaOld = errors.New("the database schema is older than this program")
	ErrSchemaNew = errors.New("the database schema is newer than this program")
)

// migrateLock serialises migrations between processes (an advisory lock
// key, "hq-schema").
const migrateLock = 0x68712d736368656d

const versionTable = `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`

// Migrate brings the database at url to SchemaVersion and returns the
// version it found. It refuses a newer schema. Concurrent calls wait for
// each other.
func Migrate(ctx context.Context, url string) (from int, err error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("database: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLock)); err != nil {
		return 0, fmt.Errorf("database: %w", err)
	}
	defer func() { _, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(migrateLock)) }()
	if _, err := conn.Exec(ctx, versionTable); err != nil {
		return 0, fmt.Errorf("database: %w", err)
	}
	from, err = version(ctx, conn)
	if err != nil {
		return 0, err
	}
	if from > SchemaVersion {
		return from, fmt.Errorf("%w: version %d, this program knows %d: use a newer headoffice", ErrSchemaNew, from, SchemaVersion)
	}
	for v := from; v < SchemaVersion; v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM schema_version`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, v+1)
			return err
		})
		if err != nil {
			return from, fmt.Errorf("database: migration %d: %w", v+1, err)
		}
	}
	return from, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// version reads the schema version (0 for a database without one).
func version(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&v)
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, nil
	case errors.As(err, &pe) && pe.Code == "42P01": // undefined_table
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("database: %w", err)
	}
	return v, nil
}

// checkSchema refuses a database whose schema is not this program's.
func checkSchema(ctx context.Context, pool *pgxpool.Pool) error {
	v, err := version(ctx, pool)
	switch {
	case err != nil:
		return err
	case v < SchemaVersion:
		return fmt.Errorf("%w: version %d, this program needs %d: run headoffice migrate --db URL", ErrSchemaOld, v, SchemaVersion)
	case v > SchemaVersion:
		return fmt.Errorf("%w: version %d, this program knows %d: use a newer headoffice", ErrSchemaNew, v, SchemaVersion)
	}
	return nil
}
