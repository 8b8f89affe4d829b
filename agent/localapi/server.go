// Package localapi is the agent's local API: HTTP and JSON on a unix socket in
// the data directory (and optionally a loopback TCP address), and the client
// the CLI verbs use. It translates between HTTP and the agent's methods and
// never decides anything itself.
package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/internal/buildstamp"
	"github.com/offline-loyalty/terminal/internal/localhttp"
	"github.com/offline-loyalty/terminal/internal/strictjson"
	"github.com/offline-loyalty/terminal/rules"
)

// Agent is what the API serves: the terminal agent's methods.
type Agent interface {
	Earn(context.Context, agent.EarnRequest) (agent.EarnResult, error)
	Redeem(context.Context, agent.RedeemRequest) (agent.Result, error)
	Donate(context.Context, agent.DonateRequest) (agent.Result, error)
	Void(context.Context, agent.VoidRequest) (agent.Result, error)
	Refund(context.Context, agent.RefundRequest) (agent.Result, error)
	Enroll(context.Context, agent.EnrollRequest) (agent.Result, error)
	Adjust(context.Context, agent.AdjustRequest) (agent.Result, error)
	ReplaceCard(context.Context, agent.ReplaceCardRequest) (agent.Result, error)
	Member(context.Context, string) (agent.MemberView, error)
	Checkout(context.Context, string) (agent.CheckoutView, error)
	Quote(context.Context, agent.EarnRequest) (agent.Quote, error)
	Status() agent.Status
	Stats(day string) (agent.Stats, error)
	Export(func([]byte) error) error
	SetBasket(agent.Basket) error
	Basket() agent.Basket
	Expire(context.Context) (agent.Housekeeping, error)
	UnlockManagerPIN() error
	Metrics() prometheus.Gatherer
	Backup(io.Writer) (agent.BackupInfo, error)
	Rules() *rules.Document
	Watch() (<-chan agent.Notice, func())
	HasManagerPIN() bool
	SetManagerPIN(pin string) error
	ReplaceManagerPIN(pin string) error
	CheckManagerPIN(pin string) error
	AddToken(name, role string) (string, error)
	Tokens() ([]agent.Token, error)
	RevokeToken(name string) error
	CheckToken(token string) (agent.Token, error)
}

// Limits and timeouts of the server.
const (
	maxBody           = 1 << 20          // a 500-item basket is well under this
	drainBody         = 8 << 20          // what is read of an oversized body before it is refused
	readHeaderTimeout = 5 * time.Second  // a local client that stalls is dropped
	readTimeout       = 10 * time.Second // ... also within a request body
	idleTimeout       = 60 * time.Second // keep-alive for POS integrations
	socketMode        = 0o600            // only the agent's user may call it
)

// statuses are the HTTP statuses of the agent's refusals (agent.Reason) and
// the API's own; anything else is a 500.
var statuses = map[string]int{
	"invalid":                http.StatusBadRequest,
	"unknown_card":           http.StatusNotFound,
	"unknown_reward":         http.StatusNotFound,
	"unknown_charity":        http.StatusNotFound,
	"unknown_checkout":       http.StatusNotFound,
	"blocked_card":           http.StatusForbidden,
	"bad_pin":                http.StatusForbidden,
	"pin_wait":               http.StatusTooManyRequests,
	"pin_locked":             http.StatusLocked,
	"insufficient_points":    http.StatusConflict,
	"offline_limit":          http.StatusConflict,
	"card_exists":            http.StatusConflict,
	"tier_required":          http.StatusConflict,
	"reward_unavailable":     http.StatusConflict,
	"cannot_void":            http.StatusConflict,
	"cannot_refund":          http.StatusConflict,
	"too_large":              http.StatusRequestEntityTooLarge,
	"forbidden":              http.StatusForbidden,
	"no_token":               http.StatusUnauthorized,
	"bad_token":              http.StatusUnauthorized,
	"approval_required":      http.StatusForbidden,
	"unsupported_media_type": http.StatusUnsupportedMediaType,
	"disk_full":              http.StatusInsufficientStorage,
	"corrupt":                http.StatusInternalServerError,
	"closed":                 http.StatusServiceUnavailable,
}

// codeOf is an error's stable code: the API's own refusals', else the
// agent's (agent.Reason).
func codeOf(err error) string {
	switch {
	case errors.Is(err, errTooLarge):
		return "too_large"
	case errors.Is(err, errForeign), errors.Is(err, errRole), errors.Is(err, errNotOwner):
		return "forbidden"
	case errors.Is(err, errNoToken):
		return "no_token"
	case errors.Is(err, errMediaType):
		return "unsupported_media_type"
	}
	return agent.Reason(err)
}

