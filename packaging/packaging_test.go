package packaging

import (
	"bufio"
	"bytes"
	"debug/elf"
	"debug/pe"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

// The build stamp the tests give build.sh, and what it must become.
const (
	module      = "github.com/offline-loyalty/terminal"
	testVersion = "v9.8.7"
	testCommit  = "packagingtest"
	debVersion  = "9.8.7"
)

var ldflags = "-X " + module + "/internal/buildstamp.Version=" + testVersion +
	" -X " + module + "/internal/buildstamp.Commit=" + testCommit

// work holds every build of this test binary; the builds are shared by the
// tests and made once.
var work string

func TestMain(m *testing.M) {
	var err error
	work, err = os.MkdirTemp("", "packaging-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(work)
	os.Exit(code)
}

// run runs a command and returns its standard output; a failure stops the
// test with the command's output.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// once is a build made the first time a test asks for it.
type once struct {
	sync.Once
	dir string
	out string
	err error
}

func (o *once) get(t *testing.T, build func() (string, string, error)) string {
	t.Helper()
	o.Do(func() { o.dir, o.out, o.err = build() })
	if o.err != nil {
		t.Fatalf("build: %v\n%s", o.err, o.out)
	}
	return o.dir
}

// buildSh runs build.sh with the test's stamp into a new directory of work.
func buildSh(name string, env []string, targets ...string) (string, string, error) {
	dist := filepath.Join(work, name)
	cmd := exec.Command("./build.sh", targets...)
	cmd.Env = append(os.Environ(), append([]string{"VERSION=" + testVersion, "LDFLAGS=" + ldflags, "DIST=" + dist}, env...)...)
	out, err := cmd.CombinedOutput()
	return dist, string(out), err
}

var linuxBuild once

// debs builds the two Debian packages with build.sh, exactly as make package
// does, and returns their paths by package name.
func debs(t *testing.T) map[string]string {
	t.Helper()
	dist := linuxBuild.get(t, func() (string, string, error) { return buildSh("linux", nil, "linux") })
	return map[string]string{
		"pos-agent":  filepath.Join(dist, "pos-agent_"+debVersion+"_amd64.deb"),
		"headoffice": filepath.Join(dist, "headoffice_"+debVersion+"_amd64.deb"),
	}
}

// entry is one line of dpkg-deb -c.
type entry struct {
	mode, owner string
}

func debFiles(t *testing.T, deb string) map[string]entry {
	t.Helper()
	files := map[string]entry{}
	for _, l := range strings.Split(strings.TrimSpace(run(t, nil, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c: odd line %q", l)
		}
		files[strings.TrimPrefix(f[5], ".")] = entry{mode: f[0], owner: f[1]}
	}
	return files
}

func field(t *testing.T, deb, name string) string {
	t.Helper()
	return strings.TrimSpace(run(t, nil, "dpkg-deb", "-f", deb, name))
}

// depends returns the package names of a Depends field.
func depends(s string) []string {
	var names []string
	for _, d := range strings.Split(s, ",") {
		for _, alt := range strings.Split(d, "|") {
			if f := strings.Fields(alt); len(f) > 0 {
				names = append(names, f[0])
			}
		}
	}
	return names
}

// extract unpacks a package's files into a new directory.
func extract(t *testing.T, deb string) string {
	t.Helper()
	dir := t.TempDir()
	run(t, nil, "dpkg-deb", "-x", deb, dir)
	return dir
}

// TestDebPackages checks each package's control fields, every file it
// ships with its mode and owner, its conffiles, and that its maintainer
// scripts are POSIX sh that passes shellcheck.
func TestDebPackages(t *testing.T) {
	pkgs := debs(t)
	tests := []struct {
		pkg       string
		files     map[string]string // path → mode, regular files only
		conffiles []string
	}{
		{"headoffice", map[string]string{
			"/usr/bin/headoffice":                        "-rwxr-xr-x",
			"/usr/lib/systemd/system/headoffice.service": "-rw-r--r--",
			"/etc/headoffice/headoffice.conf":            "-rw-r--r--",
			"/usr/share/doc/headoffice/README.md":        "-rw-r--r--",
		}, []string{"/etc/headoffice/headoffice.conf"}},
		{"pos-agent", map[string]string{
			"/usr/bin/pos-agent":                                   "-rwxr-xr-x",
			"/usr/share/applications/pos-agent.desktop":            "-rw-r--r--",
			"/usr/share/icons/hicolor/scalable/apps/pos-agent.svg": "-rw-r--r--",
			"/etc/xdg/autostart/pos-agent.desktop":                 "-rw-r--r--",
			"/usr/lib/systemd/system/pos-agent-serve.service":      "-rw-r--r--",
			"/etc/pos-agent/serve.conf":                            "-rw-r--r--",
			"/usr/lib/udev/rules.d/60-loyalty-scanner.rules":       "-rw-r--r--",
			"/usr/share/doc/pos-agent/README.md":                   "-rw-r--r--",
		}, []string{"/etc/pos-agent/serve.conf", "/etc/xdg/autostart/pos-agent.desktop"}},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			deb := pkgs[tt.pkg]
			for name, want := range map[string]string{"Package": tt.pkg, "Version": debVersion, "Architecture": "amd64"} {
				if got := field(t, deb, name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			if !slices.Contains(depends(field(t, deb, "Depends")), "adduser") {
				t.Errorf("Depends lacks adduser, which postinst runs")
			}

			got := map[string]string{}
			for path, e := range debFiles(t, deb) {
				if e.owner != "root/root" {
					t.Errorf("%s is owned by %s", path, e.owner)
				}
				if !strings.HasPrefix(e.mode, "d") {
					got[path] = e.mode
				} else if e.mode != "drwxr-xr-x" {
					t.Errorf("directory %s has mode %s", path, e.mode)
				}
			}
			for path, mode := range tt.files {
				if got[path] != mode {
					t.Errorf("%s: mode %q, want %q", path, got[path], mode)
				}
			}
			for path := range got {
				if _, ok := tt.files[path]; !ok {
					t.Errorf("unexpected file %s", path)
				}
			}

			ctl := t.TempDir()
			run(t, nil, "dpkg-deb", "-e", deb, ctl)
			conf, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
			if err != nil {
				t.Fatal(err)
			}
			gotConf := strings.Fields(string(conf))
			sort.Strings(gotConf)
			if !slices.Equal(gotConf, tt.conffiles) {
				t.Errorf("conffiles %v, want %v", gotConf, tt.conffiles)
			}
			for _, s := range []string{"postinst", "prerm", "postrm"} {
				p := filepath.Join(ctl, s)
				st, err := os.Stat(p)
				if err != nil {
					t.Fatalf("%s: %v", s, err)
				}
				if st.Mode().Perm() != 0o755 {
					t.Errorf("%s: mode %v", s, st.Mode().Perm())
				}
				b, _ := os.ReadFile(p)
				if !strings.HasPrefix(string(b), "#!/bin/sh\n") {
					t.Errorf("%s is not a /bin/sh script", s)
				}
				run(t, nil, "shellcheck", "--shell=sh", p)
			}
		})
	}
}

// TestDebVersion: build.sh's mapping of `git describe` to the Debian and
// Windows versions.
func TestDebVersion(t *testing.T) {
	tests := []struct{ describe, deb, file string }{
		{"v1.2.3", "1.2.3", "1.2.3.0"},
		{"v1.2.0-3-gabc1234", "1.2.0+3+gabc1234", "0.0.0.0"},
		{"v1.2.0-3-gabc1234-dirty", "1.2.0+3+gabc1234+dirty", "0.0.0.0"},
		{"767d55a", "0~git767d55a", "0.0.0.0"}, // a commit that starts with digits is no release
		{"12345678-dirty", "0~git12345678+dirty", "0.0.0.0"},
		{"dev", "0~gitdev", "0.0.0.0"},
	}
	for _, tt := range tests {
		out := run(t, nil, "bash", "-c", `source ./build.sh && deb_version "$1" && file_version "$1"`, "bash", tt.describe)
		if got := strings.Fields(out); !slices.Equal(got, []string{tt.deb, tt.file}) {
			t.Errorf("%s: %v, want [%s %s]", tt.describe, got, tt.deb, tt.file)
		}
	}
	// And what dpkg itself makes of the order.
	run(t, nil, "dpkg", "--compare-versions", "0~git767d55a", "lt", "0.0.1")
	run(t, nil, "dpkg", "--compare-versions", "1.2.0+3+gabc1234", "gt", "1.2.0")
	run(t, nil, "dpkg", "--compare-versions", "1.2.0+3+gabc1234", "lt", "1.2.1")
}

// sonameRe finds the names of shared libraries a binary may dlopen.
var sonameRe = regexp.MustCompile(`lib[A-Za-z0-9_+-]+\.so\.[0-9]+`)

// TestDepends: pos-agent's Depends names the Debian package of every library
// the binary links (ELF NEEDED) and of every X11 library GLFW opens at run
// time (cursor, RandR, Xinerama, XInput, VidMode, ...); the OpenGL
// alternatives it tries (EGL, GLES, OSMesa, Vulkan) are fallbacks and not
// required. headoffice links nothing.
func TestDepends(t *testing.T) {
	pkgs := debs(t)
	dir := extract(t, pkgs["pos-agent"])
	bin := filepath.Join(dir, "usr/bin/pos-agent")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	needed, err := f.ImportedLibraries()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(needed, "libGL.so.1") {
		t.Fatalf("pos-agent links %v: no libGL.so.1, is it the Fyne build?", needed)
	}
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	libs := slices.Clone(needed)
	for _, m := range sonameRe.FindAll(raw, -1) {
		if bytes.HasPrefix(m, []byte("libX")) {
			libs = append(libs, string(m))
		}
	}
	sort.Strings(libs)
	libs = slices.Compact(libs)
	deps := depends(field(t, pkgs["pos-agent"], "Depends"))
	for _, lib := range libs {
		owners := dpkgOwners(t, lib)
		if !slices.ContainsFunc(owners, func(p string) bool { return slices.Contains(deps, p) }) {
			t.Errorf("%s (package %v) is not in Depends %v", lib, owners, deps)
		}
	}
	t.Logf("libraries covered by Depends: %v", libs)

	hq := filepath.Join(extract(t, pkgs["headoffice"]), "usr/bin/headoffice")
	f, err = elf.Open(hq)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if l, _ := f.ImportedLibraries(); len(l) > 0 {
		t.Errorf("headoffice links %v; it is meant to be static", l)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("headoffice has a program interpreter; it is meant to be static")
		}
	}
}

// dpkgOwners returns the installed packages that ship a library file.
func dpkgOwners(t *testing.T, lib string) []string {
	t.Helper()
	out, err := exec.Command("dpkg", "-S", "*/"+lib).Output()
	if err != nil {
		t.Fatalf("dpkg -S %s: no installed package has it (%v)", lib, err)
	}
	var owners []string
	for _, l := range strings.Split(string(out), "\n") {
		pkgs, _, ok := strings.Cut(l, ": /")
		if !ok || strings.HasPrefix(l, "diversion") {
			continue
		}
		for _, p := range strings.Split(pkgs, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(p), ":")
			owners = append(owners, name)
		}
	}
	return owners
}

// unit is a parsed systemd unit file: section → key → values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	var sec string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[':
			sec = strings.Trim(l, "[]")
			u[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || sec == "" {
				t.Fatalf("%s: odd line %q", path, l)
			}
			u[sec][k] = append(u[sec][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// env parses an EnvironmentFile (KEY=value lines, comments).
func envFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: odd line %q", path, l)
		}
		env[k] = v
	}
	return env
}

var varRe = regexp.MustCompile(`\$\{(\w+)\}`)

// execStart expands an ExecStart line as systemd does: "${VAR}" is replaced
// inside its word and always leaves one word; a word that is just "$VAR"
// becomes the value split on white space (none when empty). The units use
// no quotes or specifiers, and the tests check that.
func execStart(t *testing.T, line string, env map[string]string) []string {
	t.Helper()
	if strings.ContainsAny(line, `"'%\`) {
		t.Fatalf("ExecStart %q uses quotes, escapes or specifiers the test does not expand", line)
	}
	var argv []string
	for _, w := range strings.Fields(line) {
		if strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "${") {
			v, ok := env[w[1:]]
			if !ok {
				t.Fatalf("ExecStart uses %s, which the EnvironmentFile does not set", w)
			}
			argv = append(argv, strings.Fields(v)...)
			continue
		}
		argv = append(argv, varRe.ReplaceAllStringFunc(w, func(m string) string {
			v, ok := env[m[2:len(m)-1]]
			if !ok {
				t.Fatalf("ExecStart uses %s, which the EnvironmentFile does not set", m)
			}
			return v
		}))
	}
	return argv
}

// TestUnitHardening reads the shipped units: who they run as, where their
// data and settings are, and every hardening setting, so that none is lost
// unnoticed. (systemd-analyze verify and security run on the installed
// units in TestInstall.)
func TestUnitHardening(t *testing.T) {
	pkgs := debs(t)
	common := map[string]string{
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectKernelLogs":       "yes",
		"ProtectControlGroups":    "yes",
		"ProtectClock":            "yes",
		"ProtectHostname":         "yes",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
		"RestrictNamespaces":      "yes",
		"RestrictRealtime":        "yes",
		"RestrictSUIDSGID":        "yes",
		"LockPersonality":         "yes",
		"MemoryDenyWriteExecute":  "yes",
		"SystemCallArchitectures": "native",
		"CapabilityBoundingSet":   "",
		"AmbientCapabilities":     "",
		"UMask":                   "0077",
		"StateDirectoryMode":      "0700",
		"Restart":                 "on-failure",
	}
	tests := []struct {
		pkg, unit, user, state, conf, exec string
		extra                              map[string]string
	}{
		{"headoffice", "headoffice.service", "headoffice", "headoffice", "/etc/headoffice/headoffice.conf",
			"/usr/bin/headoffice serve --data /var/lib/headoffice ",
			map[string]string{"PrivateDevices": "yes", "PrivateUsers": "yes"}},
		{"pos-agent", "pos-agent-serve.service", "pos-agent", "pos-agent", "/etc/pos-agent/serve.conf",
			"/usr/bin/pos-agent serve --data /var/lib/pos-agent ",
			map[string]string{"DevicePolicy": "closed", "SupplementaryGroups": "dialout"}},
	}
	for _, tt := range tests {
		t.Run(tt.unit, func(t *testing.T) {
			root := extract(t, pkgs[tt.pkg])
			u := parseUnit(t, filepath.Join(root, "usr/lib/systemd/system", tt.unit))
			svc := u["Service"]
			want := map[string]string{"User": tt.user, "Group": tt.user, "StateDirectory": tt.state, "EnvironmentFile": tt.conf}
			for k, v := range common {
				want[k] = v
			}
			for k, v := range tt.extra {
				want[k] = v
			}
			for k, v := range want {
				if got := svc[k]; !slices.Contains(got, v) {
					t.Errorf("%s=%q, want %q", k, got, v)
				}
			}
			if f := svc["SystemCallFilter"]; !slices.Contains(f, "@system-service") || !slices.Contains(f, "~@privileged") {
				t.Errorf("SystemCallFilter=%q, want @system-service and ~@privileged", f)
			}
			if got := u["Install"]["WantedBy"]; !slices.Equal(got, []string{"multi-user.target"}) {
				t.Errorf("WantedBy=%q", got)
			}
			ex := svc["ExecStart"]
			if len(ex) != 1 || !strings.HasPrefix(ex[0], tt.exec) {
				t.Fatalf("ExecStart=%q, want %q...", ex, tt.exec)
			}
			// Every variable ExecStart uses is set by the shipped config.
			execStart(t, ex[0], envFile(t, filepath.Join(root, strings.TrimPrefix(tt.conf, "/"))))
		})
	}
}

// TestUdevRule parses the scanner rule: every line is udev's KEY[{attr}]OP"value"
// syntax with known keys, each scanner maker's USB vendor id gets a name,
// and every matched device gets group dialout, mode 0660, uaccess and the
// /dev/loyalty-scanner link. (Debian 12's udevadm has no verify command;
// the rule is not loaded on this machine, which has no udev.)
func TestUdevRule(t *testing.T) {
	root := extract(t, debs(t)["pos-agent"])
	name := "60-loyalty-scanner.rules"
	b, err := os.ReadFile(filepath.Join(root, "usr/lib/udev/rules.d", name))
	if err != nil {
		t.Fatal(err)
	}
	tok := regexp.MustCompile(`^\s*([A-Z_]+)(\{[A-Za-z0-9_]+\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(,|$)`)
	known := map[string]bool{"ACTION": true, "SUBSYSTEM": true, "KERNEL": true, "ATTRS": true, "ENV": true,
		"GROUP": true, "MODE": true, "TAG": true, "SYMLINK": true, "OPTIONS": true, "GOTO": true, "LABEL": true}
	vendors := map[string]string{}
	var assigning []map[string]string
	labels, gotos := map[string]bool{}, map[string]bool{}
	for n, line := range strings.Split(string(b), "\n") {
		if l := strings.TrimSpace(line); l == "" || l[0] == '#' {
			continue
		}
		rule := map[string]string{}
		rest := line
		for rest != "" {
			m := tok.FindStringSubmatch(rest)
			if m == nil {
				t.Fatalf("%s:%d: not udev syntax at %q", name, n+1, rest)
			}
			if !known[m[1]] {
				t.Errorf("%s:%d: unknown key %s", name, n+1, m[1])
			}
			rule[m[1]+m[2]+m[3]] = m[4]
			rest = rest[len(m[0]):]
		}
		if v, ok := rule["ATTRS{idVendor}=="]; ok {
			vendors[v] = rule["ENV{LOYALTY_SCANNER}="]
		}
		if l, ok := rule["LABEL="]; ok {
			labels[l] = true
		}
		if g, ok := rule["GOTO="]; ok {
			gotos[g] = true
		}
		if _, ok := rule["SYMLINK+="]; ok {
			assigning = append(assigning, rule)
		}
	}
	for v, maker := range map[string]string{"0c2e": "honeywell", "05e0": "zebra", "05f9": "datalogic", "1eab": "newland"} {
		if vendors[v] != maker {
			t.Errorf("vendor %s: named %q, want %q", v, vendors[v], maker)
		}
	}
	for g := range gotos {
		if !labels[g] {
			t.Errorf("GOTO %q has no LABEL", g)
		}
	}
	if len(assigning) != 2 {
		t.Fatalf("%d rules make links, want 2 (known makers, other CDC ACM devices)", len(assigning))
	}
	for _, r := range assigning {
		if r["GROUP="] != "dialout" || r["MODE="] != "0660" || r["TAG+="] != "uaccess" ||
			!slices.Contains(strings.Fields(r["SYMLINK+="]), "loyalty-scanner") {
			t.Errorf("rule %v: want GROUP dialout, MODE 0660, TAG uaccess, SYMLINK loyalty-scanner", r)
		}
	}
}

// TestDesktopEntries validates the menu and autostart entries with
// desktop-file-validate and checks they open the app from the binary and
// icon the package ships.
func TestDesktopEntries(t *testing.T) {
	root := extract(t, debs(t)["pos-agent"])
	for _, f := range []string{"usr/share/applications/pos-agent.desktop", "etc/xdg/autostart/pos-agent.desktop"} {
		p := filepath.Join(root, f)
		run(t, nil, "desktop-file-validate", p)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"\nExec=/usr/bin/pos-agent run\n", "\nIcon=pos-agent\n", "\nType=Application\n"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s lacks %q", f, strings.TrimSpace(want))
			}
		}
	}
	if _, err := os.Stat(filepath.Join(root, "usr/share/icons/hicolor/scalable/apps/pos-agent.svg")); err != nil {
		t.Error(err)
	}
}

// chroot is a throwaway copy of this machine: an overlay over / whose
// changes go to a directory of the test, entered with chroot in a private
// mount namespace. What is installed into it never reaches the machine, and
// no systemd runs in it: the packages install as they would in a container.
type chroot struct{ dir string }

func newChroot(t *testing.T) *chroot {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatal("installing the packages needs root (mount namespaces, chroot); make test runs as root on the project's machines")
	}
	c := &chroot{dir: t.TempDir()}
	for _, d := range []string{"upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(c.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// must runs a POSIX sh script inside the chroot, with args as $1..., and
// returns its combined output; a failure stops the test. /run is a new
// tmpfs each time, so no systemd or udev of the machine is ever in reach.
func (c *chroot) must(t *testing.T, script string, args ...string) string {
	t.Helper()
	enter := `set -e
d=$1; shift
mount -t overlay overlay -o "lowerdir=/,upperdir=$d/upper,workdir=$d/work" "$d/merged"
mount --rbind /dev "$d/merged/dev"
mount -t proc proc "$d/merged/proc"
mount -t tmpfs tmpfs "$d/merged/run"
exec chroot "$d/merged" /bin/sh -ec "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", enter, "sh", c.dir, script, "sh"}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in the chroot: %v\n%s\n--- script:\n%s", err, out, script)
	}
	return string(out)
}

// copyIn puts a file at / in the chroot.
func (c *chroot) copyIn(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	name := "/" + filepath.Base(src)
	if err := os.WriteFile(filepath.Join(c.dir, "upper", name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// waitSock is sh that waits up to 10 s for a socket, for a server started
// in the background as $pid.
const waitSock = `n=0
while [ ! -S "$sock" ]; do
	kill -0 "$pid" 2>/dev/null || { echo "server exited"; cat /tmp/server.log; exit 1; }
	n=$((n + 1)); [ "$n" -le 100 ] || { echo "no socket $sock"; cat /tmp/server.log; kill "$pid"; exit 1; }
	sleep 0.1
done
`

// TestInstall installs both packages with dpkg into a throwaway copy of this
// machine without a running systemd, and checks what IT gets: the system
// users, the 0700 data directories, headoffice enabled (and pos-agent-serve
// not), both units passing systemd-analyze verify, headoffice's exposure
// under systemd-analyze security, each service's ExecStart (expanded from
// its shipped config, as systemd would) serving as its user, the admin
// verbs the README gives, an upgrade, remove and purge (which keep the
// data).
func TestInstall(t *testing.T) {
	pkgs := debs(t)
	c := newChroot(t)
	hq, pa := c.copyIn(t, pkgs["headoffice"]), c.copyIn(t, pkgs["pos-agent"])

	if out := c.must(t, `dpkg -i "$1" "$2"`, hq, pa); strings.Contains(out, "warning") {
		t.Errorf("dpkg -i warned:\n%s", out)
	}

	t.Run("users and data", func(t *testing.T) {
		out := c.must(t, `for u in headoffice pos-agent; do
	getent passwd "$u" | cut -d: -f6,7
	stat -c '%U:%G %a' "/var/lib/$u"
done`)
		want := "/var/lib/headoffice:/usr/sbin/nologin\nheadoffice:headoffice 700\n" +
			"/var/lib/pos-agent:/usr/sbin/nologin\npos-agent:pos-agent 700\n"
		if out != want {
			t.Errorf("users and data directories:\n%s\nwant:\n%s", out, want)
		}
	})

	t.Run("enabled", func(t *testing.T) {
		out := c.must(t, `cd /etc/systemd/system/multi-user.target.wants
for u in headoffice.service pos-agent-serve.service; do
	if [ -e "$u" ]; then echo "$u enabled"; else echo "$u disabled"; fi
done`)
		if want := "headoffice.service enabled\npos-agent-serve.service disabled\n"; out != want {
			t.Errorf("got\n%s\nwant\n%s", out, want)
		}
	})

	t.Run("systemd-analyze", func(t *testing.T) {
		for _, u := range []string{"headoffice.service", "pos-agent-serve.service"} {
			if out := c.must(t, `systemd-analyze verify "/usr/lib/systemd/system/$1" 2>&1`, u); out != "" {
				t.Errorf("systemd-analyze verify %s:\n%s", u, out)
			}
		}
		// systemd rates exposure from 0 (locked down) to 10; 2 is the top
		// of its "OK" band. --threshold (in tenths) fails above it.
		for _, u := range []string{"headoffice.service", "pos-agent-serve.service"} {
			out := c.must(t, `systemd-analyze security --offline=yes --threshold=20 "$1" >/tmp/security.log 2>&1 ||
	{ cat /tmp/security.log; exit 1; }
tail -n 1 /tmp/security.log`, u)
			t.Logf("%s", strings.TrimSpace(out))
		}
	})

	t.Run("version", func(t *testing.T) {
		for _, p := range []string{"headoffice", "pos-agent"} {
			var v struct{ Version, Commit string }
			if err := json.Unmarshal([]byte(c.must(t, `"$1" version --json`, p)), &v); err != nil {
				t.Fatal(err)
			}
			if v.Version != testVersion || v.Commit != testCommit {
				t.Errorf("%s version: %+v, want %s %s", p, v, testVersion, testCommit)
			}
		}
	})

	t.Run("headoffice serves", func(t *testing.T) {
		// As IT would: a port of its own in the config file.
		c.must(t, `sed -i 's/^HEADOFFICE_LISTEN=.*/HEADOFFICE_LISTEN=127.0.0.1:0/' /etc/headoffice/headoffice.conf`)
		argv := unitArgv(t, c, "headoffice.service")
		out := c.must(t, `runuser -u headoffice -- "$@" >/tmp/server.log 2>&1 &
pid=$! sock=/var/lib/headoffice/headoffice.sock
`+waitSock+`runuser -u headoffice -- headoffice terminal add --data /var/lib/headoffice --store S1 --name till-1 --json
kill "$pid"; wait "$pid" || true
grep -c 'headoffice serving' /tmp/server.log`, argv...)
		if !strings.Contains(out, `"terminal":"S1-till-1"`) || !strings.HasSuffix(out, "\n1\n") {
			t.Errorf("headoffice serve and terminal add:\n%s", out)
		}
	})

	t.Run("pos-agent serves", func(t *testing.T) {
		argv := unitArgv(t, c, "pos-agent-serve.service")
		out := c.must(t, `runuser -u pos-agent -- "$@" >/tmp/server.log 2>&1 &
pid=$! sock=/var/lib/pos-agent/agent.sock
`+waitSock+`runuser -u pos-agent -- pos-agent status --data /var/lib/pos-agent --json
kill "$pid"; wait "$pid" || true`, argv...)
		// serve.conf's --scanner reached the agent: the scanner is known,
		// and not plugged in here.
		if !strings.Contains(out, `"scanner":"disconnected"`) {
			t.Errorf("pos-agent serve and status:\n%s", out)
		}
	})

	t.Run("upgrade remove purge", func(t *testing.T) {
		const exists = `for f in /usr/bin/headoffice /usr/bin/pos-agent /etc/headoffice/headoffice.conf \
	/etc/pos-agent/serve.conf /var/lib/headoffice/headoffice.db /var/lib/pos-agent/ledger.db; do
	if [ -e "$f" ]; then echo "$f"; fi
done
`
		c.must(t, `dpkg -i "$1" "$2"`, hq, pa)
		c.must(t, `dpkg -r headoffice pos-agent`)
		// Remove keeps the conffiles and the data.
		want := "/etc/headoffice/headoffice.conf\n/etc/pos-agent/serve.conf\n" +
			"/var/lib/headoffice/headoffice.db\n/var/lib/pos-agent/ledger.db\n"
		if out := c.must(t, exists); out != want {
			t.Errorf("after remove:\n%s\nwant:\n%s", out, want)
		}
		// Purge drops the conffiles, keeps the data and says so.
		out := c.must(t, `dpkg -P headoffice pos-agent 2>&1`)
		for _, w := range []string{"the ledger in /var/lib/headoffice is kept", "/var/lib/pos-agent is kept"} {
			if !strings.Contains(out, w) {
				t.Errorf("purge did not say %q:\n%s", w, out)
			}
		}
		want = "/var/lib/headoffice/headoffice.db\n/var/lib/pos-agent/ledger.db\n"
		if out := c.must(t, exists); out != want {
			t.Errorf("after purge:\n%s\nwant:\n%s", out, want)
		}
	})
}

// unitArgv returns an installed unit's ExecStart, expanded with its
// installed EnvironmentFile.
func unitArgv(t *testing.T, c *chroot, name string) []string {
	t.Helper()
	dir := t.TempDir()
	unitFile, envPath := filepath.Join(dir, "unit"), filepath.Join(dir, "env")
	if err := os.WriteFile(unitFile, []byte(c.must(t, `cat "/usr/lib/systemd/system/$1"`, name)), 0o644); err != nil {
		t.Fatal(err)
	}
	u := parseUnit(t, unitFile)
	if err := os.WriteFile(envPath, []byte(c.must(t, `cat "$1"`, u["Service"]["EnvironmentFile"][0])), 0o644); err != nil {
		t.Fatal(err)
	}
	return execStart(t, u["Service"]["ExecStart"][0], envFile(t, envPath))
}

var signedBuild, unsignedBuild once

// signingCert makes a throwaway self-signed code-signing certificate and
// its key with openssl, as PEM files.
func signingCert(cert, key, cn string) (string, error) {
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
		"-subj", "/CN="+cn, "-addext", "extendedKeyUsage=codeSigning", "-keyout", key, "-out", cert).CombinedOutput()
	return string(out), err
}

// windows builds the Windows programs and installer with build.sh, signed
// with a throwaway certificate or not, around the small cgo stand-in for
// pos-agent (see build.sh's POS_AGENT_PKG). It returns the output directory
// and the certificate.
func windows(t *testing.T, signed bool) (dist, cert string) {
	t.Helper()
	env := []string{"POS_AGENT_PKG=./packaging/testdata/cgoprog"}
	if !signed {
		return unsignedBuild.get(t, func() (string, string, error) { return buildSh("windows", env, "windows") }), ""
	}
	cert, key := filepath.Join(work, "signer.pem"), filepath.Join(work, "signer.key")
	dist = signedBuild.get(t, func() (string, string, error) {
		if out, err := signingCert(cert, key, "signer"); err != nil {
			return "", out, err
		}
		return buildSh("windows-signed", append(env, "SIGN_CERT="+cert, "SIGN_KEY="+key), "windows")
	})
	return dist, cert
}

// peFile is what the tests read of a PE file.
type peFile struct {
	machine   uint16
	subsystem uint16
	signed    bool // it has an Authenticode certificate table
	dlls      []string
}

func readPE(t *testing.T, path string) peFile {
	t.Helper()
	f, err := pe.Open(path)
	if err != nil {
		t.Fatalf("%s is not a PE file: %v", path, err)
	}
	defer f.Close()
	p := peFile{machine: f.Machine}
	switch h := f.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		p.subsystem = h.Subsystem
		p.signed = h.DataDirectory[pe.IMAGE_DIRECTORY_ENTRY_SECURITY].Size > 0
	case *pe.OptionalHeader32:
		p.subsystem = h.Subsystem
		p.signed = h.DataDirectory[pe.IMAGE_DIRECTORY_ENTRY_SECURITY].Size > 0
	default:
		t.Fatalf("%s: no optional header", path)
	}
	p.dlls, _ = f.ImportedLibraries()
	return p
}

// utf16 encodes ASCII text as Windows stores resource strings.
func utf16(s string) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, c := range []byte(s) {
		b = append(b, c, 0)
	}
	return b
}

// TestWindowsPackages cross-compiles the console and GUI programs with
// mingw-w64 and builds the NSIS installer, signed and unsigned, and reads
// the results: PE machine and subsystem, no MinGW runtime DLL to ship, the
// version stamp, the installer's version resource, and Authenticode
// signatures that osslsigncode verifies against the throwaway certificate
// and refuses against another one.
func TestWindowsPackages(t *testing.T) {
	signedDist, cert := windows(t, true)
	unsignedDist, _ := windows(t, false)
	tmp := t.TempDir()
	other := filepath.Join(tmp, "other.pem")
	if out, err := signingCert(other, filepath.Join(tmp, "other.key"), "other"); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	setup := "pos-agent-setup-" + testVersion + ".exe"
	tests := []struct {
		file      string
		machine   uint16
		subsystem uint16
		stamp     []byte
	}{
		{"windows-amd64/pos-agent.exe", pe.IMAGE_FILE_MACHINE_AMD64, pe.IMAGE_SUBSYSTEM_WINDOWS_CUI, []byte(testVersion)},
		{"windows-amd64/pos-agent-app.exe", pe.IMAGE_FILE_MACHINE_AMD64, pe.IMAGE_SUBSYSTEM_WINDOWS_GUI, []byte(testVersion)},
		// NSIS installers are 32-bit programs; they install the 64-bit ones.
		{setup, pe.IMAGE_FILE_MACHINE_I386, pe.IMAGE_SUBSYSTEM_WINDOWS_GUI, utf16(testVersion)},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			for _, dist := range []string{signedDist, unsignedDist} {
				path := filepath.Join(dist, tt.file)
				p := readPE(t, path)
				if p.machine != tt.machine || p.subsystem != tt.subsystem {
					t.Errorf("%s: machine %#x subsystem %d, want %#x %d", path, p.machine, p.subsystem, tt.machine, tt.subsystem)
				}
				for _, dll := range p.dlls {
					if strings.HasPrefix(strings.ToLower(dll), "lib") {
						t.Errorf("%s imports %s, a MinGW runtime DLL nobody installs", path, dll)
					}
				}
				raw, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(raw, tt.stamp) {
					t.Errorf("%s lacks the version stamp %s", path, testVersion)
				}
				if want := dist == signedDist; p.signed != want {
					t.Errorf("%s: signed %v, want %v", path, p.signed, want)
				}
			}
			signed := filepath.Join(signedDist, tt.file)
			out := run(t, nil, "osslsigncode", "verify", "-CAfile", cert, "-in", signed)
			if !strings.Contains(out, "Signature verification: ok") {
				t.Errorf("osslsigncode verify %s:\n%s", signed, out)
			}
			for _, bad := range []struct{ ca, file string }{{other, signed}, {cert, filepath.Join(unsignedDist, tt.file)}} {
				if out, err := exec.Command("osslsigncode", "verify", "-CAfile", bad.ca, "-in", bad.file).CombinedOutput(); err == nil {
					t.Errorf("osslsigncode verify -CAfile %s %s passed:\n%s", bad.ca, bad.file, out)
				}
			}
		})
	}
}

// TestPosAgentCompilesForWindows compiles, for windows/amd64, every package
// of this module that pos-agent is made of except the two that need Fyne
// (ui and the command itself), whose cgo cross build takes about ten
// minutes cold: make package builds those. What is compiled here is
// everything that could break on Windows alone: the agent, drivers, sync.
func TestPosAgentCompilesForWindows(t *testing.T) {
	env := []string{"GOOS=windows", "GOARCH=amd64"}
	var pkgs []string
	// go list only reads the files; cgo decides which of Fyne's it sees.
	for _, p := range strings.Fields(run(t, append(env, "CGO_ENABLED=1"), "go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "../cmd/pos-agent")) {
		if strings.HasPrefix(p, module+"/") && p != module+"/ui" && p != module+"/cmd/pos-agent" {
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) < 10 {
		t.Fatalf("pos-agent is made of only %d packages of the module: %v", len(pkgs), pkgs)
	}
	run(t, append(env, "CGO_ENABLED=0"), "go", append([]string{"build"}, pkgs...)...)
}
