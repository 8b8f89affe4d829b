package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/agent/demo"
	"github.com/offline-loyalty/terminal/agent/localapi"
	"github.com/offline-loyalty/terminal/internal/cli"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/money"
	"github.com/offline-loyalty/terminal/rules"
	"github.com/offline-loyalty/terminal/sync/syncclient"
)

// lockWait is how long a CLI verb run without a serving agent waits for
// another short-lived verb to release the data directory.
const lockWait = 5 * time.Second

// dialTimeout bounds the check for a serving agent on the socket.
const dialTimeout = 500 * time.Millisecond

func agentVerbs(v map[string]cli.Verb) {
	v["run"] = cli.Verb{Usage: "run [--hq URL] [--scanner PORT|sim] [--api ADDR] [--metrics ADDR] [--log-format text|json] | run --attach", Short: "the terminal app, with the agent in-process or attached to pos-agent serve", Run: runRun}
	v["join"] = cli.Verb{Usage: "join --hq URL --code CODE", Short: "register this terminal with head office using a one-time code", Run: runJoin}
	v["serve"] = cli.Verb{Usage: "serve [--hq URL] [--scanner PORT|sim] [--api ADDR] [--metrics ADDR] [--log-format text|json]", Short: "run the agent without UI; blocks", Run: runServe}
	v["earn"] = cli.Verb{Usage: "earn --card CARD --amount 12.50 [--ref REF] [--items FILE.json] [--approve]", Short: "record a purchase and earn points", Run: runEarn}
	v["quote"] = cli.Verb{Usage: "quote --card CARD --amount A [--items FILE]", Short: "what a checkout would earn, with its lines; writes nothing", Run: runQuote}
	v["redeem"] = cli.Verb{Usage: "redeem --card CARD (--reward ID | --points N) [--ref REF]", Short: "burn points for a reward or as discount", Run: runRedeem}
	v["donate"] = cli.Verb{Usage: "donate --card CARD --points N --charity ID [--ref REF]", Short: "donate points to a charity partner", Run: runDonate}
	v["void"] = cli.Verb{Usage: "void --ref REF [--approve]", Short: "cancel a checkout of today's shift", Run: runVoid}
	v["refund"] = cli.Verb{Usage: "refund --ref REF --amount 5.00 [--return ID] [--approve]", Short: "return goods: claw back points pro rata", Run: runRefund}
	v["enroll"] = cli.Verb{Usage: "enroll --card CARD [--name N] [--email E] [--phone P] [--birthday MM-DD] [--consent]", Short: "enroll a new member", Run: runEnroll}
	v["expire"] = cli.Verb{Usage: "expire", Short: "write the point expiries and tier-review downgrades that are due (idempotent)", Run: runExpire}
	v["rules check"] = cli.Verb{Usage: "rules check FILE", Short: "validate a rules document and print every problem", Run: runRulesCheck}
	v["adjust"] = cli.Verb{Usage: "adjust --card CARD --points N --reason TEXT [--ref REF] --approve", Short: "a manager's correction of a balance", Run: runAdjust}
	v["replace-card"] = cli.Verb{Usage: "replace-card --card OLD --new NEW [--ref REF]", Short: "block a card and give its member a new one", Run: runReplaceCard}
	v["member"] = cli.Verb{Usage: "member --card CARD", Short: "show a member", Run: runMember}
	v["status"] = cli.Verb{Usage: "status", Short: "terminal, link, queue, scanner and rules state", Run: runStatus}
	v["stats"] = cli.Verb{Usage: "stats [--day YYYY-MM-DD]", Short: "the day's figures", Run: runStats}
	v["demo"] = cli.Verb{Usage: "demo", Short: "seed an empty data directory with a fortnight of demo store activity", Run: runDemo}
	v["pin unlock"] = cli.Verb{Usage: "pin unlock", Short: "lift the lock on the manager PIN after too many wrong attempts", Run: runPINUnlock}
	v["manager add"] = cli.Verb{Usage: "manager add [--replace] < PIN", Short: "set the manager PIN of this till (read from standard input; asked twice at a terminal)", Run: runManagerAdd}
	v["token add"] = cli.Verb{Usage: "token add --name N --role pos|manager", Short: "an API token for the local API's TCP address (--api), printed once", Run: runTokenAdd}
	v["token list"] = cli.Verb{Usage: "token list", Short: "the local API's tokens: names, roles, when made", Run: runTokenList}
	v["token revoke"] = cli.Verb{Usage: "token revoke --name N", Short: "refuse a local API token from now on", Run: runTokenRevoke}
	v["repair"] = cli.Verb{Usage: "repair", Short: "rebuild a damaged or lost ledger from the events that still verify (the agent stopped)", Run: runRepair}
	v["backup"] = cli.Verb{Usage: "backup --to FILE", Short: "a consistent copy of the ledger and the terminal's identity, while the agent runs (keep it as safe as the till)", Run: runBackup}
	v["restore"] = cli.Verb{Usage: "restore --from FILE [--replace]", Short: "bring a backup back as a new epoch: nothing is sent twice; head office sends back what the backup missed (the agent stopped)", Run: runRestore}
	v["compact"] = cli.Verb{Usage: "compact", Short: "rewrite the stopped agent's ledger file without free space", Run: runCompact}
	v["export"] = cli.Verb{Usage: "export", Short: "every ledger event as JSON lines", Run: runExport}
}

