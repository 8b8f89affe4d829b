package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/agent/localapi"
)

// bin is the pos-agent binary built once for the tests in this package.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pos-agent-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "pos-agent")
	// -trimpath as everywhere in the Makefile: go vet has compiled every
	// package of the app already, this only links.
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build pos-agent:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type run struct {
	stdout, stderr string
	code           int
}

func posAgent(t *testing.T, args ...string) run {
	t.Helper()
	return posAgentIn(t, "", args...)
}

// posAgentIn is posAgent with stdin on its standard input.
func posAgentIn(t *testing.T, stdin string, args ...string) run {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return run{out.String(), errb.String(), code}
}

func mustJSON(t *testing.T, r run, v any) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("stdout is not one JSON object: %q: %v", r.stdout, err)
	}
}

func exportCount(t *testing.T, data string) int {
	t.Helper()
	r := posAgent(t, "export", "--data", data, "--json")
	if r.code != 0 {
		t.Fatalf("export: %s", r.stderr)
	}
	return strings.Count(r.stdout, "\n")
}

func TestBadInputExitsWithOneLine(t *testing.T) {
	data := t.TempDir()
	const card = "4000000000000002"
	var res map[string]any
	mustJSON(t, posAgent(t, "enroll", "--data", data, "--card", card, "--json"), &res)
	mustJSON(t, posAgent(t, "earn", "--data", data, "--card", card, "--amount", "1.00", "--ref", "a", "--json"), &res)
	before := exportCount(t, data)
	cases := [][]string{
		{"earn", "--card", card, "--amount", "-5"},
		{"earn", "--card", card, "--amount", "abc"},
		{"earn", "--card", card, "--amount", "1e3"},
		{"earn", "--card", card, "--amount", "12.345"},
		{"earn", "--card", card, "--amount", "99999999999999999999"},
		{"earn", "--card", card, "--amount", ""},
		{"earn", "--card", "5555", "--amount", "5"},
		{"redeem", "--card", card, "--reward", "coffee"},
		{"redeem", "--card", card, "--reward", "coffee", "--points", "100"},
		{"donate", "--card", card, "--points", "5", "--charity", "nobody"},
		{"void", "--ref", "never"},
		{"refund", "--ref", "a", "--amount", "2.00"},
		{"earn", "--card", card},
		{"earn", "--card", card, "--amount", "5", "stray"},
		{"earn", "--bogus"},
		{"stats", "--day", "yesterday"},
		{"run", "--attach"},
		{"run", "--attach", "--scanner", "sim"},
		{"run", "--window", "100x100"},
		{"run", "--window", "wide"},
	}
	for _, args := range cases {
		for _, asJSON := range []bool{false, true} {
			full := append(append([]string{}, args...), "--data", data)
			if asJSON {
				full = append(full, "--json")
			}
			r := posAgent(t, full...)
			if r.code == 0 {
				t.Errorf("%v: exit 0", full)
			}
			if lines := strings.Count(strings.TrimRight(r.stderr, "\n"), "\n"); lines != 0 || r.stderr == "" {
				t.Errorf("%v: stderr is not one line: %q", full, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("%v: printed %q on stdout", full, r.stdout)
			}
		}
	}
	if after := exportCount(t, data); after != before {
		t.Fatalf("bad input wrote %d events", after-before)
	}
}

// startServe runs `pos-agent serve` on data, with more flags if given, and
// waits for its socket.
func startServe(t *testing.T, data string, flags ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--data", data}, flags...)...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(data, "agent.sock")
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return cmd
		}
	}
	_ = cmd.Process.Kill()
	t.Fatalf("serve did not listen: %s", errb.String())
	return nil
}

// earnLinesTotal checks an earn result's lines against the default
// program (base 12 for 12.50, then only its campaign and surprise lines)
// and returns their sum.
func earnLinesTotal(t *testing.T, res map[string]any) float64 {
	t.Helper()
	lines, _ := res["lines"].([]any)
	want := map[string]float64{"base": 12, "Double Points Tuesday": 12, "surprise": 100}
	var sum float64
	for i, l := range lines {
		m, _ := l.(map[string]any)
		label, _ := m["label"].(string)
		p, _ := m["points"].(float64)
		if w, ok := want[label]; !ok || p != w || (i == 0) != (label == "base") {
			t.Fatalf("earn line %d %v in %v", i, m, res)
		}
		sum += p
	}
	if len(lines) == 0 {
		t.Fatalf("earn result has no lines: %v", res)
	}
	return sum
}

