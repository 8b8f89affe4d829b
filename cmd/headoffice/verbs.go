package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/adminapi"
	"github.com/offline-loyalty/terminal/headoffice/console"
	"github.com/offline-loyalty/terminal/headoffice/hqbolt"
	"github.com/offline-loyalty/terminal/headoffice/hqpg"
	"github.com/offline-loyalty/terminal/internal/cli"
	"github.com/offline-loyalty/terminal/internal/logging"
	"github.com/offline-loyalty/terminal/internal/netlimit"
	"github.com/offline-loyalty/terminal/sync/syncserver"
)

// Timeouts of the head-office HTTP servers.
const (
	readHeaderTimeout = 10 * time.Second // a client that stalls before its request is dropped
	// readTimeout bounds a whole request (a join's 4 KiB body, or a
	// websocket upgrade, whose read deadlines the sync endpoint then sets
	// itself); a client that trickles a body is dropped after it.
	readTimeout = 15 * time.Second
	// writeTimeout bounds an answer (the endpoint sets its own deadlines on
	// a websocket once upgraded).
	writeTimeout = 15 * time.Second
	// idleTimeout closes a kept-alive connection with no request.
	idleTimeout = 60 * time.Second
	// preAuthPerAddress is how many connections one address may hold open
	// before they prove a terminal's key (joins, handshakes, metrics).
	preAuthPerAddress = 32
	// preAuthTotal bounds them over all addresses: with the handshake's
	// frame limit, what connections that never authenticate can hold.
	preAuthTotal = 4096
	shutdownWait = 10 * time.Second // connections get this long to finish at shutdown
	dialTimeout  = 500 * time.Millisecond
)

// dbRetryMax is the longest wait between two attempts to reach a database
// that is down when serve starts.
const dbRetryMax = 30 * time.Second

func headofficeVerbs(v map[string]cli.Verb) {
	v["serve"] = cli.Verb{Usage: "serve --listen ADDR [--db URL] [--metrics-listen ADDR] [--log-format text|json] [--tls-cert F --tls-key F] [--compress] [--joins-per-minute N]", Short: "the sync endpoint, join, the web console, metrics and the admin API; blocks", Run: runServe}
	v["migrate"] = cli.Verb{Usage: "migrate --db URL", Short: "create or upgrade the PostgreSQL schema", Run: runMigrate}
	v["member merge"] = cli.Verb{Usage: "member merge --into MEMBER --from MEMBER", Short: "make one member of two (the same person enrolled twice): balances, lots and cards move, both histories stay", Run: runMemberMerge}
	v["audit surprise"] = cli.Verb{Usage: "audit surprise [--day D]", Short: "draw every checkout of a day again and list the surprises paid that did not win", Run: runAuditSurprise}
	v["repair"] = cli.Verb{Usage: "repair --data DIR", Short: "rebuild a damaged embedded store from what still reads; the terminals send the rest (head office stopped)", Run: runRepair}
	v["backup"] = cli.Verb{Usage: "backup --to FILE", Short: "a consistent copy of the embedded store, taken while head office runs (PostgreSQL: pg_dump)", Run: runBackup}
	v["restore"] = cli.Verb{Usage: "restore --from FILE [--replace] | restore --db URL", Short: "put a backup of the embedded store back (head office stopped); on PostgreSQL, run after restoring the database with its own tools", Run: runRestore}
	v["migrate-store"] = cli.Verb{Usage: "migrate-store --from DIR --to URL", Short: "move a chain from the embedded store to PostgreSQL, verified", Run: runMigrateStore}
	v["terminal add"] = cli.Verb{Usage: "terminal add --store STORE --name NAME", Short: "register a terminal and print its one-time join code", Run: runTerminalAdd}
	v["rules set"] = cli.Verb{Usage: "rules set FILE", Short: "publish a rules document (and catalog)", Run: runRulesSet}
	v["rules get"] = cli.Verb{Usage: "rules get", Short: "print the published rules document", Run: runRulesGet}
	v["members import"] = cli.Verb{Usage: "members import FILE.csv", Short: "bulk load members and cards (card,member,name,email,tier,balance)", Run: runMembersImport}
	v["member"] = cli.Verb{Usage: "member --card CARD", Short: "the authoritative member", Run: runMember}
	v["events"] = cli.Verb{Usage: "events [--terminal T]", Short: "the ingested events as JSON lines", Run: runEvents}
	v["operator add"] = cli.Verb{Usage: "operator add --name NAME --role admin|support|analyst", Short: "an account of the console; its password is read from standard input", Run: runOperatorAdd}
	v["operator list"] = cli.Verb{Usage: "operator list", Short: "the console's operators and their roles", Run: runOperatorList}
	v["operator disable"] = cli.Verb{Usage: "operator disable --name NAME", Short: "stop an operator signing in, and end its sessions", Run: runOperatorDisable}
	v["report"] = cli.Verb{Usage: "report [--from D --to D] [--store S]", Short: "figures across stores, negative balances, chain breaks", Run: runReport}
}

