package localhttp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// maxIdleAge is how long an idle connection is kept for the next call. It
// is well under the servers' idle timeout (60 s), so a kept connection is
// never one the server is closing as it is reused.
const maxIdleAge = 10 * time.Second

// unixTransport sends each request over a keep-alive unix socket connection
// and reads the answer on the caller's goroutine. http.Transport hands every
// request to a writer goroutine and every response to a reader goroutine;
// for a call that costs well under a millisecond those hand-offs (thread
// wakeups) were a third of its latency. BenchmarkClientOverhead measures
// both against the same server (http.Transport's overhead 1.9x this one's).
//
// It uses net/http's own request writer and response reader, so the wire
// format is exactly http.Transport's.
type unixTransport struct {
	path string
	mu   sync.Mutex
	idle []*unixConn // most recently used last
}

type unixConn struct {
	c     net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	since time.Time // idle since
}

// Errors of a kept connection the server had closed (idle timeout, restart).
var (
	// errNotSent: the write was refused, so the request was not read.
	errNotSent = errors.New("connection closed before the request was sent")
	// errNoAnswer: the connection closed without a byte of answer. The
	// server most likely closed it before reading the request, but it may
	// have died while handling it.
	errNoAnswer = errors.New("connection closed without an answer")
)

func (t *unixTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	for {
		uc, reused, err := t.conn(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := t.roundTrip(ctx, uc, req)
		if err == nil {
			return resp, nil
		}
		uc.c.Close()
		// A call that found a kept connection closed is retried on a new
		// one when that cannot apply it twice: it was not sent, or it reads
		// only (as http.Transport does).
		retry := errors.Is(err, errNotSent) || (errors.Is(err, errNoAnswer) && (req.Method == http.MethodGet || req.Method == http.MethodHead))
		if !reused || !retry || ctx.Err() != nil {
			return nil, err
		}
		if req.Body != nil {
			if req.GetBody == nil {
				return nil, err
			}
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

func (t *unixTransport) roundTrip(ctx context.Context, uc *unixConn, req *http.Request) (*http.Response, error) {
	// A cancelled context ends a call blocked on the socket.
	stop := context.AfterFunc(ctx, func() { _ = uc.c.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	err := req.Write(uc.bw)
	if err == nil {
		err = uc.bw.Flush()
	}
	if err != nil {
		// A unix socket whose peer has closed refuses the write at once.
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			err = fmt.Errorf("%w: %v", errNotSent, err)
		}
		return fail(err)
	}
	if _, err := uc.br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			err = fmt.Errorf("%w: %v", errNoAnswer, err)
		}
		return fail(err)
	}
	resp, err := http.ReadResponse(uc.br, req)
	if err != nil {
		return fail(err)
	}
	resp.Body = &unixBody{rc: resp.Body, t: t, uc: uc, stop: stop, keep: !resp.Close && !req.Close}
	return resp, nil
}

// conn returns a kept connection, or dials a new one.
func (t *unixTransport) conn(ctx context.Context) (*unixConn, bool, error) {
	t.mu.Lock()
	for len(t.idle) > 0 {
		uc := t.idle[len(t.idle)-1]
		t.idle = t.idle[:len(t.idle)-1]
		if time.Since(uc.since) < maxIdleAge {
			t.mu.Unlock()
			return uc, true, nil
		}
		uc.c.Close()
	}
	t.mu.Unlock()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", t.path)
	if err != nil {
		return nil, false, err
	}
	return &unixConn{c: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}, false, nil
}

// put keeps a connection whose last response was read to its end.
func (t *unixTransport) put(uc *unixConn) {
	uc.since = time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.idle) >= maxIdleConns {
		uc.c.Close()
		return
	}
	t.idle = append(t.idle, uc)
}

// unixBody is a response body; closing it after reading it all gives the
// connection back for the next call.
type unixBody struct {
	rc   io.ReadCloser
	t    *unixTransport
	uc   *unixConn
	stop func() bool
	keep bool
	eof  bool
	done bool
}

func (b *unixBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *unixBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if !b.eof {
		// A small unread rest (a decoder stops before the final newline)
		// is drained; a large one is not worth reading.
		if _, err := io.CopyN(io.Discard, b, maxDrain); err == io.EOF {
			b.eof = true
		}
	}
	err := b.rc.Close()
	// The deadline a cancellation set would poison the connection.
	if !b.stop() || !b.keep || !b.eof || b.uc.br.Buffered() > 0 {
		b.uc.c.Close()
		return err
	}
	b.t.put(b.uc)
	return err
}

// maxDrain is the most of an unread body Close reads to keep the connection.
const maxDrain = 4 << 10
