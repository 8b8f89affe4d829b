// Package syncclient is the terminal's side of the sync link: joining head
// office with a one-time code, and the connection loop that sends the outbox
// in order, applies head office's feeds and reconnects with backoff for as
// long as the terminal runs.
//
// It never decides anything about points and never blocks a checkout: the
// agent commits locally; this package only moves committed events and
// snapshots across the link.
package syncclient

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/sync/syncproto"
)

// Agent is what the link needs of the terminal's agent (*agent.Agent).
type Agent interface {
	Identity() agent.Identity
	SetIdentity(terminal, store string) error
	OutboxAfter(after uint64, max int) ([][]byte, error)
	MarkAcked(seq uint64) error
	OutboxSignal() <-chan struct{}
	Cursors() agent.Cursors
	ApplyRules(doc []byte) error
	ApplyMembers(ms []agent.MemberSnapshot, cursor uint64) error
	ApplyBlocked(bs []agent.CardBlock, cursor uint64) error
	SetLink(agent.LinkState)
	SetLookup(func(ctx context.Context, card string) (*agent.MemberSnapshot, error))
	ObserveClock(hlc uint64)
	// After a repair: what to ask head office for of an earlier epoch, and
	// what it sent back.
	NextHistoryRequest() (agent.HistoryRequest, bool)
	ApplyHistory(req agent.HistoryRequest, covered uint64, raws [][]byte) error
	ApplyEpochs(epochs []string) error
	SetDrawKey(key []byte) error
}

// Files in the terminal's data directory.
const (
	KeyFile  = agent.KeyFile  // the terminal's ed25519 private key (seed), 0600
	LinkFile = agent.LinkFile // head office URL, terminal id, store, QR key, 0600
	CAFile   = "hq-ca.pem"    // optional: the only CA trusted for wss://
)

// Timeouts and sizes of the link.
const (
	dialWait    = 10 * time.Second       // connecting and the websocket upgrade
	handshake   = 10 * time.Second       // hello to welcome
	writeWait   = 10 * time.Second       // one write; a timeout makes the connection unusable
	pongWait    = 15 * time.Second       // a dead link is noticed within this
	pingPeriod  = (pongWait * 9) / 10    // pings well inside pongWait
	inFlight    = 8                      // upstream batches sent before the first is acked
	batchSize   = syncproto.MaxBatch     // events per upstream batch
	healthyFor  = time.Minute            // a connection this old resets the backoff
	maxBackoff  = 30 * time.Second       // the longest wait between attempts
	initialWait = 500 * time.Millisecond // the first wait
	jitter      = 0.5                    // ± share of each wait, so terminals do not reconnect in step
	sendQueue   = inFlight + 16          // messages waiting for the write pump
	joinTimeout = 15 * time.Second       // the join request
	maxJoinResp = 16 << 10               // bytes of head office's join answer
	maxCAFile   = 1 << 20                // bytes of a pinned CA file
	maxURL      = 2048                   // length of a head office URL
	lookupIDs   = 1 << 20                // lookup ids wrap here
	fileMode    = os.FileMode(0o600)     // key and link files
	userAgent   = "pos-agent-sync/1"     // identifies terminals in head office's logs
)

// Link is what join saved about head office.
type Link struct {
	Version  int    `json:"version"`
	HQ       string `json:"hq"` // ws:// or wss:// URL of /v1/sync
	Terminal string `json:"terminal"`
	Store    string `json:"store"`
	QRKey    []byte `json:"qr_key"` // head office's public key for member QR tokens
	// Insecure records that the terminal joined with --insecure-ws: a ws://
	// URL to a head office that is not on this machine is then allowed.
	Insecure bool `json:"insecure,omitempty"`
}

// LoadLink reads the link saved by Join; ok is false when the terminal has
// not joined.
func LoadLink(dir string) (Link, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, LinkFile))
	if errors.Is(err, os.ErrNotExist) {
		return Link{}, false, nil
	}
	if err != nil {
		return Link{}, false, err
	}
	var l Link
	if err := json.Unmarshal(b, &l); err != nil || l.Terminal == "" {
		return Link{}, false, fmt.Errorf("%s is damaged: join again", filepath.Join(dir, LinkFile))
	}
	return l, true, nil
}

