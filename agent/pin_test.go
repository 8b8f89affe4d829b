package agent_test

import (
	"errors"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/agent"
)

// TestManagerPINLimits: after three wrong PINs each try waits longer (a try
// during the wait is not even checked), after ten the PIN is locked, right
// or wrong, across a restart, until a manager unlocks it.
func TestManagerPINLimits(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	a := open(t, dir, c)
	if err := a.SetManagerPIN("2468"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := a.CheckManagerPIN("0000"); !errors.Is(err, agent.ErrBadPIN) {
			t.Fatalf("wrong PIN %d: %v", i+1, err)
		}
	}
	if err := a.CheckManagerPIN("2468"); !errors.Is(err, agent.ErrPINWait) {
		t.Fatalf("the right PIN at once after three wrong: %v, want a wait", err)
	}
	for i := 3; i < 9; i++ {
		c.add(time.Minute)
		if err := a.CheckManagerPIN("0000"); !errors.Is(err, agent.ErrBadPIN) {
			t.Fatalf("wrong PIN %d: %v", i+1, err)
		}
	}
	c.add(time.Minute)
	if err := a.CheckManagerPIN("1111"); !errors.Is(err, agent.ErrPINLocked) {
		t.Fatalf("tenth wrong PIN: %v, want the lock", err)
	}
	a.Close()
	a = open(t, dir, c)
	c.add(time.Hour)
	if err := a.CheckManagerPIN("2468"); !errors.Is(err, agent.ErrPINLocked) {
		t.Fatalf("the right PIN after a restart, locked: %v", err)
	}
	if err := a.UnlockManagerPIN(); err != nil {
		t.Fatal(err)
	}
	if err := a.CheckManagerPIN("2468"); err != nil {
		t.Fatalf("the right PIN once unlocked: %v", err)
	}
}

// TestReplaceManagerPIN: a second SetManagerPIN is refused; ReplaceManagerPIN
// (pos-agent manager add --replace) sets a new PIN, the old one stops
// working, and a lock of wrong tries is lifted.
func TestReplaceManagerPIN(t *testing.T) {
	c := newClock()
	a := open(t, t.TempDir(), c)
	if err := a.ReplaceManagerPIN("12"); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("a short PIN: %v", err)
	}
	if err := a.SetManagerPIN("2468"); err != nil {
		t.Fatal(err)
	}
	if err := a.SetManagerPIN("1357"); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("a second PIN without replace: %v", err)
	}
	for range 10 {
		c.add(2 * time.Minute)
		_ = a.CheckManagerPIN("0000")
	}
	if err := a.CheckManagerPIN("2468"); !errors.Is(err, agent.ErrPINLocked) {
		t.Fatalf("after ten wrong PINs: %v", err)
	}
	if err := a.ReplaceManagerPIN("1357"); err != nil {
		t.Fatal(err)
	}
	if err := a.CheckManagerPIN("2468"); !errors.Is(err, agent.ErrBadPIN) {
		t.Fatalf("the old PIN: %v", err)
	}
	if err := a.CheckManagerPIN("1357"); err != nil {
		t.Fatalf("the new PIN: %v", err)
	}
}
