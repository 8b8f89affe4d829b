package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/console"
	"github.com/offline-loyalty/terminal/headoffice/hqpg"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/internal/browsertest"
	"github.com/offline-loyalty/terminal/internal/testclock"
	"github.com/offline-loyalty/terminal/ledger"
)

const password = "correct horse battery"

func TestMain(m *testing.M) { hqtest.Main(m) }

// eachStore runs a test on the embedded store and on PostgreSQL.
func eachStore(t *testing.T, fn func(*testing.T, headoffice.Store)) {
	t.Run("bolt", func(t *testing.T) { fn(t, hqtest.Bolt(t)) })
	t.Run("postgres", func(t *testing.T) {
		db, _ := hqtest.PostgresStore(t, hqpg.Options{Serve: true})
		fn(t, db)
	})
}

type fixture struct {
	office *headoffice.Office
	url    string
	clock  *testclock.Clock
}

// newConsole serves the console over a new embedded store with members and
// operators of each role, on a real listener of 127.0.0.1.
func newConsole(t *testing.T, store headoffice.Store) fixture {
	t.Helper()
	clk := testclock.New(time.Now().UTC())
	o := hqtest.Office(t, store, headoffice.Options{Now: clk.Now, SignInDelay: time.Millisecond})
	ctx := context.Background()
	csv := "card,member,name,email,tier,balance\n" +
		"4000111122223333,M1,Ayşe Yılmaz,ayse@example.com,silver,1200\n" +
		"4000111122224444,M2,John Smith,john@example.com,bronze,300\n"
	if _, err := o.ImportMembers(ctx, strings.NewReader(csv)); err != nil {
		t.Fatal(err)
	}
	for _, op := range []struct{ name, role string }{{"alice", "admin"}, {"sam", "support"}, {"ann", "analyst"}} {
		if err := o.AddOperator(ctx, op.name, op.role, password, "test"); err != nil {
			t.Fatal(err)
		}
	}
	seed(t, o, clk.Now())
	c, err := console.New(o, console.Options{Logger: hqtest.Quiet(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{office: o, url: newServer(t, c), clock: clk}
}

// newServer serves h on 127.0.0.1 until the test ends and returns its URL.
func newServer(tb testing.TB, h http.Handler) string {
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv.URL
}

// seed runs a till of store S1 in this process over the last five days —
// enrollments, sales, a redemption, a donation — and gives head office its
// events, so that the pages have figures to show.
func seed(t *testing.T, o *headoffice.Office, today time.Time) {
	t.Helper()
	ctx := context.Background()
	now := today.Add(-4 * 24 * time.Hour).Truncate(24 * time.Hour).Add(9 * time.Hour)
	a, err := agent.Open(ctx, t.TempDir(), agent.Options{Now: func() time.Time { return now }, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cards := []string{"2000000000015", "2000000000022", "2000000000039"}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(11 * time.Minute)
	}
	for _, c := range cards {
		must(a.Enroll(ctx, agent.EnrollRequest{Card: c}))
	}
	for day := range 5 {
		for i := range 2 + day%3 {
			must(a.Earn(ctx, agent.EarnRequest{Card: cards[(day+i)%3], Amount: fmt.Sprintf("%d.50", 20+15*i+7*day), Ref: fmt.Sprintf("d%d-%d", day, i)}))
		}
		if day == 4 {
			must(a.Donate(ctx, agent.DonateRequest{Card: cards[1], Points: 20, Charity: "foodbank"}))
			break
		}
		now = now.Add(24 * time.Hour).Truncate(24 * time.Hour).Add(9 * time.Hour)
	}
	var raws [][]byte
	if err := a.Export(func(b []byte) error { raws = append(raws, append([]byte(nil), b...)); return nil }); err != nil {
		t.Fatal(err)
	}
	id := a.Identity()
	if ack, err := o.Ingest(ctx, id.Terminal, "S1", id.Epoch, ledger.DecodeBatch(raws)); err != nil || ack != uint64(len(raws)) {
		t.Fatalf("ingest: %d of %d, %v", ack, len(raws), err)
	}
}

// shot writes the page as it is to docs/screenshots when UPDATE_SCREENSHOTS
// is 1, and always to the test's directory.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := t.TempDir()
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" && !strings.Contains(t.Name(), "postgres") {
		dir = filepath.Join("..", "..", "docs", "screenshots")
	}
	if err := os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o600); err != nil {
		t.Fatal(err)
	}
}

// text is the text of the first element sel matches, read in one step in
// the page (a live list may replace its rows between two protocol calls).
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := browsertest.Text(ctx, sel)
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func signIn(t *testing.T, ctx context.Context, base, name, pw string) {
	t.Helper()
	do(t, ctx, "sign in as "+name,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#signin")),
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), name),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), pw),
		chromedp.Click(chromedp.CSS(`#signin button`)),
		// The answer: signed in, or refused (the form's page has neither).
		chromedp.WaitVisible(chromedp.CSS("#operator, #error")),
	)
}

