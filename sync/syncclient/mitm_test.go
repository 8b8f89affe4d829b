package syncclient_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/rules"
	"github.com/offline-loyalty/terminal/sync/syncclient"
	"github.com/offline-loyalty/terminal/sync/syncproto"
	"github.com/offline-loyalty/terminal/sync/syncserver"
)

// relay is a websocket man in the middle between a terminal and head
// office: it passes every message on, and, while tamper is set, changes
// the rules documents head office sends (keeping their signature).
type relay struct {
	target   string
	tamper   atomic.Bool
	tampered atomic.Int32
}

func (p *relay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	up, _, err := websocket.DefaultDialer.Dial(p.target, nil)
	if err != nil {
		return
	}
	defer up.Close()
	down, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer down.Close()
	go func() {
		for {
			t, b, err := down.ReadMessage()
			if err != nil || up.WriteMessage(t, b) != nil {
				up.Close()
				return
			}
		}
	}()
	for {
		t, b, err := up.ReadMessage()
		if err != nil {
			return
		}
		if m, err := syncproto.Decode(b); err == nil && m.Type == syncproto.TypeRules && p.tamper.Load() {
			m.Rules = json.RawMessage(strings.Replace(string(m.Rules), `"version":50`, `"version":51`, 1))
			m.RulesVersion = 51
			b = syncproto.Encode(m)
			p.tampered.Add(1)
		}
		if down.WriteMessage(t, b) != nil {
			return
		}
	}
}

// TestForgedMessagesRefused: a rules document changed on its way from head
// office (by anything between them that can read the stream) is refused by
// the terminal and never applied; the same document untouched is applied.
func TestForgedMessagesRefused(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln := listenLocal(t)
	hq := serveHQ(t, ln, syncserver.Options{Logger: quiet})
	p := &relay{target: "ws://" + ln.Addr().String() + "/v1/sync"}
	proxy := httptest.NewServer(p)
	defer proxy.Close()
	url := "ws" + strings.TrimPrefix(proxy.URL, "http") + "/v1/sync"

	a, dir, _ := joinedTill(t, hq, p.target, agent.Options{})
	publish := func(version int) {
		d := rules.Default()
		d.Version = version
		b, _ := json.Marshal(d)
		if _, err := hq.SetRules(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	p.tamper.Store(true)
	publish(50)
	go func() { _ = syncclient.Run(ctx, a, dir, url, quiet) }()
	// The terminal drops each connection that brings a forged document and
	// says why in its link state (until the next connection comes up).
	deadline := time.Now().Add(10 * time.Second)
	seen := false
	for !seen || p.tampered.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the forgery was never refused (%d forged documents sent, link error seen %v)", p.tampered.Load(), seen)
		}
		seen = seen || strings.Contains(a.Status().LinkError, "not signed")
		if v := a.Rules().Version; v == 51 {
			t.Fatal("a forged rules document was applied")
		}
		time.Sleep(2 * time.Millisecond)
	}
	p.tamper.Store(false)
	for a.Rules().Version != 50 {
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatal("the genuine rules document never arrived")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
