// Package syncserver is head office's network face for terminals: the
// websocket sync endpoint they connect to and the join endpoint. It speaks
// the protocol and nothing else: what an event does, who a terminal is and
// what a terminal receives are head office's (the HeadOffice interface below,
// which *headoffice.Office implements).
//
// Nothing a client sends is parsed past the handshake until the client has
// proved it holds a registered terminal's key; every frame is size-limited.
package syncserver

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	stdsync "sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/offline-loyalty/terminal/internal/netlimit"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/sync/syncproto"
)

// Timeouts of a connection (the gorilla chat example's names).
const (
	// handshakeWait bounds the whole handshake: a client that has not proved
	// its identity by then is dropped.
	handshakeWait = 10 * time.Second
	// writeWait bounds one write; a connection whose write times out is
	// closed (after a write timeout the connection is unusable).
	writeWait = 10 * time.Second
	// pongWait is how long a silent peer is trusted: a dead link is noticed
	// within it (the issue asks for 15 s).
	pongWait = 15 * time.Second
	// pingPeriod keeps pings well inside pongWait.
	pingPeriod = (pongWait * 9) / 10
	// sendQueue is how many messages may wait for the write pump.
	sendQueue = 64
	// feedPoll re-checks the downstream feeds even without a change signal:
	// change signals come from the store (and from other head office
	// processes through it), so this is only a safety net.
	feedPoll = 30 * time.Second
	// storeWait bounds one call into head office for a connection.
	storeWait = 30 * time.Second
	// feedCoalesce is the mean time between two feed checks of one
	// connection: with thousands of terminals sending, changes arrive all
	// the time, and each connection gathers them into one check a second
	// instead of waking on every commit. Each wait is drawn between half
	// and one and a half of it: with a fixed wait, the connections woken
	// by the same commits would check together, second after second, and
	// every ack queued behind that burst would wait for it.
	feedCoalesce = time.Second
	// historyBudget bounds the events of one history answer, well inside a
	// frame (an event may be up to 64 KiB).
	historyBudget = syncproto.MaxMessage / 2
	// mergeQueue is how many decoded batches of one connection may wait for
	// the ingester, and maxMerged how many events it commits together.
	mergeQueue = 4
	maxMerged  = 4 * syncproto.MaxBatch
)

// HeadOffice is what the sync endpoint needs of head office.
type HeadOffice interface {
	// Terminal returns a joined terminal's store and public key; ok is
	// false for an id that was never registered or has not joined.
	Terminal(ctx context.Context, id string) (store string, key ed25519.PublicKey, ok bool, err error)
	// Durable is the highest sequence of (terminal, epoch) stored.
	Durable(ctx context.Context, terminal, epoch string) (uint64, error)
	// Ingest stores and applies a batch and returns the new durable
	// sequence. A refused batch (an error with code "chain" or
	// "protocol") still returns the ack of what was stored before it.
	Ingest(ctx context.Context, terminal, store, epoch string, b ledger.Batch) (uint64, error)
	// Pending returns the next downstream messages past cur and moves it.
	// since is when the caller took its change signals from Changes: what
	// changed before it is in the answer or past its last message.
	Pending(ctx context.Context, terminal, store, epoch string, cur *syncproto.Cursors, since time.Time) ([]syncproto.Message, error)
	// Changes returns channels closed on the next change for all stores
	// and for this store, and the time it took them.
	Changes(store string) (all, mine <-chan struct{}, since time.Time)
	// Lookup returns the member holding card (an error with code
	// "not_found" when none does).
	Lookup(ctx context.Context, terminal, epoch, card string) (syncproto.Member, error)
	// Connected records that this process holds a terminal's connection,
	// which drop ends (the terminal was revoked); the returned func records
	// its end.
	Connected(terminal, epoch string, drop func()) (done func())
	// Join exchanges a join code for a terminal's identity.
	Join(ctx context.Context, req syncproto.JoinRequest) (syncproto.JoinResponse, error)
	// History returns the terminal's events of an earlier epoch past after,
	// up to until (0: all), at most limit events and about budget bytes, and
	// the sequence up to which it returned all it holds.
	History(ctx context.Context, terminal, current, epoch string, after, until uint64, limit, budget int) ([][]byte, uint64, error)
	// Epochs returns the epochs of the terminal's events head office holds.
	Epochs(ctx context.Context, terminal string) ([]string, error)
	// SignSync signs a statement with head office's key, the one terminals
	// received at join.
	SignSync(statement []byte) []byte
	// DrawKey is the key of the terminal's surprise draws.
	DrawKey(terminal string) []byte
}

