// Package i18n holds the terminal app's translations (embedded JSON, one file
// per language) and switches Fyne's lang package between them.
//
// It only knows about words on screen: it must never format money or points,
// and nothing outside the ui packages should import it.
package i18n

import (
	"embed"
	"fmt"
	"os"
	"slices"
	"strings"

	"fyne.io/fyne/v2/lang"
)

//go:embed translations
var translations embed.FS

// Languages are the codes of the languages the screens are translated into,
// in the order the settings screen offers them.
var Languages = []string{"en", "tr"}

// Use loads the translations and makes code ("en", "tr") the language of
// lang.L. An empty code follows the system's locale.
//
// Fyne picks its language from the locale environment when translations are
// added, and has no other way to choose one, so Use sets LANGUAGE and LC_ALL
// for this process before (re)adding them. Screens built afterwards use the
// new language; call Use before building them.
func Use(code string) error {
	if code != "" {
		if !slices.Contains(Languages, code) {
			return fmt.Errorf("language %q: choose one of %v", code, Languages)
		}
		if err := os.Setenv("LANGUAGE", code); err != nil {
			return err
		}
		if err := os.Setenv("LC_ALL", code); err != nil {
			return err
		}
	}
	if err := lang.AddTranslationsFS(translations, "translations"); err != nil {
		return err
	}
	current = code
	if current == "" {
		current = systemLanguage()
	}
	return nil
}

// current is the language Use chose last.
var current = "en"

// Current is the code of the language on screen ("en", "tr").
func Current() string { return current }

// systemLanguage is the language of the locale environment, as Fyne reads
// it, when the screens have it; else English.
func systemLanguage() string {
	for _, v := range []string{"LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"} {
		if s := os.Getenv(v); len(s) >= 2 {
			if code := strings.ToLower(s[:2]); slices.Contains(Languages, code) {
				return code
			}
			return "en"
		}
	}
	return "en"
}