// connect returns a client of the agent serving dir or, when none is, of an
// agent opened in this process for the duration of the verb. readOnly verbs
// refuse a directory that has no ledger instead of creating one.
func connect(ctx context.Context, dir string, readOnly bool) (*localapi.Client, func(), error) {
	sock := agent.SocketPath(dir)
	if serving(sock) {
		return localapi.Dial(sock), func() {}, nil
	}
	if err := agent.CheckLedgerPresent(dir); err != nil {
		return nil, nil, err
	}
	if readOnly {
		if _, err := os.Stat(filepath.Join(dir, agent.LedgerFile)); errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("no ledger in %s: nothing recorded yet", dir)
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	deadline := time.Now().Add(lockWait)
	for {
		a, err := agent.Open(ctx, dir, agent.Options{Logger: log})
		if err == nil {
			return localapi.InProcess(localapi.Handler(a, log)), func() { a.Close() }, nil
		}
		if !errors.Is(err, agent.ErrLocked) || time.Now().After(deadline) {
			return nil, nil, err
		}
		if serving(sock) {
			return localapi.Dial(sock), func() {}, nil
		}
	}
}

func serving(sock string) bool {
	c, err := net.DialTimeout("unix", sock, dialTimeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// withClient parses the common flags, connects and runs fn.
func withClient(ctx context.Context, fs *flag.FlagSet, c *cli.Common, args []string, readOnly bool,
	check func() error, fn func(*localapi.Client) error) error {
	if err := cli.Parse(fs, c, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected argument %q", cli.ErrUsage, fs.Name(), fs.Arg(0))
	}
	if err := check(); err != nil {
		return err
	}
	client, done, err := connect(ctx, c.Data, readOnly)
	if err != nil {
		return err
	}
	defer done()
	return fn(client)
}

func runEarn(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "earn")
	card := fs.String("card", "", "member card number")
	amount := fs.String("amount", "", "purchase amount, e.g. 12.50")
	ref := fs.String("ref", "", "checkout reference (idempotency key)")
	itemsFile := fs.String("items", "", "basket items as a JSON file")
	ap := approveFlag(fs)
	var items []rules.Item
	return withClient(ctx, fs, c, args, false, func() error {
		if err := cli.Require("earn", map[string]string{"card": *card, "amount": *amount}); err != nil {
			return err
		}
		if err := ap.read(); err != nil {
			return err
		}
		if *itemsFile != "" {
			var err error
			if items, err = readItems(*itemsFile); err != nil {
				return err
			}
		}
		return nil
	}, func(cl *localapi.Client) error {
		res, err := cl.Earn(ctx, agent.EarnRequest{Card: *card, Amount: *amount, Ref: *ref, Items: items, ManagerPIN: ap.pin})
		if err != nil {
			return ap.explain(err)
		}
		return c.Print(res, func(w io.Writer) {
			fmt.Fprintf(w, "%+d points for %s, balance %d (ref %s, seq %d)\n", res.Points, res.Member, res.Balance, res.Ref, res.Seq)
			for _, l := range res.Lines {
				fmt.Fprintf(w, "  %+d %s\n", l.Points, l.Label)
			}
		})
	})
}

func runQuote(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "quote")
	card := fs.String("card", "", "member card number")
	amount := fs.String("amount", "", "purchase amount, e.g. 12.50")
	itemsFile := fs.String("items", "", "basket items as a JSON file")
	var items []rules.Item
	return withClient(ctx, fs, c, args, true, func() error {
		if err := cli.Require("quote", map[string]string{"card": *card, "amount": *amount}); err != nil {
			return err
		}
		if *itemsFile != "" {
			var err error
			if items, err = readItems(*itemsFile); err != nil {
				return err
			}
		}
		return nil
	}, func(cl *localapi.Client) error {
		q, err := cl.Quote(ctx, agent.EarnRequest{Card: *card, Amount: *amount, Items: items})
		if err != nil {
			return err
		}
		return c.Print(q, func(w io.Writer) {
			fmt.Fprintf(w, "%+d points for %s (tier %s, balance now %d, rules v%d)\n", q.Points, q.Member, q.Tier, q.Balance, q.RulesVersion)
			for _, l := range q.Lines {
				fmt.Fprintf(w, "  %+d %s\n", l.Points, l.Label)
			}
		})
	})
}

func printResult(c *cli.Common, res agent.Result) error {
	return c.Print(res, func(w io.Writer) {
		fmt.Fprintf(w, "%s: %+d points for %s, balance %d (ref %s, seq %d)\n", res.Type, res.Points, res.Member, res.Balance, res.Ref, res.Seq)
	})
}

func runRedeem(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "redeem")
	card := fs.String("card", "", "member card number")
	reward := fs.String("reward", "", "catalog reward id")
	points := fs.Int64("points", 0, "points to spend as discount")
	ref := fs.String("ref", "", "checkout reference (idempotency key)")
	return withClient(ctx, fs, c, args, false, func() error {
		if err := cli.Require("redeem", map[string]string{"card": *card}); err != nil {
			return err
		}
		if (*reward == "") == (*points == 0) {
			return fmt.Errorf("%w: redeem: give exactly one of --reward or --points", cli.ErrUsage)
		}
		return nil
	}, func(cl *localapi.Client) error {
		res, err := cl.Redeem(ctx, agent.RedeemRequest{Card: *card, Reward: *reward, Points: *points, Ref: *ref})
		if err != nil {
			return err
		}
		return printResult(c, res)
	})
}

