// Package console is head office's web console for the chain's staff:
// server-rendered pages over the Office, served by headoffice serve beside
// the sync endpoint. Handlers read the request, call the Office and render
// its answer; what a change means, who may make it and what is recorded
// are the Office's (operators, sessions, roles, the audit log).
//
// Every page but the sign-in page and its assets needs a session: a random
// token in an HttpOnly, SameSite=Strict cookie (Secure under TLS). Every
// form carries the session's CSRF token, and a POST without it, or from
// another origin, is refused. The JavaScript (htmx, Chart.js) comes from
// the npm registry and is embedded: the console works with no internet.
package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/offline-loyalty/terminal/headoffice"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Cookies of the console.
const (
	sessionCookie = "hq_session"
	signInCookie  = "hq_signin" // the sign-in form's own CSRF token, before any session
	langCookie    = "hq_lang"
)

// maxForm bounds a request's body: the largest form is a rules document.
const maxForm = 1 << 20

// Options configure the console.
type Options struct {
	Logger *slog.Logger
	// TLS is whether the console is served over TLS: its cookies are then
	// Secure.
	TLS bool
	Now func() time.Time
}

// Console is the console's handler.
type Console struct {
	office *headoffice.Office
	log    *slog.Logger
	tls    bool
	now    func() time.Time
	pages  map[string]*template.Template
	mux    *http.ServeMux
}

// New returns the console over o.
func New(o *headoffice.Office, opts Options) (*Console, error) {
	c := &Console{office: o, log: opts.Logger, tls: opts.TLS, now: opts.Now, pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || base == "partials" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", n)
		if err != nil {
			return nil, err
		}
		c.pages[base] = t
	}
	assets, _ := fs.Sub(assetFS, "assets")
	c.mux.Handle("GET /assets/", http.StripPrefix("/assets/", assetHandler(http.FileServerFS(assets))))
	c.mux.HandleFunc("GET /signin", c.signInPage)
	c.mux.HandleFunc("POST /signin", c.signIn)
	c.mux.HandleFunc("GET /lang", c.setLang)
	c.route("POST /signout", headoffice.RoleAnalyst, c.signOut)
	c.route("GET /{$}", headoffice.RoleAnalyst, c.overview)
	c.route("GET /members", headoffice.RoleAnalyst, c.members)
	c.route("GET /members/{id}", headoffice.RoleAnalyst, c.member)
	c.route("POST /members/{id}/adjust", headoffice.RoleSupport, c.adjust)
	c.route("POST /members/{id}/cards", headoffice.RoleSupport, c.blockCard)
	c.route("POST /members/{id}/replace", headoffice.RoleSupport, c.replaceCard)
	c.route("POST /members/{id}/merge", headoffice.RoleSupport, c.mergeMember)
	c.route("GET /members/{id}/export", headoffice.RoleSupport, c.exportMember)
	c.route("GET /terminals", headoffice.RoleAnalyst, c.terminals)
	c.route("POST /terminals", headoffice.RoleAdmin, c.addTerminal)
	c.route("GET /terminals/live", headoffice.RoleAnalyst, c.terminalsLive)
	c.route("POST /terminals/revoke", headoffice.RoleAdmin, c.revokeTerminal)
	c.route("GET /rules", headoffice.RoleAnalyst, c.rulesView)
	c.route("POST /rules/preview", headoffice.RoleAdmin, c.previewRules)
	c.route("POST /rules/publish", headoffice.RoleAdmin, c.publishRules)
	c.route("POST /rules/rollback", headoffice.RoleAdmin, c.rollbackRules)
	c.route("GET /audit", headoffice.RoleAnalyst, c.auditLog)
	c.route("GET /flags", headoffice.RoleAnalyst, c.flags)
	c.route("GET /operators", headoffice.RoleAdmin, c.operators)
	c.route("POST /operators", headoffice.RoleAdmin, c.addOperator)
	c.route("POST /operators/disable", headoffice.RoleAdmin, c.disableOperator)
	return c, nil
}

// ServeHTTP answers a console request, with the headers every answer has.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	c.mux.ServeHTTP(w, r)
}

func assetHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// request is what a handler behind a session gets.
type request struct {
	*http.Request
	w    http.ResponseWriter
	sess headoffice.Session
	lang string
	ctx  context.Context // names the operator for the audit log
}

// route serves pattern to sessions whose role allows need. A request
// without a live session goes to the sign-in page (a GET) or is refused
// (anything else); a POST must carry the session's CSRF token and, when the
// browser says where it comes from, come from this console.
func (c *Console) route(pattern, need string, fn func(*request)) {
	c.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		lang := language(r)
		ck, err := r.Cookie(sessionCookie)
		var sess headoffice.Session
		if err == nil {
			sess, err = c.office.Session(r.Context(), ck.Value)
		}
		if err != nil {
			if !errors.Is(err, headoffice.ErrSession) && !errors.Is(err, http.ErrNoCookie) {
				c.log.Error("console session", "err", err)
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.refuse(w, r, lang, http.StatusUnauthorized, tr(lang, "err.session"))
			return
		}
		if r.Method != http.MethodGet {
			if !sameOrigin(r) {
				c.refuse(w, r, lang, http.StatusForbidden, tr(lang, "err.origin"))
				return
			}
			if err := sess.CheckCSRF(r.PostFormValue("csrf")); err != nil {
				c.log.Warn("console request refused", "reason", "csrf", "operator", sess.Operator, "path", r.URL.Path)
				c.refuse(w, r, lang, http.StatusForbidden, tr(lang, "err.csrf"))
				return
			}
		}
		if !headoffice.Allows(sess.Role, need) {
			c.log.Warn("console request refused", "reason", "role", "operator", sess.Operator, "role", sess.Role, "path", r.URL.Path)
			c.refuse(w, r, lang, http.StatusForbidden, fmt.Sprintf(tr(lang, "err.role"), tr(lang, "role."+need), tr(lang, "role."+sess.Role)))
			return
		}
		fn(&request{Request: r, w: w, sess: sess, lang: lang, ctx: headoffice.WithActor(r.Context(), sess.Operator)})
	})
}

// sameOrigin reports whether a state-changing request comes from a page of
// this console: its Origin (or, without one, its Referer) names this host.
// A browser that sends neither is let through to the CSRF check.
func sameOrigin(r *http.Request) bool {
	from := r.Header.Get("Origin")
	if from == "" {
		from = r.Header.Get("Referer")
	}
	if from == "" {
		return true
	}
	u, err := url.Parse(from)
	return err == nil && u.Host == r.Host
}

// navPaths are the sections' addresses, by Nav.
var navPaths = map[string]string{"overview": "/", "members": "/members", "rules": "/rules", "terminals": "/terminals",
	"flags": "/flags", "audit": "/audit", "operators": "/operators"}

// page is what every page's template gets.
type page struct {
	Title    string
	Lang     string
	Session  headoffice.Session
	Nav      string
	Notice   string
	Error    string
	Support  bool // the session may act on members and cards
	Admin    bool // and on rules, terminals and operators
	Data     any
	SignedIn bool
	Here     string // the page's own path and query, for the language links
}

func (c *Console) render(w http.ResponseWriter, status int, name string, p page) {
	c.renderPart(w, status, name, "layout", p)
}

