package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	stdsync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/offline-loyalty/terminal/headoffice/adminapi"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/sync/syncproto"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkFanIn: many terminals on one head office (a separate process),
// each sending one event a second; head office's CPU and peak memory (from
// /proc) and the p99 of ack latency. FANIN_TERMINALS (default 1000) and
// FANIN_SECONDS (default 10) size it.
func BenchmarkFanIn(b *testing.B) {
	n, secs := envInt("FANIN_TERMINALS", 1000), envInt("FANIN_SECONDS", 10)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max // one socket per terminal, here and in head office
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	for range b.N {
		fanIn(b, n, time.Duration(secs)*time.Second)
	}
}

type simTerminal struct {
	id   string
	key  ed25519.PrivateKey
	ws   *websocket.Conn
	seq  uint64
	head string
}

func fanIn(b *testing.B, n int, dur time.Duration) {
	ctx := context.Background()
	dir := b.TempDir()
	addr := freePort(b)
	hq := &daemon{t: b, name: "headoffice", args: []string{"serve", "--listen", addr, "--data", dir}, ready: listening("tcp", addr)}
	hq.start()
	defer hq.kill()
	admin := adminapi.Dial(filepath.Join(dir, adminapi.SocketName))
	url := "ws://" + addr + "/v1/sync"

	terms := make([]*simTerminal, n)
	for i := range terms {
		var added map[string]string
		if err := admin.Do(ctx, http.MethodPost, "/admin/terminals", adminapi.Body(map[string]string{"Store": fmt.Sprint("s", i%50), "Name": fmt.Sprint("t", i)}), &added); err != nil {
			b.Fatal(err)
		}
		pub, priv, _ := ed25519.GenerateKey(nil)
		body, _ := json.Marshal(syncproto.JoinRequest{Code: added["code"], Key: pub})
		resp, err := http.Post("http://"+addr+"/v1/join", "application/json", bytes.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("join: %v %v", err, resp)
		}
		resp.Body.Close()
		terms[i] = &simTerminal{id: added["terminal"], key: priv}
	}
	for _, t := range terms {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		t.ws = ws
		_ = ws.WriteMessage(websocket.TextMessage, syncproto.Encode(syncproto.Message{Type: syncproto.TypeHello, Version: syncproto.Version, Terminal: t.id, Epoch: "ep"}))
		ch := readMsg(b, ws)
		_ = ws.WriteMessage(websocket.TextMessage, syncproto.Encode(syncproto.Message{Type: syncproto.TypeProof, Sig: ed25519.Sign(t.key, syncproto.Statement(t.id, ch.Session, ch.Nonce))}))
		if w := readMsg(b, ws); w.Type != syncproto.TypeWelcome {
			b.Fatalf("%s: %+v", t.id, w)
		}
		_ = ws.WriteMessage(websocket.TextMessage, syncproto.Encode(syncproto.Message{Type: syncproto.TypeCursors}))
	}

	cpu0 := procCPU(b, hq.cmd.Process.Pid)
	start := time.Now()
	var mu stdsync.Mutex
	var lat []time.Duration
	var wg stdsync.WaitGroup
	for i, t := range terms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the terminals over the second, as real ones are.
			time.Sleep(time.Duration(i) * time.Second / time.Duration(n))
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for time.Since(start) < dur {
				t.seq++
				e := ledger.Event{Terminal: t.id, Epoch: "ep", Seq: t.seq, ID: fmt.Sprint("ep-", t.seq), Type: ledger.Earn,
					Member: "M-" + t.id, Card: "9" + strings.Repeat("0", 5) + strconv.Itoa(i), Points: 10, Amount: 1000,
					Currency: "EUR", Ref: fmt.Sprint(t.id, "-", t.seq), Time: time.Now(), HLC: uint64(t.seq), RulesVersion: 1}
				raw := e.Seal(t.head)
				t.head = e.Hash
				sent := time.Now()
				if err := t.ws.WriteMessage(websocket.TextMessage, syncproto.EncodeEvents([][]byte{raw})); err != nil {
					b.Error(err)
					return
				}
				for {
					m := readMsg(b, t.ws)
					if m.Type == syncproto.TypeAck && m.Seq >= t.seq {
						break
					}
				}
				d := time.Since(sent)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
				<-tick.C
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	cpu := procCPU(b, hq.cmd.Process.Pid) - cpu0
	peak := procPeakRSS(b, hq.cmd.Process.Pid)
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ack-ms")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ack-ms")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "hq-cpu-%")
	b.ReportMetric(float64(peak)/(1<<20), "hq-peak-MB")
	b.Logf("%d terminals × 1 event/s for %v: %d events acked | ack p50 %v p99 %v (target p99 < 100 ms) | head office CPU %.0f%% of one core, peak memory %.0f MB (target < 200 MB)",
		n, wall.Round(time.Second), len(lat), p50, p99, 100*cpu.Seconds()/wall.Seconds(), float64(peak)/(1<<20))
}

func readMsg(b *testing.B, ws *websocket.Conn) syncproto.Message {
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, raw, err := ws.ReadMessage()
	if err != nil {
		b.Fatal(err)
	}
	m, err := syncproto.Decode(raw)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// procCPU is a process's user and system CPU time, from /proc.
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which may contain spaces).
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}

// procPeakRSS is a process's peak resident memory (VmHWM), from /proc.
func procPeakRSS(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmHWM")
	return 0
}
