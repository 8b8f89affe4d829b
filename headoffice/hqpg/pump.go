package hqpg

import (
	"context"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"

	"github.com/offline-loyalty/terminal/headoffice"
)

// A terminal reads its feeds from a position: everything after the last
// entry it received. Positions must therefore appear in the order they are
// given, which a sequence drawn inside the writing transactions does not
// guarantee (a transaction may draw 7, another 8 and commit first; a reader
// that saw 8 would never see 7). So writers only mark an entry pending (pos
// NULL), and the pump gives committed pending entries their positions, one
// pump transaction at a time across all processes (an advisory lock): every
// position it gives is above every position already visible.

// pumpLock is the advisory lock that serialises pumps ("hq-pump").
const pumpLock = 0x68712d70756d70

// pumpLoop positions pending entries soon after a local commit moved a
// feed, and every pumpPeriod for those of other processes, until ctx ends.
// Rounds are at least pumpGap apart: under load every commit moves a feed,
// and a round per commit would cost more than the commits.
func (d *DB) pumpLoop(ctx context.Context) {
	tick := time.NewTicker(pumpPeriod)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		case <-tick.C:
		}
		if wait := pumpGap - time.Since(last); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
		}
		last = time.Now()
		for {
			n, err := d.Pump(ctx)
			if err != nil {
				if ctx.Err() == nil {
					d.log.Warn("feed pump", "err", err)
				}
				break
			}
			if n < pumpBatch {
				break
			}
		}
	}
}

// Pump gives the pending feed entries that are committed their positions,
// and notifies every listening process of the stores whose feeds moved. It
// returns how many it positioned (0 when another process is pumping).
func (d *DB) Pump(ctx context.Context) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, int64(pumpLock)).Scan(&locked); err != nil || !locked {
			return err
		}
		// Entries locked by a transaction under way are skipped: their
		// writer has not committed, and they get a position next time.
		rows, err := tx.Query(ctx, `
			WITH ready AS (
				SELECT kind, store, subject, nextval('feed_positions') AS p FROM (
					SELECT kind, store, subject FROM feed WHERE pos IS NULL
					ORDER BY changed LIMIT $1 FOR UPDATE SKIP LOCKED
				) pending
			)
			UPDATE feed f SET pos = r.p FROM ready r
			WHERE f.kind = r.kind AND f.store = r.store AND f.subject = r.subject
			RETURNING f.store`, pumpBatch)
		if err != nil {
			return err
		}
		stores := map[string]bool{}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return err
			}
			stores[s] = true
			n++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		payload := headoffice.AllStores
		if !stores[headoffice.AllStores] {
			list := make([]string, 0, len(stores))
			for s := range stores {
				list = append(list, s)
			}
			if p := strings.Join(list, ","); len(p) <= maxPayload {
				payload = p
			}
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, feedChannel, payload)
		return err
	})
	return n, dbError(err)
}

// listen holds a connection of its own (a pooled one would take the LISTEN
// back to the pool) and turns notifications into Changes, starting on conn,
// which listens already. After a lost connection it reconnects with backoff
// and reports every store changed, since notifications sent meanwhile are
// lost.
func (d *DB) listen(ctx context.Context, conn *pgx.Conn) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.MaxElapsedTime = listenRetry, 10*time.Second, 0
	d.wait(ctx, conn)
	for ctx.Err() == nil {
		wait := bo.NextBackOff()
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		conn, err := d.listenConn(ctx)
		if err != nil {
			d.log.Warn("database listener", "err", err)
			continue
		}
		bo.Reset()
		// Whatever changed while no one listened is read again now.
		d.notify.Notify(headoffice.AllStores)
		d.wait(ctx, conn)
	}
}

// listenConn connects and listens.
func (d *DB) listenConn(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, connectWait)
	defer cancel()
	conn, err := pgx.Connect(cctx, d.url)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(cctx, "LISTEN "+feedChannel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// wait passes on notifications until the connection fails, and closes it.
func (d *DB) wait(ctx context.Context, conn *pgx.Conn) {
	defer conn.Close(context.Background())
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("database listener lost", "err", err)
			}
			return
		}
		d.notify.Notify(strings.Split(n.Payload, ",")...)
	}
}
