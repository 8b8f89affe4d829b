package localhttp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// unixServer serves h on a unix socket in a fresh directory and counts the
// connections it accepts.
type unixServer struct {
	path  string
	conns atomic.Int64
	srv   *http.Server
}

func serveUnix(t *testing.T, path string, h http.Handler) *unixServer {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s := &unixServer{path: path}
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}}
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// echo answers a POST with its body and a GET with the query.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		// The whole body first: an HTTP/1 handler cannot read the request
		// once its answer has started to go out.
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
		return
	}
	_, _ = io.WriteString(w, r.URL.RawQuery)
})

func call(t *testing.T, c *http.Client, ctx context.Context, method, url, body string) (string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestUnixKeepsConnections: sequential calls reuse one connection, and
// concurrent ones get one each.
func TestUnixKeepsConnections(t *testing.T) {
	s := serveUnix(t, filepath.Join(t.TempDir(), "api.sock"), echo)
	c := Unix(s.path)
	ctx := context.Background()
	for i := range 20 {
		want := strings.Repeat("x", i*100)
		if got, err := call(t, c, ctx, http.MethodPost, "http://agent/echo", want); err != nil || got != want {
			t.Fatalf("call %d: %q, %v", i, got, err)
		}
	}
	if n := s.conns.Load(); n != 1 {
		t.Fatalf("%d connections for 20 sequential calls, want 1", n)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				q := strings.Repeat("q", i+j)
				if got, err := call(t, c, ctx, http.MethodGet, "http://agent/echo?"+q, ""); err != nil || got != q {
					t.Errorf("concurrent call: %q, %v", got, err)
				}
			}
		}()
	}
	wg.Wait()
	if n := s.conns.Load(); n > 1+8 {
		t.Fatalf("%d connections for 8 concurrent callers", n)
	}
}

// TestUnixServerRestart: a kept connection to a server that has gone (an
// agent restarted) is replaced, and the call that found it goes through
// once.
func TestUnixServerRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	var posts atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		echo(w, r)
	})
	s := serveUnix(t, path, h)
	c := Unix(path)
	ctx := context.Background()
	if _, err := call(t, c, ctx, http.MethodPost, "http://agent/echo", "one"); err != nil {
		t.Fatal(err)
	}
	s.srv.Close()
	serveUnix(t, path, h)
	if got, err := call(t, c, ctx, http.MethodPost, "http://agent/echo", "two"); err != nil || got != "two" {
		t.Fatalf("after a restart: %q, %v", got, err)
	}
	if n := posts.Load(); n != 2 {
		t.Fatalf("the server handled %d calls, want 2", n)
	}
}

// TestUnixCancel: a cancelled context ends a call waiting for its answer,
// and the connection is not reused.
func TestUnixCancel(t *testing.T) {
	release := make(chan struct{})
	s := serveUnix(t, filepath.Join(t.TempDir(), "api.sock"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		echo(w, r)
	}))
	defer close(release)
	c := Unix(s.path)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := call(t, c, ctx, http.MethodGet, "http://agent/slow", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a call past its deadline: %v", err)
	}
	if got, err := call(t, c, context.Background(), http.MethodGet, "http://agent/fast?ok", ""); err != nil || got != "ok" {
		t.Fatalf("the next call: %q, %v", got, err)
	}
	if n := s.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (the cancelled one is dropped)", n)
	}
}

// TestUnixUnreadBody: a response closed with a large unread rest drops its
// connection instead of reading it all; a short rest is drained and the
// connection kept.
func TestUnixUnreadBody(t *testing.T) {
	s := serveUnix(t, filepath.Join(t.TempDir(), "api.sock"), echo)
	c := Unix(s.path)
	ctx := context.Background()
	open := func(body string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://agent/echo", strings.NewReader(body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	open("short")
	open("short")
	if n := s.conns.Load(); n != 1 {
		t.Fatalf("%d connections after short unread answers, want 1", n)
	}
	open(strings.Repeat("y", 10*maxDrain))
	open("short")
	if n := s.conns.Load(); n != 2 {
		t.Fatalf("%d connections after a large unread answer, want 2", n)
	}
}

// TestUnixNoAnswerNotRetried: a POST whose connection closes without an
// answer (the server died handling it) fails instead of being sent again,
// since the server may have applied it.
func TestUnixNoAnswerNotRetried(t *testing.T) {
	var dies atomic.Int64
	s := serveUnix(t, filepath.Join(t.TempDir(), "api.sock"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/die" {
			echo(w, r)
			return
		}
		dies.Add(1)
		_, _ = io.ReadAll(r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}))
	c := Unix(s.path)
	ctx := context.Background()
	if _, err := call(t, c, ctx, http.MethodGet, "http://agent/echo?warm", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := call(t, c, ctx, http.MethodPost, "http://agent/die", "earn"); !errors.Is(err, errNoAnswer) {
		t.Fatalf("a POST answered by a closed connection: %v", err)
	}
	if n := dies.Load(); n != 1 {
		t.Fatalf("the POST reached the server %d times, want 1", n)
	}
}
