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
	wg   stdsync.WaitGroup // work in flight
	post func(func())
}

// run calls work off the UI goroutine and then done with its result on the
// UI goroutine.
func run[T any](b *bridge, work func(ctx context.Context) (T, error), done func(T, error)) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
		v, err := work(ctx)
		cancel()
		b.post(func() { done(v, err) })
	}()
}
