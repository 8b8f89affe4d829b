package localhttp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server serves HTTP/1.x to local clients (a unix socket, a loopback TCP
// port). Each connection is one goroutine that reads a request, runs the
// handler and writes the answer; nothing else runs per request.
//
// net/http's server starts a goroutine per request that reads ahead on the
// connection to notice a client hanging up, and stops it after the handler
// with a read deadline it waits out. On a unix socket, with a handler that
// syncs a page as an earn does, that server adds 60 µs p50 to a call and
// this one 16 µs (BenchmarkServerOverhead): the difference is a tenth of an
// earn. What this server leaves out for that: a request's context is not
// cancelled when its client hangs up (a handler notices on its next write),
// HTTP/2, TLS and hijacking. It reads requests with net/http's own reader.
type Server struct {
	Handler http.Handler
	// ReadHeaderTimeout bounds a request from its first byte to the end
	// of its headers, ReadTimeout to the end of its body (a client that
	// stalls mid-body gets a read error in the handler, and its connection
	// is closed), IdleTimeout a kept connection's wait for the next
	// request. Zero means no limit.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	// Log receives handler panics; nil means slog.Default().
	Log *slog.Logger
	// ConnContext, when set, gives the context of a new connection's
	// requests (as net/http.Server's does), e.g. who the peer is.
	ConnContext func(ctx context.Context, c net.Conn) context.Context

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	closing   bool
	gone      chan struct{} // closed when closing and the last connection ends
}

// serverConn is one accepted connection; busy while a request is read or
// answered, so Shutdown closes only the idle ones.
type serverConn struct {
	rwc  net.Conn
	ctx  context.Context
	busy bool
}

// Limits of a request that the handler does not see.
const (
	// maxHeaderBytes bounds a request line and its headers (431 past it).
	maxHeaderBytes = 64 << 10
	// maxDiscard is the most of a request body the handler left unread that
	// is read and dropped to keep the connection; past it, it is closed.
	maxDiscard = 256 << 10
	// bufferedBody is the largest answer held whole and sent with a
	// Content-Length; a longer one streams in chunks.
	bufferedBody = 16 << 10
)

// Serve accepts connections on l until Shutdown or Close, and then returns
// http.ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return http.ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*serverConn]struct{})
		s.gone = make(chan struct{})
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		rwc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return http.ErrServerClosed
			}
			// Out of file descriptors and the like: wait and try again,
			// as net/http does, instead of spinning or giving up.
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := &serverConn{rwc: rwc}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			rwc.Close()
			return http.ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// Shutdown stops accepting, closes idle connections and waits until each
// busy one has answered its request, or until ctx ends (then it closes them
// all and returns ctx's error).
func (s *Server) Shutdown(ctx context.Context) error {
	gone := s.stop(false)
	select {
	case <-gone:
		return nil
	case <-ctx.Done():
		s.stop(true)
		return ctx.Err()
	}
}

// Close stops accepting and closes every connection at once.
func (s *Server) Close() error {
	s.stop(true)
	return nil
}

// stop marks the server closing, closes its listeners and its idle (or all)
// connections, and returns a channel closed once no connection is left.
func (s *Server) stop(all bool) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone == nil {
		s.gone = make(chan struct{})
	}
	if !s.closing {
		s.closing = true
		for l := range s.listeners {
			l.Close()
		}
	}
	for c := range s.conns {
		if all || !c.busy {
			c.rwc.Close()
		}
	}
	if len(s.conns) == 0 {
		closeOnce(s.gone)
	}
	return s.gone
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// setBusy marks c busy or idle; false when the server is closing and c
// must end (an idle connection is not kept, a new request not started).
func (s *Server) setBusy(c *serverConn, busy bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.busy = busy
	return !s.closing
}

func (s *Server) forget(c *serverConn) {
	c.rwc.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if s.closing && len(s.conns) == 0 {
		closeOnce(s.gone)
	}
}

