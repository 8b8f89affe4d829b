package agent_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/agent"
)

// The crash test runs checkouts in a child process (this test binary,
// re-executed) and SIGKILLs it at random moments. The child prints a line for
// each checkout only after the agent said it succeeded; after every kill the
// parent reopens the ledger and checks that each of them is there exactly
// once, the sequence is gapless, the hash chain intact and every balance the
// sum of its events.

const (
	crashEnvDir   = "AGENT_CRASH_DIR"
	crashEnvRound = "AGENT_CRASH_ROUND"
	crashEnvRetry = "AGENT_CRASH_RETRY"
	crashWorkers  = 4 // concurrent checkouts, so kills land inside group commits
	crashCards    = 3
)

func crashCard(i int) string { return fmt.Sprintf("99000000%04d", i) }

// TestCrashChild is the child's body; it does nothing unless re-executed by
// TestCrashRecovery.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("only runs as the child of TestCrashRecovery")
	}
	ctx := context.Background()
	a, err := agent.Open(ctx, dir, agent.Options{})
	if err != nil {
		fmt.Println("open-error", err)
		os.Exit(3)
	}
	out := make(chan string, 1024)
	go func() {
		for line := range out {
			os.Stdout.WriteString(line + "\n")
		}
	}()
	for i := range crashCards {
		// Enrollment is idempotent by ref, so every round may repeat it.
		if _, err := a.Enroll(ctx, agent.EnrollRequest{Card: crashCard(i), Ref: "enroll-" + crashCard(i)}); err != nil {
			fmt.Println("enroll-error", err)
			os.Exit(3)
		}
	}
	// Retries of checkouts acknowledged in the previous round must return
	// their first result.
	if retry := os.Getenv(crashEnvRetry); retry != "" {
		for _, ref := range strings.Split(retry, ",") {
			r, err := a.Earn(ctx, agent.EarnRequest{Card: crashCard(0), Amount: "1", Ref: ref})
			if err != nil {
				fmt.Println("retry-error", ref, err)
				os.Exit(3)
			}
			out <- fmt.Sprintf("retry %s %d %d", ref, r.Seq, r.Points)
		}
	}
	round := os.Getenv(crashEnvRound)
	var wg sync.WaitGroup
	for w := range crashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				ref := fmt.Sprintf("%s-%d-%d", round, w, n)
				amount := fmt.Sprintf("%d.%02d", 1+n%50, n%100)
				card := crashCard((w + n) % crashCards)
				r, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: amount, Ref: ref})
				if err != nil {
					out <- "error " + err.Error()
					return
				}
				out <- fmt.Sprintf("ok %s %d %d", ref, r.Seq, r.Points)
				// Burns and reversals too, so kills land in every kind of
				// transaction; refusals (not enough points) are fine.
				switch n % 7 {
				case 2:
					_, err = a.Redeem(ctx, agent.RedeemRequest{Card: card, Reward: "coffee", Ref: ref})
				case 4:
					_, err = a.Refund(ctx, agent.RefundRequest{Ref: ref, Amount: "0.50"})
				case 5:
					_, err = a.Void(ctx, agent.VoidRequest{Ref: ref})
				case 6:
					_, err = a.Donate(ctx, agent.DonateRequest{Card: card, Points: 3, Charity: "trees", Ref: ref})
				}
				if err != nil && !errors.Is(err, agent.ErrInsufficientPoints) && !errors.Is(err, agent.ErrOfflineLimit) {
					out <- "error " + err.Error()
					return
				}
			}
		}()
	}
	wg.Wait()
}

type acked struct {
	seq    uint64
	points int64
}

func TestCrashRecovery(t *testing.T) {
	rounds := 12
	if testing.Short() {
		rounds = 4
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	all := map[string]acked{}
	var lastRound []string
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvRound+"="+strconv.Itoa(round))
		if n := len(lastRound); n > 0 {
			cmd.Env = append(cmd.Env, crashEnvRetry+"="+strings.Join(lastRound[max(0, n-3):], ","))
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill at a random moment once the child has made some progress.
		killAfter := time.Duration(50+rng.IntN(400)) * time.Millisecond
		timer := time.AfterFunc(killAfter, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		lastRound = lastRound[:0]
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch f[0] {
			case "ok", "retry":
				seq, _ := strconv.ParseUint(f[2], 10, 64)
				pts, _ := strconv.ParseInt(f[3], 10, 64)
				if f[0] == "retry" {
					if first, ok := all[f[1]]; !ok || first != (acked{seq, pts}) {
						t.Fatalf("round %d: retry of %s returned seq %d points %d, first result %+v", round, f[1], seq, pts, first)
					}
					continue
				}
				if _, dup := all[f[1]]; dup {
					t.Fatalf("round %d: %s acknowledged twice", round, f[1])
				}
				all[f[1]] = acked{seq, pts}
				lastRound = append(lastRound, f[1])
			default:
				t.Fatalf("round %d: child said %q", round, sc.Text())
			}
		}
		timer.Stop()
		_ = cmd.Wait()
		checkLedger(t, dir, all)
	}
	if len(all) < rounds {
		t.Fatalf("only %d checkouts acknowledged over %d rounds", len(all), rounds)
	}
	t.Logf("%d rounds, %d acknowledged checkouts survived SIGKILL", rounds, len(all))
}

// checkLedger reopens the ledger after a kill and checks it against what the
// child was told.
func checkLedger(t *testing.T, dir string, all map[string]acked) {
	t.Helper()
	a, err := agent.Open(context.Background(), dir, agent.Options{})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer a.Close()
	evs := events(t, a) // verifies gapless sequence and the hash chain
	seen := map[string]int{}
	sums := map[string]int64{}
	for _, e := range evs {
		if e.Type == "earn" {
			seen[e.Ref]++
			if want, ok := all[e.Ref]; ok && (want.seq != e.Seq || want.points != e.Points) {
				t.Fatalf("%s: ledger has seq %d points %d, child was told seq %d points %d", e.Ref, e.Seq, e.Points, want.seq, want.points)
			}
		}
		sums[e.Member] += e.Points
	}
	for ref := range all {
		if seen[ref] != 1 {
			t.Fatalf("acknowledged checkout %s is in the ledger %d times", ref, seen[ref])
		}
	}
	for ref, n := range seen {
		if n != 1 {
			t.Fatalf("checkout %s is in the ledger %d times", ref, n)
		}
	}
	for i := range crashCards {
		m, err := a.Member(context.Background(), crashCard(i))
		if err != nil {
			continue // the first round may die before enrolling everyone
		}
		if m.Balance != sums[m.Member] {
			t.Fatalf("member %s: balance %d, sum of events %d", m.Member, m.Balance, sums[m.Member])
		}
	}
}
