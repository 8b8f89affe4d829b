// Package localeenv names English as the message language when the
// environment's locale names none (C.UTF-8, POSIX.UTF-8), before any other
// package reads it.
//
// Fyne's translation package reads the locale while it initialises and logs
// "Error parsing user locale C" to stderr for such locales, which would put
// stray lines before every CLI verb's one-line output. This package imports
// only syscall, so Go's initialisation order (dependencies first, then by
// import path) runs it before Fyne, which needs os. It sets only LANGUAGE,
// the message-language list that C-family locales leave empty; it must never
// change a locale the user chose.
package localeenv

import "syscall"

func init() {
	if v, ok := syscall.Getenv("LANGUAGE"); ok && v != "" {
		return
	}
	for _, name := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		v, _ := syscall.Getenv(name)
		if v == "" {
			continue
		}
		if languageless(v) {
			_ = syscall.Setenv("LANGUAGE", "en")
		}
		return
	}
}

// languageless reports whether a locale names no language: C or POSIX with an
// encoding ("C" and "POSIX" alone are understood as such by every reader).
func languageless(locale string) bool {
	for _, p := range []string{"C.", "POSIX."} {
		if len(locale) > len(p) && locale[:len(p)] == p {
			return true
		}
	}
	return false
}
