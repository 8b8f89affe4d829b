package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
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
	"github.com/offline-loyalty/terminal/headoffice/hqpg"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/sync/syncproto"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkFanIn: many terminals on one head office on its embedded store
// (a separate process), each sending one event a second; head office's CPU
// and peak memory (from /proc) and the p99 of ack latency. FANIN_TERMINALS
// (default 1000) and FANIN_SECONDS (default 10) size it.
func BenchmarkFanIn(b *testing.B) {
	n, secs := envInt("FANIN_TERMINALS", 1000), envInt("FANIN_SECONDS", 10)
	raiseFileLimit()
	for range b.N {
		fanIn(b, fanInRun{terminals: n, dur: time.Duration(secs) * time.Second, every: time.Second})
	}
}

// BenchmarkFanInPostgres: many terminals over two head office processes on
// one PostgreSQL (started for the run, on the same machine), each terminal
// sending an event every two seconds to the process it connected to; the
// p99 of ack latency, and each process's CPU and peak memory.
// FANIN_PG_TERMINALS (default 2000) and FANIN_SECONDS (default 10) size it.
func BenchmarkFanInPostgres(b *testing.B) {
	n, secs := envInt("FANIN_PG_TERMINALS", 2000), envInt("FANIN_SECONDS", 10)
	raiseFileLimit()
	for range b.N {
		fanIn(b, fanInRun{terminals: n, dur: time.Duration(secs) * time.Second, every: 2 * time.Second, postgres: true})
	}
}

// raiseFileLimit allows one socket per terminal, here and in head office.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

type fanInRun struct {
	terminals int
	dur       time.Duration
	every     time.Duration // between two events of one terminal
	postgres  bool          // two head office processes on PostgreSQL, or one on the embedded store
}

type simTerminal struct {
	id   string
	key  ed25519.PrivateKey
	ws   *websocket.Conn
	seq  uint64
	head string
}

