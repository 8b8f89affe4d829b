package localhttp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// leanServer is a Server on a unix socket in a fresh directory, counting the
// connections it accepts.
type leanServer struct {
	path  string
	srv   *Server
	conns atomic.Int64
	done  chan error // Serve's result
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func serveLean(t testing.TB, srv *Server) *leanServer {
	t.Helper()
	s := &leanServer{path: filepath.Join(t.TempDir(), "api.sock"), srv: srv, done: make(chan error, 1)}
	ln, err := net.Listen("unix", s.path)
	if err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- srv.Serve(countingListener{ln, &s.conns}) }()
	t.Cleanup(func() { srv.Close() })
	return s
}

// dial opens a raw connection to s.
func (s *leanServer) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", s.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// stdClient is net/http's own client on the unix socket at path.
func stdClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
}

// TestServerClients: this package's client and net/http's both keep one
// connection for sequential calls and get their answers whole, short and
// long (a long one streams in chunks).
func TestServerClients(t *testing.T) {
	long := strings.Repeat("0123456789abcdef", 3*bufferedBody/16+5)
	for _, tc := range []struct {
		name string
		c    func(string) *http.Client
	}{{"localhttp", Unix}, {"net/http", stdClient}} {
		t.Run(tc.name, func(t *testing.T) {
			s := serveLean(t, &Server{Handler: echo})
			c := tc.c(s.path)
			ctx := context.Background()
			for i := range 20 {
				want := strings.Repeat("x", i*100)
				if i%5 == 4 {
					want = long[:len(long)-i]
				}
				if got, err := call(t, c, ctx, http.MethodPost, "http://agent/echo", want); err != nil || got != want {
					t.Fatalf("call %d: %d bytes, %v; want %d bytes", i, len(got), err, len(want))
				}
				if got, err := call(t, c, ctx, http.MethodGet, "http://agent/echo?q"+fmt.Sprint(i), ""); err != nil || got != "q"+fmt.Sprint(i) {
					t.Fatalf("get %d: %q, %v", i, got, err)
				}
			}
			if n := s.conns.Load(); n != 1 {
				t.Fatalf("%d connections for 40 sequential calls, want 1", n)
			}
		})
	}
}

