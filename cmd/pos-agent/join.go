package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/drivers/scancode"
	"github.com/offline-loyalty/terminal/internal/cli"
	"github.com/offline-loyalty/terminal/sync/syncclient"
)

func runJoin(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "join")
	hq := fs.String("hq", "", "head office URL, e.g. wss://hq.example.com/v1/sync")
	code := fs.String("code", "", "one-time join code from headoffice terminal add")
	insecure := fs.Bool("insecure-ws", false, "allow a ws:// URL to another machine (the join code, members and rules then travel in clear)")
	if err := cli.Parse(fs, c, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: join: unexpected argument %q", cli.ErrUsage, fs.Arg(0))
	}
	if err := cli.Require("join", map[string]string{"hq": *hq, "code": *code}); err != nil {
		return err
	}
	if serving(agent.SocketPath(c.Data)) {
		return fmt.Errorf("an agent is serving %s: stop it to join, or join from the app's settings", c.Data)
	}
	a, err := agent.Open(ctx, c.Data, agent.Options{})
	if err != nil {
		return err
	}
	defer a.Close()
	link, err := syncclient.Join(ctx, a, c.Data, *hq, *code, *insecure)
	if err != nil {
		return err
	}
	if err := a.JoinedHQ(link.HQ); err != nil {
		return err
	}
	out := map[string]string{"terminal": link.Terminal, "store": link.Store, "hq": link.HQ}
	return c.Print(out, func(w io.Writer) {
		fmt.Fprintf(w, "joined head office %s as terminal %s of store %s\n", link.HQ, link.Terminal, link.Store)
	})
}

// startLink runs the sync link in the background when this terminal has
// joined head office (hq, when given, overrides the saved URL). A terminal
// that has not joined runs offline; the reason is logged and shown in status.
func startLink(ctx context.Context, a *agent.Agent, dir, hq string, log *slog.Logger) {
	if _, joined, err := syncclient.LoadLink(dir); err != nil || !joined {
		if err == nil && hq != "" {
			err = fmt.Errorf("--hq given but this terminal has not joined: run pos-agent join --hq %s --code CODE", hq)
		}
		if err != nil {
			log.Warn("sync link not started", "err", err)
			a.SetLink(agent.LinkState{Error: err.Error()})
		}
		return
	}
	go func() {
		if err := syncclient.Run(ctx, a, dir, hq, log); err != nil {
			log.Error("sync link stopped", "err", err)
		}
	}()
}

// scanDecoder decodes scans with head office's QR key when the terminal has
// joined, so that signed member QR tokens verify offline.
func scanDecoder(dir string) scancode.Decoder {
	link, ok, err := syncclient.LoadLink(dir)
	if err != nil || !ok || len(link.QRKey) != ed25519.PublicKeySize {
		return scancode.Decoder{}
	}
	return scancode.Decoder{Keys: []ed25519.PublicKey{link.QRKey}}
}
