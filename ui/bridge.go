package ui

import (
	"context"
	stdsync "sync"
	"time"
)

// callTimeout bounds one agent call made for the screen: the agent answers
// checkouts from local disk, so anything slower than this is a fault the
// cashier should see rather than a frozen button.
const callTimeout = 10 * time.Second

// bridge is the one place where work leaves the UI goroutine and results come
// back to it. Handlers call run; the work runs on its own goroutine and its
// done function is posted back to the UI goroutine. In the app post is
// fyne.Do; headless tests post to a queue they drain on the test goroutine,
// so that every widget change happens on one goroutine there too.
type bridge struct {
	ctx  context.Context
	post func(func())

	mu       stdsync.Mutex
	settled  *stdsync.Cond // signalled when inFlight drops to zero
	inFlight int
}

func newBridge(post func(func())) *bridge {
	b := &bridge{ctx: context.Background(), post: post}
	b.settled = stdsync.NewCond(&b.mu)
	return b
}

// run calls work off the UI goroutine and then done with its result on the
// UI goroutine.
func run[T any](b *bridge, work func(ctx context.Context) (T, error), done func(T, error)) {
	b.mu.Lock()
	b.inFlight++
	b.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
		v, err := work(ctx)
		cancel()
		b.post(func() { done(v, err) })
		b.mu.Lock()
		b.inFlight--
		if b.inFlight == 0 {
			b.settled.Broadcast()
		}
		b.mu.Unlock()
	}()
}

// wait returns once no work is in flight; results may still be waiting to
// be posted. The screenshot driver and the headless tests use it to let the
// screen settle without sleeping.
func (b *bridge) wait() {
	b.mu.Lock()
	for b.inFlight > 0 {
		b.settled.Wait()
	}
	b.mu.Unlock()
}
