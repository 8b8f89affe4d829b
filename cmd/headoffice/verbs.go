package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/adminapi"
	"github.com/offline-loyalty/terminal/headoffice/hqbolt"
	"github.com/offline-loyalty/terminal/internal/cli"
	"github.com/offline-loyalty/terminal/sync/syncserver"
)

// Timeouts of the head-office HTTP servers.
const (
	readHeaderTimeout = 10 * time.Second // a client that stalls before its request is dropped
	shutdownWait      = 10 * time.Second // connections get this long to finish at shutdown
	dialTimeout       = 500 * time.Millisecond
)

func headofficeVerbs(v map[string]cli.Verb) {
	v["serve"] = cli.Verb{Usage: "serve --listen ADDR [--tls-cert F --tls-key F] [--compress]", Short: "the sync endpoint, join, metrics and the admin API; blocks", Run: runServe}
	v["terminal add"] = cli.Verb{Usage: "terminal add --store STORE --name NAME", Short: "register a terminal and print its one-time join code", Run: runTerminalAdd}
	v["rules set"] = cli.Verb{Usage: "rules set FILE", Short: "publish a rules document (and catalog)", Run: runRulesSet}
	v["rules get"] = cli.Verb{Usage: "rules get", Short: "print the published rules document", Run: runRulesGet}
	v["members import"] = cli.Verb{Usage: "members import FILE.csv", Short: "bulk load members and cards (card,member,name,email,tier,balance)", Run: runMembersImport}
	v["member"] = cli.Verb{Usage: "member --card CARD", Short: "the authoritative member", Run: runMember}
	v["events"] = cli.Verb{Usage: "events [--terminal T]", Short: "the ingested events as JSON lines", Run: runEvents}
	v["report"] = cli.Verb{Usage: "report [--from D --to D] [--store S]", Short: "figures across stores, negative balances, chain breaks", Run: runReport}
}

func runServe(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "serve")
	listen := fs.String("listen", "127.0.0.1:8780", "address of the sync endpoint")
	cert := fs.String("tls-cert", "", "TLS certificate (PEM) for wss://")
	key := fs.String("tls-key", "", "TLS private key (PEM)")
	compress := fs.Bool("compress", false, "allow permessage-deflate (costs memory per connection)")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	if (*cert == "") != (*key == "") {
		return fmt.Errorf("%w: serve: give both --tls-cert and --tls-key, or neither", cli.ErrUsage)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	db, err := hqbolt.Open(c.Data)
	if err != nil {
		return err
	}
	defer db.Close()
	office, err := headoffice.New(ctx, db, headoffice.Options{Logger: log})
	if err != nil {
		return err
	}
	defer office.Close()
	srv := syncserver.New(office, syncserver.Options{Logger: log, Compression: *compress})
	sock := filepath.Join(c.Data, adminapi.SocketName)
	_ = os.Remove(sock) // left by a head office that was killed; the store lock proves none runs
	old := umask(0o177)
	adminLn, err := net.Listen("unix", sock)
	umask(old)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		adminLn.Close()
		return err
	}
	pub := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: readHeaderTimeout}
	admin := &http.Server{Handler: adminapi.Handler(office), ReadHeaderTimeout: readHeaderTimeout}
	errc := make(chan error, 2)
	go func() {
		if *cert != "" {
			errc <- pub.ServeTLS(ln, *cert, *key)
			return
		}
		errc <- pub.Serve(ln)
	}()
	go func() { errc <- admin.Serve(adminLn) }()
	log.Info("headoffice serving", "listen", ln.Addr(), "tls", *cert != "", "data", c.Data)
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
	defer cancel()
	_ = pub.Shutdown(sctx)
	_ = admin.Shutdown(sctx)
	_ = os.Remove(sock)
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

// admin returns a client of the head office serving dir or, when none is, of
// one opened in this process for the verb.
func admin(ctx context.Context, dir string) (*adminapi.Client, func(), error) {
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
	office, err := headoffice.New(ctx, db, headoffice.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return adminapi.InProcess(adminapi.Handler(office)), func() { office.Close(); db.Close() }, nil
}

func runTerminalAdd(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "terminal add")
	store := fs.String("store", "", "store id")
	name := fs.String("name", "", "terminal name, unique in the store")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	if err := cli.Require("terminal add", map[string]string{"store": *store, "name": *name}); err != nil {
		return err
	}
	if err := os.MkdirAll(c.Data, 0o700); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(c.Data, hqbolt.FileName)); err != nil {
		// The first terminal creates head office's store.
		db, err := hqbolt.Open(c.Data)
		if err != nil {
			return err
		}
		db.Close()
	}
	cl, done, err := admin(ctx, c.Data)
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
	fs, c := cli.NewFlags(prog, "rules set")
	file, err := fileArg(fs, c, "rules set", args)
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	cl, done, err := admin(ctx, c.Data)
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
	fs, c := cli.NewFlags(prog, "rules get")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	cl, done, err := admin(ctx, c.Data)
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
	fs, c := cli.NewFlags(prog, "members import")
	file, err := fileArg(fs, c, "members import", args)
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	cl, done, err := admin(ctx, c.Data)
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
	fs, c := cli.NewFlags(prog, "member")
	card := fs.String("card", "", "card number")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	if err := cli.Require("member", map[string]string{"card": *card}); err != nil {
		return err
	}
	cl, done, err := admin(ctx, c.Data)
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
	fs, c := cli.NewFlags(prog, "events")
	terminal := fs.String("terminal", "", "only this terminal's events")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	cl, done, err := admin(ctx, c.Data)
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
	fs, c := cli.NewFlags(prog, "report")
	from := fs.String("from", "", "first day, YYYY-MM-DD")
	to := fs.String("to", "", "last day, YYYY-MM-DD")
	store := fs.String("store", "", "only this store")
	if err := parse(fs, c, args); err != nil {
		return err
	}
	cl, done, err := admin(ctx, c.Data)
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
			fmt.Fprintf(w, "store %s: %d checkouts by %d members, +%d issued, -%d redeemed, -%d donated, %d enrollments\n",
				s.Store, s.Checkouts, s.Members, s.PointsIssued, s.PointsRedeemed, s.PointsDonated, s.Enrollments)
		}
		for _, f := range rep.NegativeBalances {
			fmt.Fprintf(w, "NEGATIVE BALANCE member %s: %d (%s)\n", f.Member, f.Balance, f.Detail)
		}
		for _, f := range rep.ChainBreaks {
			fmt.Fprintf(w, "CHAIN BREAK terminal %s epoch %s seq %d: %s\n", f.Terminal, f.Epoch, f.Seq, f.Detail)
		}
	})
}
