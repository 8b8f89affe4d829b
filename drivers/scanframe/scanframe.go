// Package scanframe cuts the byte stream of a serial scanner into scans: a
// scan ends at CR, LF or CRLF, or, for scanners that send no terminator, when
// the reader sees no byte for an inter-character timeout and calls Flush. A
// scan split across reads is one scan and two scans in one read are two.
//
// A line over MaxLine bytes is refused once and everything up to the next
// terminator is dropped (resynchronisation); control characters and invalid
// UTF-8 are refused. The package is pure: it never reads a port, keeps no
// clock and never decodes what a scan means (that is scancode).
package scanframe

import (
	"errors"
	"fmt"

	"github.com/offline-loyalty/terminal/drivers/scancode"
)

// MaxLine is the longest scan accepted: far above any barcode, QR payload or
// magstripe read, small enough that a babbling device cannot grow memory.
const MaxLine = 4096

// ErrTooLong is the error of a line over MaxLine bytes.
var ErrTooLong = errors.New("scan over the line limit")

// Frame is one scan cut from the stream; Err is set when it is refused, and
// Raw then holds what was read (at most MaxLine bytes of it).
type Frame struct {
	Raw string
	Err error
}

// Framer holds the bytes of an unfinished scan between reads. The zero value
// is ready to use; it is not safe for concurrent use.
type Framer struct {
	buf      []byte
	afterCR  bool // the last byte fed was CR: a following LF belongs to it
	dropping bool // an over-long line was refused: drop up to the next terminator
}

// Feed consumes b and returns the scans it completes.
func (f *Framer) Feed(b []byte) []Frame {
	var out []Frame
	for _, c := range b {
		if c == '\n' && f.afterCR {
			f.afterCR = false
			continue
		}
		f.afterCR = c == '\r'
		if c == '\r' || c == '\n' {
			if fr, ok := f.end(); ok {
				out = append(out, fr)
			}
			continue
		}
		if f.dropping {
			continue
		}
		if len(f.buf) == MaxLine {
			out = append(out, Frame{Raw: string(f.buf), Err: fmt.Errorf("%w of %d bytes; dropped up to the next terminator", ErrTooLong, MaxLine)})
			f.buf = f.buf[:0]
			f.dropping = true
			continue
		}
		f.buf = append(f.buf, c)
	}
	return out
}

// Pending reports whether bytes of an unfinished scan are held.
func (f *Framer) Pending() bool { return len(f.buf) > 0 }

// Flush ends the scan held so far, for a scanner that sends no terminator
// once the inter-character timeout has passed. It returns false when nothing
// is held. An over-long line being dropped ends here too.
func (f *Framer) Flush() (Frame, bool) {
	f.afterCR = false
	return f.end()
}

func (f *Framer) end() (Frame, bool) {
	if f.dropping {
		f.dropping = false
		f.buf = f.buf[:0]
		return Frame{}, false
	}
	if len(f.buf) == 0 {
		return Frame{}, false
	}
	fr := Frame{Raw: string(f.buf)}
	f.buf = f.buf[:0]
	if err := scancode.CheckText(fr.Raw); err != nil {
		fr.Err = err
	}
	return fr, true
}
