package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/agent/localapi"
	"github.com/offline-loyalty/terminal/internal/cli"
	"github.com/offline-loyalty/terminal/sync/syncclient"
)

func runBackup(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "backup")
	to := fs.String("to", "", "the backup file to write (replaced whole once complete, mode 0600)")
	if err := cli.Parse(fs, c, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: backup: unexpected argument %q", cli.ErrUsage, fs.Arg(0))
	}
	if err := cli.Require("backup", map[string]string{"to": *to}); err != nil {
		return err
	}
	info, err := cli.WriteAtomically(*to, func(w io.Writer) (agent.BackupInfo, error) {
		// A running agent takes the copy itself, checkouts going on; else
		// the ledger is opened here.
		if sock := agent.SocketPath(c.Data); serving(sock) {
			return localapi.Dial(sock).Backup(ctx, w)
		}
		if _, err := os.Stat(filepath.Join(c.Data, agent.LedgerFile)); errors.Is(err, os.ErrNotExist) {
			return agent.BackupInfo{}, fmt.Errorf("no ledger in %s: nothing to back up", c.Data)
		}
		a, err := agent.Open(ctx, c.Data, agent.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
		if err != nil {
			return agent.BackupInfo{}, err
		}
		defer a.Close()
		return a.Backup(w)
	})
	if err != nil {
		return err
	}
	return c.Print(info, func(w io.Writer) {
		fmt.Fprintf(w, "backed up terminal %s (epoch %s, up to seq %d, head office had acked %d) to %s\n",
			or(info.Terminal, "-"), info.Epoch, info.Seq, info.Acked, *to)
	})
}

func runRestore(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "restore")
	from := fs.String("from", "", "the backup file (pos-agent backup --to)")
	replace := fs.Bool("replace", false, "keep the data directory's ledger aside (*.replaced-TIME) and restore over it")
	if err := cli.Parse(fs, c, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: restore: unexpected argument %q", cli.ErrUsage, fs.Arg(0))
	}
	if err := cli.Require("restore", map[string]string{"from": *from}); err != nil {
		return err
	}
	if serving(agent.SocketPath(c.Data)) {
		return fmt.Errorf("%w (%s): stop it before restoring", agent.ErrLocked, c.Data)
	}
	f, err := os.Open(*from)
	if err != nil {
		return err
	}
	defer f.Close()
	ro := agent.RestoreOptions{Replace: *replace,
		Repair: agent.RepairOptions{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}}
	if link, ok, err := syncclient.LoadLink(c.Data); err == nil && ok {
		ro.Repair.Terminal, ro.Repair.Store = link.Terminal, link.Store
	}
	rep, err := agent.Restore(ctx, c.Data, f, ro)
	if err != nil {
		return err
	}
	b := rep.Backup
	return c.Print(rep, func(w io.Writer) {
		fmt.Fprintf(w, "restored terminal %s from the backup of %s: %d events kept, epoch %s up to seq %d; new epoch %s\n",
			or(b.Terminal, "-"), b.Time.Format("2006-01-02 15:04:05 MST"), rep.Repair.Kept, b.Epoch, b.Seq, rep.Repair.NewEpoch)
		fmt.Fprintf(w, "events 1-%d of epoch %s were at head office when the backup was taken; those after %d that head office holds come back "+
			"when the terminal connects, and any it never received are lost (head office flags the rebuilt ledger with what it sent back)\n", b.Acked, b.Epoch, b.Seq)
		if rep.Replaced != "" {
			fmt.Fprintf(w, "the replaced ledger is kept as %s", rep.Replaced)
			if rep.ReplacedLog != "" {
				fmt.Fprintf(w, " (its log %s)", rep.ReplacedLog)
			}
			fmt.Fprintln(w)
		}
	})
}
