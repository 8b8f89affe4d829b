// Command pos-agent is the loyalty terminal: the Fyne app, the headless agent,
// and the thin CLI clients of the agent's local API. It wires flags to the
// agent and holds no domain logic.
package main

import (
	"os"

	"github.com/offline-loyalty/terminal/internal/cli"
	// Before Fyne reads the locale: see the package comment.
	_ "github.com/offline-loyalty/terminal/internal/localeenv"
)

const prog = "pos-agent"

func main() {
	cli.Main(prog, verbs(), os.Args[1:])
}

func verbs() map[string]cli.Verb {
	v := map[string]cli.Verb{
		"version": cli.VersionVerb(prog),
	}
	agentVerbs(v)
	v["ports"] = portsVerb
	v["scan"] = scanVerb
	return v
}
