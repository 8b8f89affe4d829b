// Package serialport is the only door to github.com/tarm/serial: it opens a
// serial device with our configuration and hides tarm's quirks behind a small
// Port. A read timeout is a quiet port, never end of data; a read error or a
// device node that has gone is ErrUnplugged.
//
// It never frames or decodes what it reads and never retries: reopening an
// unplugged device is the caller's job.
package serialport

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/tarm/serial"
)

// Defaults for a Config field left zero.
const (
	DefaultBaud     = 9600 // what retail scanners and receipt printers ship with
	DefaultDataBits = 8
	DefaultStopBits = 1
)

// ReadTimeout is how long Read waits for a byte before reporting a quiet
// port: tarm's smallest on Unix (0.1 s), so a reader notices a cancel, an
// inter-character timeout or an unplug promptly. Without one tarm blocks
// forever and a Close waits for a byte that may never come.
const ReadTimeout = 100 * time.Millisecond

// ErrUnplugged is returned by Read once the device is gone.
var ErrUnplugged = errors.New("serial device unplugged")

// Config is a port and its line settings; zero fields take the defaults.
type Config struct {
	Path     string // /dev/ttyACM0, /dev/serial/by-id/..., COM3
	Baud     int    // DefaultBaud when 0
	DataBits int    // 5 to 8; DefaultDataBits when 0
	Parity   string // "none" (or ""), "odd", "even", "mark" or "space"
	StopBits int    // 1 or 2; DefaultStopBits when 0
}

// Port is an open serial device.
type Port interface {
	// Read reads what has arrived. (0, nil) means the port was quiet for
	// ReadTimeout; an error wrapping ErrUnplugged means the device is gone
	// and the port must be closed and reopened.
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	Close() error
}

var parities = map[string]serial.Parity{
	"": serial.ParityNone, "none": serial.ParityNone, "odd": serial.ParityOdd,
	"even": serial.ParityEven, "mark": serial.ParityMark, "space": serial.ParitySpace,
}

// tarmConfig checks c and turns it into tarm's configuration.
func (c Config) tarmConfig() (*serial.Config, error) {
	if c.Path == "" {
		return nil, errors.New("serial port: no path")
	}
	t := &serial.Config{Name: c.Path, Baud: c.Baud, Size: byte(c.DataBits), ReadTimeout: ReadTimeout}
	if t.Baud == 0 {
		t.Baud = DefaultBaud
	}
	if c.Baud < 0 {
		return nil, fmt.Errorf("serial port %s: baud rate %d", c.Path, c.Baud)
	}
	if c.DataBits == 0 {
		t.Size = DefaultDataBits
	} else if c.DataBits < 5 || c.DataBits > 8 {
		return nil, fmt.Errorf("serial port %s: %d data bits, want 5 to 8", c.Path, c.DataBits)
	}
	p, ok := parities[c.Parity]
	if !ok {
		return nil, fmt.Errorf("serial port %s: parity %q, want none, odd, even, mark or space", c.Path, c.Parity)
	}
	t.Parity = p
	switch c.StopBits {
	case 0, 1:
		t.StopBits = serial.Stop1
	case 2:
		t.StopBits = serial.Stop2
	default:
		return nil, fmt.Errorf("serial port %s: %d stop bits, want 1 or 2", c.Path, c.StopBits)
	}
	return t, nil
}

// Validate checks c without opening anything, so a caller can refuse a bad
// configuration at once instead of retrying it.
func (c Config) Validate() error {
	_, err := c.tarmConfig()
	return err
}

// Open opens the device c names.
func Open(c Config) (Port, error) {
	t, err := c.tarmConfig()
	if err != nil {
		return nil, err
	}
	p, err := serial.OpenPort(t)
	if err != nil {
		return nil, fmt.Errorf("open serial port %s: %w", c.Path, err)
	}
	return &port{p: p, path: c.Path}, nil
}

type port struct {
	p    *serial.Port
	path string
}

func (p *port) Read(b []byte) (int, error) {
	n, err := p.p.Read(b)
	if n > 0 {
		return n, nil
	}
	// tarm's read timeout comes back as (0, nil) or, through os.File on
	// Linux, (0, io.EOF): both are a quiet port unless the node has gone.
	if err == nil || errors.Is(err, io.EOF) {
		if _, serr := os.Stat(p.path); errors.Is(serr, fs.ErrNotExist) {
			return 0, fmt.Errorf("%w: %s has gone", ErrUnplugged, p.path)
		}
		return 0, nil
	}
	return 0, fmt.Errorf("%w: read %s: %w", ErrUnplugged, p.path, err)
}

func (p *port) Write(b []byte) (int, error) {
	n, err := p.p.Write(b)
	if err != nil {
		return n, fmt.Errorf("write serial port %s: %w", p.path, err)
	}
	return n, nil
}

func (p *port) Close() error { return p.p.Close() }