// exchange writes raw to a new connection and reads the answers of the
// requests it holds; closed reports whether the server then closed the
// connection.
func exchange(t *testing.T, s *leanServer, raw string, reqs ...*http.Request) (resps []*http.Response, bodies []string, closed bool) {
	t.Helper()
	c := s.dial(t)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for _, req := range reqs {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("answer to %s %s: %v", req.Method, req.URL, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("answer to %s %s: body: %v", req.Method, req.URL, err)
		}
		resps, bodies = append(resps, resp), append(bodies, string(b))
	}
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := br.Read(make([]byte, 1))
	if n > 0 {
		t.Fatalf("bytes after the last answer")
	}
	// A server that closes with bytes of ours unread resets the connection.
	var ne net.Error
	return resps, bodies, err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func get(method, target string) *http.Request {
	r, _ := http.NewRequest(method, "http://agent"+target, nil)
	return r
}

// TestServerWire: what goes over the connection, request by request.
func TestServerWire(t *testing.T) {
	s := serveLean(t, &Server{Handler: echo})
	for _, tc := range []struct {
		name   string
		raw    string
		reqs   []*http.Request
		status []int
		bodies []string
		close  bool
	}{
		{"pipelined", "GET /a?1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c?3 HTTP/1.1\r\nHost: x\r\n\r\n",
			[]*http.Request{get("GET", "/a?1"), get("POST", "/b"), get("GET", "/c?3")}, []int{200, 200, 200}, []string{"1", "abc", "3"}, false},
		{"chunked request", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
			[]*http.Request{get("POST", "/a")}, []int{200}, []string{"abcde"}, false},
		{"connection close", "GET /a?z HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			[]*http.Request{get("GET", "/a?z")}, []int{200}, []string{"z"}, true},
		{"HTTP/1.0", "GET /a?old HTTP/1.0\r\n\r\n", []*http.Request{get("GET", "/a?old")}, []int{200}, []string{"old"}, true},
		{"HEAD", "HEAD /a?head HTTP/1.1\r\nHost: x\r\n\r\nGET /a?after HTTP/1.1\r\nHost: x\r\n\r\n",
			[]*http.Request{get("HEAD", "/a?head"), get("GET", "/a?after")}, []int{200, 200}, []string{"", "after"}, false},
		{"expect 100-continue", "POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
			[]*http.Request{get("POST", "/a"), get("POST", "/a")}, []int{100, 200}, []string{"", "hi"}, false},
		{"unknown expectation", "POST /a HTTP/1.1\r\nHost: x\r\nExpect: magic\r\nContent-Length: 2\r\n\r\nhi",
			[]*http.Request{get("POST", "/a")}, []int{417}, []string{"unsupported Expect header\n"}, true},
		{"no Host", "GET /a HTTP/1.1\r\n\r\n", []*http.Request{get("GET", "/a")}, []int{400}, []string{"Host header required\n"}, true},
		{"two Hosts", "GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", []*http.Request{get("GET", "/a")}, []int{400}, []string{"malformed request\n"}, true},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", []*http.Request{get("GET", "/")}, []int{400}, []string{"malformed request\n"}, true},
		{"HTTP/2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", []*http.Request{get("GET", "/")}, []int{505}, []string{"HTTP/1.x only\n"}, true},
		{"chunked and a length", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			[]*http.Request{get("POST", "/a")}, []int{400}, []string{"both Transfer-Encoding and Content-Length\n"}, true},
		{"a length and chunked, after a request", "GET /a?1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /a HTTP/1.1\r\nHost: x\r\ncontent-length: 0\r\nTRANSFER-ENCODING: chunked\r\n\r\n0\r\n\r\nGET /a?2 HTTP/1.1\r\nHost: x\r\n\r\n",
			[]*http.Request{get("GET", "/a?1"), get("POST", "/a")}, []int{200, 400}, []string{"1", "both Transfer-Encoding and Content-Length\n"}, true},
		{"a length in the body of a chunked request", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n13\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
			[]*http.Request{get("POST", "/a")}, []int{200}, []string{"Content-Length: 3\r\n"}, false},
		{"a bad chunk after a request", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nzPOST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /a?3 HTTP/1.1\r\nHost: x\r\n\r\n",
			[]*http.Request{get("POST", "/a"), get("POST", "/a")}, []int{200, 200}, []string{"z", ""}, true},
		{"huge headers", "GET /a HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", maxHeaderBytes) + "\r\n\r\n",
			[]*http.Request{get("GET", "/a")}, []int{431}, []string{"request headers too large\n"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resps, bodies, closed := exchange(t, s, tc.raw, tc.reqs...)
			for i, resp := range resps {
				if resp.StatusCode != tc.status[i] || bodies[i] != tc.bodies[i] {
					t.Errorf("answer %d: %d %q, want %d %q", i, resp.StatusCode, bodies[i], tc.status[i], tc.bodies[i])
				}
			}
			if closed != tc.close {
				t.Errorf("connection closed: %v, want %v", closed, tc.close)
			}
		})
	}
}

// TestServerHeadLength: a HEAD answer states the length of the GET's body
// and sends none, long or short.
func TestServerHeadLength(t *testing.T) {
	long := strings.Repeat("l", 3*bufferedBody)
	s := serveLean(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/flush" {
			w.(http.Flusher).Flush()
		}
		_, _ = io.WriteString(w, long[:len(r.URL.RawQuery)])
	})})
	q := strings.Repeat("q", len(long))
	raw := "HEAD /?qq HTTP/1.1\r\nHost: x\r\n\r\nHEAD /?" + q + " HTTP/1.1\r\nHost: x\r\n\r\n" +
		"HEAD /flush?qq HTTP/1.1\r\nHost: x\r\n\r\nGET /?qqq HTTP/1.1\r\nHost: x\r\n\r\n"
	resps, bodies, closed := exchange(t, s, raw, get("HEAD", "/"), get("HEAD", "/"), get("HEAD", "/flush"), get("GET", "/"))
	// A HEAD flushed before its length was known has none (-1) and, like
	// the others, no body: the GET after it is read intact.
	for i, want := range []int64{2, int64(len(long)), -1} {
		if resps[i].ContentLength != want || bodies[i] != "" {
			t.Errorf("HEAD %d: length %d body %q, want length %d and no body", i, resps[i].ContentLength, bodies[i], want)
		}
	}
	if bodies[3] != "lll" || closed {
		t.Fatalf("the GET after them: %q, connection closed %v", bodies[3], closed)
	}
}