// newFlags returns a verb's flags with --db besides --data and --json.
func newFlags(verb string) (*flag.FlagSet, *cli.Common, *string) {
	fs, c := cli.NewFlags(prog, verb)
	db := fs.String("db", os.Getenv("HEADOFFICE_DB"), "PostgreSQL URL, postgres://USER@HOST:PORT/DB (default $HEADOFFICE_DB); without it, the embedded store in --data")
	return fs, c, db
}

// openPostgres opens the database for serve, waiting with backoff while it
// cannot be reached; a schema that is not this program's fails at once.
func openPostgres(ctx context.Context, url string, log *slog.Logger) (*hqpg.DB, error) {
	bo := backoff.NewExponentialBackOff()
	bo.MaxInterval, bo.MaxElapsedTime = dbRetryMax, 0
	for {
		db, err := hqpg.Open(ctx, url, hqpg.Options{Logger: log, Serve: true})
		if err == nil || errors.Is(err, hqpg.ErrSchemaOld) || errors.Is(err, hqpg.ErrSchemaNew) || errors.Is(err, hqpg.ErrURL) {
			return db, err
		}
		wait := bo.NextBackOff()
		log.Error("database not reachable; serving nothing until it is", "retry_in", wait.Round(time.Millisecond), "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, err
		}
	}
}