// renderPart renders one template of a page: the whole page ("layout") or
// the part htmx asked for.
func (c *Console) renderPart(w http.ResponseWriter, status int, name, part string, p page) {
	var b bytes.Buffer
	if err := c.execute(&b, name, part, p); err != nil {
		c.log.Error("console render", "page", name, "err", err)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (c *Console) execute(w io.Writer, name, part string, p page) error {
	t := c.pages[name]
	if t == nil {
		return fmt.Errorf("no page %s", name)
	}
	if p.SignedIn = p.Session.Operator != ""; p.SignedIn {
		p.Support = headoffice.Allows(p.Session.Role, headoffice.RoleSupport)
		p.Admin = headoffice.Allows(p.Session.Role, headoffice.RoleAdmin)
	}
	return t.ExecuteTemplate(w, part, p)
}

func (r *request) page(title, nav string, data any) page {
	p := page{Title: tr(r.lang, title), Lang: r.lang, Session: r.sess, Nav: nav, Data: data, Here: r.URL.RequestURI()}
	if r.Method != http.MethodGet {
		// The answer to a form: the language link goes to its section,
		// not to the form's address.
		p.Here = navPaths[nav]
	}
	if ok := r.URL.Query().Get("ok"); ok != "" {
		if msg, known := messages[r.lang]["ok."+ok]; known {
			p.Notice = msg
		}
	}
	return p
}

// refuse answers a request the console will not serve, in one line.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, lang string, status int, msg string) {
	c.render(w, status, "refused", page{Title: tr(lang, "title.refused"), Lang: lang, Error: msg})
}

// fail renders name with err's message at the top: the Office's refusal in
// one line, or a generic one for what the operator cannot act on.
func (c *Console) fail(r *request, name string, p page, err error) {
	status := http.StatusInternalServerError
	var he *headoffice.Error
	switch {
	case errors.As(err, &he) && (he.Code() == "invalid" || he.Code() == "not_found"):
		status = http.StatusBadRequest
		if he.Code() == "not_found" {
			status = http.StatusNotFound
		}
		p.Error = err.Error()
	default:
		c.log.Error("console", "path", r.URL.Path, "operator", r.sess.Operator, "err", err)
		p.Error = tr(r.lang, "err.internal")
	}
	c.render(r.w, status, name, p)
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	c.showSignIn(w, r, http.StatusOK, "")
}

func (c *Console) showSignIn(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	lang := language(r)
	token := rand.Text()
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Value: token, Path: "/signin", HttpOnly: true, Secure: c.tls, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	c.render(w, status, "signin", page{Title: tr(lang, "title.signin"), Lang: lang, Error: msg, Here: "/signin?next=" + url.QueryEscape(safeNext(r.FormValue("next"))),
		Data: map[string]string{"CSRF": token, "Next": safeNext(r.FormValue("next")), "Name": r.PostFormValue("name")}})
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	lang := language(r)
	ck, err := r.Cookie(signInCookie)
	if err != nil || !sameOrigin(r) || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		c.showSignIn(w, r, http.StatusForbidden, tr(lang, "err.csrf"))
		return
	}
	addr, _, _ := net.SplitHostPort(r.RemoteAddr)
	token, sess, err := c.office.SignIn(r.Context(), strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("password"), addr)
	switch {
	case errors.Is(err, headoffice.ErrLocked):
		var le *headoffice.LockError
		until := ""
		if errors.As(err, &le) {
			until = le.Until.UTC().Format("15:04") + " UTC"
		}
		c.showSignIn(w, r, http.StatusTooManyRequests, tr(lang, "err.locked")+" "+until)
		return
	case errors.Is(err, headoffice.ErrSignIn):
		c.showSignIn(w, r, http.StatusUnauthorized, tr(lang, "err.signin"))
		return
	case err != nil:
		c.log.Error("console sign-in", "err", err)
		c.showSignIn(w, r, http.StatusInternalServerError, tr(lang, "err.internal"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: c.tls, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Value: "", Path: "/signin", MaxAge: -1})
	c.log.Info("console session opened", "operator", sess.Operator, "role", sess.Role)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (c *Console) signOut(r *request) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if err := c.office.SignOut(r.Context(), ck.Value); err != nil {
			c.log.Error("console sign-out", "err", err)
		}
	}
	http.SetCookie(r.w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: c.tls, SameSite: http.SameSiteStrictMode})
	http.Redirect(r.w, r.Request, "/signin", http.StatusSeeOther)
}

// setLang keeps the chosen language in a cookie and goes back.
func (c *Console) setLang(w http.ResponseWriter, r *http.Request) {
	lang := r.URL.Query().Get("to")
	if _, ok := messages[lang]; ok {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600, Secure: c.tls, SameSite: http.SameSiteStrictMode})
	}
	http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
}

// safeNext is a path of this console to go to after sign-in: never another
// site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.HasPrefix(next, "/signin") {
		return "/"
	}
	return next
}