// TestServerStreams: an answer longer than bufferedBody goes out while the
// handler writes it, before the handler returns.
func TestServerStreams(t *testing.T) {
	wrote, release := make(chan struct{}), make(chan struct{})
	s := serveLean(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte("s"), bufferedBody+1))
		w.(http.Flusher).Flush()
		close(wrote)
		<-release
		_, _ = io.WriteString(w, "end")
	})})
	c := s.dial(t)
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	<-wrote
	head := make([]byte, bufferedBody+1)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatalf("reading what was written before the handler returned: %v", err)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "end" || !slices.Equal(resp.TransferEncoding, []string{"chunked"}) {
		t.Fatalf("rest %q, %v, transfer encoding %v", rest, err, resp.TransferEncoding)
	}
}

// TestServerUnreadBody: a body the handler leaves unread is dropped and the
// connection kept; one too long to drop ends the connection after the
// answer.
func TestServerUnreadBody(t *testing.T) {
	s := serveLean(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ignored")
	})})
	short := strings.Repeat("u", 1000)
	raw := fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%sGET / HTTP/1.1\r\nHost: x\r\n\r\n", len(short), short)
	if _, bodies, closed := exchange(t, s, raw, get("POST", "/"), get("GET", "/")); closed || bodies[1] != "ignored" {
		t.Fatalf("after a short unread body: %q, closed %v", bodies, closed)
	}
	long := strings.Repeat("u", maxDiscard+2)
	raw = fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(long), long)
	if resps, _, closed := exchange(t, s, raw, get("POST", "/")); !closed || !resps[0].Close {
		t.Fatalf("after a long unread body: closed %v, Connection: close %v", closed, resps[0].Close)
	}
}

// TestServerPanic: a handler that panics, or writes a status outside
// 100-999, ends its connection without an answer (the client reports no
// answer and does not send a POST again); the panic is logged and the
// server goes on serving.
func TestServerPanic(t *testing.T) {
	var logged bytes.Buffer
	var mu sync.Mutex
	var posts atomic.Int64
	s := serveLean(t, &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/panic":
				posts.Add(1)
				panic("bug")
			case "/bad-status":
				w.WriteHeader(1000)
			}
			echo(w, r)
		}),
		Log: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil)),
	})
	c := Unix(s.path)
	ctx := context.Background()
	if _, err := call(t, c, ctx, http.MethodPost, "http://agent/panic", "x"); !errors.Is(err, errNoAnswer) {
		t.Fatalf("a call whose handler panicked: %v", err)
	}
	if got, err := call(t, c, ctx, http.MethodGet, "http://agent/echo?on", ""); err != nil || got != "on" {
		t.Fatalf("the next call: %q, %v", got, err)
	}
	// A status that would not fit the status line is a handler bug too.
	if _, err := call(t, c, ctx, http.MethodGet, "http://agent/bad-status", ""); !errors.Is(err, errNoAnswer) {
		t.Fatalf("a call whose handler wrote status 1000: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if posts.Load() != 1 || !strings.Contains(logged.String(), "panic=bug") || !strings.Contains(logged.String(), "invalid WriteHeader code 1000") {
		t.Fatalf("%d POSTs; log %q", posts.Load(), logged.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestServerTimeouts: a connection idle past IdleTimeout, one stalled
// inside its headers past ReadHeaderTimeout and one stalled inside its body
// past ReadTimeout are closed; the handler of the last sees a read error.
func TestServerTimeouts(t *testing.T) {
	bodyErr := make(chan error, 1)
	s := serveLean(t, &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, err := io.ReadAll(r.Body)
			if r.ContentLength > 0 {
				bodyErr <- err
			}
			w.WriteHeader(http.StatusNoContent)
		}),
		IdleTimeout: 50 * time.Millisecond, ReadHeaderTimeout: 50 * time.Millisecond, ReadTimeout: 100 * time.Millisecond,
	})
	for _, tc := range []struct{ sent, answer string }{
		{"", ""},
		{"GET / HTTP/1.1\r\nHost: x\r\n", ""},
		{"GET /?1 HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 204"},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", "HTTP/1.1 204"},
	} {
		c := s.dial(t)
		_, _ = io.WriteString(c, tc.sent)
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("after %q: %v (the server did not close the connection)", tc.sent, err)
		}
		if !bytes.HasPrefix(b, []byte(tc.answer)) || (tc.answer == "") != (len(b) == 0) {
			t.Fatalf("after %q: %q, want %q...", tc.sent, b, tc.answer)
		}
	}
	var ne net.Error
	if err := <-bodyErr; !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("the handler read the stalled body with %v, want a timeout", err)
	}
}

