package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/offline-loyalty/terminal/agent/store"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/money"
	"github.com/offline-loyalty/terminal/rules"
)

// lookupBudget is how long a checkout may wait for head office to resolve a
// card this terminal has never seen; past it the cashier gets an answer
// without head office.
const lookupBudget = 300 * time.Millisecond

// watchBuffer is how many notices a slow watcher may fall behind before
// notices to it are dropped; notices are hints to refresh, not data.
const watchBuffer = 32

// Options configure an Agent. The zero value is usable.
type Options struct {
	Logger   *slog.Logger
	Now      func() time.Time // the wall clock; tests and the demo pass their own
	Location *time.Location   // the store's time zone for days and hours; default time.Local
}

// Agent owns one data directory: its ledger, its rules and its state.
type Agent struct {
	dir   string
	st    *store.Store
	log   *slog.Logger
	now   func() time.Time
	loc   *time.Location
	rules atomic.Pointer[rules.Document]

	outbox chan struct{}

	// applyMu serialises snapshot applications, whose included sums are
	// computed before their write transaction.
	applyMu stdsync.Mutex

	mu       stdsync.Mutex
	link     LinkState
	scanner  string
	lookup   func(context.Context, string) (*MemberSnapshot, error)
	watchers map[int]chan Notice
	nextW    int
	basket   Basket

	metrics *metrics
}

// Files of the data directory.
const (
	// LedgerFile is the ledger.
	LedgerFile = store.FileName
	// KeyFile and LinkFile are the terminal's identity, written when it
	// joins head office (the sync client keeps them): a directory that has
	// them is a joined terminal's, whose ledger is never started anew
	// unasked.
	KeyFile  = "terminal.key"
	LinkFile = "link.json"
)

// Compact rewrites the ledger file of a stopped agent in dir without its free
// pages and returns the file's size before and after.
func Compact(dir string) (before, after int64, err error) { return store.Compact(dir) }

// Open opens the agent on dir, creating the ledger on first use. A second
// agent on the same directory fails fast with ErrLocked; a corrupt ledger is
// ErrCorrupt.
func Open(ctx context.Context, dir string, opts Options) (*Agent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a := &Agent{
		dir:      dir,
		log:      opts.Logger,
		now:      opts.Now,
		loc:      opts.Location,
		outbox:   make(chan struct{}, 1),
		scanner:  "none",
		watchers: make(map[int]chan Notice),
	}
	a.metrics = newMetrics(a)
	if a.log == nil {
		a.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.loc == nil {
		a.loc = time.Local
	}
	if err := CheckLedgerPresent(dir); err != nil {
		return nil, err
	}
	st, err := store.Open(dir, a.committed)
	if err != nil {
		return nil, err
	}
	if err := verifyChain(st); err != nil {
		st.Close()
		return nil, err
	}
	a.st = st
	doc := rules.Default()
	if err := st.View(func(tx *store.Tx) error {
		if raw := tx.Meta("rules"); raw != "" {
			d, err := rules.Parse([]byte(raw))
			if err != nil {
				return fmt.Errorf("%w: stored rules: %v", store.ErrCorrupt, err)
			}
			doc = d
		}
		return nil
	}); err != nil {
		st.Close()
		return nil, err
	}
	if _, err := money.Exponent(doc.Currency); err != nil {
		st.Close()
		return nil, fmt.Errorf("rules currency: %w", err)
	}
	if err := ensureDrawKey(st); err != nil {
		st.Close()
		return nil, err
	}
	a.rules.Store(doc)
	return a, nil
}

// The surprise draw's key (rules.Draw): head office's for the terminal once
// it has connected (SetDrawKey), until then one of the ledger's own, made
// at its first open, so that a till that never joined draws too (without
// head office's audit).
const (
	metaDrawKey  = "draw_key"
	metaDrawFrom = "draw_key_from" // "hq" or "local"
)

func ensureDrawKey(st *store.Store) error {
	var have bool
	_ = st.View(func(tx *store.Tx) error { have = tx.Meta(metaDrawKey) != ""; return nil })
	if have {
		return nil
	}
	key := make([]byte, rules.DrawKeySize)
	_, _ = rand.Read(key)
	return st.Write(context.Background(), func(tx *store.Tx) error {
		if tx.Meta(metaDrawKey) != "" {
			return nil
		}
		if err := tx.SetMeta(metaDrawKey, hex.EncodeToString(key)); err != nil {
			return err
		}
		return tx.SetMeta(metaDrawFrom, "local")
	})
}

// SetDrawKey keeps head office's draw key for this terminal (it comes with
// every welcome; written only when it changes).
func (a *Agent) SetDrawKey(key []byte) error {
	if len(key) != rules.DrawKeySize {
		return fmt.Errorf("%w: a draw key of %d bytes", ErrInvalid, len(key))
	}
	h := hex.EncodeToString(key)
	var same bool
	_ = a.st.View(func(tx *store.Tx) error {
		same = tx.Meta(metaDrawKey) == h && tx.Meta(metaDrawFrom) == "hq"
		return nil
	})
	if same {
		return nil
	}
	return a.st.Write(context.Background(), func(tx *store.Tx) error {
		if err := tx.SetMeta(metaDrawKey, h); err != nil {
			return err
		}
		return tx.SetMeta(metaDrawFrom, "hq")
	})
}

// draw is the surprise draw of the checkout whose earn event is the next in
// the ledger.
func draw(tx *store.Tx) (int64, error) {
	key, err := hex.DecodeString(tx.Meta(metaDrawKey))
	if err != nil || len(key) != rules.DrawKeySize {
		return 0, fmt.Errorf("%w: the surprise draw's key", store.ErrCorrupt)
	}
	last, _, _, err := chainHead(tx)
	if err != nil {
		return 0, err
	}
	return rules.Draw(key, tx.Meta("epoch"), last+1), nil
}

// CheckLedgerPresent refuses a data directory that holds a joined
// terminal's identity but no ledger: the ledger was lost (deleted, a failed
// restore), and a new one would start the terminal's history at sequence 1
// without a word.
func CheckLedgerPresent(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, LedgerFile)); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	for _, f := range []string{KeyFile, LinkFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("%w: %s is missing but %s holds a joined terminal's identity (%s): restore the ledger, or run pos-agent repair to start a new one that head office refills",
				ErrCorrupt, filepath.Join(dir, LedgerFile), dir, f)
		}
	}
	return nil
}