// TestConsoleSupport drives the console in Chromium as support staff and an
// admin would: sign in, search a member by name, adjust with a reason, block
// a card (the blocklist feed carries it to the tills), read the audit log,
// register a terminal; every page is photographed.
func TestConsoleSupport(t *testing.T) { eachStore(t, consoleSupport) }

func consoleSupport(t *testing.T, store headoffice.Store) {
	f := newConsole(t, store)
	ctx := browsertest.New(t, 90*time.Second)
	signIn(t, ctx, f.url, "alice", password)
	if got := text(t, ctx, "#operator"); !strings.Contains(got, "alice (admin)") {
		t.Fatalf("signed in as %q", got)
	}
	// The seeded till: 14 sales over five days, 3 of them today.
	if got := text(t, ctx, "#period-checkouts"); got != "14" {
		t.Errorf("overview checkouts %q, want 14", got)
	}
	if got := text(t, ctx, "#today-checkouts"); got != "3" {
		t.Errorf("today's checkouts %q, want 3", got)
	}
	// The chart is drawn by the embedded Chart.js.
	do(t, ctx, "chart", chromedp.WaitVisible(chromedp.CSS(`canvas[data-drawn="true"]`)))
	shot(t, ctx, "overview")

	do(t, ctx, "search by name",
		chromedp.Navigate(f.url+"/members"),
		chromedp.SendKeys(chromedp.CSS("#q"), "yılmaz"),
		chromedp.WaitVisible(chromedp.CSS(`#results a[href="/members/M1"]`)),
	)
	if got := text(t, ctx, "#results"); !strings.Contains(got, "************3333") || strings.Contains(got, "4000111122223333") {
		t.Errorf("results show the card as %q, want it masked", got)
	}
	shot(t, ctx, "members")

	do(t, ctx, "adjust",
		chromedp.Click(chromedp.CSS(`#results a[href="/members/M1"]`)),
		chromedp.WaitVisible(chromedp.CSS("#adjust")),
		chromedp.SendKeys(chromedp.CSS(`#adjust input[name="points"]`), "250"),
		chromedp.SendKeys(chromedp.CSS(`#adjust input[name="reason"]`), "missed earn at the till"),
		chromedp.Click(chromedp.CSS(`#adjust button`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if got := text(t, ctx, "#balance"); got != "1,450" {
		t.Errorf("balance after +250: %q, want 1,450", got)
	}
	do(t, ctx, "adjust past zero",
		chromedp.SendKeys(chromedp.CSS(`#adjust input[name="points"]`), "-5000"),
		chromedp.SendKeys(chromedp.CSS(`#adjust input[name="reason"]`), "typo"),
		chromedp.Click(chromedp.CSS(`#adjust button`)),
		chromedp.WaitVisible(chromedp.CSS("#error")),
	)
	if got := text(t, ctx, "#error"); !strings.Contains(got, "would make it negative") {
		t.Errorf("refusal %q", got)
	}
	if got := text(t, ctx, "#balance"); got != "1,450" {
		t.Errorf("balance after a refused adjustment: %q", got)
	}

	do(t, ctx, "block the card",
		chromedp.Navigate(f.url+"/members/M1"),
		chromedp.SendKeys(chromedp.CSS(`#cards input[name="reason"]`), "reported lost"),
		chromedp.Click(chromedp.CSS(`#cards button`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if got := text(t, ctx, "#cards .state"); got != "blocked" {
		t.Errorf("card state %q, want blocked", got)
	}
	shot(t, ctx, "member")
	// The blocklist feed every till reads carries the card (on PostgreSQL
	// once the feed's positions are given, a moment after the commit).
	var blocks []headoffice.Block
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		page, err := f.office.Store().FeedPage(context.Background(), headoffice.FeedQuery{Store: "S1", Max: 100})
		if err != nil {
			t.Fatal(err)
		}
		if blocks = page.Blocks; len(blocks) > 0 {
			break
		}
	}
	if len(blocks) != 1 || blocks[0].Card != "4000111122223333" || !blocks[0].Blocked {
		t.Errorf("blocklist feed %+v, want the card blocked", blocks)
	}

	// The day's surprise draws, drawn again: the seeded till's checkouts
	// of today, none paid a surprise its draw did not win.
	do(t, ctx, "flags", chromedp.Navigate(f.url+"/flags?day="+f.clock.Now().Format(time.DateOnly)), chromedp.WaitVisible(chromedp.CSS("#surprise-result")))
	if got := text(t, ctx, "#surprise-result"); !strings.Contains(got, ": 3 checkouts") || !strings.Contains(got, "0 not won") {
		t.Errorf("surprise audit: %q", got)
	}
	shot(t, ctx, "flags")
	do(t, ctx, "audit", chromedp.Navigate(f.url+"/audit"), chromedp.WaitVisible(chromedp.CSS("table.changes")))
	log := text(t, ctx, "table.changes")
	for _, want := range []string{"member.adjust", "balance 1200", "balance 1450 (+250)", "missed earn at the till", "card.block", "reported lost", "alice"} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %q:\n%s", want, log)
		}
	}
	shot(t, ctx, "audit")

	do(t, ctx, "register a terminal",
		chromedp.Navigate(f.url+"/terminals"),
		chromedp.SendKeys(chromedp.CSS(`#add-terminal input[name="store"]`), "S1"),
		chromedp.SendKeys(chromedp.CSS(`#add-terminal input[name="name"]`), "till-1"),
		chromedp.Click(chromedp.CSS(`#add-terminal button`)),
		chromedp.WaitVisible(chromedp.CSS("#join-code")),
	)
	if code := text(t, ctx, "#join-code"); len(code) != 14 {
		t.Errorf("join code %q", code)
	}
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById("join-qr").naturalWidth`)); err != nil || w < 100 {
		t.Errorf("the join code's QR image: width %v, %v", w, err)
	}
	shot(t, ctx, "terminals")
	do(t, ctx, "revoke",
		chromedp.Navigate(f.url+"/terminals"),
		browsertest.Fill(`#t-S1-till-1 input[name="reason"]`, "never installed"),
		browsertest.Submit(`#t-S1-till-1 button`),
	)
	if got := text(t, ctx, "#t-S1-till-1 .state"); !strings.Contains(got, "revoked") {
		t.Errorf("after revoking: %q", got)
	}
	do(t, ctx, "operators", chromedp.Navigate(f.url+"/operators"), chromedp.WaitVisible(chromedp.CSS("#operators")))
	shot(t, ctx, "operators")
	// The language link keeps the page: the operators' page, in Turkish.
	do(t, ctx, "turkish", chromedp.Click(chromedp.CSS("a.lang")), chromedp.WaitVisible(chromedp.CSS(`a.lang[href^="/lang?to=en"]`)))
	if got := text(t, ctx, "main h1"); got != "Operatörler" {
		t.Errorf("Turkish title %q, want Operatörler", got)
	}
	do(t, ctx, "Turkish overview", chromedp.Navigate(f.url+"/"), chromedp.WaitVisible(chromedp.CSS(`canvas[data-drawn="true"]`)))
	if got := text(t, ctx, "main h1"); got != "Genel bakış" {
		t.Errorf("Turkish title %q", got)
	}
	shot(t, ctx, "overview-tr")
}

// TestConsoleAnalyst: an analyst reads but cannot adjust: the page has no
// form, and a forged POST with the analyst's own session and CSRF token is
// refused and changes nothing.
func TestConsoleAnalyst(t *testing.T) {
	f := newConsole(t, hqtest.Bolt(t))
	ctx := browsertest.New(t, 60*time.Second)
	signIn(t, ctx, f.url, "ann", password)
	do(t, ctx, "member page", chromedp.Navigate(f.url+"/members/M2"), chromedp.WaitVisible(chromedp.CSS("#balance")))
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{`id="adjust"`, "/cards", "/replace", "/merge", "/export"} {
		if strings.Contains(html, action) {
			t.Errorf("an analyst's member page offers %s", action)
		}
	}
	// The forged form, posted from the console's own origin.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(async () => {
		const csrf = document.querySelector('form[action="/signout"] input[name="csrf"]').value;
		const r = await fetch('/members/M2/adjust', {method: 'POST', body: new URLSearchParams({csrf, points: '100000', reason: 'forged'})});
		return r.status;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if status != 403 {
		t.Errorf("an analyst's adjust answered %v, want 403", status)
	}
	d, err := f.office.Member(context.Background(), "M2")
	if err != nil || d.Balance != 300 {
		t.Errorf("balance %d (%v) after a refused adjust, want 300", d.Balance, err)
	}
}

// TestConsoleLockout: wrong passwords are refused, then lock the name, and
// the page says until when; the right password is refused while locked.
func TestConsoleLockout(t *testing.T) {
	f := newConsole(t, hqtest.Bolt(t))
	ctx := browsertest.New(t, 60*time.Second)
	for i := 1; i <= 5; i++ {
		signIn(t, ctx, f.url, "sam", "wrong password "+string(rune('0'+i)))
		want := "Wrong name or password."
		if i == 5 {
			want = "sign-in is locked"
		}
		if got := text(t, ctx, "#error"); !strings.Contains(got, want) {
			t.Fatalf("attempt %d: %q, want %q", i, got, want)
		}
	}
	shot(t, ctx, "signin-locked")
	signIn(t, ctx, f.url, "sam", password)
	if got := text(t, ctx, "#error"); !strings.Contains(got, "try again after") {
		t.Fatalf("the right password while locked: %q", got)
	}
	f.clock.Add(16 * time.Minute)
	signIn(t, ctx, f.url, "sam", password)
	if got := text(t, ctx, "#operator"); !strings.Contains(got, "sam") {
		t.Fatalf("after the lock: %q", got)
	}
}

// client is a browser-like HTTP client with its own cookies.
func client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfField = `name="csrf" value="`

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	i := strings.Index(body, csrfField)
	if i < 0 {
		t.Fatalf("no CSRF token in:\n%s", body)
	}
	rest := body[i+len(csrfField):]
	return rest[:strings.IndexByte(rest, '"')]
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values, origin string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func signInHTTP(t *testing.T, f fixture, name string) *http.Client {
	t.Helper()
	c := client(t)
	_, body := get(t, c, f.url+"/signin")
	resp, _ := post(t, c, f.url+"/signin", url.Values{"csrf": {csrfOf(t, body)}, "name": {name}, "password": {password}}, f.url)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in as %s: %s", name, resp.Status)
	}
	return c
}

// TestSessions: nothing but the sign-in page and the assets answers without
// a session; the session cookie is HttpOnly and SameSite=Strict; a POST
// without the CSRF token or from another origin is refused; a session ends
// when idle, at its absolute expiry, and when its operator is disabled.
func TestSessions(t *testing.T) { eachStore(t, sessions) }

func sessions(t *testing.T, store headoffice.Store) {
	f := newConsole(t, store)
	anon := client(t)
	for _, p := range []string{"/", "/members?q=M1", "/members/M1", "/terminals", "/audit", "/operators"} {
		if code, _ := get(t, anon, f.url+p); code != http.StatusSeeOther {
			t.Errorf("GET %s without a session: %d, want a redirect to sign in", p, code)
		}
	}
	if resp, _ := post(t, anon, f.url+"/members/M1/adjust", url.Values{"points": {"5"}, "reason": {"x"}}, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST without a session: %s", resp.Status)
	}
	if code, _ := get(t, anon, f.url+"/assets/vendor/htmx.min.js"); code != http.StatusOK {
		t.Errorf("assets without a session: %d", code)
	}

	c := client(t)
	_, body := get(t, c, f.url+"/signin")
	resp, _ := post(t, c, f.url+"/signin", url.Values{"csrf": {csrfOf(t, body)}, "name": {"sam"}, "password": {password}}, f.url)
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "hq_session" {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP", cookie)
	}
	_, page := get(t, c, f.url+"/members/M1")
	token := csrfOf(t, page)
	adjust := func(form url.Values, origin string) int {
		resp, _ := post(t, c, f.url+"/members/M1/adjust", form, origin)
		return resp.StatusCode
	}
	if code := adjust(url.Values{"points": {"5"}, "reason": {"no token"}}, f.url); code != http.StatusForbidden {
		t.Errorf("adjust without a CSRF token: %d", code)
	}
	if code := adjust(url.Values{"csrf": {"forged"}, "points": {"5"}, "reason": {"bad token"}}, f.url); code != http.StatusForbidden {
		t.Errorf("adjust with a wrong CSRF token: %d", code)
	}
	if code := adjust(url.Values{"csrf": {token}, "points": {"5"}, "reason": {"other site"}}, "http://evil.example"); code != http.StatusForbidden {
		t.Errorf("adjust from another origin: %d", code)
	}
	if code := adjust(url.Values{"csrf": {token}, "points": {"5"}, "reason": {strings.Repeat("x", 2<<20)}}, f.url); code != http.StatusForbidden {
		t.Errorf("a 2 MiB form: %d, want refused", code)
	}
	if d, _ := f.office.Member(context.Background(), "M1"); d.Balance != 1200 {
		t.Fatalf("refused requests changed the balance to %d", d.Balance)
	}
	if code := adjust(url.Values{"csrf": {token}, "points": {"5"}, "reason": {"goodwill"}}, f.url); code != http.StatusSeeOther {
		t.Errorf("a good adjust: %d", code)
	}

	// Idle expiry: 29 minutes apart is one session, 31 is not.
	f.clock.Add(29 * time.Minute)
	if code, _ := get(t, c, f.url+"/"); code != http.StatusOK {
		t.Fatalf("after 29 idle minutes: %d", code)
	}
	f.clock.Add(31 * time.Minute)
	if code, _ := get(t, c, f.url+"/"); code != http.StatusSeeOther {
		t.Errorf("after 31 idle minutes: %d, want signed out", code)
	}
	// Absolute expiry: a session kept busy still ends after 12 hours.
	c = signInHTTP(t, f, "sam")
	for range 25 {
		f.clock.Add(29 * time.Minute)
		get(t, c, f.url+"/")
	}
	if code, _ := get(t, c, f.url+"/"); code != http.StatusSeeOther {
		t.Errorf("after 12 busy hours: %d, want signed out", code)
	}
	// Disabling an operator ends its sessions.
	c = signInHTTP(t, f, "sam")
	if err := f.office.DisableOperator(context.Background(), "sam", "alice"); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, c, f.url+"/"); code != http.StatusSeeOther {
		t.Errorf("a disabled operator's session: %d", code)
	}
}