// TestServerShutdown: Shutdown closes idle connections and stops accepting
// at once, lets a request in progress answer, then returns; past its
// context it closes what is left.
func TestServerShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s := serveLean(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		echo(w, r)
	})})
	idle := s.dial(t)
	_, _ = io.WriteString(idle, "GET /?1 HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(idle), nil); err != nil {
		t.Fatal(err)
	}
	busy := s.dial(t)
	_, _ = io.WriteString(busy, "GET /slow?done HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered
	shut := make(chan error, 1)
	go func() { shut <- s.srv.Shutdown(context.Background()) }()
	if b, err := io.ReadAll(idle); err != nil || len(b) != 0 {
		t.Fatalf("the idle connection: %q, %v; want it closed", b, err)
	}
	if err := <-s.done; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	if _, err := net.Dial("unix", s.path); err == nil {
		t.Fatal("a new connection was accepted during shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in progress", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatalf("the request in progress got no answer: %v", err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "done" {
		t.Fatalf("answer %q", b)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}

	// A request that does not end in time is cut off.
	stuck, in := make(chan struct{}), make(chan struct{})
	defer close(stuck)
	s = serveLean(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { close(in); <-stuck })})
	c := s.dial(t)
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-in
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := s.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a stuck request: %v", err)
	}
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("the stuck connection: %q, %v; want it closed", b, err)
	}
}

// TestServerCurl: curl, as scripts drive the local API, over the unix
// socket: a body large enough that curl waits for 100 Continue, two calls on
// one connection, HTTP/1.0, HEAD.
func TestServerCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl not found: make deps installs it")
	}
	s := serveLean(t, &Server{Handler: echo})
	body := strings.Repeat("c", 100<<10)
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(curl, append([]string{"-sS", "--fail", "--unix-socket", s.path}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	if got := run("-H", "Expect: 100-continue", "--data-binary", body, "http://agent/echo"); got != body {
		t.Fatalf("POST: %d bytes back, want %d", len(got), len(body))
	}
	if got := run("http://agent/echo?a", "http://agent/echo?b"); got != "ab" {
		t.Fatalf("two GETs: %q", got)
	}
	if n := s.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (curl keeps one for its two GETs)", n)
	}
	if got := run("--http1.0", "http://agent/echo?old"); got != "old" {
		t.Fatalf("HTTP/1.0: %q", got)
	}
	if got := run("-I", "http://agent/echo?head"); !strings.Contains(got, "Content-Length: 4") {
		t.Fatalf("HEAD: %q", got)
	}
}

