package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/console"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
)

// FuzzRequests sends any path and form, with a live admin session and its
// CSRF token, to the console: every answer is a page or a refusal, never a
// server error or a panic, and a refused request changes no balance.
func FuzzRequests(f *testing.F) {
	for _, s := range []struct{ method, path, form string }{
		{"POST", "/members/M1/adjust", "points=25&reason=goodwill"},
		{"POST", "/members/M1/adjust", "points=9223372036854775807&reason=x"},
		{"POST", "/members/M1/adjust", "points=-0x10&reason=%00"},
		{"POST", "/members/M1/cards", "card=C1&action=block&reason=lost"},
		{"POST", "/members/M1/cards", "card=C2&action=explode&reason=x"},
		{"POST", "/members/%2e%2e/adjust", "points=1&reason=x"},
		{"POST", "/terminals", "store=S1&name=t%2f1"},
		{"POST", "/operators", "name=Bob&role=root&password=x"},
		{"POST", "/operators/disable", "name=admin"},
		{"GET", "/members?q=%ff%fe", ""},
		{"GET", "/?from=2026-02-30&to=x&store=%00", ""},
		{"GET", "/?from=2000-01-01&to=2030-01-01", ""},
		{"GET", "/lang?to=xx&next=//evil", ""},
		{"GET", "/flags?day=2026-13-45&kind=%00", ""},
		{"POST", "/rules/preview", "source=fields&earn.points_per_unit=-1&tiers[9].min_spend=x"},
		{"POST", "/rules/preview", "source=json&doc=%7B%22version%22%3A1e400%7D"},
		{"POST", "/rules/rollback", "version=-1"},
		{"POST", "/terminals/revoke", "terminal=S1-x&reason="},
		{"POST", "/members/M1/replace", "card=C1&new_card=C%20x&reason=lost"},
		{"POST", "/members/M1/merge", "from=M1"},
	} {
		f.Add(s.method, s.path, s.form)
	}
	o := hqtest.Office(f, hqtest.Bolt(f), headoffice.Options{})
	ctx := context.Background()
	if _, err := o.ImportMembers(ctx, strings.NewReader("card,member,name,email,tier,balance\nC1,M1,A,a@x,bronze,100\n")); err != nil {
		f.Fatal(err)
	}
	if err := o.AddOperator(ctx, "admin", "admin", password, "test"); err != nil {
		f.Fatal(err)
	}
	token, sess, err := o.SignIn(ctx, "admin", password, "127.0.0.1")
	if err != nil {
		f.Fatal(err)
	}
	c, err := console.New(o, console.Options{Logger: hqtest.Quiet()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, form string) {
		if method != "POST" {
			method = "GET"
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return
		}
		values, _ := url.ParseQuery(form)
		values.Set("csrf", sess.CSRF)
		req, err := http.NewRequest(method, "http://console"+u.RequestURI(), strings.NewReader(values.Encode()))
		if err != nil {
			return
		}
		req.RemoteAddr = "127.0.0.1:5000"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: "hq_session", Value: token})
		before, _ := o.Member(ctx, "M1")
		w := httptest.NewRecorder()
		c.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d\n%s", method, path, form, w.Code, w.Body.String())
		}
		after, _ := o.Member(ctx, "M1")
		if w.Code >= 400 && after.Balance != before.Balance {
			t.Fatalf("%s %s %q refused (%d) and changed the balance %d → %d", method, path, form, w.Code, before.Balance, after.Balance)
		}
	})
}