func runDonate(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "donate")
	card := fs.String("card", "", "member card number")
	points := fs.Int64("points", 0, "points to donate")
	charity := fs.String("charity", "", "charity partner id")
	ref := fs.String("ref", "", "checkout reference (idempotency key)")
	return withClient(ctx, fs, c, args, false, func() error {
		return cli.Require("donate", map[string]string{"card": *card, "charity": *charity})
	}, func(cl *localapi.Client) error {
		res, err := cl.Donate(ctx, agent.DonateRequest{Card: *card, Points: *points, Charity: *charity, Ref: *ref})
		if err != nil {
			return err
		}
		return printResult(c, res)
	})
}

func runVoid(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "void")
	ref := fs.String("ref", "", "checkout reference")
	ap := approveFlag(fs)
	return withClient(ctx, fs, c, args, false, func() error {
		if err := cli.Require("void", map[string]string{"ref": *ref}); err != nil {
			return err
		}
		return ap.read()
	}, func(cl *localapi.Client) error {
		res, err := cl.Void(ctx, agent.VoidRequest{Ref: *ref, ManagerPIN: ap.pin})
		if err != nil {
			return ap.explain(err)
		}
		return printResult(c, res)
	})
}

func runRefund(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "refund")
	ref := fs.String("ref", "", "checkout reference")
	amount := fs.String("amount", "", "amount returned, e.g. 5.00")
	ret := fs.String("return", "", "id of this return, to tell several partial returns apart")
	ap := approveFlag(fs)
	return withClient(ctx, fs, c, args, false, func() error {
		if err := cli.Require("refund", map[string]string{"ref": *ref, "amount": *amount}); err != nil {
			return err
		}
		return ap.read()
	}, func(cl *localapi.Client) error {
		res, err := cl.Refund(ctx, agent.RefundRequest{Ref: *ref, Amount: *amount, Return: *ret, ManagerPIN: ap.pin})
		if err != nil {
			return ap.explain(err)
		}
		return printResult(c, res)
	})
}