func TestIdempotentAcrossSIGKILL(t *testing.T) {
	data := t.TempDir()
	const card = "4000000000000002"
	srv := startServe(t, data)
	var res map[string]any
	mustJSON(t, posAgent(t, "enroll", "--data", data, "--card", card, "--json"), &res)
	var first, again map[string]any
	mustJSON(t, posAgent(t, "earn", "--data", data, "--card", card, "--amount", "12.50", "--ref", "till-1", "--json"), &first)
	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.Wait()
	// The killed agent left its socket behind; a new one replaces it.
	srv = startServe(t, data)
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	mustJSON(t, posAgent(t, "earn", "--data", data, "--card", card, "--amount", "12.50", "--ref", "till-1", "--json"), &again)
	if fmt.Sprint(first) != fmt.Sprint(again) {
		t.Fatalf("retry after SIGKILL returned %v, first %v", again, first)
	}
	// 12 base points; the default program may add its Tuesday campaign
	// (12 more) and, one checkout in a hundred, the surprise draw (100).
	if p := first["points"]; earnLinesTotal(t, first) != p || first["balance"] != p {
		t.Fatalf("earn result %v", first)
	}
	if n := exportCount(t, data); n != 2 {
		t.Fatalf("%d events, want enroll and one earn", n)
	}
	var m map[string]any
	mustJSON(t, posAgent(t, "member", "--data", data, "--card", card, "--json"), &m)
	if m["balance"] != first["points"] || m["card"] != "************0002" {
		t.Fatalf("member %v", m)
	}
	var st map[string]any
	mustJSON(t, posAgent(t, "status", "--data", data, "--json"), &st)
	for _, k := range []string{"terminal", "online", "queue", "oldest_unsent", "last_sync", "scanner", "rules_version"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status has no %q: %v", k, st)
		}
	}

	// A second agent on the same directory fails fast with a clear message.
	start := time.Now()
	r := posAgent(t, "serve", "--data", data)
	if r.code == 0 || !strings.Contains(r.stderr, "in use") {
		t.Fatalf("second serve: exit %d, %q", r.code, r.stderr)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatal("second serve hung")
	}
	if fi, err := os.Stat(filepath.Join(data, "agent.sock")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", fi.Mode(), err)
	}
}

// TestNothingOnStderrUnderCLocales: every verb's output is exactly what the
// contract says, whatever the locale (Fyne logs locale parse errors at init
// for C.UTF-8 unless internal/localeenv runs first).
func TestNothingOnStderrUnderCLocales(t *testing.T) {
	for _, env := range [][]string{{"LANG=C.UTF-8"}, {"LC_ALL=C.UTF-8"}, {"LANG=C"}, {"LANG=POSIX"}, {"LANG=tr_TR.UTF-8"}, {}} {
		cmd := exec.Command(bin, "version", "--data", t.TempDir())
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v", env, err)
		}
		if errb.Len() != 0 || !strings.HasPrefix(out.String(), "pos-agent ") {
			t.Errorf("%v: stdout %q stderr %q", env, out.String(), errb.String())
		}
	}
}

// TestCurlDrivesTheAPI: a script calls the serving agent's local API with
// curl, as integrations outside the project do: the same answers as the
// CLI's, a retried ref answered once, a bad amount refused in one line, the
// export streamed.
func TestCurlDrivesTheAPI(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl not found: make deps installs it")
	}
	data := t.TempDir()
	srv := startServe(t, data)
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	call := func(path, body string) (string, int) {
		t.Helper()
		args := []string{"-sS", "--unix-socket", filepath.Join(data, "agent.sock"), "-w", "\n%{http_code}"}
		if body != "" {
			args = append(args, "-H", "Content-Type: application/json", "--data-binary", body)
		}
		out, err := exec.Command(curl, append(args, "http://agent"+path)...).Output()
		if err != nil {
			t.Fatalf("curl %s: %v", path, err)
		}
		// The body, then a line with the status (-w).
		i := bytes.LastIndexByte(out, '\n')
		status, err := strconv.Atoi(string(out[i+1:]))
		if i < 0 || err != nil {
			t.Fatalf("curl %s: %q", path, out)
		}
		return string(out[:i]), status
	}
	const card = "4000000000000002"
	if out, code := call("/v1/enroll", `{"card":"`+card+`"}`); code != 200 {
		t.Fatalf("enroll: %d %s", code, out)
	}
	earn := `{"card":"` + card + `","amount":"12.50","ref":"receipt-1"}`
	first, code := call("/v1/earn", earn)
	again, code2 := call("/v1/earn", earn)
	if code != 200 || code2 != 200 || first != again {
		t.Fatalf("earn twice: %d %s, then %d %s", code, first, code2, again)
	}
	out, code := call("/v1/earn", `{"card":"`+card+`","amount":"12.345","ref":"receipt-2"}`)
	var eb struct{ Error, Code string }
	if code != 400 || strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &eb) != nil || eb.Code != "invalid" {
		t.Fatalf("a bad amount: %d %q", code, out)
	}
	out, code = call("/v1/member?card="+card, "")
	var m map[string]any
	var res map[string]any
	if err := json.Unmarshal([]byte(first), &res); err != nil || code != 200 || json.Unmarshal([]byte(out), &m) != nil || m["balance"] != res["points"] {
		t.Fatalf("member %d %s after earn %s", code, out, first)
	}
	if out, code = call("/v1/export", ""); code != 200 || strings.Count(out, "\n") != 2 {
		t.Fatalf("export: %d, %q; want the enroll and one earn", code, out)
	}
}

