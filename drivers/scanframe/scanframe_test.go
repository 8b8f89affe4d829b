package scanframe

import (
	"errors"
	"strings"
	"testing"

	"github.com/offline-loyalty/terminal/drivers/scancode"
)

func feedAll(f *Framer, chunks ...string) []Frame {
	var out []Frame
	for _, c := range chunks {
		out = append(out, f.Feed([]byte(c))...)
	}
	return out
}

func raws(fs []Frame) []string {
	var out []string
	for _, f := range fs {
		if f.Err != nil {
			out = append(out, "ERR:"+f.Raw)
			continue
		}
		out = append(out, f.Raw)
	}
	return out
}

func TestFeed(t *testing.T) {
	cases := []struct {
		name   string
		chunks []string
		want   []string
	}{
		{"CR", []string{"111\r"}, []string{"111"}},
		{"LF", []string{"111\n"}, []string{"111"}},
		{"CRLF", []string{"111\r\n222\r\n"}, []string{"111", "222"}},
		{"CRLF split between reads", []string{"111\r", "\n222\r", "\n"}, []string{"111", "222"}},
		{"split scan", []string{"20000", "000000", "15\r"}, []string{"2000000000015"}},
		{"burst", []string{"a1\rb2\nc3\r\nd4\r"}, []string{"a1", "b2", "c3", "d4"}},
		{"empty lines dropped", []string{"\r\n\r\n\n\rx\r"}, []string{"x"}},
		{"control char refused", []string{"ab\x01cd\r", "ok\r"}, []string{"ERR:ab\x01cd", "ok"}},
		{"invalid utf-8 refused", []string{"ab\xffcd\r", "ok\r"}, []string{"ERR:ab\xffcd", "ok"}},
		{"utf-8 split across reads", []string{"caf\xc3", "\xa9\r"}, []string{"café"}},
	}
	for _, c := range cases {
		var f Framer
		got := raws(feedAll(&f, c.chunks...))
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
		if f.Pending() {
			t.Errorf("%s: bytes left pending", c.name)
		}
	}
}

func TestOverLongResync(t *testing.T) {
	var f Framer
	long := strings.Repeat("9", MaxLine+100)
	out := feedAll(&f, long[:3000], long[3000:], "\r\n", "2000000000015\r")
	if len(out) != 2 || !errors.Is(out[0].Err, ErrTooLong) || len(out[0].Raw) != MaxLine {
		t.Fatalf("over-long line: %d frames, first err %v", len(out), out[0].Err)
	}
	if out[1].Err != nil || out[1].Raw != "2000000000015" {
		t.Fatalf("after resync: %+v", out[1])
	}
	exact := strings.Repeat("8", MaxLine)
	if out := f.Feed([]byte(exact + "\r")); len(out) != 1 || out[0].Err != nil || out[0].Raw != exact {
		t.Fatalf("line of exactly MaxLine refused")
	}
}

func TestFlush(t *testing.T) {
	var f Framer
	if _, ok := f.Flush(); ok {
		t.Fatal("flush of an empty framer returned a frame")
	}
	if out := f.Feed([]byte("2000000000015")); len(out) != 0 || !f.Pending() {
		t.Fatalf("unterminated scan: %v, pending %v", out, f.Pending())
	}
	fr, ok := f.Flush()
	if !ok || fr.Err != nil || fr.Raw != "2000000000015" {
		t.Fatalf("flush: %+v %v", fr, ok)
	}
	// a flush in the middle of a dropped over-long line resynchronises
	f.Feed([]byte(strings.Repeat("x", MaxLine+1)))
	if _, ok := f.Flush(); ok {
		t.Fatal("flush of a dropped line returned a frame")
	}
	if out := f.Feed([]byte("abc\r")); len(out) != 1 || out[0].Raw != "abc" {
		t.Fatalf("after flush of a dropped line: %v", out)
	}
}

func FuzzFeed(f *testing.F) {
	f.Add([]byte("2000000000015\r\n"), 5)
	f.Add([]byte("a\rb\nc\r\n\r\n"), 1)
	f.Add([]byte("\xff\x00\r"), 2)
	f.Add([]byte(strings.Repeat("z", MaxLine+2)+"\rq\r"), 4097)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		var fr Framer
		if split < 0 {
			split = -split
		}
		split %= len(data) + 1
		out := append(fr.Feed(data[:split]), fr.Feed(data[split:])...)
		if last, ok := fr.Flush(); ok {
			out = append(out, last)
		}
		for _, o := range out {
			if len(o.Raw) > MaxLine {
				t.Fatalf("frame of %d bytes", len(o.Raw))
			}
			if o.Err == nil && (o.Raw == "" || scancode.CheckText(o.Raw) != nil || strings.ContainsAny(o.Raw, "\r\n")) {
				t.Fatalf("accepted bad frame %q", o.Raw)
			}
		}
		// splitting the input must not change the result
		var whole Framer
		one := whole.Feed(data)
		if last, ok := whole.Flush(); ok {
			one = append(one, last)
		}
		if strings.Join(raws(one), "\x00|") != strings.Join(raws(out), "\x00|") {
			t.Fatalf("split at %d changed frames: %q vs %q", split, raws(out), raws(one))
		}
	})
}
