// Package netlimit bounds what one address can hold of a listener before it
// has proved who it is: a Listener counts the open connections of each
// remote address that are not yet authenticated and closes, at accept, one
// past the limit. The server marks a connection authenticated (a terminal
// that proved its key) when it knows; from then it no longer counts against
// its address, so the tills of a store behind one address are not limited.
//
// It counts and refuses; it knows nothing of what is served.
package netlimit

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
)

// Listener is a net.Listener with a limit per remote address on connections
// not yet authenticated.
type Listener struct {
	net.Listener
	perAddress, total int

	mu      sync.Mutex
	pending map[string]int // unauthenticated open connections by address
	all     int            // and of all addresses

	open    atomic.Int64
	refused atomic.Int64
}

// Listen wraps ln with a limit of perAddress unauthenticated connections per
// remote address, and of total from all addresses together (many addresses
// of one attacker).
func Listen(ln net.Listener, perAddress, total int) *Listener {
	return &Listener{Listener: ln, perAddress: perAddress, total: total, pending: map[string]int{}}
}

// Accept returns the next connection within the limits; those past it are
// closed at once and counted.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := host(c.RemoteAddr())
		l.mu.Lock()
		over := l.pending[addr] >= l.perAddress || l.all >= l.total
		if !over {
			l.pending[addr]++
			l.all++
		}
		l.mu.Unlock()
		if over {
			l.refused.Add(1)
			_ = c.Close()
			continue
		}
		l.open.Add(1)
		return &conn{Conn: c, l: l, addr: addr}, nil
	}
}

// Open is how many accepted connections are open.
func (l *Listener) Open() int64 { return l.open.Load() }

// Refused is how many connections were closed at accept for their
// address's limit or the total.
func (l *Listener) Refused() int64 { return l.refused.Load() }

func (l *Listener) release(addr string) {
	l.mu.Lock()
	if l.pending[addr]--; l.pending[addr] <= 0 {
		delete(l.pending, addr)
	}
	l.all--
	l.mu.Unlock()
}

func host(a net.Addr) string {
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

type conn struct {
	net.Conn
	l      *Listener
	addr   string
	once   sync.Once // leaves the address's count once
	closed atomic.Bool
}

func (c *conn) leave() { c.once.Do(func() { c.l.release(c.addr) }) }

func (c *conn) Close() error {
	c.leave()
	if c.closed.CompareAndSwap(false, true) {
		c.l.open.Add(-1)
	}
	return c.Conn.Close()
}

type ctxKey struct{}

// ConnContext is http.Server's ConnContext: it keeps the connection in the
// requests' context for Authenticated.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// Authenticated takes the connection of a request (served with ConnContext)
// out of its address's count: its peer has proved who it is.
func Authenticated(ctx context.Context) {
	c, _ := ctx.Value(ctxKey{}).(net.Conn)
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if lc, ok := c.(*conn); ok {
		lc.leave()
	}
}