func runEnroll(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "enroll")
	card := fs.String("card", "", "card number")
	name := fs.String("name", "", "member name")
	email := fs.String("email", "", "email address")
	phone := fs.String("phone", "", "phone number")
	consent := fs.Bool("consent", false, "the member agrees to marketing")
	birthday := fs.String("birthday", "", "birthday as MM-DD or YYYY-MM-DD (only the day is kept)")
	ref := fs.String("ref", "", "reference (idempotency key)")
	return withClient(ctx, fs, c, args, false, func() error {
		return cli.Require("enroll", map[string]string{"card": *card})
	}, func(cl *localapi.Client) error {
		res, err := cl.Enroll(ctx, agent.EnrollRequest{Card: *card, Name: *name, Email: *email, Phone: *phone, Consent: *consent, Birthday: *birthday, Ref: *ref})
		if err != nil {
			return err
		}
		return printResult(c, res)
	})
}

func runAdjust(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "adjust")
	card := fs.String("card", "", "member card number")
	points := fs.Int64("points", 0, "signed change to the balance")
	reason := fs.String("reason", "", "why")
	ref := fs.String("ref", "", "reference (idempotency key)")
	ap := approveFlag(fs)
	return withClient(ctx, fs, c, args, false, func() error {
		if err := cli.Require("adjust", map[string]string{"card": *card, "reason": *reason}); err != nil {
			return err
		}
		return ap.read()
	}, func(cl *localapi.Client) error {
		res, err := cl.Adjust(ctx, agent.AdjustRequest{Card: *card, Points: *points, Reason: *reason, Ref: *ref, ManagerPIN: ap.pin})
		if err != nil {
			return ap.explain(err)
		}
		return printResult(c, res)
	})
}

func runReplaceCard(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "replace-card")
	card := fs.String("card", "", "the card to block")
	newCard := fs.String("new", "", "the member's new card")
	ref := fs.String("ref", "", "reference (idempotency key)")
	return withClient(ctx, fs, c, args, false, func() error {
		return cli.Require("replace-card", map[string]string{"card": *card, "new": *newCard})
	}, func(cl *localapi.Client) error {
		res, err := cl.ReplaceCard(ctx, agent.ReplaceCardRequest{Card: *card, NewCard: *newCard, Ref: *ref})
		if err != nil {
			return err
		}
		return printResult(c, res)
	})
}

func runMember(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "member")
	card := fs.String("card", "", "card number")
	return withClient(ctx, fs, c, args, true, func() error {
		return cli.Require("member", map[string]string{"card": *card})
	}, func(cl *localapi.Client) error {
		m, err := cl.Member(ctx, *card)
		if err != nil {
			return err
		}
		return c.Print(m, func(w io.Writer) {
			fmt.Fprintf(w, "%s %s (%s), tier %s, balance %d points", m.Member, m.Name, m.Card, m.Tier, m.Balance)
			if m.Pending != 0 {
				fmt.Fprintf(w, " (%+d not yet confirmed by head office)", m.Pending)
			}
			fmt.Fprintf(w, ", 12-month spend %s %s, status %s\n", money.Format(m.Spend12m, m.Currency), m.Currency, m.Status)
			if m.Expiring > 0 {
				fmt.Fprintf(w, "%d points expire in the next 30 days, the first on %s\n", m.Expiring, m.ExpiresOn.Format(time.DateOnly))
			}
			if m.WelcomeBack {
				fmt.Fprintln(w, "welcome back: a bonus on today's purchase")
			}
			if m.BirthdayMonth {
				fmt.Fprintln(w, "birthday month")
			}
		})
	})
}