func (c *Console) overview(r *request) {
	q := r.URL.Query()
	today := c.now().UTC().Format(time.DateOnly)
	from, to := q.Get("from"), q.Get("to")
	if from == "" && to == "" {
		from = c.now().UTC().AddDate(0, 0, -29).Format(time.DateOnly)
		to = today
	}
	store := q.Get("store")
	p := r.page("title.overview", "overview", nil)
	ov, err := c.office.Overview(r.Context(), from, to, store)
	if err != nil {
		p.Data = overviewData{From: from, To: to, Store: store}
		c.fail(r, "overview", p, err)
		return
	}
	p.Data = overviewData{From: from, To: to, Store: store, Overview: ov, Chart: chartOf(r.lang, ov)}
	c.render(r.w, http.StatusOK, "overview", p)
}

type overviewData struct {
	From, To, Store string
	headoffice.Overview
	Chart chart
}

func (c *Console) members(r *request) {
	q := r.URL.Query().Get("q")
	p := r.page("title.members", "members", map[string]any{"Q": q})
	hits, err := c.office.SearchMembers(r.Context(), q)
	if err != nil && r.Header.Get("HX-Request") == "true" && errors.Is(err, headoffice.ErrInvalid) {
		// Searching as one types: too short a search is a hint, not a
		// failure.
		p.Error = err.Error()
		c.renderPart(r.w, http.StatusOK, "members", "hits", p)
		return
	}
	if err != nil {
		c.fail(r, "members", p, err)
		return
	}
	p.Data = map[string]any{"Q": q, "Hits": hits, "Searched": strings.TrimSpace(q) != ""}
	part := "layout"
	if r.Header.Get("HX-Request") == "true" {
		part = "hits"
	}
	c.renderPart(r.w, http.StatusOK, "members", part, p)
}

type memberData struct {
	headoffice.MemberDetail
	Currency string
	Form     map[string]string
}

func (c *Console) memberPage(r *request, status int, form map[string]string, err error) {
	p := r.page("title.member", "members", nil)
	d, lerr := c.office.Member(r.Context(), r.PathValue("id"))
	if lerr != nil {
		p.Data = memberData{}
		c.fail(r, "member", p, lerr)
		return
	}
	p.Data = memberData{MemberDetail: d, Form: form}
	if err != nil {
		c.fail(r, "member", p, err)
		return
	}
	c.render(r.w, status, "member", p)
}

func (c *Console) member(r *request) { c.memberPage(r, http.StatusOK, nil, nil) }

func (c *Console) adjust(r *request) {
	id := r.PathValue("id")
	form := map[string]string{"points": r.PostFormValue("points"), "reason": r.PostFormValue("reason")}
	points, err := strconv.ParseInt(strings.TrimSpace(form["points"]), 10, 64)
	if err != nil {
		c.memberPage(r, http.StatusBadRequest, form, fmt.Errorf("%w: %s", headoffice.ErrInvalid, tr(r.lang, "err.points")))
		return
	}
	if _, err := c.office.AdjustMember(r.ctx, id, points, form["reason"], r.sess.Operator); err != nil {
		c.memberPage(r, http.StatusBadRequest, form, err)
		return
	}
	http.Redirect(r.w, r.Request, "/members/"+url.PathEscape(id)+"?ok=adjusted", http.StatusSeeOther)
}

func (c *Console) blockCard(r *request) {
	id := r.PathValue("id")
	card, action := r.PostFormValue("card"), r.PostFormValue("action")
	form := map[string]string{"card": card, "block_reason": r.PostFormValue("reason")}
	if action != "block" && action != "unblock" {
		c.memberPage(r, http.StatusBadRequest, form, fmt.Errorf("%w: action is block or unblock", headoffice.ErrInvalid))
		return
	}
	if err := c.office.SetCardBlocked(r.ctx, id, card, action == "block", r.PostFormValue("reason"), r.sess.Operator); err != nil {
		c.memberPage(r, http.StatusBadRequest, form, err)
		return
	}
	http.Redirect(r.w, r.Request, "/members/"+url.PathEscape(id)+"?ok="+action+"ed", http.StatusSeeOther)
}

