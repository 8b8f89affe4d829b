//go:build sqlitebench

package localapi_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	// The standard cgo binding of SQLite, for the benchmark only: the
	// sqlitebench build tag keeps it out of every program and test build.
	_ "github.com/mattn/go-sqlite3"
)

// The same checkout on SQLite, as a till that kept its ledger there would
// do it: in WAL mode with synchronous=FULL (every commit synced), read the
// member, insert the event, update the balance, insert the checkout, commit.
func init() {
	sqliteCheckout = func(b *testing.B) func(i int) error {
		db, err := sql.Open("sqlite3", "file:"+filepath.Join(b.TempDir(), "ledger.sqlite")+"?_journal_mode=WAL&_synchronous=FULL")
		if err != nil {
			b.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		b.Cleanup(func() { db.Close() })
		for _, q := range []string{
			`CREATE TABLE members (id TEXT PRIMARY KEY, balance INTEGER NOT NULL, record BLOB NOT NULL)`,
			`CREATE TABLE events (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)`,
			`CREATE TABLE checkouts (ref TEXT PRIMARY KEY, body BLOB NOT NULL)`,
			`INSERT INTO members VALUES ('M-1', 0, zeroblob(450))`,
		} {
			if _, err := db.Exec(q); err != nil {
				b.Fatal(err)
			}
		}
		var stmts [4]*sql.Stmt
		for i, q := range []string{
			`SELECT balance FROM members WHERE id = ?`,
			`INSERT INTO events (seq, body) VALUES (?, ?)`,
			`UPDATE members SET balance = ? WHERE id = ?`,
			`INSERT INTO checkouts (ref, body) VALUES (?, ?)`,
		} {
			if stmts[i], err = db.Prepare(q); err != nil {
				b.Fatal(err)
			}
		}
		event, checkout := make([]byte, 750), make([]byte, 700)
		return func(i int) error {
			tx, err := db.Begin()
			if err != nil {
				return err
			}
			defer tx.Rollback()
			var balance int64
			if err := tx.Stmt(stmts[0]).QueryRow("M-1").Scan(&balance); err != nil {
				return err
			}
			if _, err := tx.Stmt(stmts[1]).Exec(i+1, event); err != nil {
				return err
			}
			if _, err := tx.Stmt(stmts[2]).Exec(balance+12, "M-1"); err != nil {
				return err
			}
			if _, err := tx.Stmt(stmts[3]).Exec(fmt.Sprint("s-", i), checkout); err != nil {
				return err
			}
			return tx.Commit()
		}
	}
}