func runServe(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("serve")
	listen := fs.String("listen", "127.0.0.1:8780", "address of the sync endpoint")
	metricsListen := fs.String("metrics-listen", "", "serve /metrics, /healthz and /readyz on this address instead of beside /v1/sync (answers from the start, while the store opens)")
	logFormat := fs.String("log-format", logging.Text, "log format: text or json")
	cert := fs.String("tls-cert", "", "TLS certificate (PEM) for wss://")
	key := fs.String("tls-key", "", "TLS private key (PEM)")
	compress := fs.Bool("compress", false, "allow permessage-deflate (costs memory per connection)")
	joins := fs.Int("joins-per-minute", syncserver.DefaultJoinsPerMinute, "join attempts one address may make a minute (after a burst of 20); 0 for no limit")
	readWait := fs.Duration("read-timeout", readTimeout, "longest a client may take to send a request, body included")
	idleWait := fs.Duration("idle-timeout", idleTimeout, "longest a kept-alive connection may stay without a request")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	if (*cert == "") != (*key == "") {
		return fmt.Errorf("%w: serve: give both --tls-cert and --tls-key, or neither", cli.ErrUsage)
	}
	if *readWait <= 0 || *idleWait <= 0 || *joins < 0 {
		return fmt.Errorf("%w: serve: timeouts are positive and --joins-per-minute is 0 or more", cli.ErrUsage)
	}
	log, err := logging.New(os.Stderr, *logFormat, slog.LevelInfo)
	if err != nil {
		return fmt.Errorf("%w: serve: %v", cli.ErrUsage, err)
	}
	probes := newOps(log)
	var servers []*http.Server
	errc := make(chan error, 3)
	serve := func(hs *http.Server, l net.Listener, tls bool) {
		servers = append(servers, hs)
		go func() {
			if tls {
				errc <- hs.ServeTLS(l, *cert, *key)
				return
			}
			errc <- hs.Serve(l)
		}()
	}
	// The servers stop before the Office and the store they call (the
	// deferred closes below run first on an early return only).
	shutdown := func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
		defer cancel()
		for _, hs := range servers {
			_ = hs.Shutdown(sctx)
		}
		servers = nil
	}
	defer shutdown()
	// The probes' own address answers while the store opens (a database
	// still down), so that an orchestrator sees alive and not ready.
	if *metricsListen != "" {
		ml, err := net.Listen("tcp", *metricsListen)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		probes.handle(mux, true)
		serve(&http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, WriteTimeout: writeTimeout, IdleTimeout: idleTimeout,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}, ml, false)
		log.Info("headoffice probes and metrics", "listen", ml.Addr().String())
	}
	var store headoffice.Store
	where := "data"
	if *dbURL != "" {
		db, err := openPostgres(ctx, *dbURL, log)
		if err != nil {
			return err
		}
		defer db.Close()
		store, where = db, "postgres"
	} else {
		db, err := hqbolt.Open(c.Data)
		if err != nil {
			return err
		}
		defer db.Close()
		store = db
	}
	office, err := headoffice.New(ctx, store, headoffice.Options{Logger: log, Metrics: probes.reg})
	if err != nil {
		return err
	}
	defer office.Close()
	tcp, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	ln := netlimit.Listen(tcp, preAuthPerAddress, preAuthTotal)
	perMinute := *joins
	if perMinute == 0 {
		perMinute = -1 // the flag's 0 is no limit; the option's 0 is the default
	}
	srv := syncserver.New(office, syncserver.Options{Logger: log, Compression: *compress, Metrics: probes.reg, Conns: ln, JoinsPerMinute: perMinute})
	con, err := console.New(office, console.Options{Logger: log, TLS: *cert != ""})
	if err != nil {
		ln.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", srv.Handler())
	probes.handle(mux, *metricsListen == "")
	// The console answers everything else (its sign-in page to a stranger).
	mux.Handle("/", con)
	probes.office.Store(office)
	// The admin socket serves the verbs run on this machine against the
	// embedded store, which only this process may open. On PostgreSQL the
	// verbs open the database themselves.
	var adminLn net.Listener
	sock := filepath.Join(c.Data, adminapi.SocketName)
	if *dbURL == "" {
		_ = os.Remove(sock) // left by a head office that was killed; the store lock proves none runs
		old := umask(0o177)
		adminLn, err = net.Listen("unix", sock)
		umask(old)
		if err != nil {
			ln.Close()
			return err
		}
		defer os.Remove(sock)
	}
	serve(&http.Server{Handler: mux, ReadHeaderTimeout: min(readHeaderTimeout, *readWait), ReadTimeout: *readWait,
		WriteTimeout: writeTimeout, IdleTimeout: *idleWait, ConnContext: netlimit.ConnContext,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}, ln, *cert != "")
	if adminLn != nil {
		serve(&http.Server{Handler: adminapi.Handler(office), ReadHeaderTimeout: readHeaderTimeout}, adminLn, false)
	}
	log.Info("headoffice serving", "listen", ln.Addr().String(), "tls", *cert != "", "store", where)
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdown()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func parse(fs *flag.FlagSet, c *cli.Common, args []string) error {
	if err := cli.Parse(fs, c, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected argument %q", cli.ErrUsage, fs.Name(), fs.Arg(0))
	}
	return nil
}

// admin returns a client of head office for a verb: on PostgreSQL (dbURL
// set), of one opened in this process; on the embedded store, of the head
// office serving dir or, when none is, of one opened in this process.
func admin(ctx context.Context, dir, dbURL string) (*adminapi.Client, func(), error) {
	if dbURL != "" {
		db, err := hqpg.Open(ctx, dbURL, hqpg.Options{Logger: quiet})
		if err != nil {
			return nil, nil, err
		}
		return inProcess(ctx, db)
	}
	sock := filepath.Join(dir, adminapi.SocketName)
	if conn, err := net.DialTimeout("unix", sock, dialTimeout); err == nil {
		conn.Close()
		return adminapi.Dial(sock), func() {}, nil
	}
	if _, err := os.Stat(filepath.Join(dir, hqbolt.FileName)); err != nil {
		return nil, nil, fmt.Errorf("no head office data in %s (start headoffice serve --data %s)", dir, dir)
	}
	db, err := hqbolt.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	return inProcess(ctx, db)
}

// quiet is the logger of a head office run for one verb.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// inProcess runs head office over store in this process for one verb; the
// returned func closes both.
func inProcess(ctx context.Context, store headoffice.Store) (*adminapi.Client, func(), error) {
	office, err := headoffice.New(ctx, store, headoffice.Options{Logger: quiet})
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return adminapi.InProcess(adminapi.Handler(office)), func() { office.Close(); store.Close() }, nil
}

func runTerminalAdd(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("terminal add")
	store := fs.String("store", "", "store id")
	name := fs.String("name", "", "terminal name, unique in the store")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	if err := cli.Require("terminal add", map[string]string{"store": *store, "name": *name}); err != nil {
		return err
	}
	// The first terminal creates the embedded store (a database is created
	// by headoffice migrate).
	if *dbURL == "" {
		if err := os.MkdirAll(c.Data, 0o700); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(c.Data, hqbolt.FileName)); err != nil {
			db, err := hqbolt.Open(c.Data)
			if err != nil {
				return err
			}
			db.Close()
		}
	}
	cl, done, err := admin(ctx, c.Data, *dbURL)
	if err != nil {
		return err
	}
	defer done()
	var out map[string]string
	if err := cl.Do(ctx, http.MethodPost, "/admin/terminals", adminapi.Body(map[string]string{"Store": *store, "Name": *name}), &out); err != nil {
		return err
	}
	return c.Print(out, func(w io.Writer) {
		fmt.Fprintf(w, "terminal %s: join code %s (single use, valid 24 hours)\n", out["terminal"], out["code"])
	})
}