// refusal are the codes of an Ingest error that refuses the batch (the
// terminal is told why and what was stored before it), not a failure.
var refusal = map[string]bool{syncproto.CodeChain: true, syncproto.CodeProtocol: true, syncproto.CodeRange: true, syncproto.CodeSkew: true}

// codeOf is the stable code of one of head office's refusals ("" for any
// other error).
func codeOf(err error) string {
	var c interface{ Code() string }
	if errors.As(err, &c) {
		return c.Code()
	}
	return ""
}

// Server is the sync and join endpoint.
type Server struct {
	hq  HeadOffice
	log *slog.Logger
	now func() time.Time

	upgrader websocket.Upgrader
	metrics  *metrics
	joins    throttle
}

// ConnCounter tells how many connections a listener holds open and how many
// it refused at accept (internal/netlimit's Listener).
type ConnCounter interface {
	Open() int64
	Refused() int64
}

// Options configure a Server.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Compression turns on permessage-deflate for clients that ask for it.
	// Off by default: it costs memory per connection (see PITFALLS).
	Compression bool
	// Metrics, when set, is where the server registers its figures
	// (headoffice_terminals_connected, headoffice_ack_seconds, ...).
	Metrics prometheus.Registerer
	// Conns, when set, is the listener's count, registered with Metrics.
	Conns ConnCounter
	// JoinsPerMinute bounds the join attempts of one address (0: the
	// default, DefaultJoinsPerMinute; negative: no limit).
	JoinsPerMinute int
}

// New returns the endpoint in front of hq.
func New(hq HeadOffice, opts Options) *Server {
	s := &Server{hq: hq, log: opts.Logger, now: opts.Now, metrics: newMetrics(opts.Metrics, opts.Conns)}
	switch {
	case opts.JoinsPerMinute == 0:
		s.joins.rate = rate.Limit(DefaultJoinsPerMinute) / 60
	case opts.JoinsPerMinute > 0:
		s.joins.rate = rate.Limit(opts.JoinsPerMinute) / 60
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout:  handshakeWait,
		EnableCompression: opts.Compression,
		// Terminals are not browsers; nothing is authorised by cookies, so
		// any origin may connect and must still prove its key.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return s
}

// Handler serves GET /v1/sync (websocket) and POST /v1/join.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/sync", s.serveSync)
	mux.HandleFunc("POST /v1/join", s.serveJoin)
	return mux
}

// conn is one authenticated terminal connection.
type conn struct {
	s        *Server
	ws       *websocket.Conn
	terminal string
	store    string
	epoch    string
	macKey   []byte // version 2: every message sent after the welcome carries its MAC
	send     chan []byte
	cursors  chan syncproto.Message // the terminal's feed positions, once
	log      *slog.Logger
}

func (s *Server) serveSync(w http.ResponseWriter, r *http.Request) {
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the client
	}
	defer ws.Close()
	// Before the proof a connection may send only a few KiB: one that never
	// authenticates holds no more than that.
	ws.SetReadLimit(syncproto.MaxHandshake)
	hs, err := s.handshake(ws)
	if err != nil {
		// Only a refusal of who the terminal is tells it to stop; head
		// office failing to read its store is worth a retry.
		code := syncproto.CodeAuth
		var ie internalError
		if errors.As(err, &ie) {
			code = syncproto.CodeInternal
		}
		s.metrics.handshakes.WithLabelValues(code).Inc()
		s.log.Info("sync handshake refused", "remote", r.RemoteAddr, "code", code, "err", err)
		_ = ws.SetWriteDeadline(time.Now().Add(writeWait))
		_ = ws.WriteMessage(websocket.TextMessage, syncproto.Encode(syncproto.Message{Type: syncproto.TypeError, Code: code, Error: err.Error()}))
		return
	}
	// A terminal that proved its key no longer counts against its
	// address's limit of connections before the handshake.
	netlimit.Authenticated(r.Context())
	ws.SetReadLimit(syncproto.MaxMessage)
	s.metrics.handshakes.WithLabelValues("ok").Inc()
	s.metrics.connected.Inc()
	defer s.metrics.connected.Dec()
	c := &conn{s: s, ws: ws, terminal: hs.terminal, store: hs.store, epoch: hs.epoch, macKey: hs.macKey,
		send: make(chan []byte, sendQueue), cursors: make(chan syncproto.Message, 1), log: s.log.With("terminal", hs.terminal)}
	c.log.Info("terminal connected", "epoch", hs.epoch, "version", hs.version)
	ctx, cancel := context.WithCancel(r.Context())
	// A terminal revoked while connected is dropped: its reads and writes
	// end with the socket.
	defer s.hq.Connected(hs.terminal, hs.epoch, func() { cancel(); _ = ws.Close() })()
	var wg stdsync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.writePump(ctx) }()
	go func() { defer wg.Done(); c.downstream(ctx) }()
	err = c.readPump(ctx)
	cancel()
	wg.Wait()
	c.log.Info("terminal disconnected", "err", err)
}

