package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/offline-loyalty/terminal/agent"
)

// TestSlipAfterEarn: an earn committed by the agent prints its loyalty slip on
// the printer port (a real pty standing in for the printer).
func TestSlipAfterEarn(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	port := tty.Name()
	tty.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := agent.Open(ctx, t.TempDir(), agent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Enroll(ctx, agent.EnrollRequest{Card: "2000000000015", Name: "Ada Lovelace"}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go printSlips(ctx, a, port, a.Status().Seq, log)
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: "2000000000015", Amount: "42.00"}); err != nil {
		t.Fatal(err)
	}
	// slip reads one slip, to its cut.
	slip := func() []byte {
		var got bytes.Buffer
		buf := make([]byte, 4096)
		deadline := time.Now().Add(10 * time.Second)
		for !bytes.Contains(got.Bytes(), []byte{0x1d, 'V'}) && time.Now().Before(deadline) {
			_ = ptmx.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := ptmx.Read(buf)
			got.Write(buf[:n])
		}
		return got.Bytes()
	}
	got := slip()
	for _, want := range []string{"LOYALTY SLIP", "Ada Lovelace", "*********0015", "base", "New balance", "42", "for Silver"} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("slip lacks %q:\n%q", want, got)
		}
	}
	// In Turkish once the till's language is: the slip's words, the earn
	// lines and the tier's name from the rules, in code page 857.
	set := a.Settings()
	set.Language = "tr"
	if err := a.SaveSettings(set); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: "2000000000015", Amount: "10.00"}); err != nil {
		t.Fatal(err)
	}
	got = slip()
	for _, want := range []string{"SADAKAT F\x98\x9e\x98", "temel", "Yeni bakiye", "G\x81m\x81\x9f i\x87in"} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("the Turkish slip lacks %q:\n%q", want, got)
		}
	}
}
