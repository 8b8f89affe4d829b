package serialport

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/creack/pty"
)

// openPty opens a real pseudo-terminal and returns its master and a stable
// symlink to its slave, the way /dev/serial/by-id names a USB device.
func openPty(t *testing.T) (*os.File, string) {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	link := filepath.Join(t.TempDir(), "scanner")
	if err := os.Symlink(slave.Name(), link); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	t.Cleanup(func() { master.Close() })
	return master, link
}

func TestReadWriteQuiet(t *testing.T) {
	master, path := openPty(t)
	p, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// quiet: no bytes, no error
	if n, err := p.Read(make([]byte, 16)); n != 0 || err != nil {
		t.Fatalf("quiet port: %d, %v", n, err)
	}
	if _, err := master.Write([]byte("abc\r")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 16)
	for len(got) < 4 {
		n, err := p.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "abc\r" {
		t.Fatalf("read %q: the port must be raw (no CR translation)", got)
	}
	if _, err := p.Write([]byte{0x1b, '@', 0x00, 0xff}); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, 4)
	if _, err := master.Read(back); err != nil || !bytes.Equal(back, []byte{0x1b, '@', 0x00, 0xff}) {
		t.Fatalf("master read %q, %v", back, err)
	}
}

func TestUnplugged(t *testing.T) {
	master, path := openPty(t)
	p, err := Open(Config{Path: path, Baud: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	master.Close()
	os.Remove(path)
	if _, err := p.Read(make([]byte, 16)); !errors.Is(err, ErrUnplugged) {
		t.Fatalf("read after unplug: %v", err)
	}
	if _, err := Open(Config{Path: path}); err == nil {
		t.Fatal("opened a device that has gone")
	}
}

func TestConfigRefused(t *testing.T) {
	for _, c := range []Config{
		{},
		{Path: "/dev/x", Baud: -1},
		{Path: "/dev/x", DataBits: 9},
		{Path: "/dev/x", Parity: "sometimes"},
		{Path: "/dev/x", StopBits: 3},
	} {
		if _, err := Open(c); err == nil {
			t.Errorf("Open(%+v) accepted", c)
		}
	}
}