func (c *Console) replaceCard(r *request) {
	id := r.PathValue("id")
	form := map[string]string{"new_card": r.PostFormValue("new_card"), "replace_reason": r.PostFormValue("reason")}
	if err := c.office.ReplaceCard(r.ctx, id, r.PostFormValue("card"), strings.TrimSpace(r.PostFormValue("new_card")), r.PostFormValue("reason"), r.sess.Operator); err != nil {
		c.memberPage(r, http.StatusBadRequest, form, err)
		return
	}
	http.Redirect(r.w, r.Request, "/members/"+url.PathEscape(id)+"?ok=replaced", http.StatusSeeOther)
}

func (c *Console) mergeMember(r *request) {
	id := r.PathValue("id")
	from := strings.TrimSpace(r.PostFormValue("from"))
	if _, err := c.office.MergeMembers(r.ctx, id, from, r.sess.Operator); err != nil {
		c.memberPage(r, http.StatusBadRequest, map[string]string{"from": from}, err)
		return
	}
	http.Redirect(r.w, r.Request, "/members/"+url.PathEscape(id)+"?ok=merged", http.StatusSeeOther)
}

// exportMember answers a member's data as a JSON file.
func (c *Console) exportMember(r *request) {
	d, err := c.office.ExportMember(r.ctx, r.PathValue("id"), r.sess.Operator)
	if err != nil {
		c.fail(r, "member", r.page("title.member", "members", memberData{}), err)
		return
	}
	r.w.Header().Set("Content-Type", "application/json")
	r.w.Header().Set("Content-Disposition", `attachment; filename="member-`+url.PathEscape(d.ID)+`.json"`)
	enc := json.NewEncoder(r.w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(d)
}

func (c *Console) terminals(r *request) {
	c.terminalsPage(r, http.StatusOK, nil, nil)
}

func (c *Console) terminalsPage(r *request, status int, added map[string]string, err error) {
	p := r.page("title.terminals", "terminals", nil)
	list, lerr := c.office.TerminalList(r.Context())
	if lerr != nil {
		c.fail(r, "terminals", p, lerr)
		return
	}
	data := map[string]any{"Terminals": list, "Added": added}
	if code := added["code"]; code != "" {
		// The code as a QR code too, drawn here: the page is its only
		// copy.
		if png, err := qrcode.Encode(code, qrcode.Medium, 256); err == nil {
			data["QR"] = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
		}
	}
	p.Data = data
	if err != nil {
		c.fail(r, "terminals", p, err)
		return
	}
	c.render(r.w, status, "terminals", p)
}

// Live pages: a server-sent event stream sends the terminals' rows every
// liveEvery while the session lasts, for up to liveFor (the browser then
// opens a new stream by itself).
const (
	liveEvery = 2 * time.Second
	liveFor   = 10 * time.Minute
	keepAlive = 15 // quiet ticks between two comments
)

func (c *Console) terminalsLive(r *request) {
	rc := http.NewResponseController(r.w)
	h := r.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	ck, _ := r.Cookie(sessionCookie)
	end := time.NewTimer(liveFor)
	defer end.Stop()
	tick := time.NewTicker(liveEvery)
	defer tick.Stop()
	var last string
	quiet := 0
	for {
		list, err := c.office.TerminalList(r.Context())
		if err != nil {
			c.log.Error("console live terminals", "err", err)
			return
		}
		var b bytes.Buffer
		if err := c.execute(&b, "terminals", "terminal-rows", page{Lang: r.lang, Session: r.sess, Data: map[string]any{"Terminals": list}}); err != nil {
			c.log.Error("console live terminals", "err", err)
			return
		}
		// Rows go out when they change; a comment otherwise, now and then,
		// keeps the stream open through proxies.
		var ev strings.Builder
		switch rows := b.String(); {
		case rows != last:
			last, quiet = rows, 0
			ev.WriteString("event: rows\n")
			for _, line := range strings.Split(strings.TrimRight(rows, "\n"), "\n") {
				ev.WriteString("data: " + line + "\n")
			}
			ev.WriteString("\n")
		case quiet >= keepAlive:
			quiet = 0
			ev.WriteString(": still here\n\n")
		default:
			quiet++
		}
		if ev.Len() > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(2 * liveEvery))
			if _, err := io.WriteString(r.w, ev.String()); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-end.C:
			return
		case <-tick.C:
		}
		// The stream lasts as long as the session: an operator disabled or
		// signed out elsewhere stops receiving.
		if _, err := c.office.Session(r.Context(), ck.Value); err != nil {
			return
		}
	}
}

