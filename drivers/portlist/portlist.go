// Package portlist lists the serial ports a scanner or receipt printer may
// be on: on Linux the /dev/loyalty-scanner* names the pos-agent package's
// udev rule gives scanners, /dev/ttyACM* (USB CDC), /dev/ttyUSB* (USB-serial
// adapters) and the stable /dev/serial/by-id/* names, links with their
// targets; on Windows the COM ports. The matching is pure (Candidates) so it is tested on listings;
// List reads the machine. It never opens a port.
package portlist

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// Port is one candidate.
type Port struct {
	Path   string `json:"path"`             // what to configure: /dev/serial/by-id/... or /dev/ttyACM0 or COM3
	Target string `json:"target,omitempty"` // for a by-id link, the device it points to
}

// ByIDDir holds the stable names udev gives USB serial devices.
const ByIDDir = "/dev/serial/by-id"

// ScannerLink begins the names in /dev that the pos-agent package's udev
// rule gives USB scanners (packaging/linux/pos-agent/60-loyalty-scanner.rules).
const ScannerLink = "loyalty-scanner"

// maxCOM is the highest COM port probed on Windows (COM1 to COM256).
const maxCOM = 256

// Candidates picks the serial devices from the names in /dev and the by-id
// links (name → target as read, relative or absolute). The scanner links
// come first, then the by-id names, as both survive replugging into another
// USB socket; List fills in the scanner links' targets.
func Candidates(devNames []string, byID map[string]string) []Port {
	var out []Port
	var links []string
	for _, n := range devNames {
		if strings.HasPrefix(n, ScannerLink) {
			links = append(links, n)
		}
	}
	sort.Strings(links)
	for _, n := range links {
		out = append(out, Port{Path: "/dev/" + n})
	}
	ids := make([]string, 0, len(byID))
	for n := range byID {
		ids = append(ids, n)
	}
	sort.Strings(ids)
	for _, n := range ids {
		t := byID[n]
		if !filepath.IsAbs(t) {
			t = filepath.Join(ByIDDir, t)
		}
		out = append(out, Port{Path: filepath.Join(ByIDDir, n), Target: filepath.Clean(t)})
	}
	var devs []string
	for _, n := range devNames {
		if strings.HasPrefix(n, "ttyACM") || strings.HasPrefix(n, "ttyUSB") {
			devs = append(devs, n)
		}
	}
	sort.Strings(devs)
	for _, n := range devs {
		out = append(out, Port{Path: "/dev/" + n})
	}
	return out
}

// List returns the candidate ports of this machine.
func List() ([]Port, error) {
	if runtime.GOOS == "windows" {
		return listCOM(), nil
	}
	ents, err := os.ReadDir("/dev")
	if err != nil {
		return nil, fmt.Errorf("list serial ports: %w", err)
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	byID := map[string]string{}
	ids, err := os.ReadDir(ByIDDir)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("list serial ports: %w", err)
	}
	for _, e := range ids {
		if t, err := os.Readlink(filepath.Join(ByIDDir, e.Name())); err == nil {
			byID[e.Name()] = t
		}
	}
	ports := Candidates(names, byID)
	for i, p := range ports {
		if strings.HasPrefix(p.Path, "/dev/"+ScannerLink) {
			if t, err := filepath.EvalSymlinks(p.Path); err == nil && t != p.Path {
				ports[i].Target = t
			}
		}
	}
	return ports, nil
}

// listCOM probes COM1..COM256 by opening \\.\COMn: only present ports open
// (or are busy).
func listCOM() []Port {
	var out []Port
	for i := 1; i <= maxCOM; i++ {
		name := fmt.Sprintf("COM%d", i)
		f, err := os.OpenFile(`\\.\`+name, os.O_RDWR, 0)
		if err == nil {
			f.Close()
			out = append(out, Port{Path: name})
		} else if os.IsPermission(err) {
			out = append(out, Port{Path: name}) // present but held by another program
		}
	}
	return out
}
