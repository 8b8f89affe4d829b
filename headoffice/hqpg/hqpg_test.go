package hqpg_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqpg"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/headoffice/storetest"
)

func TestMain(m *testing.M) { hqtest.Main(m) }

// TestStore: the PostgreSQL store behaves as every store must.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) headoffice.Store {
		db, _ := hqtest.PostgresStore(t, hqpg.Options{Serve: true})
		return db
	})
}

// TestSchema: migrate brings an empty database to the current schema once
// (a second run changes nothing, concurrent runs wait for each other); open
// refuses a database not migrated, and both refuse a newer schema.
func TestSchema(t *testing.T) {
	ctx := context.Background()
	url := hqtest.Postgres(t).NewDatabase(t)
	if _, err := hqpg.Open(ctx, url, hqpg.Options{}); !errors.Is(err, hqpg.ErrSchemaOld) || !strings.Contains(err.Error(), "headoffice migrate") {
		t.Fatalf("open before migrate: %v", err)
	}
	var wg sync.WaitGroup
	froms := make([]int, 3)
	errs := make([]error, 3)
	for i := range froms {
		wg.Add(1)
		go func() { defer wg.Done(); froms[i], errs[i] = hqpg.Migrate(ctx, url) }()
	}
	wg.Wait()
	slices.Sort(froms)
	if errs[0] != nil || errs[1] != nil || errs[2] != nil || !slices.Equal(froms, []int{0, hqpg.SchemaVersion, hqpg.SchemaVersion}) {
		t.Fatalf("concurrent migrations: from %v, %v", froms, errs)
	}
	db, err := hqpg.Open(ctx, url, hqpg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `UPDATE schema_version SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := hqpg.Open(ctx, url, hqpg.Options{}); !errors.Is(err, hqpg.ErrSchemaNew) {
		t.Fatalf("open a newer schema: %v", err)
	}
	if _, err := hqpg.Migrate(ctx, url); !errors.Is(err, hqpg.ErrSchemaNew) {
		t.Fatalf("migrate a newer schema: %v", err)
	}
}

// TestUnreachable: a database that does not answer is one line naming it.
func TestUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := hqpg.Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", hqpg.Options{})
	if err == nil || !strings.Contains(err.Error(), "database unreachable") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("unreachable database: %v", err)
	}
	if _, err := hqpg.Open(ctx, "postgres://%zz", hqpg.Options{}); !errors.Is(err, hqpg.ErrURL) {
		t.Fatalf("bad URL: %v", err)
	}
}