// internalError is a handshake that failed on head office's side.
type internalError struct{ err error }

func (e internalError) Error() string { return "head office: " + e.err.Error() }
func (e internalError) Unwrap() error { return e.err }

// handshake reads hello and proof, and nothing else, under one deadline.
func (s *Server) handshake(ws *websocket.Conn) (hs handshaken, err error) {
	deadline := time.Now().Add(handshakeWait)
	_ = ws.SetReadDeadline(deadline)
	_ = ws.SetWriteDeadline(deadline)
	hello, err := syncproto.Read(ws)
	if err != nil {
		return hs, err
	}
	if hello.Type != syncproto.TypeHello || hello.Version < syncproto.OldestVersion || hello.Version > syncproto.Version || hello.Terminal == "" || hello.Epoch == "" {
		return hs, fmt.Errorf("expected hello of protocol version %d to %d", syncproto.OldestVersion, syncproto.Version)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	store, key, ok, err := s.hq.Terminal(ctx, hello.Terminal)
	if err != nil {
		return hs, internalError{err}
	}
	// Answer an unknown terminal exactly like a known one until the proof,
	// so that the handshake does not tell which terminal ids exist.
	nonce := make([]byte, syncproto.NonceSize)
	sess := make([]byte, 16)
	_, _ = rand.Read(nonce)
	_, _ = rand.Read(sess)
	session := hex.EncodeToString(sess)
	if err := ws.WriteMessage(websocket.TextMessage, syncproto.Encode(syncproto.Message{Type: syncproto.TypeChallenge, Nonce: nonce, Session: session})); err != nil {
		return hs, err
	}
	proof, err := syncproto.Read(ws)
	if err != nil {
		return hs, err
	}
	if proof.Type != syncproto.TypeProof || !ok || len(key) != ed25519.PublicKeySize ||
		!ed25519.Verify(key, syncproto.Statement(hello.Terminal, session, nonce), proof.Sig) {
		return hs, errors.New("unknown terminal or wrong key")
	}
	durable, err := s.hq.Durable(ctx, hello.Terminal, hello.Epoch)
	if err != nil {
		return hs, internalError{err}
	}
	welcome := syncproto.Message{Type: syncproto.TypeWelcome, Terminal: hello.Terminal, Epoch: hello.Epoch, Seq: durable,
		HLC: ledger.NextHLC(0, s.now())}
	var macKey []byte
	if syncproto.Signed(hello.Version) {
		tillKey, err := ecdh.X25519().NewPublicKey(hello.DH)
		if err != nil {
			return hs, errors.New("a version 2 hello needs the terminal's X25519 key")
		}
		mine, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return hs, internalError{err}
		}
		shared, err := mine.ECDH(tillKey)
		if err != nil {
			return hs, errors.New("the terminal's X25519 key is not usable")
		}
		macKey = syncproto.SessionKey(shared, session)
		welcome.DH = mine.PublicKey().Bytes()
		welcome.DrawKey = s.hq.DrawKey(hello.Terminal)
		welcome.Sig = s.hq.SignSync(syncproto.HeadOfficeStatement(session, welcome))
	}
	if err := ws.WriteMessage(websocket.TextMessage, syncproto.Encode(welcome)); err != nil {
		return hs, err
	}
	return handshaken{terminal: hello.Terminal, store: store, epoch: hello.Epoch, session: session, version: hello.Version, macKey: macKey}, nil
}

// handshaken is who a handshake proved, and how the session speaks.
type handshaken struct {
	terminal, store, epoch, session string
	version                         int
	macKey                          []byte // version 2
}

// readPump is the connection's only reader. Upstream batches are decoded here
// and committed in order by the connection's ingester, so that the next batch
// is read and decoded while the previous one is written to disk.
func (c *conn) readPump(ctx context.Context) error {
	batches := make(chan received, mergeQueue)
	ingested := make(chan error, 1)
	stop := make(chan struct{}) // closed when the ingester refused or failed
	ictx, icancel := context.WithCancel(ctx)
	defer icancel()
	go func() { ingested <- c.ingester(ictx, batches, stop) }()
	err := c.read(ctx, batches, stop)
	close(batches)
	if err != nil {
		// The link is gone or refused: a batch still committing is kept,
		// its ack is not waited for (the terminal resends from its ack).
		icancel()
	}
	if ierr := <-ingested; err == nil {
		return ierr
	}
	return err
}

