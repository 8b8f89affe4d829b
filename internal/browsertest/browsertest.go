// Package browsertest starts a real headless Chromium (Debian's chromium,
// installed by scripts/deps.sh) for tests that drive web pages through
// chromedp. A missing browser fails the test: it is never skipped. It is
// imported by tests only.
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// New returns a browser tab's context, its own profile in a temporary
// directory, that ends (the browser with it) when the test does or after
// timeout.
func New(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("no chromium on PATH (scripts/deps.sh installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // as root, Chromium has no sandbox
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		// The machine's network is closed: no calls home.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// Submit clicks sel and waits for the page that answers: the new document
// has not the mark left on the old one.
func Submit(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := chromedp.Evaluate[bool](`window.__old = true`)(ctx, tg); err != nil {
			return err
		}
		// Found and clicked in one evaluation: a list the page replaces
		// live cannot swap the button between the two.
		q, _ := json.Marshal(sel)
		if _, err := chromedp.WaitVisible(chromedp.CSS(sel))(ctx, tg); err != nil {
			return err
		}
		clicked, err := chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (e === null) return false; e.click(); return true; })()`, q))(ctx, tg)
		if err != nil {
			return err
		}
		if !clicked {
			return fmt.Errorf("nothing to click at %s", sel)
		}
		for {
			old, err := chromedp.Evaluate[bool](`window.__old === true && document.readyState !== "loading"`)(ctx, tg)
			if err == nil && !old {
				ready, err := chromedp.Evaluate[bool](`document.readyState === "complete"`)(ctx, tg)
				if err == nil && ready {
					return nil
				}
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
}

// Text returns the text of the first element sel (CSS) matches, waiting
// until one does; it reads it in one evaluation, so a list a page replaces
// live cannot swap the element between finding and reading it.
func Text(ctx context.Context, sel string) (string, error) {
	q, err := json.Marshal(sel)
	if err != nil {
		return "", err
	}
	expr := fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e === null ? null : e.innerText; })()`, q)
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[*string](expr))
		if err == nil && v != nil {
			return *v, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("no element matches %s", sel)
			}
			return "", fmt.Errorf("%w (%v)", err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Fill sets the value of the first field sel (CSS) matches, in one
// evaluation (a live list cannot swap the field while it is typed into).
func Fill(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := chromedp.WaitVisible(chromedp.CSS(sel))(ctx, tg); err != nil {
			return err
		}
		q, _ := json.Marshal(sel)
		v, _ := json.Marshal(value)
		ok, err := chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (e === null) return false; e.value = %s; return true; })()`, q, v))(ctx, tg)
		if err == nil && !ok {
			err = fmt.Errorf("no field at %s", sel)
		}
		return err
	})
}
