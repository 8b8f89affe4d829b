// Package appdir finds the operating system's per-user data directory for an
// application. It only computes paths; it never creates or reads anything.
package appdir

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
)

// Data returns the default data directory for the named application:
// $XDG_DATA_HOME/NAME or ~/.local/share/NAME on Linux, %LocalAppData%\NAME on
// Windows, ~/Library/Application Support/NAME on macOS.
func Data(name string) (string, error) {
	switch runtime.GOOS {
	case "windows":
		if d := os.Getenv("LocalAppData"); d != "" {
			return filepath.Join(d, name), nil
		}
		return "", errors.New("LocalAppData is not set: pass --data DIR")
	case "darwin":
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(home, "Library", "Application Support", name), nil
	default:
		if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
			return filepath.Join(d, name), nil
		}
		home, err := os.UserHomeDir()
		if err != nil {
			return "", errors.New("no home directory: pass --data DIR")
		}
		return filepath.Join(home, ".local", "share", name), nil
	}
}