func fileArg(fs *flag.FlagSet, c *cli.Common, verb string, args []string) (string, error) {
	// The file may come before or after the flags.
	var file string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		file, args = args[0], args[1:]
	}
	if err := cli.Parse(fs, c, args); err != nil {
		return "", err
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return "", fmt.Errorf("%w: %s: unexpected argument %q", cli.ErrUsage, verb, fs.Arg(0))
	}
	if file == "" {
		return "", fmt.Errorf("%w: %s: a FILE is required", cli.ErrUsage, verb)
	}
	return file, nil
}

func runRulesSet(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("rules set")
	file, err := fileArg(fs, c, "rules set", args)
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	cl, done, err := admin(ctx, c.Data, *dbURL)
	if err != nil {
		return err
	}
	defer done()
	var out map[string]int
	if err := cl.Do(ctx, http.MethodPut, "/admin/rules", f, &out); err != nil {
		return err
	}
	return c.Print(out, func(w io.Writer) { fmt.Fprintf(w, "published rules version %d\n", out["version"]) })
}

func runRulesGet(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("rules get")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	cl, done, err := admin(ctx, c.Data, *dbURL)
	if err != nil {
		return err
	}
	defer done()
	var doc []byte
	if err := cl.Do(ctx, http.MethodGet, "/admin/rules", nil, &doc); err != nil {
		return err
	}
	_, err = os.Stdout.Write(doc)
	return err
}

func runMembersImport(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("members import")
	file, err := fileArg(fs, c, "members import", args)
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	cl, done, err := admin(ctx, c.Data, *dbURL)
	if err != nil {
		return err
	}
	defer done()
	var out map[string]int
	if err := cl.Do(ctx, http.MethodPost, "/admin/members", f, &out); err != nil {
		return err
	}
	return c.Print(out, func(w io.Writer) { fmt.Fprintf(w, "imported %d members\n", out["imported"]) })
}

func runMember(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("member")
	card := fs.String("card", "", "card number")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	if err := cli.Require("member", map[string]string{"card": *card}); err != nil {
		return err
	}
	cl, done, err := admin(ctx, c.Data, *dbURL)
	if err != nil {
		return err
	}
	defer done()
	var m headoffice.MemberView
	if err := cl.Do(ctx, http.MethodGet, adminapi.Query("/admin/member", "card", *card), nil, &m); err != nil {
		return err
	}
	return c.Print(m, func(w io.Writer) {
		fmt.Fprintf(w, "%s %s, tier %s, balance %d points, status %s\n", m.Member.Member, m.Name, m.Tier, m.Balance, m.Status)
	})
}

func runEvents(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("events")
	terminal := fs.String("terminal", "", "only this terminal's events")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	cl, done, err := admin(ctx, c.Data, *dbURL)
	if err != nil {
		return err
	}
	defer done()
	return cl.Lines(ctx, adminapi.Query("/admin/events", "terminal", *terminal), func(line []byte) error {
		_, err := fmt.Printf("%s\n", line)
		return err
	})
}

