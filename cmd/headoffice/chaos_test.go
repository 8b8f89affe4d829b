package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	stdsync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/headoffice/hqtest"
)

// The chaos test runs head office and three terminals as real processes, with
// a TCP proxy between them that cuts connections at random and makes
// outages, and SIGKILLs terminals and head office during the load. On
// PostgreSQL two head office processes share the database, the proxy sends
// each new connection to the next of them, and PostgreSQL itself crashes and
// comes back. Afterwards every terminal's export must equal head office's
// events for it, byte for byte, and the balances must agree.

var bins string // directory with the built headoffice and pos-agent

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hq-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// -trimpath as everywhere in the Makefile: go vet has compiled every
	// package already, this only links.
	build := exec.Command("go", "build", "-trimpath", "-o", dir+"/", ".", "../pos-agent")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	bins = dir
	code := hqtest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

func bin(name string) string { return filepath.Join(bins, name) }

// run runs a command and returns its stdout; it fails the test on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := try(name, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return out
}

func try(name string, args ...string) (string, error) {
	cmd := exec.Command(bin(name), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%v: %s", err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// daemon is a long-running child that the test may kill and restart.
type daemon struct {
	t     testing.TB
	name  string
	args  []string
	ready func() bool
	cmd   *exec.Cmd
	log   *os.File // its standard error, all its lives; shown if the test fails
}

func (d *daemon) start() {
	d.t.Helper()
	if d.log == nil {
		f, err := os.CreateTemp(d.t.TempDir(), d.name+"-*.log")
		if err != nil {
			d.t.Fatal(err)
		}
		d.log = f
		d.t.Cleanup(func() {
			if d.t.Failed() {
				b, _ := os.ReadFile(f.Name())
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				d.t.Logf("%s %v, the end of its log:\n%s", d.name, d.args, strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
			f.Close()
		})
	}
	d.cmd = exec.Command(bin(d.name), d.args...)
	d.cmd.Stdout, d.cmd.Stderr = io.Discard, d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if d.ready() {
			return
		}
	}
	d.t.Fatalf("%s %v did not come up", d.name, d.args)
}

func (d *daemon) kill() {
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	_, _ = d.cmd.Process.Wait()
}

func listening(network, addr string) func() bool {
	return func() bool {
		c, err := net.DialTimeout(network, addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
}

// proxy forwards TCP to its targets, each new connection to the next one
// that answers (a load balancer), and can cut every connection or refuse new
// ones for a while (an outage).
type proxy struct {
	ln      net.Listener
	targets []string
	mu      stdsync.Mutex
	conns   map[net.Conn]bool
	down    bool
	next    int
}

func newProxy(t *testing.T, targets ...string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, targets: targets, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down, first := p.down, p.next
		p.next++
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		p.mu.Lock()
		targets := p.targets
		p.mu.Unlock()
		var up net.Conn
		for i := range targets {
			if up, err = net.Dial("tcp", targets[(first+i)%len(targets)]); err == nil {
				break
			}
		}
		if up == nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close(); c.Close() }()
		go func() { _, _ = io.Copy(c, up); up.Close(); c.Close() }()
	}
}

// retarget sends new connections to other targets and cuts the open ones.
func (p *proxy) retarget(targets ...string) {
	p.mu.Lock()
	p.targets = targets
	p.mu.Unlock()
	p.cut()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *proxy) outage(on bool) {
	p.mu.Lock()
	p.down = on
	p.mu.Unlock()
	if on {
		p.cut()
	}
}

func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type till struct {
	id, data, card string
	serve          *daemon
}

func TestChaos(t *testing.T) {
	t.Run("bolt", func(t *testing.T) { chaos(t, false) })
	t.Run("postgres", func(t *testing.T) { chaos(t, true) })
}

func chaos(t *testing.T, postgres bool) {
	const terminals = 3
	rounds := 40
	if testing.Short() {
		rounds = 12
	}
	dir := t.TempDir()
	// where is how the verbs find head office's data.
	where := []string{"--data", filepath.Join(dir, "hq")}
	var cluster *hqtest.Cluster
	if postgres {
		cluster = hqtest.Postgres(t)
		url := cluster.NewDatabase(t)
		run(t, "headoffice", "migrate", "--db", url)
		where = []string{"--db", url}
	}
	var hqs []*daemon
	var addrs []string
	for range map[bool]int{false: 1, true: 2}[postgres] {
		addr := freePort(t)
		hq := &daemon{t: t, name: "headoffice", args: append([]string{"serve", "--listen", addr}, where...), ready: listening("tcp", addr)}
		hq.start()
		hqs, addrs = append(hqs, hq), append(addrs, addr)
	}
	defer func() {
		for _, hq := range hqs {
			hq.kill()
		}
	}()
	px := newProxy(t, addrs...)
	url := "ws://" + px.ln.Addr().String() + "/v1/sync"
	hqVerb := func(args ...string) []string { return append(args, where...) }

	tills := make([]*till, terminals)
	for i := range tills {
		var added map[string]string
		if err := json.Unmarshal([]byte(run(t, "headoffice", hqVerb("terminal", "add", "--store", fmt.Sprint("store", i%2), "--name", fmt.Sprint("till", i), "--json")...)), &added); err != nil {
			t.Fatal(err)
		}
		tl := &till{id: added["terminal"], data: filepath.Join(dir, fmt.Sprint("till", i)), card: fmt.Sprintf("20000000100%02d", i)}
		run(t, "pos-agent", "join", "--data", tl.data, "--hq", url, "--code", added["code"])
		run(t, "pos-agent", "enroll", "--data", tl.data, "--card", tl.card, "--ref", "enroll-"+tl.card)
		tl.serve = &daemon{t: t, name: "pos-agent", args: []string{"serve", "--data", tl.data}, ready: listening("unix", filepath.Join(tl.data, "agent.sock"))}
		tl.serve.start()
		tills[i] = tl
	}
	defer func() {
		for _, tl := range tills {
			tl.serve.kill()
		}
	}()

	// Chaos beside the load: random cuts and outages of the link.
	stop := make(chan struct{})
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				px.outage(false)
				return
			case <-time.After(time.Duration(50+rng.IntN(250)) * time.Millisecond):
			}
			switch rng.IntN(4) {
			case 0:
				px.outage(true)
				time.Sleep(time.Duration(100+rng.IntN(700)) * time.Millisecond)
				px.outage(false)
			default:
				px.cut()
			}
		}
	}()

	rng := rand.New(rand.NewPCG(3, 4))
	for r := range rounds {
		for _, tl := range tills {
			ref := fmt.Sprintf("%s-r%d", tl.id, r)
			amount := fmt.Sprintf("%d.%02d", 1+rng.IntN(90), rng.IntN(100))
			// Until the agent says it succeeded; a retry of the same ref is
			// idempotent, so a kill mid-call never doubles a checkout.
			for attempt := 0; ; attempt++ {
				if _, err := try("pos-agent", "earn", "--data", tl.data, "--card", tl.card, "--amount", amount, "--ref", ref); err == nil {
					break
				} else if attempt > 50 {
					t.Fatalf("earn %s never succeeded: %v", ref, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if r%5 == 4 {
				_, _ = try("pos-agent", "redeem", "--data", tl.data, "--card", tl.card, "--reward", "coffee", "--ref", ref)
			}
		}
		switch {
		case r%10 == 3: // a terminal dies mid-stream and comes back
			tl := tills[rng.IntN(terminals)]
			tl.serve.kill()
			tl.serve.start()
		case r%10 == 7: // a head office process dies and comes back
			hq := hqs[(r/10)%len(hqs)]
			hq.kill()
			hq.start()
		case postgres && r%10 == 5: // the database crashes and comes back
			if err := cluster.Crash(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
			if err := cluster.Start(); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	<-chaosDone

	// Everything reaches head office once the link is quiet.
	drain(t, tills, 90*time.Second)
	agree(t, tills, rounds+1, hqVerb)
}

// drain waits until every till has sent its whole queue.
func drain(t *testing.T, tills []*till, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, tl := range tills {
		for {
			var st struct {
				Queue  uint64 `json:"queue"`
				Online bool   `json:"online"`
			}
			out, err := try("pos-agent", "status", "--data", tl.data, "--json")
			if err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Queue == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: queue never drained: %s %v", tl.id, out, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// agree checks that each till's export equals head office's events for it,
// byte for byte (and holds at least least events), and that head office's
// balance of its member equals the till's and the sum of the events.
// hqVerb adds where head office's data is to a verb's arguments.
func agree(t *testing.T, tills []*till, least int, hqVerb func(...string) []string) {
	t.Helper()
	for _, tl := range tills {
		exported := run(t, "pos-agent", "export", "--data", tl.data, "--json")
		ingested := run(t, "headoffice", hqVerb("events", "--terminal", tl.id)...)
		if exported != ingested {
			t.Fatalf("%s: export (%d lines) differs from head office's events (%d lines)", tl.id,
				strings.Count(exported, "\n"), strings.Count(ingested, "\n"))
		}
		if n := strings.Count(exported, "\n"); n < least {
			t.Fatalf("%s: only %d events", tl.id, n)
		}
		var sum int64
		for _, line := range strings.Split(strings.TrimSpace(exported), "\n") {
			var e struct {
				Points int64  `json:"points"`
				Member string `json:"member"`
			}
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatal(err)
			}
			sum += e.Points
		}
		var hm, tm struct {
			Balance int64 `json:"balance"`
		}
		if err := json.Unmarshal([]byte(run(t, "headoffice", hqVerb("member", "--card", tl.card, "--json")...)), &hm); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(run(t, "pos-agent", "member", "--data", tl.data, "--card", tl.card, "--json")), &tm); err != nil {
			t.Fatal(err)
		}
		if hm.Balance != sum || tm.Balance != sum {
			t.Fatalf("%s: head office balance %d, terminal balance %d, sum of events %d", tl.id, hm.Balance, tm.Balance, sum)
		}
	}
}