// Handler returns the API's HTTP handler.
func Handler(a Agent, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	mux := http.NewServeMux()
	post := func(path string, fn func(r *http.Request) (any, error)) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) { v, err := fn(r); respond(w, log, v, err) })
	}
	get := func(path string, fn func(r *http.Request) (any, error)) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) { v, err := fn(r); respond(w, log, v, err) })
	}
	post("/v1/earn", func(r *http.Request) (any, error) {
		var req agent.EarnRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return a.Earn(r.Context(), req)
	})
	post("/v1/quote", func(r *http.Request) (any, error) {
		var req agent.EarnRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return a.Quote(r.Context(), req)
	})
	post("/v1/redeem", func(r *http.Request) (any, error) {
		var req agent.RedeemRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return a.Redeem(r.Context(), req)
	})
	post("/v1/donate", func(r *http.Request) (any, error) {
		var req agent.DonateRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return a.Donate(r.Context(), req)
	})
	post("/v1/void", func(r *http.Request) (any, error) {
		var req agent.VoidRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return a.Void(r.Context(), req)
	})
	post("/v1/refund", func(r *http.Request) (any, error) {
		var req agent.RefundRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return a.Refund(r.Context(), req)
	})
	post("/v1/enroll", func(r *http.Request) (any, error) {
		var req agent.EnrollRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return a.Enroll(r.Context(), req)
	})
	post("/v1/adjust", func(r *http.Request) (any, error) {
		var req agent.AdjustRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return a.Adjust(r.Context(), req)
	})
	post("/v1/replace-card", func(r *http.Request) (any, error) {
		var req agent.ReplaceCardRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return a.ReplaceCard(r.Context(), req)
	})
	// Unlocking the manager PIN is the till's own account's: the unix socket
	// only (guard refuses it on TCP).
	post(unlockPath, func(*http.Request) (any, error) { return struct{}{}, a.UnlockManagerPIN() })
	post("/v1/expire", func(r *http.Request) (any, error) { return a.Expire(r.Context()) })
	post("/v1/basket", func(r *http.Request) (any, error) {
		var b agent.Basket
		if err := decode(r, &b); err != nil {
			return nil, err
		}
		if err := a.SetBasket(b); err != nil {
			return nil, err
		}
		return a.Basket(), nil
	})
	get("/v1/basket", func(*http.Request) (any, error) { return a.Basket(), nil })
	get("/v1/rules", func(*http.Request) (any, error) { return a.Rules(), nil })
	get(pinPath, func(*http.Request) (any, error) { return PINState{Set: a.HasManagerPIN()}, nil })
	post(pinPath, func(r *http.Request) (any, error) {
		var req PINRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		if req.Replace {
			return struct{}{}, a.ReplaceManagerPIN(req.PIN)
		}
		return struct{}{}, a.SetManagerPIN(req.PIN)
	})
	post(pinCheckPath, func(r *http.Request) (any, error) {
		var req PINRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return struct{}{}, a.CheckManagerPIN(req.PIN)
	})
	post(tokensPath, func(r *http.Request) (any, error) {
		var req TokenRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		tok, err := a.AddToken(req.Name, req.Role)
		return TokenAdded{Name: req.Name, Role: req.Role, Token: tok}, err
	})
	get(tokensPath, func(*http.Request) (any, error) { return a.Tokens() })
	post(revokePath, func(r *http.Request) (any, error) {
		var req TokenRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return struct{}{}, a.RevokeToken(req.Name)
	})
	mux.HandleFunc("GET "+watchPath, func(w http.ResponseWriter, r *http.Request) { watch(w, r, a, log) })
	get("/v1/member", func(r *http.Request) (any, error) { return a.Member(r.Context(), r.URL.Query().Get("card")) })
	get("/v1/checkout", func(r *http.Request) (any, error) { return a.Checkout(r.Context(), r.URL.Query().Get("ref")) })
	get("/v1/status", func(*http.Request) (any, error) { return a.Status(), nil })
	get("/v1/stats", func(r *http.Request) (any, error) { return a.Stats(r.URL.Query().Get("day")) })
	get("/v1/version", func(*http.Request) (any, error) { return buildstamp.Get(), nil })
	// The terminal's Prometheus metrics (pos-agent serve --metrics serves
	// them on an address of their own too).
	mux.Handle("GET /metrics", MetricsHandler(a, log))
	mux.HandleFunc("GET /v1/export", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		// Lines are written as they are read; an error after the first line
		// can only end the stream, which the client reports as truncated.
		err := a.Export(func(b []byte) error {
			if _, err := w.Write(b); err != nil {
				return err
			}
			_, err := w.Write([]byte{'\n'})
			return err
		})
		if err != nil {
			log.Warn("export", "err", err)
		}
	})
	// A backup streams as it is read from the ledger; a failure part way
	// cuts the connection, so that the client cannot take what it got for
	// a whole archive.
	mux.HandleFunc("GET /v1/backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-tar")
		if _, err := a.Backup(w); err != nil {
			log.Error("backup", "err", err)
			panic(http.ErrAbortHandler)
		}
	})
	return guard(mux, a, log)
}