func (c *Console) revokeTerminal(r *request) {
	if err := c.office.RevokeTerminal(r.ctx, r.PostFormValue("terminal"), r.PostFormValue("reason"), r.sess.Operator); err != nil {
		c.terminalsPage(r, http.StatusBadRequest, nil, err)
		return
	}
	http.Redirect(r.w, r.Request, "/terminals?ok=revoked", http.StatusSeeOther)
}

func (c *Console) addTerminal(r *request) {
	id, code, err := c.office.AddTerminal(r.ctx, strings.TrimSpace(r.PostFormValue("store")), strings.TrimSpace(r.PostFormValue("name")))
	if err != nil {
		c.terminalsPage(r, http.StatusBadRequest, map[string]string{"store": r.PostFormValue("store"), "name": r.PostFormValue("name")}, err)
		return
	}
	// The code is shown once, on this answer, never in a URL.
	c.terminalsPage(r, http.StatusOK, map[string]string{"terminal": id, "code": code}, nil)
}

func (c *Console) auditLog(r *request) {
	p := r.page("title.audit", "audit", nil)
	changes, err := c.office.AuditLog(r.Context(), "", 200)
	if err != nil {
		c.fail(r, "audit", p, err)
		return
	}
	p.Data = changes
	c.render(r.w, http.StatusOK, "audit", p)
}

// flagKinds are the kinds the filter offers.
var flagKinds = []string{"negative_balance", "chain_break", "conflicting_duplicate", "duplicate_decision",
	"duplicate_enrollment", "member_merged", "ledger_rebuilt", "rules_ahead", "out_of_range", "clock_skew"}

func (c *Console) flags(r *request) {
	q := r.URL.Query()
	data := map[string]any{"Kinds": flagKinds, "Kind": q.Get("kind"), "Day": q.Get("day")}
	p := r.page("title.flags", "flags", data)
	flags, err := c.office.Flags(r.Context(), q.Get("kind"))
	if err != nil {
		c.fail(r, "flags", p, err)
		return
	}
	data["Flags"] = flags
	if day := q.Get("day"); day != "" {
		a, err := c.office.AuditSurprise(r.Context(), day)
		if err != nil {
			c.fail(r, "flags", p, err)
			return
		}
		data["Audit"] = a
	}
	c.render(r.w, http.StatusOK, "flags", p)
}

func (c *Console) operators(r *request) { c.operatorsPage(r, http.StatusOK, nil, nil) }

func (c *Console) operatorsPage(r *request, status int, form map[string]string, err error) {
	p := r.page("title.operators", "operators", nil)
	ops, lerr := c.office.Operators(r.Context())
	if lerr != nil {
		c.fail(r, "operators", p, lerr)
		return
	}
	p.Data = map[string]any{"Operators": ops, "Form": form}
	if err != nil {
		c.fail(r, "operators", p, err)
		return
	}
	c.render(r.w, status, "operators", p)
}

func (c *Console) addOperator(r *request) {
	name, role := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("role")
	if err := c.office.AddOperator(r.ctx, name, role, r.PostFormValue("password"), r.sess.Operator); err != nil {
		c.operatorsPage(r, http.StatusBadRequest, map[string]string{"name": name, "role": role}, err)
		return
	}
	http.Redirect(r.w, r.Request, "/operators?ok=operator_added", http.StatusSeeOther)
}

func (c *Console) disableOperator(r *request) {
	name := r.PostFormValue("name")
	if name == r.sess.Operator {
		c.operatorsPage(r, http.StatusBadRequest, nil, fmt.Errorf("%w: %s", headoffice.ErrInvalid, tr(r.lang, "err.self")))
		return
	}
	if err := c.office.DisableOperator(r.ctx, name, r.sess.Operator); err != nil {
		c.operatorsPage(r, http.StatusBadRequest, nil, err)
		return
	}
	http.Redirect(r.w, r.Request, "/operators?ok=operator_disabled", http.StatusSeeOther)
}