// serveConn answers the requests of one connection in turn (pipelined ones
// included) until the client or the server closes it.
func (s *Server) serveConn(c *serverConn) {
	defer s.forget(c)
	c.ctx = context.Background()
	if s.ConnContext != nil {
		c.ctx = s.ConnContext(c.ctx, c.rwc)
	}
	// The limit is lifted once a request's headers are read: its body is
	// the handler's to bound.
	lr := &io.LimitedReader{R: c.rwc}
	rec := &headRecorder{r: lr}
	br := bufio.NewReader(rec)
	bw := bufio.NewWriter(c.rwc)
	for {
		if !s.setBusy(c, false) {
			return
		}
		lr.N = maxHeaderBytes
		s.deadline(c.rwc, time.Now(), s.IdleTimeout)
		if _, err := br.Peek(1); err != nil {
			return
		}
		if !s.setBusy(c, true) {
			return
		}
		t0 := time.Now()
		s.deadline(c.rwc, t0, s.ReadHeaderTimeout)
		// The request's bytes as they came: the ones buffered already, and
		// what is read while its headers are.
		head, _ := br.Peek(br.Buffered())
		rec.buf = append(rec.buf[:0], head...)
		rec.on = true
		req, err := http.ReadRequest(br)
		rec.on = false
		if err == nil && len(req.TransferEncoding) > 0 && hasHeader(rec.buf, "Content-Length") {
			// http.ReadRequest drops the Content-Length of a chunked
			// request; a client and a proxy between could disagree on
			// where the body ends (request smuggling), so it is refused.
			reject(bw, req, http.StatusBadRequest, "both Transfer-Encoding and Content-Length")
			return
		}
		if err != nil {
			var ne net.Error
			switch {
			case lr.N <= 0:
				reject(bw, nil, http.StatusRequestHeaderFieldsTooLarge, "request headers too large")
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &ne):
				// The client went away or stalled: nobody to answer.
			default:
				reject(bw, nil, http.StatusBadRequest, "malformed request")
			}
			return
		}
		lr.N = math.MaxInt64
		s.deadline(c.rwc, t0, s.ReadTimeout)
		if !s.serveRequest(c.ctx, c.rwc, req, bw) {
			return
		}
	}
}

// headRecorder keeps what is read through it while on: the bytes of a
// request's headers (bounded by the header limit beneath it).
type headRecorder struct {
	r   io.Reader
	on  bool
	buf []byte
}

func (h *headRecorder) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if h.on {
		h.buf = append(h.buf, p[:n]...)
	}
	return n, err
}

// hasHeader reports whether the header block at the start of raw (after
// the request line, up to the first empty line) has a field named name.
func hasHeader(raw []byte, name string) bool {
	_, rest, _ := bytes.Cut(raw, []byte("\n")) // the request line
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return false
		}
		if k, _, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), name) {
			return true
		}
	}
	return false
}

// deadline sets rwc's read deadline d after from, or none if d is zero.
func (s *Server) deadline(rwc net.Conn, from time.Time, d time.Duration) {
	if d > 0 {
		_ = rwc.SetReadDeadline(from.Add(d))
	} else {
		_ = rwc.SetReadDeadline(time.Time{})
	}
}

// reject answers a request that never reached the handler (nil if it could
// not be read), before the connection is closed.
func reject(bw *bufio.Writer, req *http.Request, status int, msg string) {
	msg += "\n"
	statusLine(bw, "HTTP/1.1", status)
	_, _ = bw.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	contentLength(bw, len(msg))
	_, _ = bw.WriteString("Connection: close\r\n\r\n")
	if req == nil || req.Method != http.MethodHead {
		_, _ = bw.WriteString(msg)
	}
	_ = bw.Flush()
}

// serveRequest runs the handler for req and writes its answer; it reports
// whether the connection may carry another request.
func (s *Server) serveRequest(connCtx context.Context, rwc net.Conn, req *http.Request, bw *bufio.Writer) bool {
	switch {
	case req.ProtoMajor != 1:
		reject(bw, req, http.StatusHTTPVersionNotSupported, "HTTP/1.x only")
		return false
	case req.ProtoAtLeast(1, 1) && req.Host == "":
		// http.ReadRequest has moved the header to req.Host, and refused
		// a request with two.
		reject(bw, req, http.StatusBadRequest, "Host header required")
		return false
	}
	if e := req.Header.Get("Expect"); e != "" {
		if !strings.EqualFold(e, "100-continue") {
			reject(bw, req, http.StatusExpectationFailed, "unsupported Expect header")
			return false
		}
		// The client waits for this before it sends the body (curl does for
		// large ones). Sent at once: every handler here reads its body.
		if req.ContentLength != 0 {
			_, _ = bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if bw.Flush() != nil {
				return false
			}
		}
	}
	ctx, cancel := context.WithCancel(connCtx)
	defer cancel()
	req = req.WithContext(ctx)
	req.RemoteAddr = rwc.RemoteAddr().String()
	w := &response{req: req, bw: bw, header: make(http.Header)}
	if !s.run(w, req) {
		return false
	}
	// The rest of a body the handler did not read is dropped, so the next
	// request starts at its first byte; too much of it, or a body that
	// cannot be read to its end (stalled, malformed), ends the connection.
	if n, err := io.CopyN(io.Discard, req.Body, maxDiscard+1); n > maxDiscard || err != io.EOF {
		w.close = true
	}
	if w.finish() != nil {
		return false
	}
	return !w.close
}