// verifyChain checks every event of the ledger: each decodes, its hash
// matches its content and it follows the one before. A ledger whose history
// does not verify is refused at open, before anything is written to it or
// sent from it.
func verifyChain(st *store.Store) error {
	const chunk = 4096 // events decoded together, on all cores
	return st.View(func(tx *store.Tx) error {
		var prevSeq uint64
		var prevHash string
		var bad error
		seqs := make([]uint64, 0, chunk)
		raws := make([][]byte, 0, chunk)
		check := func() {
			b := ledger.DecodeBatch(raws)
			for i, e := range b.Events {
				switch {
				case b.Errs[i] != nil:
					bad = fmt.Errorf("event %d: %v", seqs[i], b.Errs[i])
				case e.Seq != seqs[i]:
					bad = fmt.Errorf("event stored as %d says it is %d", seqs[i], e.Seq)
				default:
					bad = ledger.Follows(e, prevSeq, prevHash)
				}
				if bad != nil {
					return
				}
				prevSeq, prevHash = e.Seq, e.Hash
			}
			seqs, raws = seqs[:0], raws[:0]
		}
		tx.Events(0, func(seq uint64, b []byte) bool {
			seqs, raws = append(seqs, seq), append(raws, b)
			if len(raws) == chunk {
				check()
			}
			return bad == nil
		})
		if bad == nil {
			check()
		}
		if bad != nil {
			return fmt.Errorf("%w: %s: its history does not verify: %v (nothing was written to it; pos-agent repair rebuilds a ledger from the events that still verify)", ErrCorrupt, st.Path(), bad)
		}
		return nil
	})
}

// Close closes the ledger after committing writes already queued.
func (a *Agent) Close() error { return a.st.Close() }

// Dir is the agent's data directory.
func (a *Agent) Dir() string { return a.dir }

// SocketPath is where the local API listens for this data directory.
func SocketPath(dir string) string { return filepath.Join(dir, "agent.sock") }

// Rules returns the rules document in force.
func (a *Agent) Rules() *rules.Document { return a.rules.Load() }

// committed runs after every commit that wrote something.
func (a *Agent) committed() {
	select {
	case a.outbox <- struct{}{}:
	default:
	}
	a.notify(Notice{Kind: NoticeEvent})
}

// Watch returns a channel of notices and a function that stops them. The
// channel is never closed by the agent; a watcher that falls behind misses
// notices rather than slowing checkouts.
func (a *Agent) Watch() (<-chan Notice, func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := a.nextW
	a.nextW++
	ch := make(chan Notice, watchBuffer)
	a.watchers[id] = ch
	return ch, func() {
		a.mu.Lock()
		delete(a.watchers, id)
		a.mu.Unlock()
	}
}

func (a *Agent) notify(n Notice) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ch := range a.watchers {
		select {
		case ch <- n:
		default:
		}
	}
}

// SetScanner records the scanner's state for Status and the UI.
func (a *Agent) SetScanner(state string) {
	a.mu.Lock()
	a.scanner = state
	a.mu.Unlock()
	a.notify(Notice{Kind: NoticeStatus})
}

// SetLink records the link state reported by the sync client.
func (a *Agent) SetLink(s LinkState) {
	a.mu.Lock()
	up := s.Online && !a.link.Online
	a.link = s
	a.mu.Unlock()
	if up {
		a.metrics.connects.Inc()
	}
	a.notify(Notice{Kind: NoticeStatus})
}

