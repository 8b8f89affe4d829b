package localapi_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/agent/localapi"
)

func serve(t *testing.T, tcp string) (*agent.Agent, *localapi.Client, *localapi.Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	a, err := agent.Open(ctx, dir, agent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := localapi.Listen(agent.SocketPath(dir), tcp, localapi.Handler(a, nil))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; a.Close() })
	return a, localapi.Dial(agent.SocketPath(dir)), srv
}

func TestErrorsKeepTheirKind(t *testing.T) {
	ctx := context.Background()
	_, c, _ := serve(t, "")
	if _, err := c.Enroll(ctx, agent.EnrollRequest{Card: "4000000000000002"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		call func() error
		want error
		code string
	}{
		{func() error { _, err := c.Earn(ctx, agent.EarnRequest{Card: "1", Amount: "5"}); return err }, agent.ErrUnknownCard, "unknown_card"},
		{func() error {
			_, err := c.Redeem(ctx, agent.RedeemRequest{Card: "4000000000000002", Reward: "coffee"})
			return err
		}, agent.ErrInsufficientPoints, "insufficient_points"},
		{func() error {
			_, err := c.Earn(ctx, agent.EarnRequest{Card: "4000000000000002", Amount: "1e3"})
			return err
		}, agent.ErrInvalid, "invalid"},
	}
	for _, tc := range cases {
		err := tc.call()
		var apiErr *localapi.Error
		if !errors.Is(err, tc.want) || !errors.As(err, &apiErr) || apiErr.Code != tc.code {
			t.Errorf("error %v (%T), want %v with code %s", err, err, tc.want, tc.code)
		}
	}
}

// tcpAddr is the server's TCP address.
func tcpAddr(srv *localapi.Server) string {
	for _, a := range srv.Addrs() {
		if a.Network() == "tcp" {
			return a.String()
		}
	}
	return ""
}

// token makes an API token of role.
func token(t *testing.T, a *agent.Agent, role string) string {
	t.Helper()
	tok, err := a.AddToken("test-"+role, role)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestBodiesAreChecked(t *testing.T) {
	a, _, srv := serve(t, "127.0.0.1:0")
	tcp := tcpAddr(srv)
	tok := token(t, a, agent.RolePOS)
	for name, body := range map[string]string{
		"unknown field": `{"card":"1","amount":"5","points":1000}`,
		"not json":      `card=1`,
		"two objects":   `{"card":"1","amount":"5"}{}`,
		"a key twice":   `{"card":"1","amount":"5","amount":"500000"}`,
		"a key's case":  `{"card":"1","Amount":"5"}`,
		"invalid UTF-8": "{\"card\":\"1\",\"amount\":\"5\",\"ref\":\"r\xff\"}",
		"oversized":     `{"card":"` + strings.Repeat("1", 2<<20) + `"}`,
	} {
		req, _ := http.NewRequest("POST", "http://"+tcp+"/v1/earn", bytes.NewBufferString(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusBadRequest
		if name == "oversized" {
			want = http.StatusRequestEntityTooLarge
		}
		if resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", name, resp.StatusCode, want)
		}
	}
}

func TestTCPOnlyOnLoopback(t *testing.T) {
	ifaces, _ := net.InterfaceAddrs()
	for _, a := range ifaces {
		ip, _, _ := net.ParseCIDR(a.String())
		if ip == nil || ip.IsLoopback() || ip.To4() == nil {
			continue
		}
		_, err := localapi.Listen(t.TempDir()+"/s.sock", ip.String()+":0", http.NotFoundHandler())
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Fatalf("listening on %s: %v", ip, err)
		}
		return
	}
	_, err := localapi.Listen(t.TempDir()+"/s.sock", "0.0.0.0:0", http.NotFoundHandler())
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("listening on 0.0.0.0: %v", err)
	}
}

// TestWebPagesRefused: what a page open in the till's browser could send to
// the TCP address is refused before it reaches the agent: a foreign Origin,
// a cross-site fetch, another Host (DNS rebinding), a POST not declared as
// JSON. The same request as a POS integration sends it is served.
func TestWebPagesRefused(t *testing.T) {
	a, _, srv := serve(t, "127.0.0.1:0")
	tcp := tcpAddr(srv)
	tok := token(t, a, agent.RoleManager)
	if _, err := a.Enroll(context.Background(), agent.EnrollRequest{Card: "4000000000000002"}); err != nil {
		t.Fatal(err)
	}
	body := `{"card":"4000000000000002","points":1000000,"reason":"x"}`
	do := func(method, path, ctype string, hdr map[string]string) int {
		req, _ := http.NewRequest(method, "http://"+tcp+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		for k, v := range hdr {
			if k == "Host" {
				req.Host = v
			} else {
				req.Header.Set(k, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for name, c := range map[string]struct {
		ctype string
		hdr   map[string]string
		want  int
	}{
		"a foreign Origin":   {"text/plain", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		"JSON with Origin":   {"application/json", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		"a cross-site fetch": {"application/json", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		"DNS rebinding":      {"application/json", map[string]string{"Host": "evil.example:7070"}, http.StatusForbidden},
		"text/plain":         {"text/plain", nil, http.StatusUnsupportedMediaType},
		"a form":             {"application/x-www-form-urlencoded", nil, http.StatusUnsupportedMediaType},
		"no type":            {"", nil, http.StatusUnsupportedMediaType},
	} {
		if got := do("POST", "/v1/adjust", c.ctype, c.hdr); got != c.want {
			t.Errorf("%s: status %d, want %d", name, got, c.want)
		}
	}
	if got := do("GET", "/v1/member?card=4000000000000002", "", map[string]string{"Host": "evil.example"}); got != http.StatusForbidden {
		t.Errorf("member data to another Host: status %d", got)
	}
	if got := do("GET", "/v1/member?card=4000000000000002", "", nil); got != http.StatusOK {
		t.Errorf("member data to a POS: status %d", got)
	}
	if m, err := a.Member(context.Background(), "4000000000000002"); err != nil || m.Balance != 0 {
		t.Fatalf("a refused request moved points: %+v %v", m, err)
	}
	if got := do("POST", "/v1/adjust", "application/json; charset=utf-8", nil); got == http.StatusForbidden || got == http.StatusUnsupportedMediaType {
		t.Errorf("a POS's JSON request: status %d", got)
	}
	// The manager PIN and the tokens answer on the unix socket only, even
	// to a manager's token.
	body = `{"pin":"2468","name":"x","role":"manager"}`
	for _, path := range []string{"/v1/pin", "/v1/pin/check", "/v1/pin/unlock", "/v1/tokens", "/v1/tokens/revoke"} {
		if got := do("POST", path, "application/json", nil); got != http.StatusForbidden {
			t.Errorf("POST %s over TCP: status %d", path, got)
		}
	}
	if a.HasManagerPIN() {
		t.Fatal("a PIN was chosen over TCP")
	}
}
