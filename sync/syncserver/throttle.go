package syncserver

import (
	"net"
	"net/http"
	"strconv"
	stdsync "sync"
	"time"

	"golang.org/x/time/rate"
)

// Join attempts are limited per address: a code is 60 bits, but every
// attempt is a write transaction and a log line, and one client tried
// thousands a second.
const (
	// DefaultJoinsPerMinute and joinBurst: a store installing a row of
	// tills joins them in a burst; a guesser gets one try every few seconds.
	DefaultJoinsPerMinute = 12
	joinBurst             = 20
	// throttleIdle is when an address's limiter is forgotten.
	throttleIdle = 10 * time.Minute
)

// throttle holds a token bucket per address.
type throttle struct {
	rate  rate.Limit // 0: no limit
	mu    stdsync.Mutex
	addrs map[string]*bucket
	swept time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// allow reports whether an attempt from addr may go ahead now, and if not,
// how long until one may.
func (t *throttle) allow(addr string, now time.Time) (bool, time.Duration) {
	if t.rate == 0 {
		return true, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.addrs == nil {
		t.addrs = map[string]*bucket{}
	}
	if now.Sub(t.swept) > throttleIdle {
		for a, b := range t.addrs {
			if now.Sub(b.seen) > throttleIdle {
				delete(t.addrs, a)
			}
		}
		t.swept = now
	}
	b := t.addrs[addr]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(t.rate, joinBurst)}
		t.addrs[addr] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// throttled answers 429 with Retry-After (whole seconds, rounded up).
func throttled(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	writeError(w, http.StatusTooManyRequests, "throttled", errTooMany)
}

func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}