func runStatus(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "status")
	return withClient(ctx, fs, c, args, true, func() error { return nil }, func(cl *localapi.Client) error {
		s, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		return c.Print(s, func(w io.Writer) {
			link := "offline"
			switch {
			case s.Current:
				link = "online, caught up"
			case s.Online:
				link = "online, catching up"
			}
			fmt.Fprintf(w, "terminal %s store %q: %s, queue %d, scanner %s, rules v%d, seq %d\n",
				s.Terminal, s.Store, link, s.Queue, s.Scanner, s.RulesVersion, s.Seq)
			l := s.Log
			segs := "segments"
			if l.Segments == 1 {
				segs = "segment"
			}
			fmt.Fprintf(w, "log: %d %s, %.1f MiB (%.1f MiB used), record %d, ledger file at %d (%d behind, %d ms)\n",
				l.Segments, segs, float64(l.Bytes)/(1<<20), float64(l.Used)/(1<<20), l.Logged, l.Applied, l.Logged-min(l.Applied, l.Logged), l.LagMS)
			if len(s.Problems) == 0 {
				fmt.Fprintln(w, "health: ok")
			}
			for _, p := range s.Problems {
				fmt.Fprintf(w, "problem: %s\n", p)
			}
		})
	})
}

func runStats(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "stats")
	day := fs.String("day", "", "day as YYYY-MM-DD (default today)")
	return withClient(ctx, fs, c, args, true, func() error { return nil }, func(cl *localapi.Client) error {
		s, err := cl.Stats(ctx, *day)
		if err != nil {
			return err
		}
		return c.Print(s, func(w io.Writer) {
			fmt.Fprintf(w, "%s: %d checkouts by %d members, avg %s %s, points +%d issued -%d redeemed -%d donated, %d enrollments, queue %d\n",
				s.Day, s.Checkouts, s.UniqueMembers, money.Format(s.AvgOrderValue, s.Currency), s.Currency,
				s.PointsIssued, s.PointsRedeemed, s.PointsDonated, s.Enrollments, s.Sync.Queue)
		})
	})
}

func runExport(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "export")
	return withClient(ctx, fs, c, args, true, func() error { return nil }, func(cl *localapi.Client) error {
		out := bufio.NewWriter(os.Stdout)
		defer out.Flush()
		return cl.Export(ctx, func(line []byte) error {
			if !c.JSON {
				e, err := ledger.Decode(line)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(out, "%6d %s %-13s %-20s %+7d %s\n", e.Seq, e.Time.Format(time.RFC3339), e.Type, e.Member, e.Points, e.Ref)
				return err
			}
			if _, err := out.Write(line); err != nil {
				return err
			}
			return out.WriteByte('\n')
		})
	})
}

// maxItemsFile bounds the basket file read by --items.
const maxItemsFile = 1 << 20

func readItems(path string) ([]rules.Item, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--items: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxItemsFile+1))
	if err != nil {
		return nil, fmt.Errorf("--items: %w", err)
	}
	if len(b) > maxItemsFile {
		return nil, fmt.Errorf("--items: %s is larger than %d bytes", path, maxItemsFile)
	}
	// Either a bare array of items or an object {"items": [...]}.
	var items []rules.Item
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if strings.HasPrefix(strings.TrimSpace(string(b)), "{") {
		var wrapped struct {
			Items []rules.Item `json:"items"`
		}
		err = dec.Decode(&wrapped)
		items = wrapped.Items
	} else {
		err = dec.Decode(&items)
	}
	if err != nil {
		return nil, fmt.Errorf("--items %s: not a JSON list of items: %v", path, err)
	}
	return items, nil
}

func runDemo(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "demo")
	if err := cli.Parse(fs, c, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: demo: unexpected argument %q", cli.ErrUsage, fs.Arg(0))
	}
	if serving(agent.SocketPath(c.Data)) {
		return fmt.Errorf("an agent is serving %s: seed the demo before starting it", c.Data)
	}
	n, err := demo.Seed(ctx, c.Data, time.Now(), time.Local)
	if err != nil {
		return err
	}
	return c.Print(map[string]any{"data": c.Data, "events": n}, func(w io.Writer) {
		if n == 0 {
			fmt.Fprintf(w, "%s holds the demo already\n", c.Data)
			return
		}
		fmt.Fprintf(w, "seeded %s with %d demo events\n", c.Data, n)
	})
}

