package ui

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"fyne.io/fyne/v2/lang"

	"github.com/offline-loyalty/terminal/ui/i18n"
)

// screenStrings is every text the screens pass to lang.L: the literals in
// the source, and the tables that are translated by value.
func screenStrings(t *testing.T) []string {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "L" || sel.X.(*ast.Ident).Name != "lang" {
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok {
				s, _ := strconv.Unquote(lit.Value)
				out = append(out, s)
			}
			return true
		})
	}
	if len(out) < 100 {
		t.Fatalf("found only %d translated literals: the scan is broken", len(out))
	}
	for _, r := range refusals {
		out = append(out, r.text)
	}
	return append(append(out, figureNames...), "none", "connected", "disconnected")
}

func readTranslations(t *testing.T, code string) map[string]string {
	b, err := os.ReadFile(filepath.Join("i18n", "translations", code+".json"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s.json: %v", code, err)
	}
	return m
}

// TestEveryStringIsTranslated: each language has every string on screen and
// nothing else, and no translation is empty.
func TestEveryStringIsTranslated(t *testing.T) {
	want := screenStrings(t)
	for _, code := range i18n.Languages {
		m := readTranslations(t, code)
		for _, s := range want {
			if m[s] == "" {
				t.Errorf("%s.json lacks %q", code, s)
			}
		}
		for k := range m {
			if !slices.Contains(want, k) {
				t.Errorf("%s.json has %q, which no screen shows", code, k)
			}
		}
	}
}

func TestTurkish(t *testing.T) {
	t.Setenv("LANGUAGE", "")
	t.Setenv("LC_ALL", "")
	if err := i18n.Use("tr"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := i18n.Use("en"); err != nil {
			t.Fatal(err)
		}
	}()
	if got := lang.L("Earn"); got != "Puan kazan" {
		t.Fatalf("Earn in Turkish is %q", got)
	}
	if got := lang.L("{{.Points}} pts", map[string]any{"Points": 12}); got != "12 puan" {
		t.Fatalf("points in Turkish: %q", got)
	}
	if err := i18n.Use("fr"); err == nil {
		t.Fatal("an untranslated language was accepted")
	}
}
