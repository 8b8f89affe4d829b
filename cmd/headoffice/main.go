// Command headoffice is the loyalty program's head office: the sync endpoint,
// the authoritative ledger and the thin CLI clients of its admin API. It wires flags to the
// server and holds no domain logic.
package main

import (
	"os"

	"github.com/offline-loyalty/terminal/internal/cli"
)

const prog = "headoffice"

func main() {
	cli.Main(prog, verbs(), os.Args[1:])
}

func verbs() map[string]cli.Verb {
	v := map[string]cli.Verb{
		"version": cli.VersionVerb(prog),
	}
	headofficeVerbs(v)
	return v
}