// TestTokenVerbs: pos-agent token add prints a token once; the POS's curl
// over the TCP address works with it and not without it; token list names
// it without its secret; after token revoke it is refused.
func TestTokenVerbs(t *testing.T) {
	data := t.TempDir()
	addr := freeAddr(t)
	srv := startServe(t, data, "--api", addr)
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	add := posAgent(t, "token add", "--data", data, "--name", "till-pos", "--role", "pos")
	tok := strings.TrimSpace(add.stdout)
	if add.code != 0 || !strings.HasPrefix(tok, "lat_") || strings.Count(add.stdout, "\n") != 1 || !strings.Contains(add.stderr, "shown this once") {
		t.Fatalf("token add: exit %d, stdout %q, stderr %q", add.code, add.stdout, add.stderr)
	}
	if r := posAgent(t, "token add", "--data", data, "--name", "x", "--role", "admin"); r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("token add --role admin: exit %d, %q", r.code, r.stderr)
	}
	status := func(tok string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/status", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(""); got != http.StatusUnauthorized {
		t.Fatalf("no token: %d", got)
	}
	if got := status(tok); got != http.StatusOK {
		t.Fatalf("the POS's token: %d", got)
	}
	list := posAgent(t, "token list", "--data", data)
	if list.code != 0 || !strings.Contains(list.stdout, "till-pos") || !strings.Contains(list.stdout, "pos") || strings.Contains(list.stdout, tok) {
		t.Fatalf("token list: %+v", list)
	}
	if r := posAgent(t, "token revoke", "--data", data, "--name", "till-pos"); r.code != 0 {
		t.Fatalf("token revoke: %+v", r)
	}
	if got := status(tok); got != http.StatusUnauthorized {
		t.Fatalf("a revoked token: %d", got)
	}
}

// TestManagerAdd: the till's manager PIN is set on the machine, from
// standard input, while the agent serves; a second add is refused until
// --replace; the till then checks the PIN set.
func TestManagerAdd(t *testing.T) {
	data := t.TempDir()
	srv := startServe(t, data)
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	add := func(pin string, args ...string) run {
		t.Helper()
		return posAgentIn(t, pin+"\n", append([]string{"manager add", "--data", data}, args...)...)
	}
	if r := add("2468"); r.code != 0 {
		t.Fatalf("manager add: %+v", r)
	}
	if r := add("1357"); r.code == 0 || !strings.Contains(r.stderr, "--replace") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("a second manager add: %+v", r)
	}
	if r := add("12", "--replace"); r.code == 0 || !strings.Contains(r.stderr, "4 to 12 digits") {
		t.Fatalf("a short PIN: %+v", r)
	}
	if r := add("1357", "--replace"); r.code != 0 {
		t.Fatalf("manager add --replace: %+v", r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := localapi.Attach(ctx, filepath.Join(data, "agent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CheckManagerPIN("2468"); !errors.Is(err, agent.ErrBadPIN) {
		t.Fatalf("the replaced PIN: %v", err)
	}
	if err := r.CheckManagerPIN("1357"); err != nil {
		t.Fatalf("the new PIN: %v", err)
	}
}

// freeAddr is a loopback TCP address nothing listens on (for a server the
// test starts next).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