func runRepair(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "repair")
	if err := cli.Parse(fs, c, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: repair: unexpected argument %q", cli.ErrUsage, fs.Arg(0))
	}
	if serving(agent.SocketPath(c.Data)) {
		return fmt.Errorf("%w (%s): stop it before repairing", agent.ErrLocked, c.Data)
	}
	if err := agent.CheckRepairable(c.Data); err != nil {
		return err
	}
	link, _, err := syncclient.LoadLink(c.Data)
	if err != nil {
		return err
	}
	rep, err := agent.Repair(ctx, c.Data, agent.RepairOptions{Terminal: link.Terminal, Store: link.Store,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	return c.Print(rep, func(w io.Writer) {
		fmt.Fprintf(w, "repaired %s: kept %d events of epoch %s (up to seq %d)", c.Data, rep.Kept, or(rep.OldEpoch, "-"), rep.LastSeq)
		if len(rep.Lost) > 0 {
			fmt.Fprintf(w, ", lost %s", ranges(rep.Lost))
		}
		fmt.Fprintf(w, "; new epoch %s", rep.NewEpoch)
		if rep.Damaged != "" {
			fmt.Fprintf(w, "; the damaged file is %s", rep.Damaged)
			if rep.DamagedLog != "" {
				fmt.Fprintf(w, " (its log %s)", rep.DamagedLog)
			}
		}
		fmt.Fprintln(w, "; head office sends back the lost events it holds and the members' balances when the terminal connects")
	})
}

func or(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

func ranges(rs []agent.SeqRange) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprint(r.From)
		if r.To != r.From {
			parts[i] += fmt.Sprint("-", r.To)
		}
	}
	return strings.Join(parts, ",")
}

func runCompact(_ context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "compact")
	if err := cli.Parse(fs, c, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: compact: unexpected argument %q", cli.ErrUsage, fs.Arg(0))
	}
	before, after, err := agent.Compact(c.Data)
	if err != nil {
		return err
	}
	return c.Print(map[string]int64{"before": before, "after": after}, func(w io.Writer) {
		fmt.Fprintf(w, "%s: %d bytes → %d bytes\n", filepath.Join(c.Data, agent.LedgerFile), before, after)
	})
}

func runPINUnlock(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "pin unlock")
	return withClient(ctx, fs, c, args, true, func() error { return nil }, func(cl *localapi.Client) error {
		if err := cl.UnlockManagerPIN(ctx); err != nil {
			return err
		}
		return c.Print(struct {
			Unlocked bool `json:"unlocked"`
		}{true}, func(w io.Writer) { fmt.Fprintln(w, "manager PIN unlocked: the count of wrong attempts starts again") })
	})
}

func runManagerAdd(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "manager add")
	replace := fs.Bool("replace", false, "replace the PIN that is set (it also lifts a lock of wrong tries)")
	var pin string
	return withClient(ctx, fs, c, args, false, func() error {
		var err error
		pin, err = cli.ReadSecret(os.Stdin, os.Stderr, "manager PIN", true, 64)
		return err
	}, func(cl *localapi.Client) error {
		if err := cl.SetManagerPIN(ctx, pin, *replace); err != nil {
			return err
		}
		return c.Print(struct {
			Set bool `json:"set"`
		}{true}, func(w io.Writer) { fmt.Fprintln(w, "manager PIN set: F9 and F10 on the till ask for it") })
	})
}

// approval is the --approve flag of what a manager approves (adjust, and
// earn, void and refund above the rules' limits): the verb reads the
// manager PIN and sends it with the request.
type approval struct {
	on  *bool
	pin string
}

func approveFlag(fs *flag.FlagSet) *approval {
	return &approval{on: fs.Bool("approve", false, "a manager approves: read the manager PIN (asked at a terminal, else the first line of standard input)")}
}

// read reads the PIN when --approve is given.
func (ap *approval) read() error {
	if !*ap.on {
		return nil
	}
	var err error
	ap.pin, err = cli.ReadSecret(os.Stdin, os.Stderr, "manager PIN", false, 64)
	return err
}

