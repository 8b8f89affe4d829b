package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestMaskDigits(t *testing.T) {
	for in, want := range map[string]string{
		"":                                    "",
		"no digits":                           "no digits",
		"seq 12345678901":                     "seq 12345678901", // 11 digits: not a card
		"card 4000000000000002 blocked":       "card ************0002 blocked",
		"2000000000015":                       "*********0015",
		"a 4000000000000002,5000000000000001": "a ************0002,************0001",
		"hash 12345678901234567890":           "hash 12345678901234567890", // 20 digits
		"x4000000000000002":                   "x************0002",
	} {
		got, changed := MaskDigits(in)
		if got != want || changed != (in != want) {
			t.Errorf("MaskDigits(%q) = %q, %v; want %q", in, got, changed, want)
		}
	}
}

func TestFormats(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, JSON, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("refused", "card", "123456", "err", errors.New("unknown card 4000000000000002"), "n", 3)
	log.Debug("not written")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("not one JSON line: %q (%v)", buf.String(), err)
	}
	if rec["msg"] != "refused" || rec["card"] != "**3456" || rec["err"] != "unknown card ************0002" || rec["n"] != float64(3) {
		t.Fatalf("record %v", rec)
	}
	buf.Reset()
	if log, err = New(&buf, Text, slog.LevelInfo); err != nil {
		t.Fatal(err)
	}
	log.Info("scan", "data", "4000000000000002")
	if s := buf.String(); !strings.Contains(s, "msg=scan data=************0002") || strings.Contains(s, "4000000000000002") {
		t.Fatalf("text record %q", s)
	}
	if _, err := New(&buf, "xml", slog.LevelInfo); !errors.Is(err, ErrFormat) || err.Error() != `log format is text or json, not "xml"` {
		t.Fatalf("bad format: %v", err)
	}
}
