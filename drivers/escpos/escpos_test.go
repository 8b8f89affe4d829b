package escpos

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/offline-loyalty/terminal/drivers/serialport"
)

func testSlip() Slip {
	return Slip{
		Store: "Corner Store", Time: time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC),
		Member: "Ada Lovelace", Card: "2000000000015",
		Lines:  []Line{{"Coffee beans 1kg", 25}, {"A very long product name that does not fit", 10}},
		Earned: 35, Balance: 455, Expiring: 40, ExpiresOn: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC),
		NextTier: "Gold", ToNext: "45.00 EUR", TierProgressPc: 90,
	}
}

func TestRender(t *testing.T) {
	b := Render(testSlip())
	if !bytes.HasPrefix(b, cmdInit) || !bytes.HasSuffix(b, cmdCut) {
		t.Fatalf("slip must start with ESC @ and end with a cut: %q", b)
	}
	text := string(b)
	for _, want := range []string{
		"Corner Store", "Member: Ada Lovelace", "Card: *********0015",
		"Coffee beans 1kg" + strings.Repeat(" ", 14) + "25\n",
		"A very long product name that 10\n",
		"Points earned" + strings.Repeat(" ", 17) + "35\n",
		"New balance" + strings.Repeat(" ", 18) + "455\n", "40 pts expire 2026-03-31", "Spend 45.00 EUR more for Gold",
		"[###########################...]",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("slip lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "2000000000015") {
		t.Error("slip prints the full card number")
	}
	for _, line := range strings.Split(text, "\n") {
		if len(printableOnly(line)) > Width {
			t.Errorf("line over %d columns: %q", Width, line)
		}
	}
	top := Render(Slip{Card: "X1", Member: "Bob\x1b@\u00e9\u4e16"})
	if strings.Contains(string(top), "more for") || strings.Contains(string(top), "expire") {
		t.Error("top tier, nothing expiring: no tier or expiry lines")
	}
	if !strings.Contains(string(top), "Member: Bob?@\x82?") {
		t.Errorf("control characters and what code page 857 lacks must be replaced, é printed as 0x82: %q", top)
	}
	if strings.Contains(string(top), "Welcome to") {
		t.Error("no tier change: no welcome line")
	}
	if up := string(Render(Slip{Card: "X1", NewTier: "Gold"})); !strings.Contains(up, "Welcome to Gold tier!") {
		t.Errorf("a tier change is not announced:\n%s", up)
	}
}

// printableOnly drops the ESC/POS commands from a line, to measure its text.
func printableOnly(line string) string {
	for _, c := range [][]byte{cmdInit, cmdBoldOn, cmdBoldOff, cmdCenter, cmdLeft, cmdFeedLines, cmdCut} {
		line = strings.ReplaceAll(line, string(c), "")
	}
	return line
}

func TestPrintOverPty(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer master.Close()
	path := filepath.Join(t.TempDir(), "printer")
	if err := os.Symlink(slave.Name(), path); err != nil {
		t.Fatal(err)
	}
	defer slave.Close() // kept open so the master reads to the end, not EIO
	want := Render(testSlip())
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, len(want))
		n, _ := io.ReadFull(master, buf)
		got <- buf[:n]
	}()
	if err := Print(serialport.Config{Path: path, Baud: 19200}, testSlip()); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("printer read back %q\nwant %q", b, want)
	}
}

func TestPrintNoPrinter(t *testing.T) {
	if err := Print(serialport.Config{Path: filepath.Join(t.TempDir(), "absent")}, testSlip()); err == nil {
		t.Fatal("printed to a printer that is not there")
	}
}

func FuzzRender(f *testing.F) {
	f.Add("Store", "Name", "2000000000015", "line", int64(5), 90)
	f.Add("", "\x1b@\x00", "", "\xff\xfe", int64(-1), 1000)
	f.Fuzz(func(t *testing.T, store, member, card, line string, pts int64, pc int) {
		b := Render(Slip{Store: store, Member: member, Card: card, Lines: []Line{{line, pts}}, NextTier: "T", TierProgressPc: pc})
		body := b[len(cmdInit) : len(b)-len(cmdCut)]
		if bytes.Contains(printableBytes(body), []byte{0x1d}) {
			t.Fatalf("text injected a GS command: %q", b)
		}
	})
}

func printableBytes(b []byte) []byte { return []byte(printableOnly(string(b))) }

// TestRenderTurkish: the slip's words come in the language given, in code
// page 857 (selected at the start), Turkish letters as its bytes, the euro
// sign as EUR; every line still fits the roll.
func TestRenderTurkish(t *testing.T) {
	words := Words{Title: "SADAKAT FİŞİ", Member: "Üye: %s", Card: "Kart: %s", Earned: "Kazanılan puan",
		Balance: "Yeni bakiye", NewTier: "%s seviyesine hoş geldiniz!", Expire: "%d puanın süresi %s doluyor", NextTier: "%[2]s: %[1]s daha"}
	b := Render(Slip{Card: "2000000000015", Member: "Şule Güneş", Earned: 12, Balance: 112, NextTier: "Gümüş", ToNext: "488,00 €", Words: &words})
	if !bytes.HasPrefix(b, []byte("\x1b@\x1bt\x0d")) {
		t.Fatalf("code page 857 is not selected first: %q", b[:6])
	}
	for _, want := range []string{"SADAKAT F\x98\x9e\x98", "\x9aye: \x9eule G\x81ne\x9f", "Kazan\x8dlan puan", "G\x81m\x81\x9f: 488,00 EUR daha"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("the slip lacks %q: %q", want, b)
		}
	}
	for _, line := range strings.Split(string(b), "\n") {
		if len(line) > Width+8 { // the commands at a line's start are not printed
			t.Errorf("line over %d columns: %q", Width, line)
		}
	}
}