// explain says how to get a refusal for want of a manager approved.
func (ap *approval) explain(err error) error {
	if errors.Is(err, agent.ErrApproval) && !*ap.on {
		return fmt.Errorf("%w (run it again with --approve: a manager types the PIN)", err)
	}
	return err
}

func runTokenAdd(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "token add")
	name := fs.String("name", "", "who uses the token, e.g. the POS's name")
	role := fs.String("role", "", "pos (checkouts and look-ups) or manager (also adjust, replace-card, expire, export, backup)")
	return withClient(ctx, fs, c, args, false, func() error {
		return cli.Require("token add", map[string]string{"name": *name, "role": *role})
	}, func(cl *localapi.Client) error {
		t, err := cl.AddToken(ctx, *name, *role)
		if err != nil {
			return err
		}
		return c.Print(t, func(w io.Writer) {
			fmt.Fprintln(w, t.Token)
			fmt.Fprintf(os.Stderr, "token %q (%s) made: it is shown this once; send it as Authorization: Bearer <token>\n", t.Name, t.Role)
		})
	})
}

func runTokenList(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "token list")
	return withClient(ctx, fs, c, args, true, func() error { return nil }, func(cl *localapi.Client) error {
		ts, err := cl.Tokens(ctx)
		if err != nil {
			return err
		}
		return c.Print(struct {
			Tokens []agent.Token `json:"tokens"`
		}{ts}, func(w io.Writer) {
			if len(ts) == 0 {
				fmt.Fprintln(w, "no API tokens: the TCP address admits nobody (pos-agent token add)")
			}
			for _, t := range ts {
				fmt.Fprintf(w, "%-20s %-8s made %s\n", t.Name, t.Role, t.Created.Format(time.RFC3339))
			}
		})
	})
}

func runTokenRevoke(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "token revoke")
	name := fs.String("name", "", "the token's name (pos-agent token list)")
	return withClient(ctx, fs, c, args, true, func() error {
		return cli.Require("token revoke", map[string]string{"name": *name})
	}, func(cl *localapi.Client) error {
		if err := cl.RevokeToken(ctx, *name); err != nil {
			return err
		}
		return c.Print(struct {
			Revoked string `json:"revoked"`
		}{*name}, func(w io.Writer) { fmt.Fprintf(w, "token %q revoked: calls with it are refused from now on\n", *name) })
	})
}

func runExpire(ctx context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "expire")
	return withClient(ctx, fs, c, args, true, func() error { return nil }, func(cl *localapi.Client) error {
		h, err := cl.Expire(ctx)
		if err != nil {
			return err
		}
		return c.Print(h, func(w io.Writer) {
			fmt.Fprintf(w, "%d expire events (%d points), %d tier downgrades, %d members deferred until head office's balance is fresh\n",
				h.Expired, h.Points, h.Downgraded, h.Deferred)
		})
	})
}

// runRulesCheck validates a rules document without an agent: every problem on
// its own line on stdout, and a one-line summary as the error.
func runRulesCheck(_ context.Context, args []string) error {
	fs, c := cli.NewFlags(prog, "rules check")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: rules check: %v", cli.ErrUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: rules check: give one FILE", cli.ErrUsage)
	}
	file := fs.Arg(0)
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	doc, err := rules.Parse(b)
	type report struct {
		OK       bool     `json:"ok"`
		Version  int      `json:"version,omitempty"`
		Problems []string `json:"problems,omitempty"`
	}
	var r report
	var p rules.Problems
	switch {
	case err == nil:
		r = report{OK: true, Version: doc.Version}
	case errors.As(err, &p):
		r.Problems = p
	default:
		r.Problems = []string{strings.TrimPrefix(err.Error(), "rules: ")}
	}
	if perr := c.Print(r, func(w io.Writer) {
		if r.OK {
			fmt.Fprintf(w, "%s: rules version %d, %d tiers, %d campaigns, %d rewards: valid\n", file, doc.Version, len(doc.Tiers), len(doc.Campaigns), len(doc.Catalog))
		}
		for _, line := range r.Problems {
			fmt.Fprintf(w, "%s: %s\n", file, line)
		}
	}); perr != nil {
		return perr
	}
	if !r.OK {
		return fmt.Errorf("%s: %d problems", file, len(r.Problems))
	}
	return nil
}
