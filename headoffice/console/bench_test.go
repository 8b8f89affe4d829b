package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/console"
	"github.com/offline-loyalty/terminal/headoffice/hqpg"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
)

// pageBudget is the longest a console page may take to answer.
const pageBudget = 200 * time.Millisecond

// BenchmarkConsolePages: each page the staff use every day, answered over
// HTTP by a console on PostgreSQL holding BENCH_MEMBERS members (1,000,000
// by default, written through the store as imports write them, with a card
// each and 30 days of figures for 50 stores). Printed as ms/page and as
// the share of the 200 ms budget (x_budget, below 1 within it).
func BenchmarkConsolePages(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_MEMBERS")); err == nil && v > 0 {
		n = v
	}
	db, _ := hqtest.PostgresStore(b, hqpg.Options{Serve: true})
	ctx := context.Background()
	start := time.Now()
	const batch = 20_000
	today := time.Now().UTC()
	for i := 0; i < n; i += batch {
		if err := db.Update(ctx, func(tx headoffice.Tx) error {
			for j := i; j < min(i+batch, n); j++ {
				id := fmt.Sprintf("M%07d", j)
				card := fmt.Sprintf("9%012d", j)
				m := headoffice.Member{ID: id, Name: fmt.Sprintf("Member %d %s", j, surnames[j%len(surnames)]), Email: fmt.Sprintf("m%d@example.com", j),
					Cards: []string{card}, Tier: "bronze", Balance: int64(j % 5000), Status: "active", Enrolled: today, Stores: []string{fmt.Sprintf("S%02d", j%50)}}
				if err := tx.PutMember(m); err != nil {
					return err
				}
				if err := tx.PutCard(card, headoffice.Card{Member: id}, false); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	var figs []headoffice.Figures
	for d := range 30 {
		day := today.AddDate(0, 0, -d).Format(time.DateOnly)
		for s := range 50 {
			figs = append(figs, headoffice.Figures{Terminal: fmt.Sprintf("S%02d-t1", s), Store: fmt.Sprintf("S%02d", s), Day: day, Events: 900, Checkouts: 800, Sales: 4_000_000, Issued: 40_000, Redeemed: 9_000})
		}
	}
	if err := db.Update(ctx, func(tx headoffice.Tx) error { return tx.AddFigures(figs, nil) }); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d members written in %s", n, time.Since(start).Round(time.Second))
	o := hqtest.Office(b, db, headoffice.Options{})
	if err := o.AddOperator(ctx, "ann", "analyst", password, "bench"); err != nil {
		b.Fatal(err)
	}
	token, _, err := o.SignIn(ctx, "ann", password, "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	c, err := console.New(o, console.Options{Logger: hqtest.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	srv := newServer(b, c)
	mid := fmt.Sprintf("M%07d", n/2)
	for _, p := range []struct{ name, path string }{
		{"overview", "/"},
		{"search-card", "/members?q=" + fmt.Sprintf("9%012d", n/3)},
		{"search-name", "/members?q=" + surnames[7]},
		{"search-email", "/members?q=m" + strconv.Itoa(n/4) + "@"},
		{"member", "/members/" + mid},
		{"terminals", "/terminals"},
		{"rules", "/rules"},
		{"flags", "/flags"},
		{"audit", "/audit"},
	} {
		b.Run(p.name, func(b *testing.B) {
			req, _ := http.NewRequest(http.MethodGet, srv+p.path, nil)
			req.AddCookie(&http.Cookie{Name: "hq_session", Value: token})
			b.ResetTimer()
			for b.Loop() {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %s", p.path, resp.Status)
				}
			}
			per := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(per.Microseconds())/1000, "ms/page")
			b.ReportMetric(float64(per)/float64(pageBudget), "x_budget")
		})
	}
}

var surnames = []string{"Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Smith", "Jones", "Müller", "Rossi", "Dubois", "García", "Novak"}