func runReport(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("report")
	from := fs.String("from", "", "first day, YYYY-MM-DD")
	to := fs.String("to", "", "last day, YYYY-MM-DD")
	store := fs.String("store", "", "only this store")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	cl, done, err := admin(ctx, c.Data, *dbURL)
	if err != nil {
		return err
	}
	defer done()
	var rep headoffice.Report
	if err := cl.Do(ctx, http.MethodGet, adminapi.Query("/admin/report", "from", *from, "to", *to, "store", *store), nil, &rep); err != nil {
		return err
	}
	return c.Print(rep, func(w io.Writer) {
		fmt.Fprintf(w, "%d terminals, outstanding points %d\n", rep.Terminals, rep.Liability)
		for _, s := range rep.Stores {
			fmt.Fprintf(w, "store %s: %d checkouts by %d members, sales %d net of %d voids and refunds, +%d issued (net), -%d redeemed, -%d donated, %+d adjusted, -%d expired, %d enrollments\n",
				s.Store, s.Checkouts, s.Members, s.Sales, s.Reversals, s.PointsIssued, s.PointsRedeemed, s.PointsDonated, s.PointsAdjusted, s.PointsExpired, s.Enrollments)
		}
		for _, f := range rep.NegativeBalances {
			fmt.Fprintf(w, "NEGATIVE BALANCE member %s: %d (%s)\n", f.Member, f.Balance, f.Detail)
		}
		for _, f := range rep.ChainBreaks {
			fmt.Fprintf(w, "CHAIN BREAK terminal %s epoch %s seq %d: %s\n", f.Terminal, f.Epoch, f.Seq, f.Detail)
		}
		for _, f := range rep.Other {
			fmt.Fprintf(w, "FLAG %s terminal %s: %s\n", strings.ToUpper(strings.ReplaceAll(f.Kind, "_", " ")), cmp.Or(f.Terminal, "-"), f.Detail)
		}
	})
}

func runMigrate(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("migrate")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	if err := cli.Require("migrate", map[string]string{"db": *dbURL}); err != nil {
		return err
	}
	from, err := hqpg.Migrate(ctx, *dbURL)
	if err != nil {
		return err
	}
	out := map[string]int{"from": from, "to": hqpg.SchemaVersion}
	return c.Print(out, func(w io.Writer) {
		if from == hqpg.SchemaVersion {
			fmt.Fprintf(w, "schema is at version %d already\n", from)
			return
		}
		fmt.Fprintf(w, "schema migrated from version %d to %d\n", from, hqpg.SchemaVersion)
	})
}

func runMigrateStore(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "migrate-store")
	from := fs.String("from", "", "the embedded store's data directory (head office stopped)")
	to := fs.String("to", "", "the PostgreSQL URL to move it to")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	if err := cli.Require("migrate-store", map[string]string{"from": *from, "to": *to}); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(*from, hqbolt.FileName)); err != nil {
		return fmt.Errorf("no head office data in %s", *from)
	}
	src, err := hqbolt.Open(*from)
	if err != nil {
		return err
	}
	defer src.Close()
	if _, err := hqpg.Migrate(ctx, *to); err != nil {
		return err
	}
	dst, err := hqpg.Open(ctx, *to, hqpg.Options{Logger: quiet})
	if err != nil {
		return err
	}
	defer dst.Close()
	if _, err := headoffice.Move(ctx, src, dst); err != nil {
		return fmt.Errorf("migrate-store: %w", err)
	}
	n, err := headoffice.Verify(ctx, src, dst)
	if err != nil {
		return fmt.Errorf("migrate-store: verification failed: %w", err)
	}
	return c.Print(n, func(w io.Writer) {
		fmt.Fprintf(w, "moved and verified: %d terminals, %d chains with %d events, %d members, %d cards, %d rules versions, %d flags\n",
			n.Terminals, n.Chains, n.Events, n.Members, n.Cards, n.Rules, n.Flags)
	})
}

func runRepair(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("repair")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	if *dbURL != "" {
		return fmt.Errorf("%w: repair rebuilds the embedded store; PostgreSQL is restored from its own backups", cli.ErrUsage)
	}
	rep, events, err := hqbolt.Repair(c.Data)
	if err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	db, err := hqbolt.Open(c.Data)
	if err != nil {
		return err
	}
	defer db.Close()
	office, err := headoffice.New(ctx, db, headoffice.Options{Logger: quiet})
	if err != nil {
		return err
	}
	defer office.Close()
	applied, err := office.Reapply(ctx, events)
	if err != nil {
		return fmt.Errorf("repair: applying the events found: %w", err)
	}
	out := struct {
		hqbolt.RepairReport
		headoffice.Reapplied
	}{rep, applied}
	return c.Print(out, func(w io.Writer) {
		fmt.Fprintf(w, "repaired %s: kept %d terminals, %d join codes, %d rules versions; applied %d events of %d terminal databases again (%d dropped, %d pages unreadable); the damaged file is %s; terminals send what is missing when they connect\n",
			c.Data, rep.Terminals, rep.Codes, rep.Rules, applied.Applied, applied.Chains, applied.Dropped, rep.Skipped, rep.Damaged)
	})
}

