// Package cli is the plumbing shared by the command-line programs: verb
// dispatch, the common --data and --json flags, one-line errors and JSON output.
// It holds no domain logic; verbs live with their commands.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/offline-loyalty/terminal/internal/appdir"
	"github.com/offline-loyalty/terminal/internal/buildstamp"
)

// Verb is one subcommand.
type Verb struct {
	Usage string // "earn --card CARD --amount 12.50 [--ref REF]"
	Short string // one-line description
	Run   func(ctx context.Context, args []string) error
}

// ErrUsage marks errors in how a command was called; they exit with status 2.
var ErrUsage = errors.New("usage")

// Main runs the verb named by args[0] and exits: 0 on success, 1 on failure,
// 2 on a usage error. Every failure is one line on stderr.
func Main(prog string, verbs map[string]Verb, args []string) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, prog, verbs, args)
	stop()
	if err == nil {
		os.Exit(0)
	}
	fmt.Fprintf(os.Stderr, "%s: %s\n", prog, OneLine(err.Error()))
	if errors.Is(err, ErrUsage) {
		os.Exit(2)
	}
	os.Exit(1)
}

func dispatch(ctx context.Context, prog string, verbs map[string]Verb, args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if v, ok := verbs[args[1]]; ok {
				fmt.Printf("usage: %s %s\n  %s\n", prog, v.Usage, v.Short)
				return nil
			}
		}
		printHelp(prog, verbs)
		if len(args) == 0 {
			return fmt.Errorf("%w: no command given", ErrUsage)
		}
		return nil
	}
	name := args[0]
	// Two-word verbs ("terminal add", "rules set") are registered with a space.
	if len(args) > 1 {
		if v, ok := verbs[name+" "+args[1]]; ok {
			return v.Run(ctx, args[2:])
		}
	}
	v, ok := verbs[name]
	if !ok {
		return fmt.Errorf("%w: unknown command %q (see %s help)", ErrUsage, strings.Join(args[:min(2, len(args))], " "), prog)
	}
	return v.Run(ctx, args[1:])
}

func printHelp(prog string, verbs map[string]Verb) {
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Printf("usage: %s COMMAND [flags]\n\ncommands:\n", prog)
	for _, n := range names {
		fmt.Printf("  %-58s %s\n", verbs[n].Usage, verbs[n].Short)
	}
	fmt.Println("\nevery command takes --data DIR and --json")
}

// OneLine is the first line of s, trimmed.
func OneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// Common holds the flags every verb takes.
type Common struct {
	Data string
	JSON bool
	app  string
}

// NewFlags returns a flag set for a verb with --data and --json registered.
// Parse errors come back as one-line usage errors instead of being printed.
func NewFlags(app, verb string) (*flag.FlagSet, *Common) {
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := &Common{app: app}
	fs.StringVar(&c.Data, "data", "", "data directory (default: the per-user data directory)")
	fs.BoolVar(&c.JSON, "json", false, "print one JSON object")
	return fs, c
}

// Parse parses args into fs and resolves the data directory. Positional
// arguments are refused unless the verb asks for them with Args.
func Parse(fs *flag.FlagSet, c *Common, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUsage, fs.Name(), err)
	}
	if c.Data == "" {
		d, err := appdir.Data(c.app)
		if err != nil {
			return err
		}
		c.Data = d
	}
	return nil
}

// Require returns a usage error naming the first empty required flag.
func Require(verb string, flags map[string]string) error {
	names := make([]string, 0, len(flags))
	for n := range flags {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if flags[n] == "" {
			return fmt.Errorf("%w: %s: --%s is required", ErrUsage, verb, n)
		}
	}
	return nil
}

// Print writes v as one JSON object when --json is set, and the human form
// otherwise.
func (c *Common) Print(v any, human func(w io.Writer)) error {
	if c.JSON {
		return PrintJSON(v)
	}
	human(os.Stdout)
	return nil
}

// PrintJSON writes v as one line of JSON on stdout.
func PrintJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// VersionVerb is the `version` verb every program has.
func VersionVerb(app string) Verb {
	return Verb{Usage: "version", Short: "print version, commit and build date", Run: func(_ context.Context, args []string) error {
		fs, c := NewFlags(app, "version")
		if err := Parse(fs, c, args); err != nil {
			return err
		}
		v := buildstamp.Get()
		return c.Print(v, func(w io.Writer) { fmt.Fprintf(w, "%s %s\n", app, v) })
	}}
}

// WriteAtomically writes path through fn (a backup, an export): into a temporary file beside it,
// synced, renamed over path only once fn succeeded, mode 0600.
func WriteAtomically[T any](path string, fn func(io.Writer) (T, error)) (T, error) {
	var zero T
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return zero, err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // gone after the rename
	v, err := fn(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return zero, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return zero, err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return v, nil
}