// run calls the handler; a panic is logged and ends the connection without
// an answer, as net/http does.
func (s *Server) run(w *response, req *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if v == http.ErrAbortHandler {
				return
			}
			log := s.Log
			if log == nil {
				log = slog.Default()
			}
			log.Error("local http: handler panicked", "method", req.Method, "path", req.URL.Path, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	s.Handler.ServeHTTP(w, req)
	return true
}

// response is the http.ResponseWriter of one request. An answer up to
// bufferedBody is held and sent whole with its length; a longer one (an
// export) goes out as it is written, chunked (HTTP/1.1) or up to the
// connection's close (HTTP/1.0).
type response struct {
	req    *http.Request
	bw     *bufio.Writer
	header http.Header
	status int
	body   []byte
	// started: the status line and headers are out; the body streams.
	started bool
	chunked bool
	close   bool // the connection ends after this answer
	n       int  // body bytes written by the handler (a HEAD answer sends none)
	err     error
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		// As net/http: a handler bug, which run logs; the status line
		// would not parse.
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.status != 0 || code < 200 {
		// A second status, or an informational one: the first final
		// status stands.
		return
	}
	w.status = code
}

func (w *response) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	w.n += len(p)
	if w.req.Method == http.MethodHead {
		return len(p), nil
	}
	if !w.started {
		if len(w.body)+len(p) <= bufferedBody {
			w.body = append(w.body, p...)
			return len(p), nil
		}
		w.start(-1)
		held := w.body
		w.body = nil
		w.chunk(held)
	}
	w.chunk(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// Flush sends what has been written so far (http.Flusher).
func (w *response) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if !w.started {
		w.start(-1)
		held := w.body
		w.body = nil
		w.chunk(held)
	}
	if w.err == nil {
		w.err = w.bw.Flush()
	}
}

// start writes the status line and the headers; length is the body's
// length, or -1 when it streams.
func (w *response) start(length int) {
	w.started = true
	proto := "HTTP/1.1"
	if !w.req.ProtoAtLeast(1, 1) {
		// An HTTP/1.0 client gets one answer per connection.
		proto, w.close = "HTTP/1.0", true
	}
	if w.req.Close || strings.EqualFold(w.header.Get("Connection"), "close") {
		w.close = true
	}
	bw := w.bw
	statusLine(bw, proto, w.status)
	if _, ok := w.header["Date"]; !ok {
		_, _ = bw.WriteString("Date: ")
		_, _ = bw.Write(httpDate(time.Now()))
		_, _ = bw.WriteString("\r\n")
	}
	switch {
	case !bodyAllowed(w.status):
	case length >= 0:
		contentLength(bw, length)
	case w.req.Method == http.MethodHead:
		// Flushed before its length was known; no body follows anyway.
	case proto == "HTTP/1.1":
		w.chunked = true
		_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
	default:
		// HTTP/1.0: no length and no chunks, the body ends with the
		// connection (w.close is set).
	}
	if w.close {
		_, _ = bw.WriteString("Connection: close\r\n")
	}
	w.err = w.header.WriteSubset(bw, framingHeaders)
	_, _ = bw.WriteString("\r\n")
}

// statusLine and contentLength are written piece by piece: fmt and a fresh
// date (httpDate) cost a tenth of the server's own work on a call.
func statusLine(bw *bufio.Writer, proto string, status int) {
	text := http.StatusText(status)
	if text == "" {
		text = "status code " + strconv.Itoa(status)
	}
	var num [20]byte
	_, _ = bw.WriteString(proto)
	_ = bw.WriteByte(' ')
	_, _ = bw.Write(strconv.AppendInt(num[:0], int64(status), 10))
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(text)
	_, _ = bw.WriteString("\r\n")
}

func contentLength(bw *bufio.Writer, n int) {
	var num [20]byte
	_, _ = bw.WriteString("Content-Length: ")
	_, _ = bw.Write(strconv.AppendInt(num[:0], int64(n), 10))
	_, _ = bw.WriteString("\r\n")
}

// date is the Date header's value for one second.
type date struct {
	sec int64
	b   []byte
}

// lastDate is the latest second's date, shared by all connections.
var lastDate atomic.Pointer[date]

// httpDate is the Date header's value for now, formatted once a second.
func httpDate(now time.Time) []byte {
	sec := now.Unix()
	if d := lastDate.Load(); d != nil && d.sec == sec {
		return d.b
	}
	d := &date{sec: sec, b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	lastDate.Store(d)
	return d.b
}

// framingHeaders are the server's to set: a handler's own would contradict
// how the body is actually sent.
var framingHeaders = map[string]bool{"Content-Length": true, "Transfer-Encoding": true, "Connection": true}

func (w *response) chunk(p []byte) {
	if w.err != nil || len(p) == 0 {
		return
	}
	if w.chunked {
		fmt.Fprintf(w.bw, "%x\r\n", len(p))
	}
	_, _ = w.bw.Write(p)
	if w.chunked {
		_, w.err = w.bw.WriteString("\r\n")
	}
}

// finish sends what the handler left to send, and flushes.
func (w *response) finish() error {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	switch {
	case !w.started:
		w.start(w.n)
		w.chunk(w.body)
	case w.chunked && w.err == nil:
		_, w.err = w.bw.WriteString("0\r\n\r\n")
	}
	if w.err != nil {
		return w.err
	}
	return w.bw.Flush()
}

// bodyAllowed reports whether an answer with status may carry a body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