// MetricsHandler serves the agent's metrics in Prometheus's exposition.
func MetricsHandler(a Agent, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return promhttp.HandlerFor(a.Metrics(), promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)})
}

// What a web page could send to the TCP address: a browser on the till may
// reach 127.0.0.1 (a page's form or fetch, or a name of the page's own that
// resolves to 127.0.0.1), the unix socket it cannot.
var (
	errForeign   = errors.New("refused: a request from a web page (an Origin, a cross-site fetch or a Host that is not this machine)")
	errMediaType = errors.New("a request body must be Content-Type: application/json")
)

// Who may call over TCP, and over the socket.
var (
	errNoToken  = errors.New("the local API over TCP needs a token: send Authorization: Bearer <token> (pos-agent token add --name N --role pos|manager)")
	errRole     = errors.New("refused: this call needs a manager's token")
	errNotOwner = errors.New("refused: the local API's socket admits only the user the agent runs as")
)

// The manager PIN's and the API tokens' paths answer on the unix socket
// only: no token, not even a manager's, may try PINs, choose one or make
// tokens.
const (
	unlockPath   = "/v1/pin/unlock"
	pinPath      = "/v1/pin"
	pinCheckPath = "/v1/pin/check"
	tokensPath   = "/v1/tokens"
	revokePath   = "/v1/tokens/revoke"
)

// socketOnly reports whether path answers on the unix socket only.
func socketOnly(path string) bool {
	switch path {
	case unlockPath, pinPath, pinCheckPath, tokensPath, revokePath:
		return true
	}
	return false
}

// posCalls are what a POS integration's token may call: record and look up
// checkouts and members. A manager's token may call everything that is not
// socketOnly as well: adjust, replace-card, expire, export and backup.
var posCalls = map[string]bool{
	"POST /v1/earn": true, "POST /v1/quote": true, "POST /v1/redeem": true, "POST /v1/donate": true,
	"POST /v1/void": true, "POST /v1/refund": true, "POST /v1/enroll": true, "POST /v1/basket": true,
	"GET /v1/basket": true, "GET /v1/rules": true, "GET /v1/member": true, "GET /v1/checkout": true,
	"GET /v1/status": true, "GET /v1/stats": true, "GET /v1/version": true, "GET " + watchPath: true,
	"GET /metrics": true,
}

// TokenRequest is the body of POST /v1/tokens (Name and Role) and POST
// /v1/tokens/revoke (Name).
type TokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role,omitempty"`
}

// TokenAdded is POST /v1/tokens's answer: the token, shown this once.
type TokenAdded struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	Token string `json:"token"`
}

// peerKey is the context key of a unix socket connection's peer.
type peerKey struct{}

// peer is who is at the other end of a unix socket connection.
type peer struct {
	uid   int
	known bool
}

// connContext notes the user id of a unix socket connection's peer.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if _, ok := c.(*net.UnixConn); !ok {
		return ctx
	}
	uid, known := peerUID(c)
	return context.WithValue(ctx, peerKey{}, peer{uid: uid, known: known})
}

// bearer is the token of an Authorization: Bearer header ("" for none).
func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// PINState is GET /v1/pin's answer: whether a manager PIN has been chosen.
type PINState struct {
	Set bool `json:"set"`
}

// PINRequest is the body of POST /v1/pin (set the PIN of a terminal that
// has none, or with Replace a new one) and POST /v1/pin/check.
type PINRequest struct {
	PIN     string `json:"pin"`
	Replace bool   `json:"replace,omitempty"`
}

