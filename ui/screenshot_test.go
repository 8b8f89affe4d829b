package ui

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/agent/demo"
	"github.com/offline-loyalty/terminal/internal/xvfbtest"
	"github.com/offline-loyalty/terminal/ui/i18n"
)

// The screenshot test runs the real app (GL driver, software Mesa) under
// Xvfb in a child process: the test binary itself, which TestMain turns into
// the app when shotEnv names an output folder. GLFW must own the process's
// main thread, which only TestMain has.
const (
	shotEnv     = "UI_SCREENSHOT_DIR"
	updateEnv   = "UPDATE_SCREENSHOTS" // set to 1 to rewrite docs/screenshots
	shotTimeout = 3 * time.Minute      // the child seeds a fortnight of demo data first
	// frameWait lets the window draw the last change before it is captured:
	// Capture reads the last frame, it does not draw one.
	frameWait = 2 * time.Second
)

var shots = []string{"checkout.png", "manager.png"}

// shotScreens are the screens the screenshots are taken on, the app full
// screen on each as a till runs it.
var shotScreens = []string{"800x600", "1024x768", "1920x1080"}

func TestMain(m *testing.M) {
	if dir := os.Getenv(shotEnv); dir != "" {
		if err := screenshots(dir); err != nil {
			fmt.Fprintln(os.Stderr, "screenshots:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestScreenshots runs the real app full screen under Xvfb at 800x600,
// 1024x768 and 1920x1080, in English and in Turkish, through a checkout and
// the manager screen: on each the app checks that no text on screen is cut
// short (cutTexts), and the PNGs must be the screen's size and not one flat
// colour. UPDATE_SCREENSHOTS=1 writes them to docs/screenshots (the
// 1024x768 English ones under their plain names).
func TestScreenshots(t *testing.T) {
	update := os.Getenv(updateEnv) == "1"
	docs, _ := filepath.Abs(filepath.Join("..", "docs", "screenshots"))
	for _, size := range shotScreens {
		for _, code := range i18n.Languages {
			t.Run(size+"-"+code, func(t *testing.T) {
				out := t.TempDir()
				display := xvfbtest.StartSize(t, size)
				ctx, cancel := context.WithTimeout(context.Background(), shotTimeout)
				defer cancel()
				app := func() ([]byte, error) {
					cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
					cmd.Env = append(os.Environ(), shotEnv+"="+out, "DISPLAY="+display, "LIBGL_ALWAYS_SOFTWARE=1", "LANGUAGE="+code, "LC_ALL=")
					return cmd.CombinedOutput()
				}
				if b, err := app(); err != nil {
					// Once, under a loaded CI machine, the app stalled until
					// the timeout; its goroutines are dumped (watchdog) and
					// it runs once more. A second failure fails the test.
					t.Logf("the app under Xvfb, first run: %v\n%s", err, b)
					if b, err := app(); err != nil {
						t.Fatalf("the app under Xvfb: %v\n%s", err, b)
					}
				}
				for _, name := range shots {
					img := readPNG(t, filepath.Join(out, name))
					if b := img.Bounds(); fmt.Sprintf("%dx%d", b.Dx(), b.Dy()) != size {
						t.Errorf("%s is %dx%d, want %s", name, b.Dx(), b.Dy(), size)
					}
					if blank(img) {
						t.Errorf("%s is one flat color: nothing was drawn", name)
					}
					if update {
						dst := strings.TrimSuffix(name, ".png") + "-" + size + "-" + code + ".png"
						if size == "1024x768" && code == "en" {
							dst = name
						}
						b, err := os.ReadFile(filepath.Join(out, name))
						if err == nil {
							err = os.WriteFile(filepath.Join(docs, dst), b, 0o644)
						}
						if err != nil {
							t.Fatal(err)
						}
					}
				}
			})
		}
	}
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

func blank(img image.Image) bool {
	b := img.Bounds()
	first := img.At(b.Min.X, b.Min.Y)
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			if img.At(x, y) != first {
				return false
			}
		}
	}
	return true
}

// screenshots runs the app over a demo store and saves the two screens.
func screenshots(dir string) error {
	data, err := os.MkdirTemp("", "ui-shots")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	ctx, cancel := context.WithTimeout(context.Background(), shotTimeout)
	defer cancel()
	// Before the test's deadline: say where the app is stuck, and stop.
	watchdog := time.AfterFunc(shotTimeout/2, func() {
		fmt.Fprintln(os.Stderr, "screenshots: stalled; goroutines:")
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
		os.Exit(3)
	})
	defer watchdog.Stop()
	now := time.Now()
	if _, err := demo.Seed(ctx, data, now, time.Local); err != nil {
		return err
	}
	ag, err := agent.Open(ctx, data, agent.Options{})
	if err != nil {
		return err
	}
	defer ag.Close()
	if err := ag.SetManagerPIN("2468"); err != nil {
		return err
	}
	ag.SetScanner("connected")
	if err := ag.SetIdentity("till-1", "store-7"); err != nil {
		return err
	}
	var shotErr error
	d := Deps{Agent: ag, ExportDir: data} // full screen
	d.ready = func(t *terminal) {
		defer cancel()
		shotErr = drive(t, dir)
	}
	if err := Run(ctx, d); err != nil {
		return err
	}
	return shotErr
}

// drive takes the running app through a checkout and the manager screen.
func drive(t *terminal, dir string) error {
	step := func(f func()) {
		fyne.DoAndWait(f)
		t.br.wait()
		fyne.DoAndWait(func() {}) // results posted by the calls have run
	}
	step(func() {})
	step(func() { t.co.scanned(Scan{Kind: "card", Card: demo.Members[1].Card}) })
	step(func() { t.co.amount.SetText("23.40"); t.co.earn() })
	step(func() { t.co.openRewards() })
	var cut []string
	check := func(screen string) {
		fyne.DoAndWait(func() {
			if min, have := t.w.Content().MinSize(), t.w.Canvas().Size(); min.Width > have.Width+1 || min.Height > have.Height+1 {
				cut = append(cut, fmt.Sprintf("%s: needs %v of the screen's %v", screen, min, have))
			}
			for _, c := range cutTexts(t.w.Content()) {
				cut = append(cut, screen+": "+c)
			}
		})
	}
	check("checkout")
	if err := capture(filepath.Join(dir, "checkout.png")); err != nil {
		return err
	}
	step(func() { t.co.back(); t.showManager() })
	step(func() { t.mgr.pin.SetText("2468"); t.mgr.submitPIN() })
	check("manager")
	if err := capture(filepath.Join(dir, "manager.png")); err != nil {
		return err
	}
	if cut != nil {
		return fmt.Errorf("text cut short at %v: %s", t.w.Canvas().Size(), strings.Join(cut, "; "))
	}
	return nil
}

// capture saves the X screen with xwd: reading GL's front buffer back
// (Canvas.Capture) gives an empty image under Xvfb's software GL.
func capture(path string) error {
	time.Sleep(frameWait)
	raw, err := exec.Command("xwd", "-root", "-silent").Output()
	if err != nil {
		return fmt.Errorf("xwd: %w", err)
	}
	img, err := decodeXWD(raw)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// decodeXWD reads the 32-bit TrueColor X window dumps that xwd writes of a
// 24-bit Xvfb screen.
func decodeXWD(b []byte) (image.Image, error) {
	if len(b) < 100 {
		return nil, errors.New("xwd: short header")
	}
	h := make([]uint32, 25)
	for i := range h {
		h[i] = binary.BigEndian.Uint32(b[i*4:])
	}
	headerSize, width, height, byteOrder := h[0], int(h[4]), int(h[5]), h[7]
	bpp, stride, ncolors := h[11], int(h[12]), h[19]
	rmask, gmask, bmask := h[14], h[15], h[16]
	if bpp != 32 {
		return nil, fmt.Errorf("xwd: %d bits per pixel, want 32", bpp)
	}
	off := int(headerSize) + int(ncolors)*12
	if len(b) < off+stride*height {
		return nil, errors.New("xwd: short pixel data")
	}
	shift := func(m uint32) uint { return uint(bits.TrailingZeros32(m)) }
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for y := range height {
		row := b[off+y*stride:]
		for x := range width {
			var p uint32
			if byteOrder == 0 {
				p = binary.LittleEndian.Uint32(row[x*4:])
			} else {
				p = binary.BigEndian.Uint32(row[x*4:])
			}
			img.Set(x, y, color.RGBA{R: uint8((p & rmask) >> shift(rmask)), G: uint8((p & gmask) >> shift(gmask)),
				B: uint8((p & bmask) >> shift(bmask)), A: 0xff})
		}
	}
	return img, nil
}
