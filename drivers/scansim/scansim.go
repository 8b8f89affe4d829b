// Package scansim simulates a serial scanner for the demo and the tests. It
// opens a real pseudo-terminal and points a stable symlink at its slave, the
// way /dev/serial/by-id names a USB scanner; the reader opens that path
// through the real serial code (serialport), so nothing bypasses it. Unplug
// and Replug close the pty and remove the link, then make a new pair.
//
// It never reads what the reader writes and never decodes anything.
package scansim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/creack/pty"
)

// DemoCards are the EAN-13 card numbers of demo members the demo feeder scans.
var DemoCards = []string{"2000000000015", "2000000000022", "2000000000039"}

// DemoInterval is the pause between the demo feeder's scans: long enough for
// a person to watch each checkout screen.
const DemoInterval = 4 * time.Second

// linkName is the simulated device's name inside the simulator's directory.
const linkName = "scanner-sim"

// ErrUnplugged is returned by writes while the simulated scanner is unplugged.
var ErrUnplugged = errors.New("simulated scanner is unplugged")

// Sim is a simulated scanner. Its methods are safe for concurrent use.
type Sim struct {
	dir    string
	ownDir bool
	mu     sync.Mutex
	master *os.File // nil while unplugged
}

// New plugs in a simulated scanner whose device path lives in dir; dir ""
// makes a temporary directory that Close removes.
func New(dir string) (*Sim, error) {
	s := &Sim{dir: dir}
	if dir == "" {
		d, err := os.MkdirTemp("", "scansim-")
		if err != nil {
			return nil, fmt.Errorf("scanner simulator: %w", err)
		}
		s.dir, s.ownDir = d, true
	}
	if err := s.Replug(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Path is the device path to give the reader; it stays the same across
// Unplug and Replug.
func (s *Sim) Path() string { return filepath.Join(s.dir, linkName) }

// Scan sends code as a scanner does: the code, then CR LF.
func (s *Sim) Scan(code string) error { return s.Write([]byte(code + "\r\n")) }

// Write sends raw bytes down the line, for split writes, bursts and garbage.
func (s *Sim) Write(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.master == nil {
		return ErrUnplugged
	}
	if _, err := s.master.Write(b); err != nil {
		return fmt.Errorf("scanner simulator: write: %w", err)
	}
	return nil
}

// Unplug pulls the simulated USB cable: the pty is closed, so the reader's
// next read fails, and the device path disappears.
func (s *Sim) Unplug() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.master == nil {
		return nil
	}
	err := s.master.Close()
	s.master = nil
	if rerr := os.Remove(s.Path()); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return fmt.Errorf("scanner simulator: unplug: %w", err)
	}
	return nil
}

// Replug plugs the simulated scanner back in on a new pty behind the same
// path. It does nothing while plugged in.
func (s *Sim) Replug() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.master != nil {
		return nil
	}
	master, slave, err := pty.Open()
	if err != nil {
		return fmt.Errorf("scanner simulator: open pty: %w", err)
	}
	name := slave.Name()
	slave.Close() // the reader opens it by path
	tmp := s.Path() + ".new"
	os.Remove(tmp)
	if err := os.Symlink(name, tmp); err != nil {
		master.Close()
		return fmt.Errorf("scanner simulator: %w", err)
	}
	if err := os.Rename(tmp, s.Path()); err != nil {
		master.Close()
		return fmt.Errorf("scanner simulator: %w", err)
	}
	s.master = master
	return nil
}

// Close unplugs the scanner and removes the directory New made.
func (s *Sim) Close() error {
	err := s.Unplug()
	if s.ownDir {
		err = errors.Join(err, os.RemoveAll(s.dir))
	}
	return err
}

// Demo scans DemoCards in turn every interval until ctx is done, skipping
// turns while unplugged.
func (s *Sim) Demo(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.Scan(DemoCards[i%len(DemoCards)]) // unplugged: the demo waits for the replug
		}
	}
}