// current reports whether the link is up with its feeds caught up.
func (a *Agent) current() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.link.Online && a.link.Current
}

// fresh reports whether the terminal's view of a member is head office's
// current one: a snapshot taken within the rules' stale_after, or any
// snapshot while the link is current.
func (a *Agent) fresh(m *memberRecord, now time.Time, staleAfter time.Duration) bool {
	if m.BaseAt.IsZero() {
		return false
	}
	return now.Sub(m.BaseAt) <= staleAfter || a.current()
}

// SetLookup installs the online lookup of cards unknown to this terminal.
func (a *Agent) SetLookup(fn func(ctx context.Context, card string) (*MemberSnapshot, error)) {
	a.mu.Lock()
	a.lookup = fn
	a.mu.Unlock()
}

// Identity returns the terminal, store and epoch of this ledger.
func (a *Agent) Identity() Identity {
	var id Identity
	_ = a.st.View(func(tx *store.Tx) error {
		id = Identity{Terminal: tx.Meta("terminal"), Store: tx.Meta("store"), Epoch: tx.Meta("epoch")}
		return nil
	})
	return id
}

// SetIdentity records the terminal id and store head office assigned at join.
// Events written from now on carry them; earlier events keep what they had.
func (a *Agent) SetIdentity(terminal, storeID string) error {
	if terminal == "" || len(terminal) > 64 || len(storeID) > 64 {
		return errors.New("terminal id must be 1 to 64 characters, store at most 64")
	}
	err := a.st.Write(context.Background(), func(tx *store.Tx) error {
		if err := tx.SetMeta("terminal", terminal); err != nil {
			return err
		}
		return tx.SetMeta("store", storeID)
	})
	a.notify(Notice{Kind: NoticeStatus})
	return err
}

// Status returns the terminal's health.
func (a *Agent) Status() Status {
	a.mu.Lock()
	link, scanner := a.link, a.scanner
	a.mu.Unlock()
	s := Status{Online: link.Online, Current: link.Online && link.Current, LinkError: link.Error, Scanner: scanner, RulesVersion: a.Rules().Version,
		Log: a.st.LogStatus()}
	if !link.LastSync.IsZero() {
		t := link.LastSync
		s.LastSync = &t
	}
	_ = a.st.View(func(tx *store.Tx) error {
		s.Terminal, s.Store, s.Epoch = tx.Meta("terminal"), tx.Meta("store"), tx.Meta("epoch")
		s.Seq, _ = tx.LastEvent()
		s.Acked = tx.MetaUint("acked")
		s.Queue = s.Seq - s.Acked
		if s.Queue > 0 {
			if e, err := ledger.Decode(tx.Event(s.Acked + 1)); err == nil {
				t := e.Time
				s.OldestUnsent = &t
			}
		}
		if s.LastSync == nil {
			if v := tx.Meta("last_sync"); v != "" {
				if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
					s.LastSync = &t
				}
			}
		}
		return nil
	})
	s.Problems = problems(s, a.now())
	return s
}

// Thresholds of Status's problems.
const (
	unsentTooLong = 15 * time.Minute // an event this old not at head office
	applyTooLong  = time.Minute      // a log record the ledger file has not applied
)

// problems are what is wrong with a terminal in status s at now, in words.
func problems(s Status, now time.Time) []string {
	p := []string{}
	ago := func(t time.Time) string { return now.Sub(t).Round(time.Second).String() + " ago" }
	switch {
	case s.Store == "":
		p = append(p, "not joined to head office: events stay on this till (pos-agent join --hq URL --code CODE)")
	case !s.Online:
		msg := "offline"
		if s.LastSync != nil {
			msg += ", last sync " + ago(*s.LastSync)
		} else {
			msg += ", never synced"
		}
		if s.LinkError != "" {
			msg += ": " + s.LinkError
		}
		p = append(p, msg)
	}
	if s.OldestUnsent != nil && now.Sub(*s.OldestUnsent) > unsentTooLong {
		p = append(p, fmt.Sprintf("%d events not at head office yet, the oldest from %s", s.Queue, ago(*s.OldestUnsent)))
	}
	if s.Scanner != "none" && s.Scanner != "connected" {
		p = append(p, "scanner "+s.Scanner+": check its cable and port (cards can be typed meanwhile)")
	}
	if s.Log.Failed != "" {
		p = append(p, "the ledger's log failed: "+s.Log.Failed)
	} else if lag := time.Duration(s.Log.LagMS) * time.Millisecond; lag > applyTooLong {
		p = append(p, fmt.Sprintf("the ledger file is %d records behind its log for %s", s.Log.Logged-min(s.Log.Applied, s.Log.Logged), lag.Round(time.Second)))
	}
	return p
}

// minorPerUnit is 10^exponent of the rules' currency.
func (a *Agent) minorPerUnit() int64 {
	exp, _ := money.Exponent(a.Rules().Currency)
	p := int64(1)
	for range exp {
		p *= 10
	}
	return p
}