// syncURL checks a head office URL and returns it with the sync path.
func syncURL(raw string, insecure bool) (*url.URL, error) {
	if len(raw) > maxURL {
		return nil, errors.New("head office URL is too long")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("head office URL %q must look like wss://host/v1/sync", raw)
	}
	if u.Scheme == "ws" && !insecure && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("head office URL %q is ws:// to another machine: the join code, members and rules would travel in clear; use wss:// (or --insecure-ws on a network of your own)", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/sync"
	}
	return u, nil
}

// loopback reports whether host names this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func tlsConfig(dir string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	f, err := os.Open(filepath.Join(dir, CAFile))
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pem, err := io.ReadAll(io.LimitReader(f, maxCAFile))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", filepath.Join(dir, CAFile))
	}
	cfg.RootCAs = pool
	return cfg, nil
}

func writePrivate(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, fileMode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, fileMode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Join exchanges a one-time code for this terminal's identity at head office:
// it makes a key pair, sends the public key with the code, keeps the private
// key in dir (0600) with the link, and gives the agent its terminal id and
// store. insecure allows a ws:// URL to another machine (--insecure-ws).
func Join(ctx context.Context, a Agent, dir, hq, code string, insecure bool) (Link, error) {
	u, err := syncURL(hq, insecure)
	if err != nil {
		return Link{}, err
	}
	if code == "" {
		return Link{}, errors.New("a join code is required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Link{}, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Link{}, err
	}
	tc, err := tlsConfig(dir)
	if err != nil {
		return Link{}, err
	}
	ju := *u
	ju.Path, ju.Scheme = "/v1/join", "http"
	if u.Scheme == "wss" {
		ju.Scheme = "https"
	}
	body, _ := json.Marshal(syncproto.JoinRequest{Code: code, Key: pub})
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ju.String(), bytes.NewReader(body))
	if err != nil {
		return Link{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	resp, err := hc.Do(req)
	if err != nil {
		return Link{}, fmt.Errorf("join: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxJoinResp))
	if err != nil {
		return Link{}, fmt.Errorf("join: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &eb) == nil && eb.Error != "" {
			return Link{}, fmt.Errorf("join: %s", eb.Error)
		}
		return Link{}, fmt.Errorf("join: head office answered %s", resp.Status)
	}
	var jr syncproto.JoinResponse
	if err := json.Unmarshal(raw, &jr); err != nil || jr.Terminal == "" {
		return Link{}, errors.New("join: head office's answer is not a join response")
	}
	link := Link{Version: 1, HQ: u.String(), Terminal: jr.Terminal, Store: jr.Store, QRKey: jr.QRKey, Insecure: insecure}
	if err := writePrivate(filepath.Join(dir, KeyFile), priv.Seed()); err != nil {
		return Link{}, err
	}
	lb, _ := json.MarshalIndent(link, "", "  ")
	if err := writePrivate(filepath.Join(dir, LinkFile), lb); err != nil {
		return Link{}, err
	}
	if err := a.SetIdentity(jr.Terminal, jr.Store); err != nil {
		return Link{}, err
	}
	if jr.DrawKey != nil {
		if err := a.SetDrawKey(jr.DrawKey); err != nil {
			return Link{}, err
		}
	}
	return link, nil
}

// errRefused is a refusal by head office that retrying cannot fix (unknown
// terminal, wrong key, a broken chain): the loop stops and the link state
// says why.
var errRefused = errors.New("head office refused: ")

// refusal is the error of an error message from head office during the
// handshake: a refusal of who the terminal is stops the link; anything
// else (head office cannot read its store) is retried.
func refusal(m syncproto.Message) error {
	if strings.Contains(m.Error, "protocol version") {
		// An older head office: retried with backoff until it is upgraded.
		return fmt.Errorf("head office does not speak protocol version %d (upgrade it): %s", syncproto.Version, m.Error)
	}
	if m.Code == syncproto.CodeAuth || m.Code == "" {
		return fmt.Errorf("%w%s", errRefused, m.Error)
	}
	return fmt.Errorf("head office: %s", m.Error)
}

// Run keeps the link to head office up until ctx ends: it connects, sends
// the outbox in order, applies head office's feeds, and reconnects with
// exponential backoff and jitter (never giving up, at most 30 s apart, reset
// after a healthy minute). hq overrides the URL saved by join when not
// empty. It returns when ctx ends, or when head office refuses the terminal.
func Run(ctx context.Context, a Agent, dir, hq string, log *slog.Logger) error {
	link, ok, err := LoadLink(dir)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("this terminal has not joined head office: run pos-agent join --hq URL --code CODE")
	}
	if hq == "" {
		hq = link.HQ
	}
	u, err := syncURL(hq, link.Insecure)
	if err != nil {
		return err
	}
	seed, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil || len(seed) != ed25519.SeedSize {
		return fmt.Errorf("terminal key %s is missing or damaged: join again", filepath.Join(dir, KeyFile))
	}
	tc, err := tlsConfig(dir)
	if err != nil {
		return err
	}
	c := &client{a: a, url: u.String(), terminal: link.Terminal, key: ed25519.NewKeyFromSeed(seed), log: log, version: 1,
		dialer: &websocket.Dialer{HandshakeTimeout: dialWait, TLSClientConfig: tc, EnableCompression: true}}
	// A terminal that has head office's key (every join gives it) asks for
	// and checks head office's signature on every message.
	if len(link.QRKey) == ed25519.PublicKeySize {
		c.hqKey, c.version = ed25519.PublicKey(link.QRKey), syncproto.Version
	} else {
		log.Warn("link.json has no head office key: messages from head office are not verified; join again to verify them")
	}
	a.SetLookup(c.lookup)
	defer a.SetLookup(nil)
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime, b.RandomizationFactor = initialWait, maxBackoff, 0, jitter
	b.Reset()
	var lastSync time.Time
	for {
		start := time.Now()
		err := c.session(ctx, &lastSync)
		if ctx.Err() != nil {
			a.SetLink(agent.LinkState{LastSync: lastSync})
			return nil
		}
		a.SetLink(agent.LinkState{LastSync: lastSync, Error: oneLine(err)})
		if errors.Is(err, errRefused) {
			log.Error("head office refused this terminal; not retrying", "err", err)
			return err
		}
		if time.Since(start) >= healthyFor {
			b.Reset()
		}
		wait := b.NextBackOff()
		log.Info("link down; reconnecting", "err", err, "in", wait.Round(time.Millisecond))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil
		}
	}
}

func oneLine(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// client holds the link's state across sessions.
type client struct {
	a        Agent
	url      string
	terminal string
	key      ed25519.PrivateKey
	log      *slog.Logger
	dialer   *websocket.Dialer
	hqKey    ed25519.PublicKey // head office's, from the join: messages are verified with it
	version  int               // the protocol version spoken: 2 with hqKey

	mu      stdsync.Mutex
	current *session // nil while offline
	nextID  int
	// noHistory is set when head office refused a history request (a head
	// office older than the message): the terminal stops asking until it
	// restarts, and syncs the rest as before.
	noHistory atomic.Bool
}

// session is one connection.
type session struct {
	ws      *websocket.Conn
	macKey  []byte // version 2: the session's key of head office's message MACs
	send    chan []byte
	done    chan struct{}
	mu      stdsync.Mutex
	waiting map[string]chan syncproto.Message // lookups by id
	history agent.HistoryRequest              // the refill asked for, read by the read pump only
	asked   bool                              // a history request is unanswered
	current bool                              // head office said the feeds are caught up (read pump only)
}

// askHistory asks head office for the next events a repair lost, if any.
func (c *client) askHistory(s *session) error {
	req, ok := c.a.NextHistoryRequest()
	if !ok || c.noHistory.Load() {
		return nil
	}
	s.history, s.asked = req, true
	return s.queue(syncproto.Message{Type: syncproto.TypeHistory, Epoch: req.Epoch, Seq: req.After, Until: req.Until})
}

func (s *session) queue(m syncproto.Message) error { return s.queueRaw(syncproto.Encode(m)) }

func (s *session) queueRaw(b []byte) error {
	select {
	case s.send <- b:
		return nil
	case <-s.done:
		return errors.New("link closed")
	}
}

// session runs one connection until it fails or ctx ends.
func (c *client) session(ctx context.Context, lastSync *time.Time) error {
	ws, resp, err := c.dialer.DialContext(ctx, c.url, http.Header{"User-Agent": {userAgent}})
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return fmt.Errorf("connect: %w", err)
	}
	defer ws.Close()
	ws.SetReadLimit(syncproto.MaxMessage)
	id := c.a.Identity()
	welcome, macKey, err := c.handshake(ws, id.Epoch)
	if err != nil {
		return err
	}
	c.a.ObserveClock(welcome.HLC)
	if welcome.DrawKey != nil {
		if err := c.a.SetDrawKey(welcome.DrawKey); err != nil {
			return err
		}
	}
	// What head office has made durable is durable: the outbox resumes after it.
	if err := c.a.MarkAcked(welcome.Seq); err != nil {
		return fmt.Errorf("%w%v", errRefused, err)
	}
	*lastSync = time.Now()
	c.a.SetLink(agent.LinkState{Online: true, LastSync: *lastSync})
	s := &session{ws: ws, macKey: macKey, send: make(chan []byte, sendQueue), done: make(chan struct{}), waiting: map[string]chan syncproto.Message{}}
	cur := c.a.Cursors()
	if err := s.queue(syncproto.Message{Type: syncproto.TypeCursors, RulesVersion: cur.Rules, Cursor: cur.Members, BlockCursor: cur.Blocked}); err != nil {
		return err
	}
	if err := c.askHistory(s); err != nil {
		return err
	}
	c.mu.Lock()
	c.current = s
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.current = nil
		c.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	acks := make(chan uint64, inFlight*2)
	errc := make(chan error, 3)
	go func() { errc <- c.writePump(ctx, s) }()
	go func() { errc <- c.upload(ctx, s, welcome.Seq, acks) }()
	go func() { errc <- c.readPump(ctx, s, acks, lastSync) }()
	err = <-errc
	cancel()
	close(s.done)
	ws.Close()
	return err
}

// handshake proves the terminal's identity and returns head office's welcome
// and, in version 2, the session's message key: the welcome's signature is
// checked with head office's key, and it carries head office's half of the
// key exchange the hello began.
func (c *client) handshake(ws *websocket.Conn, epoch string) (syncproto.Message, []byte, error) {
	deadline := time.Now().Add(handshake)
	_ = ws.SetReadDeadline(deadline)
	_ = ws.SetWriteDeadline(deadline)
	hello := syncproto.Message{Type: syncproto.TypeHello, Version: c.version, Terminal: c.terminal, Epoch: epoch}
	var mine *ecdh.PrivateKey
	if c.hqKey != nil {
		var err error
		if mine, err = ecdh.X25519().GenerateKey(rand.Reader); err != nil {
			return syncproto.Message{}, nil, err
		}
		hello.DH = mine.PublicKey().Bytes()
	}
	if err := ws.WriteMessage(websocket.TextMessage, syncproto.Encode(hello)); err != nil {
		return syncproto.Message{}, nil, err
	}
	ch, err := syncproto.Read(ws)
	if err != nil {
		return syncproto.Message{}, nil, fmt.Errorf("handshake: %w", err)
	}
	if ch.Type == syncproto.TypeError {
		return syncproto.Message{}, nil, refusal(ch)
	}
	if ch.Type != syncproto.TypeChallenge || len(ch.Nonce) != syncproto.NonceSize || ch.Session == "" {
		return syncproto.Message{}, nil, errors.New("handshake: expected a challenge")
	}
	proof := syncproto.Message{Type: syncproto.TypeProof, Sig: ed25519.Sign(c.key, syncproto.Statement(c.terminal, ch.Session, ch.Nonce))}
	if err := ws.WriteMessage(websocket.TextMessage, syncproto.Encode(proof)); err != nil {
		return syncproto.Message{}, nil, err
	}
	w, err := syncproto.Read(ws)
	if err != nil {
		return syncproto.Message{}, nil, fmt.Errorf("handshake: %w", err)
	}
	if w.Type == syncproto.TypeError {
		return syncproto.Message{}, nil, refusal(w)
	}
	if w.Type != syncproto.TypeWelcome {
		return syncproto.Message{}, nil, errors.New("handshake: expected a welcome")
	}
	_ = ws.SetWriteDeadline(time.Time{})
	if c.hqKey == nil {
		return w, nil, nil
	}
	if len(w.Sig) != ed25519.SignatureSize || !ed25519.Verify(c.hqKey, syncproto.HeadOfficeStatement(ch.Session, w), w.Sig) {
		return syncproto.Message{}, nil, fmt.Errorf("%w: a welcome not signed by head office's key", syncproto.ErrMalformed)
	}
	theirs, err := ecdh.X25519().NewPublicKey(w.DH)
	if err != nil {
		return syncproto.Message{}, nil, fmt.Errorf("%w: a welcome without head office's X25519 key", syncproto.ErrMalformed)
	}
	shared, err := mine.ECDH(theirs)
	if err != nil {
		return syncproto.Message{}, nil, fmt.Errorf("%w: head office's X25519 key is not usable", syncproto.ErrMalformed)
	}
	return w, syncproto.SessionKey(shared, ch.Session), nil
}

// verify checks the MAC of a message head office sent after the welcome
// (version 2); a message that fails is not head office's, and the
// connection is dropped before it is used.
func verify(key []byte, m syncproto.Message) error {
	if key == nil {
		return nil
	}
	if !hmac.Equal(m.Sig, syncproto.MAC(key, m)) {
		return fmt.Errorf("%w: a %s message not signed by head office (its session key)", syncproto.ErrMalformed, m.Type)
	}
	return nil
}

// writePump is the connection's only writer; it also pings.
func (c *client) writePump(ctx context.Context, s *session) error {
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	for {
		select {
		case b := <-s.send:
			_ = s.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := s.ws.WriteMessage(websocket.TextMessage, b); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		case <-ping.C:
			_ = s.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := s.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// upload sends the outbox after sent, in order, keeping up to inFlight
// batches unacknowledged. An ack that does not cover the oldest batch in
// flight means head office stopped at a gap: sending resumes from the ack.
func (c *client) upload(ctx context.Context, s *session, sent uint64, acks <-chan uint64) error {
	var flight []uint64 // last sequence of each batch in flight
	acked := sent
	for {
		for len(flight) < inFlight {
			evs, err := c.a.OutboxAfter(sent, batchSize)
			if err != nil {
				return err
			}
			if len(evs) == 0 {
				break
			}
			if err := s.queueRaw(syncproto.EncodeEvents(evs)); err != nil {
				return err
			}
			sent += uint64(len(evs))
			flight = append(flight, sent)
		}
		select {
		case a := <-acks:
			// Acks answer batches in order, so each belongs to the oldest
			// batch in flight. One short of it means head office stopped at
			// a gap: everything after its ack is sent again.
			acked = max(acked, a)
			if len(flight) > 0 && a < flight[0] {
				flight, sent = nil, acked
				continue
			}
			for len(flight) > 0 && flight[0] <= acked {
				flight = flight[1:]
			}
		case <-c.a.OutboxSignal():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// readPump is the connection's only reader.
func (c *client) readPump(ctx context.Context, s *session, acks chan<- uint64, lastSync *time.Time) error {
	_ = s.ws.SetReadDeadline(time.Now().Add(pongWait))
	s.ws.SetPongHandler(func(string) error { return s.ws.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		m, err := syncproto.Read(s.ws)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if err := verify(s.macKey, m); err != nil {
			return err
		}
		_ = s.ws.SetReadDeadline(time.Now().Add(pongWait))
		switch m.Type {
		case syncproto.TypeAck:
			if err := c.a.MarkAcked(m.Seq); err != nil {
				return fmt.Errorf("%w%v", errRefused, err)
			}
			c.a.ObserveClock(m.HLC)
			select {
			case acks <- m.Seq:
			case <-ctx.Done():
				return ctx.Err()
			}
		case syncproto.TypeRules:
			if err := c.a.ApplyRules(m.Rules); err != nil {
				c.log.Error("rules from head office refused", "version", m.RulesVersion, "err", err)
			}
		case syncproto.TypeMembers:
			ms := make([]agent.MemberSnapshot, len(m.Members))
			for i, mm := range m.Members {
				ms[i] = toSnapshot(mm)
			}
			if err := c.a.ApplyMembers(ms, m.Cursor); err != nil {
				return err
			}
		case syncproto.TypeBlocked:
			bs := make([]agent.CardBlock, len(m.Blocked))
			for i, b := range m.Blocked {
				bs[i] = agent.CardBlock{Card: b.Card, Blocked: b.Blocked}
			}
			if err := c.a.ApplyBlocked(bs, m.BlockCursor); err != nil {
				return err
			}
		case syncproto.TypeCurrent:
			s.current = true
		case syncproto.TypeHistory:
			s.asked = false
			if m.Epoch != s.history.Epoch {
				return fmt.Errorf("%w: history of epoch %s, asked for %s", syncproto.ErrMalformed, m.Epoch, s.history.Epoch)
			}
			var err error
			if s.history.Epoch == "" {
				err = c.a.ApplyEpochs(m.Epochs)
			} else {
				err = c.a.ApplyHistory(s.history, m.Seq, rawEvents(m.Events))
			}
			if err != nil {
				return err
			}
			if err := c.askHistory(s); err != nil {
				return err
			}
		case syncproto.TypeFound:
			s.mu.Lock()
			ch := s.waiting[m.ID]
			delete(s.waiting, m.ID)
			s.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		case syncproto.TypeError:
			switch m.Code {
			case syncproto.CodeAuth, syncproto.CodeChain, syncproto.CodeRange, syncproto.CodeSkew:
				return fmt.Errorf("%w%s", errRefused, m.Error)
			}
			if m.Code == syncproto.CodeProtocol && s.asked {
				c.noHistory.Store(true)
				c.log.Warn("head office does not send a repaired ledger's earlier events (an older version); not asking again until restarted", "err", m.Error)
			}
			return fmt.Errorf("head office: %s", m.Error)
		default:
			return fmt.Errorf("%w: unexpected %s message", syncproto.ErrMalformed, m.Type)
		}
		*lastSync = time.Now()
		c.a.SetLink(agent.LinkState{Online: true, LastSync: *lastSync, Current: s.current})
	}
}

// lookup asks head office about a card this terminal does not know; the
// agent bounds it with its own deadline (300 ms).
func (c *client) lookup(ctx context.Context, card string) (*agent.MemberSnapshot, error) {
	c.mu.Lock()
	s := c.current
	c.nextID = (c.nextID + 1) % lookupIDs
	id := strconv.Itoa(c.nextID)
	c.mu.Unlock()
	if s == nil {
		return nil, errors.New("offline")
	}
	ch := make(chan syncproto.Message, 1)
	s.mu.Lock()
	s.waiting[id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiting, id)
		s.mu.Unlock()
	}()
	if err := s.queue(syncproto.Message{Type: syncproto.TypeLookup, ID: id, Card: card}); err != nil {
		return nil, err
	}
	select {
	case m := <-ch:
		if m.Member == nil {
			return nil, nil
		}
		snap := toSnapshot(*m.Member)
		return &snap, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, errors.New("offline")
	}
}

func toSnapshot(m syncproto.Member) agent.MemberSnapshot {
	return agent.MemberSnapshot{Member: m.Member, Name: m.Name, Cards: m.Cards, Tier: m.Tier, Balance: m.Balance,
		Spend12m: m.Spend12m, Lifetime: m.Lifetime, LastVisit: m.LastVisit, Enrolled: m.Enrolled, Status: m.Status,
		AsOfSeq: m.AsOfSeq, Taken: m.Taken, Birthday: m.Birthday, Months: m.Months, Lots: m.Lots}
}

// rawEvents is the events of a message as bytes.
func rawEvents(events []json.RawMessage) [][]byte {
	raws := make([][]byte, len(events))
	for i, e := range events {
		raws[i] = e
	}
	return raws
}