func runBackup(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("backup")
	to := fs.String("to", "", "the backup file to write (replaced whole once complete, mode 0600)")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	if err := cli.Require("backup", map[string]string{"to": *to}); err != nil {
		return err
	}
	if *dbURL != "" {
		return fmt.Errorf("%w: backup copies the embedded store; back PostgreSQL up with its own tools (pg_dump, or base backups and WAL archiving)", cli.ErrUsage)
	}
	n, err := cli.WriteAtomically(*to, func(w io.Writer) (int64, error) {
		// A serving head office takes the copy itself, the ingest going
		// on; else the file is opened here.
		sock := filepath.Join(c.Data, adminapi.SocketName)
		if conn, err := net.DialTimeout("unix", sock, dialTimeout); err == nil {
			conn.Close()
			return adminapi.Dial(sock).Copy(ctx, "/admin/backup", w)
		}
		if _, err := os.Stat(filepath.Join(c.Data, hqbolt.FileName)); err != nil {
			return 0, fmt.Errorf("no head office data in %s: nothing to back up", c.Data)
		}
		db, err := hqbolt.Open(c.Data)
		if err != nil {
			return 0, err
		}
		defer db.Close()
		return db.Backup(w)
	})
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	out := struct {
		File  string
		Bytes int64
	}{*to, n}
	return c.Print(out, func(w io.Writer) {
		fmt.Fprintf(w, "backed up %s to %s (%d bytes); to restore, stop head office and copy it to %s\n",
			c.Data, *to, n, filepath.Join(c.Data, hqbolt.FileName))
	})
}

