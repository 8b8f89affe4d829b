// Package headoffice is head office's domain: it ingests and applies every
// terminal's events to the authoritative members, keeps the registry of
// terminals and their join codes, publishes the rules, imports members,
// reports across stores and raises flags. It declares the Store it needs;
// hqbolt and hqpg implement it.
//
// It never touches a connection: the sync endpoint (sync/syncserver), the
// admin API and the command line call it. It never imports the terminal's
// agent; what both sides share (events, rules, money) lives in ledger,
// rules and money.
package headoffice

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Error is one of head office's refusals. Its message is what the operator or
// the terminal reads; its code is stable, for the programs that branch on it
// (the admin API's answers, the sync protocol's error codes).
type Error struct{ code, msg string }

func (e *Error) Error() string { return e.msg }

// Code is the refusal's stable code.
func (e *Error) Code() string { return e.code }

// Head office's refusals.
var (
	ErrInvalid  = &Error{"invalid", "invalid request"}
	ErrJoinCode = &Error{"join_code", "join code refused"}
	ErrNotFound = &Error{"not_found", "not found"}
	// ErrChain is a batch refused because an event does not follow the
	// stored head of its terminal's chain (altered, deleted or reordered
	// history).
	ErrChain = &Error{"chain", "hash chain broken"}
	// ErrMalformedEvent is a batch refused because an event does not decode.
	ErrMalformedEvent = &Error{"protocol", "malformed event"}
	// ErrRange is a batch refused because an event's amount or points, or
	// the balance it would make, are out of range.
	ErrRange = &Error{"range", "out of range"}
	// ErrSkew is a batch refused because an event's time is outside the
	// window around head office's clock (SkewAhead, SkewBehind).
	ErrSkew = &Error{"skew", "clock skew"}
)

// MetaQRKey holds the seed of head office's key for member QR tokens.
const MetaQRKey = "qr_key"

// Office is head office over one Store. Several Offices, in several
// processes, may share one store that allows it (PostgreSQL).
type Office struct {
	store Store
	log   *slog.Logger
	now   func() time.Time
	qrKey ed25519.PrivateKey
	// drawMaster derives every terminal's surprise-draw key (DrawKey).
	drawMaster []byte

	rulesVersion atomic.Int64 // the newest published version this process knows
	rulesAhead   sync.Map     // aheadKey: rules_ahead checked

	mu     sync.Mutex
	change chan struct{} // closed and replaced on every change for all stores
	// storeChange holds, per store with waiters, a channel closed and
	// replaced when that store's feeds move, so that an event wakes the
	// terminals of the stores it concerns and not all of them.
	storeChange map[string]chan struct{}
	feeds       feedCache // under mu

	ingestQ chan *ingestCall
	workers sync.WaitGroup
	metrics *metrics

	signInDelay  time.Duration
	presence     *presences
	liability    liabilityCache
	background   sync.WaitGroup // work started by a request that outlives it
	presenceDone chan struct{}
	audits       atomic.Uint64 // audit entries written by this process

	stop    chan struct{}
	stopped chan struct{}
}

// Options configure an Office.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Metrics, when set, is where the Office registers its figures
	// (headoffice_store_*, headoffice_flags_raised_total).
	Metrics prometheus.Registerer
	// SignInDelay is how much longer each wrong console password past the
	// second waits for its answer (one second when zero).
	SignInDelay time.Duration
}

// New returns head office over store. It creates head office's QR signing
// key on first use. Close stops it; the store stays open.
func New(ctx context.Context, store Store, opts Options) (*Office, error) {
	o := &Office{store: store, log: opts.Logger, now: opts.Now, change: make(chan struct{}),
		storeChange: map[string]chan struct{}{}, stop: make(chan struct{}), stopped: make(chan struct{}),
		feeds: feedCache{active: map[string]map[ChainKey]time.Time{}, pages: map[pageKey]*pageEntry{}}, metrics: newMetrics(opts.Metrics)}
	if o.log == nil {
		o.log = slog.Default()
	}
	if o.now == nil {
		o.now = time.Now
	}
	o.signInDelay = opts.SignInDelay
	if o.signInDelay <= 0 {
		o.signInDelay = time.Second
	}
	key, err := o.loadQRKey(ctx)
	if err != nil {
		return nil, err
	}
	o.qrKey = key
	if o.drawMaster, err = o.loadSecret(ctx, metaDrawMaster); err != nil {
		return nil, err
	}
	if err := o.refreshRules(ctx); err != nil {
		return nil, err
	}
	o.ingestQ = make(chan *ingestCall)
	o.workers.Add(ingestWorkers)
	for range ingestWorkers {
		go o.ingestWorker()
	}
	go o.forward()
	o.presence, o.presenceDone = newPresences(), make(chan struct{})
	go o.maintain()
	return o, nil
}

