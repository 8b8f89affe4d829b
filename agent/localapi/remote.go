package localapi

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/rules"
)

// Remote is an agent another process serves on this till, seen through its
// local API with the methods the till app calls (package ui's Agent), so
// that pos-agent run --attach shows the app over a running pos-agent serve.
// It follows the agent's notices (GET /v1/watch) and keeps its rules; a
// stream that breaks is opened again, and watchers are then told to
// refresh everything.
type Remote struct {
	c     *Client
	ctx   context.Context
	rules atomic.Pointer[rules.Document]

	mu       sync.Mutex
	watchers map[int]chan agent.Notice
	next     int
	down     error // why the agent does not answer, while it does not
}

// callTimeout bounds a call the app makes without a context of its own.
const callTimeout = 5 * time.Second

// Attach connects to the agent serving the unix socket at socketPath and
// follows it until ctx ends.
func Attach(ctx context.Context, socketPath string) (*Remote, error) {
	r := &Remote{c: Dial(socketPath), ctx: ctx, watchers: map[int]chan agent.Notice{}}
	if err := r.loadRules(); err != nil {
		return nil, fmt.Errorf("no agent answers on %s (start pos-agent serve): %w", socketPath, err)
	}
	opened := make(chan error, 1)
	go r.follow(opened)
	if err := <-opened; err != nil {
		return nil, fmt.Errorf("no agent answers on %s (start pos-agent serve): %w", socketPath, err)
	}
	return r, nil
}

func (r *Remote) loadRules() error {
	ctx, cancel := context.WithTimeout(r.ctx, callTimeout)
	defer cancel()
	doc := new(rules.Document)
	if err := r.c.call(ctx, http.MethodGet, "/v1/rules", nil, doc); err != nil {
		return err
	}
	r.rules.Store(doc)
	return nil
}

// follow reads the agent's notices until ctx ends, opening the stream again
// (with backoff) when it breaks; the first opening's outcome goes to opened.
func (r *Remote) follow(opened chan<- error) {
	bo := backoff.NewExponentialBackOff()
	bo.MaxInterval = 5 * time.Second
	bo.MaxElapsedTime = 0
	first := true
	for {
		err := r.c.watch(r.ctx, func() {
			bo.Reset()
			r.setDown(nil)
			if first {
				first = false
				opened <- nil
				return
			}
			// What changed while the stream was down is not known: every
			// watcher refreshes what it shows.
			_ = r.loadRules()
			for _, k := range []agent.NoticeKind{agent.NoticeStatus, agent.NoticeBasket, agent.NoticeEvent} {
				r.fanout(agent.Notice{Kind: k})
			}
		}, r.fanout)
		if first {
			opened <- err
			return
		}
		if r.ctx.Err() != nil {
			return
		}
		r.setDown(err)
		r.fanout(agent.Notice{Kind: agent.NoticeStatus})
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(bo.NextBackOff()):
		}
	}
}

func (r *Remote) setDown(err error) {
	r.mu.Lock()
	r.down = err
	r.mu.Unlock()
}

func (r *Remote) fanout(n agent.Notice) {
	if n.Kind == agent.NoticeStatus {
		_ = r.loadRules() // rules in force are part of the status
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ch := range r.watchers {
		select {
		case ch <- n:
		default:
		}
	}
}

// Watch returns the agent's notices as agent.Agent.Watch does.
func (r *Remote) Watch() (<-chan agent.Notice, func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.next
	r.next++
	ch := make(chan agent.Notice, 32)
	r.watchers[id] = ch
	return ch, func() {
		r.mu.Lock()
		delete(r.watchers, id)
		r.mu.Unlock()
	}
}

// Rules returns the rules in force at the agent, as last fetched.
func (r *Remote) Rules() *rules.Document { return r.rules.Load() }

// Status returns the agent's status; while the agent does not answer, a
// status that says so.
func (r *Remote) Status() agent.Status {
	ctx, cancel := context.WithTimeout(r.ctx, callTimeout)
	defer cancel()
	s, err := r.c.Status(ctx)
	if err == nil {
		r.mu.Lock()
		err = r.down
		r.mu.Unlock()
	}
	if err != nil {
		return agent.Status{Scanner: "unknown", LinkError: err.Error(),
			Problems: []string{"the agent serving this till does not answer: " + err.Error()}}
	}
	return s
}

// Stats returns the figures of a day.
func (r *Remote) Stats(day string) (agent.Stats, error) {
	ctx, cancel := context.WithTimeout(r.ctx, callTimeout)
	defer cancel()
	return r.c.Stats(ctx, day)
}

// Basket returns the current basket; none while the agent does not answer.
func (r *Remote) Basket() agent.Basket {
	ctx, cancel := context.WithTimeout(r.ctx, callTimeout)
	defer cancel()
	var b agent.Basket
	_ = r.c.call(ctx, http.MethodGet, "/v1/basket", nil, &b)
	return b
}

// HasManagerPIN reports whether a manager PIN is set; while the agent does
// not answer it says yes, so that the app asks for the PIN (and the check
// then fails saying why) rather than saying none is set.
func (r *Remote) HasManagerPIN() bool {
	ctx, cancel := context.WithTimeout(r.ctx, callTimeout)
	defer cancel()
	var st PINState
	if err := r.c.call(ctx, http.MethodGet, pinPath, nil, &st); err != nil {
		return true
	}
	return st.Set
}

// CheckManagerPIN checks a manager PIN; the agent counts wrong ones.
func (r *Remote) CheckManagerPIN(pin string) error {
	ctx, cancel := context.WithTimeout(r.ctx, callTimeout)
	defer cancel()
	var out struct{}
	return r.c.call(ctx, http.MethodPost, pinCheckPath, PINRequest{PIN: pin}, &out)
}

// Earn records a sale.
func (r *Remote) Earn(ctx context.Context, req agent.EarnRequest) (agent.EarnResult, error) {
	return r.c.Earn(ctx, req)
}

// Redeem burns points for a reward or as a discount.
func (r *Remote) Redeem(ctx context.Context, req agent.RedeemRequest) (agent.Result, error) {
	return r.c.Redeem(ctx, req)
}

// Donate gives points to a charity partner.
func (r *Remote) Donate(ctx context.Context, req agent.DonateRequest) (agent.Result, error) {
	return r.c.Donate(ctx, req)
}

// Void cancels a checkout.
func (r *Remote) Void(ctx context.Context, req agent.VoidRequest) (agent.Result, error) {
	return r.c.Void(ctx, req)
}

// Refund returns part or all of a sale.
func (r *Remote) Refund(ctx context.Context, req agent.RefundRequest) (agent.Result, error) {
	return r.c.Refund(ctx, req)
}

// Enroll makes a new member.
func (r *Remote) Enroll(ctx context.Context, req agent.EnrollRequest) (agent.Result, error) {
	return r.c.Enroll(ctx, req)
}

// Member returns the member a card belongs to.
func (r *Remote) Member(ctx context.Context, card string) (agent.MemberView, error) {
	return r.c.Member(ctx, card)
}

// Checkout returns a checkout as the agent recorded it.
func (r *Remote) Checkout(ctx context.Context, ref string) (agent.CheckoutView, error) {
	return r.c.Checkout(ctx, ref)
}
