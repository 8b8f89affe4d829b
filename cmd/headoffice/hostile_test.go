package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// dialFrom connects to addr from a loopback address of its own, as another
// machine would.
func dialFrom(local, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 2 * time.Second}
	return d.Dial("tcp", addr)
}

// TestHostileConnections: 2,000 connections from one address that send one
// byte of a 4,000-byte join body are closed — past the address's limit at
// once, the rest within the read timeout — while a terminal from another
// address joins and syncs; an idle kept-alive connection is closed after
// the idle timeout; join attempts past the address's limit get 429 with
// Retry-After; /metrics counts the open and refused connections.
func TestHostileConnections(t *testing.T) {
	raiseFileLimit()
	dir := t.TempDir()
	hqData := filepath.Join(dir, "hq")
	addr := freePort(t)
	hq := &daemon{t: t, name: "headoffice", args: []string{"serve", "--listen", addr, "--data", hqData, "--read-timeout", "4s", "--idle-timeout", "3s"},
		ready: listening("tcp", addr)}
	hq.start()
	defer hq.kill()

	const attackers = 2000
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	for range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialFrom("127.0.0.2", addr)
			if err != nil {
				return
			}
			fmt.Fprintf(c, "POST /v1/join HTTP/1.1\r\nHost: hq\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{")
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	start := time.Now()

	// Meanwhile a terminal joins and syncs.
	hqURL := "ws://" + addr + "/v1/sync"
	var added map[string]string
	if err := json.Unmarshal([]byte(run(t, "headoffice", "terminal", "add", "--data", hqData, "--store", "S1", "--name", "t1", "--json")), &added); err != nil {
		t.Fatal(err)
	}
	tl := &till{id: added["terminal"], data: filepath.Join(dir, "till"), card: "2000000000015"}
	run(t, "pos-agent", "join", "--data", tl.data, "--hq", hqURL, "--code", added["code"])
	run(t, "pos-agent", "enroll", "--data", tl.data, "--card", tl.card)
	run(t, "pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", "3.00", "--ref", "r1")
	tl.serve = &daemon{t: t, name: "pos-agent", args: []string{"serve", "--data", tl.data, "--hq", hqURL}, ready: listening("unix", filepath.Join(tl.data, "agent.sock"))}
	tl.serve.start()
	defer tl.serve.kill()
	drain(t, []*till{tl}, 15*time.Second)

	metric := func(name string) string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return v
			}
		}
		t.Fatalf("no %s in /metrics: %s", name, b)
		return ""
	}
	if refused, _ := strconv.Atoi(metric("headoffice_connections_refused_total")); refused < attackers-preAuthPerAddress {
		t.Fatalf("%d connections refused at accept, want at least %d", refused, attackers-preAuthPerAddress)
	}
	// Every attacking connection is closed within the read timeout.
	deadline := start.Add(4*time.Second + 3*time.Second)
	for _, c := range conns {
		_ = c.SetReadDeadline(deadline)
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("a slow-body connection was still open %v after it stalled", time.Since(start).Round(time.Second))
				}
				break
			}
		}
		c.Close()
	}

	// An idle kept-alive connection is closed after the idle timeout.
	idle, err := dialFrom("127.0.0.4", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(idle, "GET /metrics HTTP/1.1\r\nHost: hq\r\n\r\n")
	_ = idle.SetReadDeadline(time.Now().Add(3*time.Second + 3*time.Second))
	if _, err := io.ReadAll(idle); err != nil {
		t.Fatalf("an idle kept-alive connection stayed open: %v", err)
	}

	// Join attempts from one address past its burst are throttled.
	client := &http.Client{Transport: &http.Transport{DialContext: func(_ context.Context, _, a string) (net.Conn, error) { return dialFrom("127.0.0.3", a) }}}
	throttled := 0
	for range 30 {
		resp, err := client.Post("http://"+addr+"/v1/join", "application/json", strings.NewReader(`{"code":"NOPE-NOPE-NOPE","key":"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			throttled++
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("a throttled join has no Retry-After")
			}
		}
	}
	if throttled != 10 {
		t.Fatalf("%d of 30 join attempts throttled, want 10 (a burst of 20)", throttled)
	}
	if open := metric("headoffice_open_connections"); open == "0" {
		t.Fatal("open connections not counted")
	}
}

// TestPreAuthMemory: 200 connections that each start a 1 MiB hello hold no
// memory of it: before the proof a message may be 4 KiB, and each is closed
// at its limit. Head office's peak memory stays far below what their
// messages would take.
func TestPreAuthMemory(t *testing.T) {
	raiseFileLimit()
	dir := t.TempDir()
	addr := freePort(t)
	hq := &daemon{t: t, name: "headoffice", args: []string{"serve", "--listen", addr, "--data", filepath.Join(dir, "hq")}, ready: listening("tcp", addr)}
	hq.start()
	defer hq.kill()
	const conns, each = 200, 1 << 20
	var wg sync.WaitGroup
	var closed sync.WaitGroup
	var kept atomic.Int32
	for i := range conns {
		wg.Add(1)
		closed.Add(1)
		go func() {
			defer wg.Done()
			local := fmt.Sprintf("127.0.0.%d", 2+i/25)
			d := websocket.Dialer{NetDial: func(_, a string) (net.Conn, error) { return dialFrom(local, a) }, HandshakeTimeout: 5 * time.Second}
			ws, _, err := d.Dial("ws://"+addr+"/v1/sync", nil)
			if err != nil {
				t.Errorf("dial: %v", err)
				closed.Done()
				return
			}
			go func() {
				defer closed.Done()
				_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
				var ne net.Error
				if _, _, err := ws.ReadMessage(); err == nil || errors.As(err, &ne) && ne.Timeout() {
					kept.Add(1) // still open after 10 s
				}
			}()
			w, err := ws.NextWriter(websocket.TextMessage)
			if err != nil {
				return
			}
			chunk := []byte(`{"type":"hello","terminal":"` + strings.Repeat("x", 64<<10))
			for n := 0; n < each; n += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	closed.Wait()
	if kept.Load() != 0 {
		t.Fatalf("%d of %d connections were kept open with an oversized hello", kept.Load(), conns)
	}
	if peak := procPeakRSS(t, hq.cmd.Process.Pid); peak > 100<<20 {
		t.Fatalf("head office's peak memory %d MiB with %d unfinished hellos of %d KiB", peak>>20, conns, each>>10)
	}
}