// guard admits on the unix socket only the user the agent runs as (the
// socket's mode says so too; the peer's credentials are checked where the
// kernel gives them). On the TCP listener it refuses requests a web page
// could make: with an Origin header or a cross-site Sec-Fetch-Site, to a
// Host other than a loopback address or localhost (DNS rebinding), or a
// POST whose body is not declared application/json (a form or a text/plain
// fetch, which needs no CORS preflight); then it requires an API token, and
// a POS's token may make only posCalls.
func guard(next http.Handler, a Agent, log *slog.Logger) http.Handler {
	owner := os.Getuid()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ip, _, err := net.SplitHostPort(r.RemoteAddr); err != nil || net.ParseIP(ip) == nil {
			// The unix socket, or the process's own in-process client.
			if p, ok := r.Context().Value(peerKey{}).(peer); ok && p.known && p.uid != owner {
				log.Warn("local api: refused a user of the socket", "uid", p.uid, "owner", owner, "path", r.URL.Path)
				respond(w, log, nil, fmt.Errorf("%w (uid %d), not uid %d", errNotOwner, owner, p.uid))
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		ip := net.ParseIP(host)
		site := r.Header.Get("Sec-Fetch-Site")
		switch {
		case r.Header.Get("Origin") != "", site != "" && site != "none" && site != "same-origin",
			host != "localhost" && (ip == nil || !ip.IsLoopback()), socketOnly(r.URL.Path):
			respond(w, log, nil, errForeign)
			return
		}
		tok := bearer(r)
		if tok == "" {
			respond(w, log, nil, errNoToken)
			return
		}
		t, err := a.CheckToken(tok)
		if err != nil {
			log.Warn("local api: refused a token", "path", r.URL.Path, "err", err)
			respond(w, log, nil, err)
			return
		}
		if call := r.Method + " " + r.URL.Path; t.Role != agent.RoleManager && !posCalls[call] {
			log.Warn("local api: refused a call above the token's role", "token", t.Name, "role", t.Role, "call", call)
			respond(w, log, nil, fmt.Errorf("%w: %s (token %q is a %s's)", errRole, call, t.Name, t.Role))
			return
		}
		if r.Method == http.MethodPost {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				respond(w, log, nil, errMediaType)
				return
			}
		}
		if t.Role == agent.RoleManager {
			// A manager's token approves what a cashier may not do alone.
			r = r.WithContext(agent.WithManager(r.Context(), "api token "+t.Name))
		}
		next.ServeHTTP(w, r)
	})
}

// errTooLarge is a request body over maxBody.
var errTooLarge = fmt.Errorf("request body over %d bytes", maxBody)

func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("%w: request body: %v", agent.ErrInvalid, err)
	}
	if len(body) > maxBody {
		// Read on (up to drainBody) so that the client, still sending,
		// reads the answer instead of a reset connection.
		_, _ = io.CopyN(io.Discard, r.Body, drainBody)
		return errTooLarge
	}
	if err := strictjson.Decode(body, v); err != nil {
		return fmt.Errorf("%w: request body: %v", agent.ErrInvalid, err)
	}
	return nil
}

// ErrorBody is the JSON body of every failed call.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func respond(w http.ResponseWriter, log *slog.Logger, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code := codeOf(err)
		status, ok := statuses[code]
		if !ok {
			status = http.StatusInternalServerError
		}
		if status >= 500 {
			log.Error("local api", "err", err)
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(ErrorBody{Error: err.Error(), Code: code})
		return
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		respond(w, log, nil, err)
		return
	}
	_, _ = w.Write(buf.Bytes())
}

// Server serves the API on the data directory's socket and, optionally, a
// loopback TCP address.
type Server struct {
	srv       *localhttp.Server
	listeners []net.Listener
	socket    string
	stop      context.CancelFunc // ends the watch streams
}

// Listen opens the unix socket at socketPath (mode 0600, replacing a stale
// one) and, if tcpAddr is not empty, a TCP listener that must be on a
// loopback address.
func Listen(socketPath, tcpAddr string, h http.Handler) (*Server, error) {
	stopping, stop := context.WithCancel(context.Background())
	s := &Server{socket: socketPath, stop: stop,
		srv: &localhttp.Server{Handler: streamsEnd(h, stopping), ConnContext: connContext, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, IdleTimeout: idleTimeout}}
	if c, err := net.DialTimeout("unix", socketPath, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another agent is serving %s", socketPath)
	}
	_ = os.Remove(socketPath) // a socket left by an agent that was killed
	// The socket is created with a umask that already denies others, so no
	// window exists in which it is reachable with looser permissions.
	old := umask(0o177)
	ln, err := net.Listen("unix", socketPath)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("local api: %w", err)
	}
	if err := os.Chmod(socketPath, socketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("local api: %w", err)
	}
	s.listeners = append(s.listeners, ln)
	if tcpAddr != "" {
		host, _, err := net.SplitHostPort(tcpAddr)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("--api %q: %w", tcpAddr, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			ln.Close()
			return nil, fmt.Errorf("--api %q: the local API listens on loopback addresses only", tcpAddr)
		}
		tl, err := net.Listen("tcp", tcpAddr)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("local api: %w", err)
		}
		s.listeners = append(s.listeners, tl)
	}
	return s, nil
}

// Addrs returns the addresses the server listens on.
func (s *Server) Addrs() []net.Addr {
	out := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		out[i] = l.Addr()
	}
	return out
}

// Serve serves until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, len(s.listeners))
	for _, l := range s.listeners {
		go func() { errc <- s.srv.Serve(l) }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			_ = s.srv.Close()
			return err
		}
	}
	s.stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(shutdownCtx)
	_ = os.Remove(s.socket)
	return err
}
