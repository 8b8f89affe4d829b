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

func TestBodiesAreChecked(t *testing.T) {
	_, _, srv := serve(t, "127.0.0.1:0")
	var tcp string
	for _, a := range srv.Addrs() {
		if a.Network() == "tcp" {
			tcp = a.String()
		}
	}
	for name, body := range map[string]string{
		"unknown field": `{"card":"1","amount":"5","points":1000}`,
		"not json":      `card=1`,
		"two objects":   `{"card":"1","amount":"5"}{}`,
		"oversized":     `{"card":"` + strings.Repeat("1", 2<<20) + `"}`,
	} {
		resp, err := http.Post("http://"+tcp+"/v1/earn", "application/json", bytes.NewBufferString(body))
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