// received is a batch as read, and when.
type received struct {
	batch ledger.Batch
	at    time.Time
}

func (c *conn) read(ctx context.Context, batches chan<- received, stop <-chan struct{}) error {
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	// A read deadline is only ever moved on while the ingester has not
	// stopped the reader with one in the past (see ingester).
	extend := func() {
		_ = c.ws.SetReadDeadline(time.Now().Add(pongWait))
		if stopped() {
			_ = c.ws.SetReadDeadline(time.Now())
		}
	}
	extend()
	c.ws.SetPongHandler(func(string) error { extend(); return nil })
	for {
		m, err := syncproto.Read(c.ws)
		if stopped() {
			return nil // the ingester's error is the connection's
		}
		if err != nil {
			if errors.Is(err, syncproto.ErrMalformed) {
				c.refuse(ctx, syncproto.CodeProtocol, err)
			}
			return err
		}
		extend()
		switch m.Type {
		case syncproto.TypeEvents:
			c.s.metrics.batchEvents.Observe(float64(len(m.Events)))
			select {
			case batches <- received{ledger.DecodeBatch(rawEvents(m.Events)), time.Now()}:
			case <-stop:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		case syncproto.TypeCursors:
			select {
			case c.cursors <- m:
			default: // only the first counts
			}
		case syncproto.TypeLookup:
			if !c.queue(ctx, c.s.lookup(ctx, c.terminal, c.epoch, m)) {
				return ctx.Err()
			}
		case syncproto.TypeHistory:
			ans, err := c.s.history(ctx, c.terminal, c.epoch, m)
			if err != nil {
				c.refuse(ctx, syncproto.CodeInternal, err)
				return err
			}
			if !c.queue(ctx, ans) {
				return ctx.Err()
			}
		default:
			err := fmt.Errorf("unexpected %s message", m.Type)
			c.refuse(ctx, syncproto.CodeProtocol, err)
			return err
		}
	}
}

// ingester commits the connection's batches in the order they came and acks
// each. A refused batch or a failed commit ends the connection: it closes
// stop and puts the read deadline in the past, which ends the reader.
func (c *conn) ingester(ctx context.Context, batches <-chan received, stop chan<- struct{}) error {
	fail := func(err error) error {
		close(stop)
		_ = c.ws.SetReadDeadline(time.Now())
		return err
	}
	for first := range batches {
		// Batches already read and decoded while the last one committed go
		// into the same transaction: one fsync for several, and one ack.
		b := first.batch
	merge:
		for b.Len() < maxMerged {
			select {
			case next, ok := <-batches:
				if !ok {
					break merge
				}
				b = b.Merge(next.batch)
			default:
				break merge
			}
		}
		// The commit is not tied to the connection: a batch that reached
		// the store is finished even if the link drops meanwhile.
		ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWait)
		ack, err := c.s.hq.Ingest(ictx, c.terminal, c.store, c.epoch, b)
		cancel()
		code := codeOf(err)
		if err != nil && !refusal[code] {
			c.s.metrics.refused.WithLabelValues(syncproto.CodeInternal).Inc()
			c.refuse(ctx, syncproto.CodeInternal, err)
			return fail(err)
		}
		if !c.queue(ctx, syncproto.Message{Type: syncproto.TypeAck, Seq: ack, HLC: ledger.NextHLC(0, c.s.now())}) {
			return fail(ctx.Err())
		}
		c.s.metrics.ack.Observe(time.Since(first.at).Seconds())
		if err != nil {
			c.s.metrics.refused.WithLabelValues(code).Inc()
			c.refuse(ctx, code, err)
			return fail(err)
		}
		c.s.metrics.events.Add(float64(b.Len()))
	}
	return nil
}

// refuse sends an error to the terminal; the caller closes the connection.
func (c *conn) refuse(ctx context.Context, code string, err error) {
	c.log.Warn("refusing terminal", "code", code, "err", err)
	c.queue(ctx, syncproto.Message{Type: syncproto.TypeError, Code: code, Error: err.Error()})
}

// queue hands a message to the write pump.
func (c *conn) queue(ctx context.Context, m syncproto.Message) bool {
	if c.macKey != nil {
		m.Sig = syncproto.MAC(c.macKey, m)
	}
	select {
	case c.send <- syncproto.Encode(m):
		return true
	case <-ctx.Done():
		return false
	}
}