func fanIn(b *testing.B, run fanInRun) {
	ctx := context.Background()
	dir := b.TempDir()
	where := []string{"--data", dir}
	procs := 1
	if run.postgres {
		url := hqtest.Postgres(b).NewDatabase(b)
		if out, err := try("headoffice", "migrate", "--db", url); err != nil {
			b.Fatal(out, err)
		}
		where, procs = []string{"--db", url}, 2
	}
	var hqs []*daemon
	var addrs []string
	for range procs {
		addr := freePort(b)
		hq := &daemon{t: b, name: "headoffice", args: append([]string{"serve", "--listen", addr, "--joins-per-minute", "0"}, where...), ready: listening("tcp", addr)}
		hq.start()
		defer hq.kill()
		hqs, addrs = append(hqs, hq), append(addrs, addr)
	}
	// The terminals are registered through the admin API: the socket of
	// the embedded store's head office, or a head office opened on the
	// database in this process.
	admin, done, err := adminClient(ctx, dir, run.postgres, where)
	if err != nil {
		b.Fatal(err)
	}
	defer done()

	n := run.terminals
	terms := make([]*simTerminal, n)
	for i := range terms {
		var added map[string]string
		if err := admin.Do(ctx, http.MethodPost, "/admin/terminals", adminapi.Body(map[string]string{"Store": fmt.Sprint("s", i%50), "Name": fmt.Sprint("t", i)}), &added); err != nil {
			b.Fatal(err)
		}
		pub, priv, _ := ed25519.GenerateKey(nil)
		body, _ := json.Marshal(syncproto.JoinRequest{Code: added["code"], Key: pub})
		resp, err := http.Post("http://"+addrs[i%procs]+"/v1/join", "application/json", bytes.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("join: %v %v", err, resp)
		}
		resp.Body.Close()
		terms[i] = &simTerminal{id: added["terminal"], key: priv}
	}
	for i, t := range terms {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+addrs[i%procs]+"/v1/sync", nil)
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		t.ws = ws
		// Version 2, as tills speak it: head office MACs every message (the
		// load generator does not check them).
		dh, _ := ecdh.X25519().GenerateKey(rand.Reader)
		_ = ws.WriteMessage(websocket.TextMessage, syncproto.Encode(syncproto.Message{Type: syncproto.TypeHello, Version: syncproto.Version, Terminal: t.id, Epoch: "ep",
			DH: dh.PublicKey().Bytes()}))
		ch := readMsg(b, ws)
		_ = ws.WriteMessage(websocket.TextMessage, syncproto.Encode(syncproto.Message{Type: syncproto.TypeProof, Sig: ed25519.Sign(t.key, syncproto.Statement(t.id, ch.Session, ch.Nonce))}))
		if w := readMsg(b, ws); w.Type != syncproto.TypeWelcome {
			b.Fatalf("%s: %+v", t.id, w)
		}
		_ = ws.WriteMessage(websocket.TextMessage, syncproto.Encode(syncproto.Message{Type: syncproto.TypeCursors}))
	}

	cpu0 := make([]time.Duration, procs)
	for p, hq := range hqs {
		cpu0[p] = procCPU(b, hq.cmd.Process.Pid)
	}
	start := time.Now()
	var mu stdsync.Mutex
	// A terminal's first event creates its chain, its member and its
	// figures: those acks are reported apart, the run's figures are of the
	// events after them.
	var lat, first []time.Duration
	var wg stdsync.WaitGroup
	for i, t := range terms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the terminals over the period, as real ones are.
			time.Sleep(time.Duration(i) * run.every / time.Duration(n))
			tick := time.NewTicker(run.every)
			defer tick.Stop()
			for time.Since(start) < run.dur {
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
					// Only acks are decoded: the member snapshots a real
					// terminal applies would cost this machine's CPU,
					// which head office and the database are measured on.
					_ = t.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
					_, raw, err := t.ws.ReadMessage()
					if err != nil {
						b.Error(err)
						return
					}
					if !bytes.HasPrefix(raw, []byte(`{"type":"ack"`)) {
						continue
					}
					m, err := syncproto.Decode(raw)
					if err != nil {
						b.Error(err)
						return
					}
					if m.Seq >= t.seq {
						break
					}
				}
				d := time.Since(sent)
				mu.Lock()
				if t.seq == 1 {
					first = append(first, d)
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
				<-tick.C
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	slices.Sort(lat)
	slices.Sort(first)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	firstP99 := first[len(first)*99/100]
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ack-ms")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ack-ms")
	var procsLine []string
	var peakMax float64
	for p, hq := range hqs {
		cpu := procCPU(b, hq.cmd.Process.Pid) - cpu0[p]
		peak := float64(procPeakRSS(b, hq.cmd.Process.Pid)) / (1 << 20)
		peakMax = max(peakMax, peak)
		procsLine = append(procsLine, fmt.Sprintf("head office %d: CPU %.0f%% of one core, peak memory %.0f MB", p+1, 100*cpu.Seconds()/wall.Seconds(), peak))
		if p == 0 {
			b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "hq-cpu-%")
		}
	}
	b.ReportMetric(peakMax, "hq-peak-MB")
	store := "the embedded store"
	if run.postgres {
		store = "PostgreSQL"
	}
	b.Logf("%d terminals × 1 event every %v over %d head office process(es) on %s for %v: %d events acked | ack p50 %v p99 %v (target p99 < 100 ms); each terminal's first event: p99 %v | %s",
		n, run.every, procs, store, wall.Round(time.Second), len(lat), p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), firstP99.Round(time.Millisecond), strings.Join(procsLine, "; "))
}

// adminClient returns a client of head office's admin API for a benchmark.
func adminClient(ctx context.Context, dir string, postgres bool, where []string) (*adminapi.Client, func(), error) {
	if !postgres {
		return adminapi.Dial(filepath.Join(dir, adminapi.SocketName)), func() {}, nil
	}
	db, err := hqpg.Open(ctx, where[1], hqpg.Options{Logger: quiet})
	if err != nil {
		return nil, nil, err
	}
	return inProcess(ctx, db)
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
func procPeakRSS(b testing.TB, pid int) int64 {
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
