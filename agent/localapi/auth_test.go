package localapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/agent/localapi"
)

// TestTokens: the TCP address admits only a token made on the machine; a
// POS's token records checkouts but may not adjust, replace cards or read
// the ledger; a manager's may; a revoked token is refused; every refusal is
// one line with a stable code, and changes nothing.
func TestTokens(t *testing.T) {
	ctx := context.Background()
	a, c, srv := serve(t, "127.0.0.1:0")
	tcp := tcpAddr(srv)
	const card = "4000000000000002"
	if _, err := c.Enroll(ctx, agent.EnrollRequest{Card: card}); err != nil {
		t.Fatal(err)
	}
	pos, err := c.AddToken(ctx, "till-pos", agent.RolePOS)
	if err != nil || !strings.HasPrefix(pos.Token, "lat_") || len(pos.Token) < 40 {
		t.Fatalf("token add: %+v %v", pos, err)
	}
	mgr, err := c.AddToken(ctx, "back-office", agent.RoleManager)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddToken(ctx, "till-pos", agent.RoleManager); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("a second token of one name: %v", err)
	}
	if _, err := c.AddToken(ctx, "x", "admin"); !errors.Is(err, agent.ErrInvalid) || !strings.Contains(err.Error(), "pos or manager") {
		t.Fatalf("an unknown role: %v", err)
	}
	call := func(method, path, tok, body string) (int, localapi.ErrorBody) {
		req, _ := http.NewRequest(method, "http://"+tcp+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e localapi.ErrorBody
		if resp.StatusCode != http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || strings.Contains(e.Error, "\n") {
				t.Fatalf("%s %s: a refusal that is not one line of JSON: %v", method, path, err)
			}
		}
		return resp.StatusCode, e
	}
	if err := c.SetManagerPIN(ctx, "2468", false); err != nil {
		t.Fatal(err)
	}
	earn := `{"card":"` + card + `","amount":"10.00"}`
	big := `{"card":"` + card + `","amount":"12000.00","ref":"big"`
	adjust := `{"card":"` + card + `","points":1000,"reason":"test"}`
	for _, tc := range []struct {
		name, method, path, tok, body string
		status                        int
		code                          string
	}{
		{"no token", "POST", "/v1/earn", "", earn, 401, "no_token"},
		{"a made-up token", "POST", "/v1/earn", "lat_" + strings.Repeat("A", 43), earn, 401, "bad_token"},
		{"basic auth", "GET", "/v1/status", "", "", 401, "no_token"},
		{"pos earns", "POST", "/v1/earn", pos.Token, earn, 200, ""},
		{"pos looks up", "GET", "/v1/member?card=" + card, pos.Token, "", 200, ""},
		{"pos adjusts", "POST", "/v1/adjust", pos.Token, adjust, 403, "forbidden"},
		{"pos replaces a card", "POST", "/v1/replace-card", pos.Token, `{"card":"` + card + `","new":"4000000000000010"}`, 403, "forbidden"},
		{"pos exports", "GET", "/v1/export", pos.Token, "", 403, "forbidden"},
		{"pos backs up", "GET", "/v1/backup", pos.Token, "", 403, "forbidden"},
		{"manager adjusts", "POST", "/v1/adjust", mgr.Token, adjust, 200, ""},
		{"pos earns over the cap", "POST", "/v1/earn", pos.Token, big + `}`, 403, "approval_required"},
		{"pos earns over the cap, a wrong PIN", "POST", "/v1/earn", pos.Token, big + `,"manager_pin":"1111"}`, 403, "bad_pin"},
		{"pos earns over the cap, approved", "POST", "/v1/earn", pos.Token, big + `,"manager_pin":"2468"}`, 200, ""},
		{"manager makes a token", "POST", "/v1/tokens", mgr.Token, `{"name":"x","role":"manager"}`, 403, "forbidden"},
	} {
		status, e := call(tc.method, tc.path, tc.tok, tc.body)
		if status != tc.status || e.Code != tc.code {
			t.Errorf("%s: %d %+v, want %d %s", tc.name, status, e, tc.status, tc.code)
		}
	}
	if m, _ := c.Member(ctx, card); m.Balance < 1010+12000 {
		t.Fatalf("balance %d, want 10 earned + 1000 adjusted by the manager + the approved 12000.00 sale", m.Balance)
	}
	if _, e := call("GET", "/v1/status", "", ""); !strings.Contains(e.Error, "pos-agent token add") {
		t.Errorf("the refusal without a token does not say how to get one: %q", e.Error)
	}
	if _, e := call("POST", "/v1/adjust", pos.Token, adjust); !strings.Contains(e.Error, "manager") || !strings.Contains(e.Error, "till-pos") {
		t.Errorf("the refusal of a POS's adjust does not say why: %q", e.Error)
	}

	ts, err := c.Tokens(ctx)
	if err != nil || len(ts) != 2 || ts[0].Name != "till-pos" || ts[0].Role != agent.RolePOS || ts[0].Hash != "" || ts[0].Created.IsZero() {
		t.Fatalf("token list: %+v %v", ts, err)
	}
	raw, _ := json.Marshal(ts)
	if strings.Contains(string(raw), pos.Token) || strings.Contains(string(raw), "hash") {
		t.Fatalf("token list shows secrets: %s", raw)
	}
	if err := c.RevokeToken(ctx, "till-pos"); err != nil {
		t.Fatal(err)
	}
	if status, e := call("POST", "/v1/earn", pos.Token, earn); status != 401 || e.Code != "bad_token" {
		t.Fatalf("a revoked token: %d %+v", status, e)
	}
	if err := c.RevokeToken(ctx, "till-pos"); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("revoking it twice: %v", err)
	}
	if _, err := a.CheckToken(mgr.Token); err != nil {
		t.Fatalf("revoking one token revoked another: %v", err)
	}
}

// TestSocketAdmitsItsOwner: another user of the machine who reaches the
// socket (its mode loosened here, as a careless install might) is refused
// by the peer's credentials; the owner is served. The other user's client
// is curl run as nobody, so the test needs root (CI runs as root).
func TestSocketAdmitsItsOwner(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must run as root: this test runs curl as another user")
		}
		t.Skip("needs root to run a client as another user")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is missing: scripts/deps.sh installs it")
	}
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	a, err := agent.Open(ctx, dir, agent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A directory every user may enter (t.TempDir's parent is private).
	open, err := os.MkdirTemp("", "socket-owner")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(open) })
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(open, "agent.sock")
	srv, err := localapi.Listen(sock, "", localapi.Handler(a, nil))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; a.Close() })
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	run := func(uid uint32) string {
		cmd := exec.Command(curl, "-s", "--unix-socket", sock, "http://agent/v1/status")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("curl as uid %d: %v", uid, err)
		}
		return string(out)
	}
	if out := run(65534); !strings.Contains(out, `"code":"forbidden"`) || !strings.Contains(out, "not uid 65534") {
		t.Fatalf("another user of the socket: %s", out)
	}
	if out := run(0); !strings.Contains(out, `"terminal"`) {
		t.Fatalf("the owner: %s", out)
	}
}
