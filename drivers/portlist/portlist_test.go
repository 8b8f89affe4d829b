package portlist

import (
	"reflect"
	"testing"
)

func TestCandidates(t *testing.T) {
	dev := []string{"tty0", "ttyS0", "ttyUSB1", "ttyACM0", "null", "ttyUSB0", "pts", "loyalty-scanner-honeywell", "loyalty-scanner"}
	byID := map[string]string{
		"usb-Honeywell_Scanner_123-if00": "../../ttyACM0",
		"usb-FTDI_Printer-if00-port0":    "/dev/ttyUSB0",
	}
	want := []Port{
		{Path: "/dev/loyalty-scanner"},
		{Path: "/dev/loyalty-scanner-honeywell"},
		{Path: "/dev/serial/by-id/usb-FTDI_Printer-if00-port0", Target: "/dev/ttyUSB0"},
		{Path: "/dev/serial/by-id/usb-Honeywell_Scanner_123-if00", Target: "/dev/ttyACM0"},
		{Path: "/dev/ttyACM0"},
		{Path: "/dev/ttyUSB0"},
		{Path: "/dev/ttyUSB1"},
	}
	if got := Candidates(dev, byID); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if got := Candidates([]string{"tty0", "ttyS0"}, nil); len(got) != 0 {
		t.Fatalf("no serial devices: got %+v", got)
	}
}

func TestList(t *testing.T) {
	ports, err := List()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if p.Path == "" {
			t.Fatalf("empty path in %+v", ports)
		}
	}
}