// Close stops the Office's ingest workers and change forwarding once the
// transactions under way are done.
func (o *Office) Close() {
	select {
	case <-o.stop:
	default:
		close(o.stop)
	}
	o.workers.Wait()
	<-o.stopped
	<-o.presenceDone
	o.background.Wait()
}

// Store is the store the Office runs on.
func (o *Office) Store() Store { return o.store }

// SignSync signs a statement of the sync protocol with head office's key
// (the one member QR tokens are signed with, under another context; its
// public half reaches a terminal at join).
func (o *Office) SignSync(statement []byte) []byte { return ed25519.Sign(o.qrKey, statement) }

// QRKey is head office's public key for member QR tokens.
func (o *Office) QRKey() ed25519.PublicKey { return o.qrKey.Public().(ed25519.PublicKey) }

// metaDrawMaster holds the secret every terminal's draw key derives from.
const metaDrawMaster = "draw_master"

// loadSecret returns the 32-byte secret kept under key, creating it on first
// use (once, whichever process is first).
func (o *Office) loadSecret(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	err := o.store.Update(ctx, func(tx Tx) error {
		v, err := tx.Meta(key)
		if err != nil {
			return err
		}
		if len(v) == 32 {
			out = v
			return nil
		}
		if v != nil {
			return fmt.Errorf("%w: %s of %d bytes", ErrCorrupt, key, len(v))
		}
		out = make([]byte, 32)
		_, _ = rand.Read(out)
		return tx.SetMeta(key, out)
	})
	return out, err
}

// DrawKey is the key of a terminal's surprise draws (rules.Draw): derived
// from head office's draw secret, so head office can recompute every draw
// (AuditSurprise) and a terminal's key tells nothing of another's. It goes
// to the terminal with every welcome of a signed session.
func (o *Office) DrawKey(terminal string) []byte {
	m := hmac.New(sha256.New, o.drawMaster)
	m.Write([]byte("surprise-draw\x00" + terminal))
	return m.Sum(nil)
}

// loadQRKey returns head office's key for signing member QR tokens, creating
// it on first use (once, whichever process is first).
func (o *Office) loadQRKey(ctx context.Context) (ed25519.PrivateKey, error) {
	var key ed25519.PrivateKey
	err := o.store.Update(ctx, func(tx Tx) error {
		seed, err := tx.Meta(MetaQRKey)
		if err != nil {
			return err
		}
		if len(seed) == ed25519.SeedSize {
			key = ed25519.NewKeyFromSeed(seed)
			return nil
		}
		if seed != nil {
			return fmt.Errorf("%w: QR key of %d bytes", ErrCorrupt, len(seed))
		}
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		key = k
		return tx.SetMeta(MetaQRKey, k.Seed())
	})
	return key, err
}

func (o *Office) refreshRules(ctx context.Context) error {
	return o.store.View(ctx, func(tx ReadTx) error {
		_, v, err := tx.Rules()
		if err == nil {
			o.rulesVersion.Store(int64(v))
		}
		return err
	})
}

// forward turns the store's change signals into wake-ups of the waiting
// terminals' connections.
func (o *Office) forward() {
	defer close(o.stopped)
	for {
		select {
		case stores := <-o.store.Changes():
			if slices.Contains(stores, AllStores) {
				// Rules are published to all stores; read the version
				// again before waking anyone, so that no terminal is told
				// of a change it cannot see yet.
				ctx, cancel := context.WithTimeout(context.Background(), readWait)
				if err := o.refreshRules(ctx); err != nil {
					o.log.Warn("rules version", "err", err)
				}
				cancel()
				o.changedAll()
				continue
			}
			o.changedStores(stores)
		case <-o.stop:
			return
		}
	}
}

// readWait bounds a read made outside any caller's request.
const readWait = 10 * time.Second

func (o *Office) changedAll() {
	o.mu.Lock()
	close(o.change)
	o.change = make(chan struct{})
	o.mu.Unlock()
}

func (o *Office) changedStores(stores []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, store := range stores {
		if ch, ok := o.storeChange[store]; ok {
			close(ch)
			delete(o.storeChange, store)
		}
	}
}

// Changes returns the channels closed on the next change for all stores and
// on the next change for this store, and the time they were taken, for
// Pending.
func (o *Office) Changes(store string) (all, mine <-chan struct{}, since time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ch, ok := o.storeChange[store]
	if !ok {
		ch = make(chan struct{})
		o.storeChange[store] = ch
	}
	return o.change, ch, time.Now()
}
