// Package archtest holds the rules of the house about dependencies as tests:
// which packages may import bbolt, Fyne, tarm/serial and gorilla/websocket,
// which way imports point, and that no package is named like a standard one.
// It has no code of its own.
package archtest

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/offline-loyalty/terminal"

type pkg struct {
	ImportPath string
	Name       string
	Imports    []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

func under(path string, prefixes ...string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// TestThirdPartyImports: each heavy dependency is confined to the packages
// whose job it is (non-test imports).
func TestThirdPartyImports(t *testing.T) {
	rules := []struct {
		dep     string
		allowed []string
	}{
		{"go.etcd.io/bbolt", []string{"agent/store", "headoffice/hqbolt", "internal/boltfile"}},
		{"github.com/jackc/pgx", []string{"headoffice/hqpg", "headoffice/hqtest"}}, // hqtest creates the tests' databases
		{"fyne.io/fyne/v2", []string{"ui"}},
		{"github.com/tarm/serial", []string{"drivers/serialport"}},
		{"github.com/gorilla/websocket", []string{"sync"}},
	}
	for _, p := range listPackages(t) {
		for _, imp := range p.Imports {
			for _, r := range rules {
				if under(imp, r.dep) && !under(rel(p.ImportPath), r.allowed...) {
					t.Errorf("%s imports %s; only %v may", rel(p.ImportPath), imp, r.allowed)
				}
			}
		}
	}
}

// TestLayering: dependencies point one way. The terminal (cmd → ui → agent ←
// sync) and head office (cmd → headoffice ← sync/syncserver) share only the
// pure packages (ledger, rules, money, cardnum), which import neither; drivers
// know nothing of the ledger; only the agent itself reaches into its store.
func TestLayering(t *testing.T) {
	shared := []string{"ledger", "rules", "money", "cardnum"}
	forbidden := []struct {
		from []string
		to   string
	}{
		{[]string{"agent", "drivers", "sync", "internal", "headoffice"}, "cmd"},
		{[]string{"agent", "drivers", "sync", "internal", "headoffice"}, "ui"},
		{[]string{"agent", "drivers", "internal"}, "sync"},
		{[]string{"drivers", "internal"}, "agent"},
		{[]string{"agent"}, "drivers"},
		{[]string{"agent", "ui", "drivers"}, "headoffice"},
		{[]string{"headoffice"}, "agent"},
		{[]string{"headoffice"}, "drivers"},
		{[]string{"sync/syncserver", "sync/syncproto"}, "agent"},
		{[]string{"sync/syncserver", "sync/syncproto"}, "headoffice"},
		{[]string{"cmd", "ui", "agent/localapi"}, "agent/store"},
	}
	for _, s := range shared {
		for _, to := range []string{"agent", "headoffice", "sync", "ui", "cmd", "drivers", "internal"} {
			forbidden = append(forbidden, struct {
				from []string
				to   string
			}{[]string{s}, to})
		}
	}
	for _, p := range listPackages(t) {
		from := rel(p.ImportPath)
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := rel(imp)
			for _, f := range forbidden {
				if under(from, f.from...) && under(to, f.to) {
					t.Errorf("%s imports %s: %v must not depend on %s", from, to, f.from, f.to)
				}
			}
		}
	}
}

// TestNoStdlibNames: no package is named like a package of the standard
// library (any of them, imported here or not), which would force aliased
// imports wherever both meet (the lesson of syncthing's old lib/sync and
// its stdsync imports).
func TestNoStdlibNames(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.Name}} {{.ImportPath}}", "std").Output()
	if err != nil {
		t.Fatalf("go list std: %v", err)
	}
	std := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, path, _ := strings.Cut(line, " ")
		// Packages no program can import (internal, vendored, commands)
		// do not count.
		if name == "main" || strings.Contains("/"+path+"/", "/internal/") || strings.HasPrefix(path, "vendor/") {
			continue
		}
		std[name] = path
	}
	if std["sync"] != "sync" || std["scanner"] != "text/scanner" || std["version"] != "go/version" {
		t.Fatalf("the standard library's list is wrong: %d packages", len(std))
	}
	for _, p := range listPackages(t) {
		if path, clash := std[p.Name]; clash && p.Name != "main" {
			t.Errorf("package %s is named %q, like the standard %s", rel(p.ImportPath), p.Name, path)
		}
	}
}