// FuzzServer sends arbitrary bytes as a client's requests, then closes its
// side: the server must not panic, must answer with well-formed HTTP only,
// no more answers than requests (one more for a malformed rest), and must
// then close the connection. It must also see the requests where net/http's
// reader does: each answer of the echo handler is what the request at its
// place holds (so a body is never taken for a request, nor a request for a
// body), and a refusal is the last answer.
func FuzzServer(f *testing.F) {
	for _, seed := range []string{
		"GET /a?1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
		"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
		"HEAD /a?x HTTP/1.1\r\nHost: x\r\n\r\nGET /a?y HTTP/1.0\r\n\r\n",
		"GET /a HTTP/1.1\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nzz",
		"GET /a?1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nGET /a?2 HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nGET /\r\n0\r\n\r\nGET /a?q HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /a?smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	s := serveLean(f, &Server{Handler: echo, ReadHeaderTimeout: 5 * time.Second})
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("unix", s.path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		// The client writes while the server answers: a server that answers
		// early and closes may leave some of it unsent.
		go func() {
			_, _ = c.Write(in)
			_ = c.(*net.UnixConn).CloseWrite()
		}()
		// The requests as the same reader sees them, for the methods the
		// answers must be read with.
		var reqs []*http.Request
		var want []string // what echo answers each
		for br := bufio.NewReader(bytes.NewReader(in)); ; {
			req, err := http.ReadRequest(br)
			if err != nil {
				break
			}
			reqs = append(reqs, req)
			b, err := io.ReadAll(req.Body)
			switch req.Method {
			case http.MethodPost:
				want = append(want, string(b))
			case http.MethodHead:
				want = append(want, "")
			default:
				want = append(want, req.URL.RawQuery)
			}
			if err != nil {
				break // the server's handler reads as far, and then it closes
			}
		}
		br := bufio.NewReader(c)
		finals, refused := 0, false
		for {
			if _, err := br.Peek(1); err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
					break
				}
				t.Fatalf("the server did not close the connection: %v", err)
			}
			var req *http.Request
			if finals < len(reqs) {
				req = reqs[finals]
			}
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				t.Fatalf("answer %d: %v", finals, err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("answer %d: body: %v", finals, err)
			}
			if refused {
				t.Fatalf("answer %d after a refusal", finals)
			}
			switch {
			case resp.StatusCode == http.StatusOK && err == nil:
				if finals >= len(want) || string(body) != want[finals] {
					t.Fatalf("answer %d: %q, but the requests net/http's reader finds answer %q", finals, body, want)
				}
			case resp.StatusCode >= 300:
				refused = true
			}
			if resp.StatusCode >= 200 {
				finals++
			}
		}
		if finals > len(reqs)+1 {
			t.Fatalf("%d answers to %d requests", finals, len(reqs))
		}
	})
}

// TestServerStatusAndDate: the status line and Date header the server
// writes by hand read back through net/http's client: a known status with
// its text, an unknown one, and the date of now (formatted once a second,
// so it is never more than a second old).
func TestServerStatusAndDate(t *testing.T) {
	s := serveLean(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "body")
	})})
	c := stdClient(s.path)
	for _, tc := range []struct {
		code   int
		status string
	}{{200, "200 OK"}, {418, "418 I'm a teapot"}, {299, "299 status code 299"}, {201, "201 Created"}} {
		before := time.Now().Truncate(time.Second)
		resp, err := c.Get("http://agent/?code=" + strconv.Itoa(tc.code))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Status != tc.status || string(body) != "body" || resp.ContentLength != 4 {
			t.Errorf("status %q, body %q, length %d; want %q, \"body\", 4", resp.Status, body, resp.ContentLength, tc.status)
		}
		d, err := http.ParseTime(resp.Header.Get("Date"))
		if err != nil || d.Before(before) || d.After(time.Now()) {
			t.Errorf("Date %q (%v), want between %v and now", resp.Header.Get("Date"), err, before)
		}
	}
}

// TestServerConnContext: what ConnContext puts in a connection's context
// reaches every request of that connection, and only that connection's.
func TestServerConnContext(t *testing.T) {
	type key struct{}
	var n atomic.Int64
	srv := &Server{
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, key{}, fmt.Sprint(n.Add(1)))
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v, _ := r.Context().Value(key{}).(string)
			_, _ = io.WriteString(w, v)
		}),
	}
	s := serveLean(t, srv)
	ctx := context.Background()
	c1, c2 := Unix(s.path), stdClient(s.path)
	for range 3 {
		if got, err := call(t, c1, ctx, http.MethodGet, "http://agent/", ""); err != nil || got != "1" {
			t.Fatalf("the first connection's request: %q, %v", got, err)
		}
	}
	if got, err := call(t, c2, ctx, http.MethodGet, "http://agent/", ""); err != nil || got != "2" {
		t.Fatalf("the second connection's request: %q, %v", got, err)
	}
}