// writePump is the connection's only writer; it also pings.
func (c *conn) writePump(ctx context.Context) {
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	for {
		select {
		case b := <-c.send:
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
				c.ws.Close()
				return
			}
		case <-ping.C:
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				c.ws.Close()
				return
			}
		case <-ctx.Done():
			// Flush what was queued (an ack, a refusal) before closing.
			for {
				select {
				case b := <-c.send:
					_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
					if c.ws.WriteMessage(websocket.TextMessage, b) != nil {
						return
					}
					continue
				default:
				}
				break
			}
			_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			return
		}
	}
}

// downstream sends the rules, member snapshots and blocklist changes the
// terminal has not seen, from the positions it reported, and then whatever
// changes, until the connection ends.
func (c *conn) downstream(ctx context.Context) {
	var cur syncproto.Cursors
	select {
	case m := <-c.cursors:
		cur = syncproto.Cursors{Rules: m.RulesVersion, Members: m.Cursor, Blocked: m.BlockCursor}
	case <-ctx.Done():
		return
	}
	// The change signals are taken before each read and again as soon as
	// one fires, before the wait that gathers wake-ups: whatever changes
	// after they are taken wakes the loop again.
	wakeAll, wakeMine, since := c.s.hq.Changes(c.store)
	current := false // told the terminal its feeds are caught up
	for {
		pctx, cancel := context.WithTimeout(ctx, storeWait)
		msgs, err := c.s.hq.Pending(pctx, c.terminal, c.store, c.epoch, &cur, since)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				c.log.Error("downstream", "err", err)
				// The terminal reconnects and reports its cursors again.
				c.refuse(ctx, syncproto.CodeInternal, err)
				_ = c.ws.SetReadDeadline(time.Now())
			}
			return
		}
		for _, m := range msgs {
			if !c.queue(ctx, m) {
				return
			}
		}
		if len(msgs) > 0 {
			// More may be past the page just sent; and asking at once
			// keeps the terminals of a store at the same positions, where
			// they share the pages read.
			continue
		}
		if !current && c.macKey != nil {
			// Nothing more to send: from now on, while this connection
			// lasts, every change reaches the terminal within seconds.
			if !c.queue(ctx, syncproto.Message{Type: syncproto.TypeCurrent}) {
				return
			}
			current = true
		}
		select {
		case <-wakeAll:
		case <-wakeMine:
		case <-time.After(feedPoll):
		case <-ctx.Done():
			return
		}
		wakeAll, wakeMine, since = c.s.hq.Changes(c.store)
		select {
		case <-time.After(feedCoalesce/2 + mrand.N(feedCoalesce)):
		case <-ctx.Done():
			return
		}
	}
}

// lookup answers a terminal's question about a card it does not know.
func (s *Server) lookup(ctx context.Context, terminal, epoch string, q syncproto.Message) syncproto.Message {
	ans := syncproto.Message{Type: syncproto.TypeFound, ID: q.ID}
	ctx, cancel := context.WithTimeout(ctx, storeWait)
	defer cancel()
	m, err := s.hq.Lookup(ctx, terminal, epoch, q.Card)
	switch {
	case codeOf(err) == "not_found":
		ans.Code, ans.Error = "unknown_card", "head office does not know this card"
	case err != nil:
		ans.Error = err.Error()
	default:
		ans.Member = &m
	}
	return ans
}

// history answers a terminal's request for its events of an earlier epoch
// (its own only: the session's terminal), or, asked with no epoch, for the
// list of its epochs other than the session's.
func (s *Server) history(ctx context.Context, terminal, current string, q syncproto.Message) (syncproto.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, storeWait)
	defer cancel()
	if q.Epoch == "" {
		all, err := s.hq.Epochs(ctx, terminal)
		if err != nil {
			return syncproto.Message{}, err
		}
		ans := syncproto.Message{Type: syncproto.TypeHistory}
		for _, ep := range all {
			if ep != current {
				ans.Epochs = append(ans.Epochs, ep)
			}
		}
		return ans, nil
	}
	raws, covered, err := s.hq.History(ctx, terminal, current, q.Epoch, q.Seq, q.Until, syncproto.MaxBatch, historyBudget)
	if err != nil {
		return syncproto.Message{}, err
	}
	ans := syncproto.Message{Type: syncproto.TypeHistory, Epoch: q.Epoch, Seq: covered, Until: q.Until}
	for _, r := range raws {
		ans.Events = append(ans.Events, r)
	}
	return ans, nil
}

// rawEvents is the events of a message as the ledger decodes them.
func rawEvents(events []json.RawMessage) [][]byte {
	raws := make([][]byte, len(events))
	for i, e := range events {
		raws[i] = e
	}
	return raws
}
