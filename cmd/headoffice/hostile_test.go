package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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
