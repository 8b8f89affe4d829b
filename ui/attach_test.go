package ui

import (
	"context"
	"testing"
	"time"

	"fyne.io/fyne/v2/widget"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/agent/localapi"
)

// TestAttachedApp: the app as a client of an agent another process serves
// (pos-agent run --attach), over a real unix socket: a scan the serving
// agent's scanner reads shows the member, and an earn made on screen is
// written by the serving agent.
func TestAttachedApp(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sock := t.TempDir() + "/agent.sock"
	srv, err := localapi.Listen(sock, "", localapi.Handler(f.ag, nil))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	r, err := localapi.Attach(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	notices, unwatch := r.Watch()
	defer unwatch()
	f.term.ag = r
	// The fixture hands notices to the screen as they come: over the socket
	// they come a moment later than the call that caused them.
	deliver := func(want agent.NoticeKind) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case n := <-notices:
				f.term.notice(n)
				f.settle()
				if n.Kind == want {
					return
				}
			case <-deadline:
				t.Fatalf("no notice of kind %d", want)
			}
		}
	}
	f.ag.Scanned(agent.Scan{Kind: "card", Symbology: "EAN-13", Card: adaCard})
	deliver(agent.NoticeScan)
	if f.term.co.card != adaCard || f.term.co.name.Text != "Ada Lovelace" {
		t.Fatalf("after the serving agent's scan the screen shows %q (card %q)", f.term.co.name.Text, f.term.co.card)
	}
	f.earn("12.50")
	f.wantMsg("Earned", widget.SuccessImportance)
	if m := f.member(adaCard); m.Balance == 0 {
		t.Fatal("the earn made on screen is not in the serving agent's ledger")
	}
	deliver(agent.NoticeEvent)
	f.ag.Scanned(agent.Scan{Kind: "qr", Error: "the token's signature does not verify"})
	deliver(agent.NoticeScan)
	f.wantMsg("signature does not verify", widget.DangerImportance)
}