func runRestore(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("restore")
	from := fs.String("from", "", "the backup file (headoffice backup --to)")
	replace := fs.Bool("replace", false, "keep the store in --data aside (*.replaced-TIME) and restore over it")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	var rep hqbolt.RestoreReport
	if *dbURL != "" {
		// The database was restored by pg_restore or to a point in time;
		// what is left is to move the feeds past the terminals' cursors.
		if *from != "" {
			return fmt.Errorf("%w: restore --db takes no --from: restore the database with its own tools (pg_restore, or a base backup and WAL), then run restore --db URL", cli.ErrUsage)
		}
		db, err := hqpg.Open(ctx, *dbURL, hqpg.Options{Logger: quiet})
		if err != nil {
			return err
		}
		defer db.Close()
		if rep.Restored, err = headoffice.MarkRestored(ctx, db); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	} else {
		if err := cli.Require("restore", map[string]string{"from": *from}); err != nil {
			return err
		}
		sock := filepath.Join(c.Data, adminapi.SocketName)
		if conn, err := net.DialTimeout("unix", sock, dialTimeout); err == nil {
			conn.Close()
			return fmt.Errorf("head office is serving %s: stop it before restoring", c.Data)
		}
		var err error
		if rep, err = hqbolt.Restore(ctx, c.Data, *from, *replace); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	return c.Print(rep, func(w io.Writer) {
		if rep.From != "" {
			fmt.Fprintf(w, "restored %s from %s", c.Data, rep.From)
			if rep.Replaced != "" {
				fmt.Fprintf(w, " (the store it replaced is %s)", rep.Replaced)
			}
			fmt.Fprint(w, "; ")
		}
		fmt.Fprintf(w, "feed positions raised from %d past %d; start head office: the terminals send what the copy lacks when they connect\n", rep.FeedHead, rep.RaisedTo)
	})
}

func runAuditSurprise(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("audit surprise")
	day := fs.String("day", time.Now().UTC().Format(time.DateOnly), "the day, YYYY-MM-DD (UTC)")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	cl, done, err := admin(ctx, c.Data, *dbURL)
	if err != nil {
		return err
	}
	defer done()
	var a headoffice.SurpriseAudit
	if err := cl.Do(ctx, http.MethodGet, adminapi.Query("/admin/audit/surprise", "day", *day), nil, &a); err != nil {
		return err
	}
	if err := c.Print(a, func(w io.Writer) {
		fmt.Fprintf(w, "%s: %d checkouts, %d paid a surprise (%d drawn before their till joined, not audited), %d mismatches\n",
			a.Day, a.Checkouts, a.Won, a.Unaudited, len(a.Mismatches))
		for _, m := range a.Mismatches {
			fmt.Fprintf(w, "mismatch: %s/%s/%d ref %s paid %d, draw %d not under %d\n", m.Terminal, m.Epoch, m.Seq, m.Ref, m.Paid, m.Draw, m.ProbabilityBP)
		}
	}); err != nil {
		return err
	}
	if len(a.Mismatches) > 0 {
		return fmt.Errorf("audit surprise: %d surprises paid that the draw did not win", len(a.Mismatches))
	}
	return nil
}

func runMemberMerge(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("member merge")
	into := fs.String("into", "", "the member that stays")
	from := fs.String("from", "", "the member merged into it")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	if err := cli.Require("member merge", map[string]string{"into": *into, "from": *from}); err != nil {
		return err
	}
	by := "unknown"
	if u, err := user.Current(); err == nil {
		by = u.Username
	}
	cl, done, err := admin(ctx, c.Data, *dbURL)
	if err != nil {
		return err
	}
	defer done()
	var v headoffice.MemberView
	body, _ := json.Marshal(map[string]string{"into": *into, "from": *from, "by": by})
	if err := cl.Do(ctx, http.MethodPost, "/admin/members/merge", bytes.NewReader(body), &v); err != nil {
		return err
	}
	return c.Print(v, func(w io.Writer) {
		fmt.Fprintf(w, "member %s merged into %s: balance %d, %d cards\n", *from, *into, v.Balance, len(v.Cards))
	})
}

func runOperatorAdd(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("operator add")
	name := fs.String("name", "", "the operator's sign-in name")
	role := fs.String("role", "", "admin, support or analyst")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	if err := cli.Require("operator add", map[string]string{"name": *name, "role": *role}); err != nil {
		return err
	}
	password, err := cli.ReadSecret(os.Stdin, os.Stderr, "password", true, 256)
	if err != nil {
		return err
	}
	cl, done, err := admin(ctx, c.Data, *dbURL)
	if err != nil {
		return err
	}
	defer done()
	body := adminapi.Body(map[string]string{"name": *name, "role": *role, "password": password})
	if err := cl.Do(ctx, http.MethodPost, "/admin/operators", body, nil); err != nil {
		return err
	}
	return c.Print(map[string]string{"name": *name, "role": *role}, func(w io.Writer) {
		fmt.Fprintf(w, "operator %s added (%s): sign in to the console at the serve address\n", *name, *role)
	})
}

func runOperatorList(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("operator list")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	cl, done, err := admin(ctx, c.Data, *dbURL)
	if err != nil {
		return err
	}
	defer done()
	var ops []headoffice.Operator
	if err := cl.Do(ctx, http.MethodGet, "/admin/operators", nil, &ops); err != nil {
		return err
	}
	return c.Print(ops, func(w io.Writer) {
		if len(ops) == 0 {
			fmt.Fprintln(w, "no operators: add one with headoffice operator add --name NAME --role admin")
		}
		for _, op := range ops {
			state := "active"
			if op.Disabled {
				state = "disabled"
			}
			fmt.Fprintf(w, "%-20s %-8s %-9s added %s by %s\n", op.Name, op.Role, state, op.Created.Format(time.DateOnly), op.CreatedBy)
		}
	})
}

func runOperatorDisable(ctx context.Context, args []string) error {
	fs, c, dbURL := newFlags("operator disable")
	name := fs.String("name", "", "the operator to disable")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	if err := cli.Require("operator disable", map[string]string{"name": *name}); err != nil {
		return err
	}
	cl, done, err := admin(ctx, c.Data, *dbURL)
	if err != nil {
		return err
	}
	defer done()
	if err := cl.Do(ctx, http.MethodPost, "/admin/operators/disable", adminapi.Body(map[string]string{"name": *name}), nil); err != nil {
		return err
	}
	return c.Print(map[string]string{"disabled": *name}, func(w io.Writer) {
		fmt.Fprintf(w, "operator %s disabled: its sessions are ended\n", *name)
	})
}