func setField(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.SetValue(chromedp.CSS(sel), value)
}

// TestConsoleRules: an admin changes the program in the form; a value that
// does not read, and one the rules refuse, are shown at their fields and
// nothing is published; a good change shows its diff, is published, and an
// earlier version is published again as a new one.
func TestConsoleRules(t *testing.T) {
	f := newConsole(t, hqtest.Bolt(t))
	ctx := browsertest.New(t, 60*time.Second)
	signIn(t, ctx, f.url, "alice", password)
	ppu := `#rules-form input[name="earn.points_per_unit"]`
	do(t, ctx, "a value that does not read",
		chromedp.Navigate(f.url+"/rules"),
		setField(ppu, "two"),
		browsertest.Submit("#rules-form button"),
	)
	if got := text(t, ctx, `small[data-field="earn.points_per_unit"]`); got != "a whole number" {
		t.Errorf("problem at the field: %q", got)
	}
	if href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("a.lang").getAttribute("href")`)); err != nil || !strings.HasSuffix(href, "next=%2frules") {
		t.Errorf("the language link of a form's answer: %q %v, want it to go to /rules", href, err)
	}
	do(t, ctx, "a value the rules refuse",
		setField(ppu, "5000"),
		setField(`#rules-form input[name="tiers[1].min_spend"]`, "-3"),
		browsertest.Submit("#rules-form button"),
	)
	if got := text(t, ctx, `small[data-field="earn.points_per_unit"]`); !strings.Contains(got, "between 0 and 1000") {
		t.Errorf("problem at points per unit: %q", got)
	}
	if got := text(t, ctx, `small[data-field="tiers[1].min_spend"]`); !strings.Contains(got, "amount in EUR") {
		t.Errorf("problem at the tier: %q", got)
	}
	if html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main"))); strings.Contains(html, `id="publish"`) {
		t.Error("a change with problems offers to publish")
	}
	if raw, _ := f.office.Rules(context.Background()); strings.Contains(string(raw), `"version":2`) {
		t.Fatal("a refused change was published")
	}
	do(t, ctx, "a good change",
		setField(ppu, "2"),
		setField(`#rules-form input[name="tiers[1].min_spend"]`, "400.00"),
		browsertest.Submit("#rules-form button"),
	)
	diff := text(t, ctx, "#diff")
	for _, want := range []string{`-    "points_per_unit": 1,`, `+    "points_per_unit": 2,`, `+      "min_spend": 40000,`, `+  "version": 2`} {
		if !strings.Contains(diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
	// The form changes what it names and nothing else of the document.
	if removed := strings.Count(diff, "\n-") - strings.Count(diff, "\n---"); removed != 3 {
		t.Errorf("the diff takes %d lines away, want 3 (version, rate, spend):\n%s", removed, diff)
	}
	shot(t, ctx, "rules")
	do(t, ctx, "publish", browsertest.Submit("#publish button"))
	if got := text(t, ctx, "#running"); !strings.Contains(got, "Running version 2") {
		t.Errorf("after publishing: %q", got)
	}
	do(t, ctx, "version 3",
		setField(ppu, "3"),
		browsertest.Submit("#rules-form button"),
		browsertest.Submit("#publish button"),
		browsertest.Submit(`#history input[value="2"] ~ button`),
	)
	raw, err := f.office.Rules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"version":4`) || !strings.Contains(string(raw), `"points_per_unit":2`) {
		t.Errorf("after rolling back to 2: %s", raw)
	}
	log, _ := f.office.AuditLog(context.Background(), "rules", 10)
	if len(log) != 3 || log[0].After != "version 4" || !strings.Contains(log[0].Reason, "version 2 again") || log[0].Operator != "alice" {
		t.Errorf("audit of the rules: %+v", log)
	}
}

// TestConsoleCards: support replaces a lost card (the old one is blocked,
// the new one the member's), merges a member enrolled twice, and exports a
// member's data, which is in the audit log too.
func TestConsoleCards(t *testing.T) {
	f := newConsole(t, hqtest.Bolt(t))
	ctx := browsertest.New(t, 60*time.Second)
	signIn(t, ctx, f.url, "sam", password)
	do(t, ctx, "replace",
		chromedp.Navigate(f.url+"/members/M2"),
		chromedp.SendKeys(chromedp.CSS(`#replace input[name="new_card"]`), "4000111122225555"),
		chromedp.SendKeys(chromedp.CSS(`#replace input[name="reason"]`), "card lost"),
		browsertest.Submit("#replace button"),
	)
	if got := text(t, ctx, "#cards"); !strings.Contains(got, "************4444\tblocked") || !strings.Contains(got, "************5555\tactive") {
		t.Errorf("cards after the replacement:\n%q", got)
	}
	do(t, ctx, "replace with a card in use",
		chromedp.SendKeys(chromedp.CSS(`#replace input[name="new_card"]`), "4000111122223333"),
		chromedp.SendKeys(chromedp.CSS(`#replace input[name="reason"]`), "typo"),
		browsertest.Submit("#replace button"),
	)
	if got := text(t, ctx, "#error"); !strings.Contains(got, "in use already") {
		t.Errorf("a card in use: %q", got)
	}
	do(t, ctx, "merge",
		chromedp.Navigate(f.url+"/members/M1"),
		chromedp.SendKeys(chromedp.CSS(`#merge input[name="from"]`), "M2"),
		browsertest.Submit("#merge button"),
	)
	if got := text(t, ctx, "#balance"); got != "1,500" {
		t.Errorf("balance after the merge: %q, want 1,500", got)
	}
	export, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch('/members/M1/export').then(r => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"id": "M1"`, `"Number": "4000111122225555"`, `"member.merge"`} {
		if !strings.Contains(export, want) {
			t.Errorf("export lacks %s:\n%s", want, export)
		}
	}
	if log, _ := f.office.AuditLog(context.Background(), "member M1", 1); len(log) != 1 || log[0].Action != "member.export" || log[0].Operator != "sam" {
		t.Errorf("the export is not in the audit log: %+v", log)
	}
}
