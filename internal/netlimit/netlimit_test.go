package netlimit

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

func dialFrom(t *testing.T, local, to string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: time.Second}
	c, err := d.Dial("tcp", to)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// closedSoon reports whether the server closed c.
func closedSoon(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errorAs(err, &ne) && ne.Timeout())
}

func errorAs(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	if ok {
		*ne = e
	}
	return ok
}

// listen returns a Listener on a free port that accepts into a channel
// until the test ends.
func listen(t *testing.T, perAddress, total int) (*Listener, chan net.Conn) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(inner, perAddress, total)
	t.Cleanup(func() { l.Close() })
	accepted := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return l, accepted
}

// TestLimitPerAddress: past its limit an address's connections are closed
// at accept, others' are not; an authenticated connection, or a closed
// one, frees its place.
func TestLimitPerAddress(t *testing.T) {
	l, accepted := listen(t, 3, 100)
	addr := l.Addr().String()
	var mine []net.Conn // the server's ends of 127.0.0.2's connections
	for range 3 {
		dialFrom(t, "127.0.0.2", addr)
		mine = append(mine, <-accepted)
	}
	over := dialFrom(t, "127.0.0.2", addr)
	if !closedSoon(over) {
		t.Fatal("a fourth connection from one address was kept")
	}
	other := dialFrom(t, "127.0.0.1", addr)
	<-accepted
	if closedSoon(other) {
		t.Fatal("another address was refused")
	}
	if l.Refused() != 1 || l.Open() != 4 {
		t.Fatalf("refused %d, open %d; want 1 and 4", l.Refused(), l.Open())
	}
	// An authenticated connection leaves its address's count, and so does
	// a closed one: two more fit, the one after them does not.
	Authenticated(ConnContext(context.Background(), mine[0]))
	mine[1].Close()
	for range 2 {
		dialFrom(t, "127.0.0.2", addr)
		select {
		case <-accepted:
		case <-time.After(2 * time.Second):
			t.Fatal("a freed place was not taken")
		}
	}
	if !closedSoon(dialFrom(t, "127.0.0.2", addr)) {
		t.Fatal("past the limit again, a connection was kept")
	}
	if l.Open() != 5 {
		t.Fatalf("open %d, want 5", l.Open())
	}
}

// TestLimitTotal: many addresses together are held to the total of
// connections before authentication.
func TestLimitTotal(t *testing.T) {
	l, accepted := listen(t, 3, 4)
	addr := l.Addr().String()
	var held []net.Conn
	for i := range 4 {
		dialFrom(t, fmt.Sprintf("127.0.0.%d", 10+i), addr)
		held = append(held, <-accepted)
	}
	if !closedSoon(dialFrom(t, "127.0.0.20", addr)) {
		t.Fatal("a fifth connection of five addresses was kept past the total of four")
	}
	Authenticated(ConnContext(context.Background(), held[0]))
	dialFrom(t, "127.0.0.21", addr)
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("an authenticated connection did not free its place in the total")
	}
}
