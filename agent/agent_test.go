package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/agent/store"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/rules"
)

const card = "4000000000000002"

// clock is a settable wall clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock {
	// A Wednesday: the default rules double points on Tuesdays.
	return &clock{t: time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC)}
}

func open(t testing.TB, dir string, c *clock) *agent.Agent {
	t.Helper()
	opts := agent.Options{Location: time.UTC}
	if c != nil {
		opts.Now = c.now
	}
	a, err := agent.Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	// The default rules without the surprise draw: its 1% chance on a
	// checkout without a ref (a random one) would make exact figures differ
	// from run to run. The surprise tests put it back with fixed refs.
	applyRules(t, a, func(d *rules.Document) { d.Surprise = nil })
	return a
}

func enroll(t testing.TB, a *agent.Agent, card string) agent.Result {
	t.Helper()
	r, err := a.Enroll(context.Background(), agent.EnrollRequest{Card: card, Name: "Ada", Email: "ada@example.com", Consent: true})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// events decodes and verifies the whole ledger.
func events(t testing.TB, a *agent.Agent) []ledger.Event {
	t.Helper()
	var out []ledger.Event
	prevSeq, prevHash := uint64(0), ""
	err := a.Export(func(b []byte) error {
		e, err := ledger.Decode(b)
		if err != nil {
			return err
		}
		if err := ledger.Verify(e, prevSeq, prevHash); err != nil {
			return err
		}
		prevSeq, prevHash = e.Seq, e.Hash
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFlowExactNumbers(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	a := open(t, t.TempDir(), c)
	enroll(t, a, card)

	earn, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "212.99", Ref: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if earn.Points != 212 || earn.Balance != 212 || earn.Seq != 2 {
		t.Fatalf("earn = %+v", earn)
	}
	red, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Reward: "coffee", Ref: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if red.Points != -150 || red.Balance != 62 {
		t.Fatalf("redeem = %+v", red)
	}
	disc, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Points: 0})
	if !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("redeem of nothing: %+v, %v", disc, err)
	}
	// A refund of a third of the purchase claws back a third of its points,
	// rounding so that returning the rest claws back exactly the remainder.
	ref1, err := a.Refund(ctx, agent.RefundRequest{Ref: "r1", Amount: "71.00"})
	if err != nil {
		t.Fatal(err)
	}
	if ref1.Points != -70 { // floor(212 * 7100 / 21299) = 70
		t.Fatalf("first refund = %+v", ref1)
	}
	ref2, err := a.Refund(ctx, agent.RefundRequest{Ref: "r1", Amount: "141.99"})
	if err != nil {
		t.Fatal(err)
	}
	if ref2.Points != -142 || ref2.Balance != 62-70-142 {
		t.Fatalf("second refund = %+v", ref2)
	}
	if _, err := a.Refund(ctx, agent.RefundRequest{Ref: "r1", Amount: "0.01"}); !errors.Is(err, agent.ErrRefund) {
		t.Fatalf("refund past the purchase: %v", err)
	}

	earn2, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "1000", Ref: "r2"})
	if err != nil {
		t.Fatal(err)
	}
	don, err := a.Donate(ctx, agent.DonateRequest{Card: card, Points: 100, Charity: "trees", Ref: "r2"})
	if err != nil {
		t.Fatal(err)
	}
	disc, err = a.Redeem(ctx, agent.RedeemRequest{Card: card, Points: 300, Ref: "r2"})
	if err != nil {
		t.Fatal(err)
	}
	if disc.Value != 300 || disc.Type != "burn_discount" {
		t.Fatalf("discount = %+v", disc)
	}
	// Voiding r2 claws back its 1000 points and gives back the 400 burned.
	void, err := a.Void(ctx, agent.VoidRequest{Ref: "r2"})
	if err != nil {
		t.Fatal(err)
	}
	if void.Points != -600 || void.Balance != earn2.Balance-100-300-600 {
		t.Fatalf("void = %+v (earn2 %+v, donate %+v)", void, earn2, don)
	}

	m, err := a.Member(ctx, card)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, e := range events(t, a) {
		sum += e.Points
	}
	if m.Balance != sum || m.Balance != -150 {
		t.Fatalf("balance %d, sum of events %d", m.Balance, sum)
	}
	if m.Card != "************0002" || m.Spend12m != 0 {
		t.Fatalf("member = %+v", m)
	}

	s, err := a.Stats("")
	if err != nil {
		t.Fatal(err)
	}
	want := agent.Stats{Checkouts: 1, MemberCheckouts: 1, UniqueMembers: 1, PointsIssued: 1212, PointsRedeemed: 450,
		PointsDonated: 100, PointsReversed: 812, Enrollments: 1, Voids: 1, Refunds: 2}
	got := agent.Stats{Checkouts: s.Checkouts, MemberCheckouts: s.MemberCheckouts, UniqueMembers: s.UniqueMembers,
		PointsIssued: s.PointsIssued, PointsRedeemed: s.PointsRedeemed, PointsDonated: s.PointsDonated,
		PointsReversed: s.PointsReversed, Enrollments: s.Enrollments, Voids: s.Voids, Refunds: s.Refunds}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stats\n got %+v\nwant %+v", got, want)
	}
	if s.RedemptionRateBP == nil || *s.RedemptionRateBP != 3712 {
		t.Fatalf("redemption rate %v, want 3712 bp", s.RedemptionRateBP)
	}
	if s.Hours[10].PointsIssued != 1212 || s.TopRewards[0] != (agent.RewardCount{Reward: "coffee", Count: 1}) {
		t.Fatalf("hours/top rewards: %+v %+v", s.Hours[10], s.TopRewards)
	}
}

func TestIdempotentAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := open(t, dir, newClock())
	enroll(t, a, card)
	first, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "10", Ref: "same"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "99", Ref: "same"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(first) != fmt.Sprint(again) {
		t.Fatalf("retry returned %+v, first %+v", again, first)
	}
	a.Close()
	b := open(t, dir, nil)
	after, err := b.Earn(ctx, agent.EarnRequest{Card: card, Amount: "10", Ref: "same"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(first) != fmt.Sprint(after) {
		t.Fatalf("retry after restart returned %+v, first %+v", after, first)
	}
	if n := len(events(t, b)); n != 2 {
		t.Fatalf("%d events, want enroll + one earn", n)
	}
}

func TestConcurrentSameRef(t *testing.T) {
	ctx := context.Background()
	a := open(t, t.TempDir(), nil)
	enroll(t, a, card)
	var wg sync.WaitGroup
	results := make([]agent.EarnResult, 16)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "5", Ref: "dup"})
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	for _, r := range results {
		if fmt.Sprint(r) != fmt.Sprint(results[0]) {
			t.Fatalf("results differ: %+v vs %+v", r, results[0])
		}
	}
	if n := len(events(t, a)); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	ctx := context.Background()
	a := open(t, t.TempDir(), nil)
	enroll(t, a, card)
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "1", Ref: "paid"}); err != nil {
		t.Fatal(err)
	}
	before := len(events(t, a))
	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"negative", func() error { _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "-5"}); return err }, agent.ErrInvalid},
		{"letters", func() error { _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "abc"}); return err }, agent.ErrInvalid},
		{"exponent", func() error { _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "1e3"}); return err }, agent.ErrInvalid},
		{"precision", func() error { _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "12.345"}); return err }, agent.ErrInvalid},
		{"overflow", func() error {
			_, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "99999999999999999999"})
			return err
		}, agent.ErrInvalid},
		{"empty", func() error { _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: ""}); return err }, agent.ErrInvalid},
		{"unknown card", func() error { _, err := a.Earn(ctx, agent.EarnRequest{Card: "123", Amount: "5"}); return err }, agent.ErrUnknownCard},
		{"control char card", func() error { _, err := a.Earn(ctx, agent.EarnRequest{Card: "12\n3", Amount: "5"}); return err }, agent.ErrInvalid},
		{"over balance", func() error { _, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Reward: "coffee"}); return err }, agent.ErrInsufficientPoints},
		{"unknown reward", func() error { _, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Reward: "yacht"}); return err }, agent.ErrUnknownReward},
		{"absurd points", func() error {
			_, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Points: 9_000_000_000_000_000_000})
			return err
		}, agent.ErrInvalid},
		{"discount step", func() error { _, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Points: 150}); return err }, agent.ErrInvalid},
		{"unknown charity", func() error {
			_, err := a.Donate(ctx, agent.DonateRequest{Card: card, Points: 1, Charity: "x"})
			return err
		}, agent.ErrUnknownCharity},
		{"donate over balance", func() error {
			_, err := a.Donate(ctx, agent.DonateRequest{Card: card, Points: 2, Charity: "trees"})
			return err
		}, agent.ErrInsufficientPoints},
		{"void unknown", func() error { _, err := a.Void(ctx, agent.VoidRequest{Ref: "nope"}); return err }, agent.ErrUnknownCheckout},
		{"refund too much", func() error { _, err := a.Refund(ctx, agent.RefundRequest{Ref: "paid", Amount: "2"}); return err }, agent.ErrRefund},
		{"enroll twice", func() error { _, err := a.Enroll(ctx, agent.EnrollRequest{Card: card}); return err }, agent.ErrCardExists},
		{"bad email", func() error {
			_, err := a.Enroll(ctx, agent.EnrollRequest{Card: "555", Email: "not an email"})
			return err
		}, agent.ErrInvalid},
	}
	for _, tc := range cases {
		err := tc.call()
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line: %q", tc.name, err)
		}
	}
	if after := len(events(t, a)); after != before {
		t.Fatalf("bad input wrote %d events", after-before)
	}
}

// TestUnjoinedTillRedeems: a till that never joined a head office knows all
// of its members' points: no offline limit holds back a reward.
func TestUnjoinedTillRedeems(t *testing.T) {
	ctx := context.Background()
	a := open(t, t.TempDir(), newClock())
	enroll(t, a, card)
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "5000", Ref: "big"}); err != nil {
		t.Fatal(err)
	}
	for _, reward := range []string{"voucher20", "tote"} {
		if _, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Reward: reward}); err != nil {
			t.Fatalf("%s at a till that never joined: %v", reward, err)
		}
	}
}

func TestOfflineLimitAndSnapshots(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	a := open(t, t.TempDir(), c)
	if err := a.SetIdentity("S1-t1", "S1"); err != nil {
		t.Fatal(err)
	}
	r := enroll(t, a, card)
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "5000", Ref: "big"}); err != nil {
		t.Fatal(err)
	}
	// Joined, never synced: the default limit of 2000 points a day applies.
	if _, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Reward: "voucher20"}); err != nil {
		t.Fatal(err)
	}
	_, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Reward: "tote"})
	if !errors.Is(err, agent.ErrOfflineLimit) || !strings.Contains(err.Error(), "200 of 2000 points left today") {
		t.Fatalf("over the offline limit: %v", err)
	}
	// Head office's fresh snapshot includes the earn (seq 2) but not the
	// redeem (seq 3): the balance is the snapshot plus the terminal's redeem.
	err = a.ApplyMembers([]agent.MemberSnapshot{{Member: r.Member, Cards: []string{card}, Tier: "gold", Balance: 5300,
		AsOfSeq: 2, Taken: c.now(), Status: "active"}}, 7)
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.Member(ctx, card)
	if err != nil {
		t.Fatal(err)
	}
	if m.Balance != 5300-1800 || m.Pending != -1800 || m.Tier != "gold" {
		t.Fatalf("after snapshot: %+v", m)
	}
	if a.Cursors().Members != 7 {
		t.Fatalf("cursor = %d", a.Cursors().Members)
	}
	// With a current snapshot the limit does not apply.
	if _, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Reward: "tote"}); err != nil {
		t.Fatal(err)
	}
	// A day later the snapshot is stale again, and the limit is a new day's.
	c.add(25 * time.Hour)
	if _, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Reward: "voucher20"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Reward: "tote"}); !errors.Is(err, agent.ErrOfflineLimit) {
		t.Fatalf("stale again: %v", err)
	}
	// Blocking the card stops it.
	if err := a.ApplyBlocked([]agent.CardBlock{{Card: card, Blocked: true}}, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "1"}); !errors.Is(err, agent.ErrBlockedCard) {
		t.Fatalf("blocked card: %v", err)
	}
}

func TestOnlineLookup(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	a := open(t, t.TempDir(), c)
	const other = "7000000000001"
	a.SetLookup(func(ctx context.Context, card string) (*agent.MemberSnapshot, error) {
		if card != other {
			return nil, nil
		}
		return &agent.MemberSnapshot{Member: "M-remote", Cards: []string{other}, Tier: "silver", Balance: 700, Taken: c.now()}, nil
	})
	res, err := a.Earn(ctx, agent.EarnRequest{Card: other, Amount: "10"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Member != "M-remote" || res.Balance != 712 { // 700 + 10 base + 2 Silver x1.25
		t.Fatalf("earn for a member from another store: %+v", res)
	}
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: "1111", Amount: "10"}); !errors.Is(err, agent.ErrUnknownCard) {
		t.Fatalf("card unknown everywhere: %v", err)
	}
}

func TestSecondAgentFailsFast(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, nil)
	start := time.Now()
	_, err := agent.Open(context.Background(), dir, agent.Options{})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatal("second open hung on the lock")
	}
}

func TestCorruptFileIsAnError(t *testing.T) {
	for name, content := range map[string][]byte{
		"garbage":   []byte(strings.Repeat("not a database ", 1000)),
		"truncated": make([]byte, 100),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, store.FileName)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := agent.Open(context.Background(), dir, agent.Options{})
			if err == nil {
				t.Fatal("opened a corrupt file")
			}
			got, _ := os.ReadFile(path)
			if string(got) != string(content) {
				t.Fatal("the corrupt file was changed")
			}
		})
	}
}

func TestFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	open(t, dir, nil)
	for _, p := range []string{dir, filepath.Join(dir, store.FileName)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", p, fi.Mode().Perm())
		}
	}
}

func TestManagerPIN(t *testing.T) {
	a := open(t, t.TempDir(), nil)
	if a.HasManagerPIN() {
		t.Fatal("PIN set on a new terminal")
	}
	if err := a.SetManagerPIN("12a4"); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("non-digit PIN: %v", err)
	}
	if err := a.SetManagerPIN("4711"); err != nil {
		t.Fatal(err)
	}
	if err := a.CheckManagerPIN("4711"); err != nil {
		t.Fatal(err)
	}
	if err := a.CheckManagerPIN("4712"); !errors.Is(err, agent.ErrBadPIN) {
		t.Fatalf("wrong PIN: %v", err)
	}
	// The first person at the till chooses it, and no one after them.
	if err := a.SetManagerPIN("1234"); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("a second PIN: %v", err)
	}
	if err := a.CheckManagerPIN("4711"); err != nil {
		t.Fatalf("the PIN changed: %v", err)
	}
}

func TestOutboxAndAcks(t *testing.T) {
	ctx := context.Background()
	a := open(t, t.TempDir(), nil)
	enroll(t, a, card)
	for i := range 5 {
		if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "1", Ref: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-a.OutboxSignal():
	default:
		t.Fatal("no outbox signal after commits")
	}
	evs, err := a.OutboxAfter(2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	if e, _ := ledger.Decode(evs[0]); e.Seq != 3 {
		t.Fatalf("first event after 2 is seq %d", e.Seq)
	}
	if err := a.MarkAcked(4); err != nil {
		t.Fatal(err)
	}
	if err := a.MarkAcked(2); err != nil || a.Acked() != 4 {
		t.Fatalf("ack moved back: %d, %v", a.Acked(), err)
	}
	if err := a.MarkAcked(99); err == nil {
		t.Fatal("ack past the ledger accepted")
	}
	if s := a.Status(); s.Queue != 2 || s.Seq != 6 || s.OldestUnsent == nil || s.LastSync == nil {
		t.Fatalf("status = %+v", s)
	}
}

func jsonOf(v any) ([]byte, error) { return json.Marshal(v) }

func TestSettings(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir, nil)
	want := agent.Settings{HQURL: "wss://hq.example.com/v1/sync", ScannerPort: "/dev/ttyACM0", Language: "tr"}
	if err := a.SaveSettings(want); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []agent.Settings{{HQURL: "http://hq"}, {Language: "xx"}, {ScannerPort: "a\nb"}, {ScannerBaud: -1}} {
		if err := a.SaveSettings(bad); !errors.Is(err, agent.ErrInvalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	a.Close()
	if got := open(t, dir, nil).Settings(); got != want {
		t.Fatalf("after restart: %+v, want %+v", got, want)
	}
}

func TestAdjustAndReplaceCard(t *testing.T) {
	ctx := context.Background()
	a := open(t, t.TempDir(), nil)
	enroll(t, a, card)
	if _, err := a.Adjust(ctx, agent.AdjustRequest{Card: card, Points: 250}); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("adjust without a reason: %v", err)
	}
	adj, err := a.Adjust(agent.WithManager(ctx, "test"), agent.AdjustRequest{Card: card, Points: 250, Reason: "goodwill: damaged goods", Ref: "adj-1"})
	if err != nil || adj.Balance != 250 {
		t.Fatalf("adjust = %+v, %v", adj, err)
	}
	rep, err := a.ReplaceCard(ctx, agent.ReplaceCardRequest{Card: card, NewCard: "4000000000000010"})
	if err != nil || rep.Balance != 250 {
		t.Fatalf("replace = %+v, %v", rep, err)
	}
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "5"}); !errors.Is(err, agent.ErrBlockedCard) {
		t.Fatalf("old card after replacement: %v", err)
	}
	m, err := a.Member(ctx, "4000000000000010")
	if err != nil || m.Balance != 250 || m.Member != adj.Member {
		t.Fatalf("new card: %+v, %v", m, err)
	}
	if _, err := a.ReplaceCard(ctx, agent.ReplaceCardRequest{Card: "4000000000000010", NewCard: card}); !errors.Is(err, agent.ErrCardExists) {
		t.Fatalf("replacing onto an existing card: %v", err)
	}
	evs := events(t, a)
	if last := evs[len(evs)-1]; last.Type != ledger.CardReplace || last.NewCard != "4000000000000010" {
		t.Fatalf("last event %+v", last)
	}
}

func TestRewardReturnRate(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	a := open(t, t.TempDir(), c)
	enroll(t, a, card)
	enroll(t, a, "4000000000000010")
	for _, cd := range []string{card, "4000000000000010"} {
		if _, err := a.Earn(ctx, agent.EarnRequest{Card: cd, Amount: "500", Ref: "big-" + cd}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Redeem(ctx, agent.RedeemRequest{Card: cd, Reward: "coffee", Ref: "big-" + cd}); err != nil {
			t.Fatal(err)
		}
	}
	// A purchase later the same day is not a return.
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "5"}); err != nil {
		t.Fatal(err)
	}
	if s, _ := a.Stats(""); s.RewardReturnBP == nil || *s.RewardReturnBP != 0 {
		t.Fatalf("same-day purchase counted as a return: %v bp", s.RewardReturnBP)
	}
	// One of the two redeemers comes back ten days later: 50%.
	c.add(10 * 24 * time.Hour)
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "5"}); err != nil {
		t.Fatal(err)
	}
	if s, _ := a.Stats(""); s.RewardReturnBP == nil || *s.RewardReturnBP != 5000 {
		t.Fatalf("reward-return rate %v bp, want 5000", s.RewardReturnBP)
	}
}

func TestQuoteWritesNothing(t *testing.T) {
	ctx := context.Background()
	a := open(t, t.TempDir(), newClock())
	enroll(t, a, card)
	items := []rules.Item{{SKU: "tea", Category: "grocery", Quantity: 1, Amount: 1000}, {SKU: "gc", Category: "gift_card", Quantity: 1, Amount: 2000}}
	q, err := a.Quote(ctx, agent.EarnRequest{Card: card, Amount: "30.00", Items: items})
	if err != nil {
		t.Fatal(err)
	}
	if q.Points != 10 || q.Eligible != 1000 {
		t.Fatalf("quote = %+v", q)
	}
	before := len(events(t, a))
	e, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "30.00", Items: items})
	if err != nil || e.Points != q.Points {
		t.Fatalf("earn %+v after quote %+v: %v", e, q, err)
	}
	if after := len(events(t, a)); after != before+1 {
		t.Fatalf("quote wrote %d events", after-before-1)
	}
}

func TestTierUpgradeAndLockedRewards(t *testing.T) {
	ctx := context.Background()
	a := open(t, t.TempDir(), newClock())
	enroll(t, a, card)
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "499.99"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Reward: "cinema"}); !errors.Is(err, agent.ErrTierRequired) {
		t.Fatalf("silver reward for a bronze member: %v", err)
	}
	// Crossing 500.00 of 12-month spend makes the member Silver at once, with
	// a tier_change event in the same transaction as the earn.
	res, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "500.01"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Points != 500 { // the checkout that qualifies still earns at Bronze
		t.Fatalf("qualifying earn = %+v", res)
	}
	evs := events(t, a)
	last := evs[len(evs)-1]
	if last.Type != ledger.TierChange || last.Tier != "silver" || last.Ref != res.Ref {
		t.Fatalf("last event %+v", last)
	}
	m, _ := a.Member(ctx, card)
	if m.Tier != "silver" {
		t.Fatalf("tier %s", m.Tier)
	}
	next, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "100.00"})
	if err != nil || next.Points != 125 {
		t.Fatalf("silver earn = %+v, %v", next, err)
	}
	if _, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Reward: "cinema"}); err != nil {
		t.Fatalf("silver reward for a silver member: %v", err)
	}
	s, _ := a.Stats("")
	if s.TierDistribution["silver"] != 1 || s.TierDistribution["bronze"] != 0 {
		t.Fatalf("tier distribution %v", s.TierDistribution)
	}
}

func TestTuesdayCampaign(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	c.add(-24 * time.Hour) // Tuesday 2026-11-24
	a := open(t, t.TempDir(), c)
	enroll(t, a, card)
	res, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "120.00"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Points != 240 || len(res.Lines) != 2 || res.Lines[1] != (ledger.Line{Label: "Double Points Tuesday", Points: 120}) {
		t.Fatalf("Tuesday earn = %+v", res)
	}
}

// TestMemberTierLadder: the member view places the member on the tier
// ladder of the rules in force (the default: silver at 500.00, gold at
// 1,500.00, platinum at 5,000.00 of rolling spend).
func TestMemberTierLadder(t *testing.T) {
	a := open(t, t.TempDir(), nil)
	enroll(t, a, card)
	ctx := context.Background()
	type ladder struct {
		Tier, TierName, Next, NextName string
		ToGo, Permille                 int64
		Open                           string
	}
	steps := []struct {
		amount string
		want   ladder
	}{
		{"200.00", ladder{"bronze", "Bronze", "silver", "Silver", 30000, 400, "bronze"}},
		{"400.00", ladder{"silver", "Silver", "gold", "Gold", 90000, 100, "bronze silver"}},
		{"899.99", ladder{"silver", "Silver", "gold", "Gold", 1, 999, "bronze silver"}},
		{"4000.00", ladder{"platinum", "Platinum", "", "", 0, 0, "bronze silver gold platinum"}},
	}
	raised := []string{"", "Silver", "", "Platinum"} // what each earn announces
	for i, s := range steps {
		r, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: s.amount, Ref: fmt.Sprintf("L-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if r.NewTierName != raised[i] || (r.NewTier == "") != (raised[i] == "") {
			t.Errorf("after %s the earn announces tier %q (%q), want %q", s.amount, r.NewTierName, r.NewTier, raised[i])
		}
		m, err := a.Member(ctx, card)
		if err != nil {
			t.Fatal(err)
		}
		got := ladder{m.Tier, m.TierName, m.NextTier, m.NextTierName, m.SpendToNext, m.TierProgress, strings.Join(m.OpenTiers, " ")}
		if got != s.want {
			t.Errorf("after %s (spend %d): %+v, want %+v", s.amount, m.Spend12m, got, s.want)
		}
	}
}

// TestFollowSlips: the slip follower gives one slip per earn after the
// sequence it starts from, in order, each with the balance that earn left
// (not the member's latest), and none for other events.
func TestFollowSlips(t *testing.T) {
	a := open(t, t.TempDir(), nil)
	enroll(t, a, card)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	earn := func(ref, amount string) agent.EarnResult {
		r, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: amount, Ref: ref})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	before := earn("S-0", "10.00") // before the follower's start: no slip
	slips := make(chan agent.Slip, 10)
	done := make(chan error, 1)
	go func() {
		done <- a.FollowSlips(ctx, before.Seq, func(s agent.Slip) { slips <- s }, func(seq uint64, err error) {
			t.Errorf("slip %d: %v", seq, err)
		})
	}()
	first, second := earn("S-1", "20.00"), earn("S-2", "30.00")
	if _, err := a.Adjust(agent.WithManager(ctx, "test"), agent.AdjustRequest{Card: card, Points: -5, Reason: "test", Ref: "S-3"}); err != nil {
		t.Fatal(err)
	}
	third := earn("S-4", "40.00")
	for _, want := range []agent.EarnResult{first, second, third} {
		select {
		case s := <-slips:
			if s.Seq != want.Seq || s.Earned != want.Points || s.Balance != want.Balance || s.Member != "Ada" || s.Card != card || len(s.Lines) == 0 {
				t.Errorf("slip %+v, want seq %d, %d points, balance %d", s, want.Seq, want.Points, want.Balance)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no slip for earn %d", want.Seq)
		}
	}
	select {
	case s := <-slips:
		t.Fatalf("an extra slip: %+v", s)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("FollowSlips ended with %v", err)
	}
}

// TestCheckoutView: a checkout reads back as the cashier confirms it
// before a void: its sale, points and operations; an unknown ref is
// refused as one.
func TestCheckoutView(t *testing.T) {
	a := open(t, t.TempDir(), nil)
	enroll(t, a, card)
	ctx := context.Background()
	r, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "25.00", Ref: "V-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Donate(ctx, agent.DonateRequest{Card: card, Points: 5, Charity: a.Rules().Charities[0].ID, Ref: "V-1"}); err != nil {
		t.Fatal(err)
	}
	v, err := a.Checkout(ctx, "V-1")
	if err != nil {
		t.Fatal(err)
	}
	if v.Amount != 2500 || v.Earned != r.Points || v.Burned != 5 || v.Name != "Ada" || v.Card == card || v.Voided ||
		strings.Join(v.Operations, " ") != "donate earn" || v.Currency != a.Rules().Currency {
		t.Fatalf("checkout view %+v", v)
	}
	if _, err := a.Void(ctx, agent.VoidRequest{Ref: "V-1"}); err != nil {
		t.Fatal(err)
	}
	if v, err := a.Checkout(ctx, "V-1"); err != nil || !v.Voided {
		t.Fatalf("after the void: %+v %v", v, err)
	}
	if _, err := a.Checkout(ctx, "never"); !errors.Is(err, agent.ErrUnknownCheckout) {
		t.Fatalf("unknown ref: %v", err)
	}
	if _, err := a.Checkout(ctx, ""); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("no ref: %v", err)
	}
}

// TestApprovals: what a cashier may not do alone — a sale above the
// rules' largest (a few digits too many, 99999999999 in the issue), a void
// or refund above the approval limits, any adjustment — is refused with
// the figures and writes nothing, unless the manager PIN comes with it or
// the call is a manager's; a wrong PIN is refused and counted.
func TestApprovals(t *testing.T) {
	c := newClock()
	a := open(t, t.TempDir(), c)
	enroll(t, a, card)
	if err := a.SetManagerPIN("2468"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before := a.Status().Seq
	for _, amount := range []string{"99999999999", "10000.01"} {
		_, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: amount})
		if !errors.Is(err, agent.ErrApproval) || !strings.Contains(err.Error(), "over the largest sale a cashier takes alone (10000.00 EUR)") {
			t.Fatalf("earn %s: %v", amount, err)
		}
		if _, err := a.Quote(ctx, agent.EarnRequest{Card: card, Amount: amount}); !errors.Is(err, agent.ErrApproval) {
			t.Fatalf("quote %s: %v", amount, err)
		}
	}
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "12000.00", ManagerPIN: "1111"}); !errors.Is(err, agent.ErrBadPIN) {
		t.Fatalf("a wrong PIN: %v", err)
	}
	if _, err := a.Adjust(ctx, agent.AdjustRequest{Card: card, Points: -100000, Reason: "typo"}); !errors.Is(err, agent.ErrApproval) {
		t.Fatalf("an adjustment without a manager: %v", err)
	}
	if a.Status().Seq != before {
		t.Fatal("a refused operation wrote an event")
	}
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "10000.00", Ref: "cap"}); err != nil {
		t.Fatalf("a sale at the cap: %v", err)
	}
	c.add(2 * time.Second) // past the wait after a wrong PIN
	big, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "12000.00", Ref: "big", ManagerPIN: "2468"})
	if err != nil || big.Points == 0 {
		t.Fatalf("an approved sale over the cap: %+v %v", big, err)
	}
	if _, err := a.Earn(agent.WithManager(ctx, "api token back-office"), agent.EarnRequest{Card: card, Amount: "15000.00", Ref: "big2"}); err != nil {
		t.Fatalf("a manager's sale over the cap: %v", err)
	}
	// The default rules: voids of up to 5000 points and refunds of up to
	// 500.00 alone. The 12000.00 sale earned more than 5000 points.
	if _, err := a.Void(ctx, agent.VoidRequest{Ref: "big"}); !errors.Is(err, agent.ErrApproval) || !strings.Contains(err.Error(), "over the 5000 a cashier voids alone") {
		t.Fatalf("a big void alone: %v", err)
	}
	if _, err := a.Refund(ctx, agent.RefundRequest{Ref: "cap", Amount: "600.00"}); !errors.Is(err, agent.ErrApproval) || !strings.Contains(err.Error(), "500.00 EUR") {
		t.Fatalf("a big refund alone: %v", err)
	}
	if _, err := a.Refund(ctx, agent.RefundRequest{Ref: "cap", Amount: "400.00"}); err != nil {
		t.Fatalf("a small refund: %v", err)
	}
	if _, err := a.Void(ctx, agent.VoidRequest{Ref: "big", ManagerPIN: "2468"}); err != nil {
		t.Fatalf("an approved void: %v", err)
	}
	if _, err := a.Refund(ctx, agent.RefundRequest{Ref: "cap", Amount: "600.00", ManagerPIN: "2468"}); err != nil {
		t.Fatalf("an approved refund: %v", err)
	}
	if _, err := a.Adjust(ctx, agent.AdjustRequest{Card: card, Points: 50, Reason: "goodwill", ManagerPIN: "2468"}); err != nil {
		t.Fatalf("an approved adjustment: %v", err)
	}
	// Each approved event records who approved it; the rest record nobody.
	approvers := map[string]string{}
	if err := a.Export(func(b []byte) error {
		e, err := ledger.Decode(b)
		if err == nil && e.Type != ledger.Enroll {
			approvers[string(e.Type)+" "+e.Ref] = e.Approver
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for ev, want := range map[string]string{"earn cap": "", "earn big": "manager PIN", "earn big2": "api token back-office",
		"void big": "manager PIN"} {
		if got, ok := approvers[ev]; !ok || got != want {
			t.Errorf("%s: approver %q (found %v), want %q", ev, got, ok, want)
		}
	}
	adjusted := 0
	for ev, who := range approvers {
		if strings.HasPrefix(ev, "adjust ") && who == "manager PIN" {
			adjusted++
		}
	}
	if adjusted != 1 {
		t.Errorf("%d adjustments approved by the manager PIN, want 1: %v", adjusted, approvers)
	}
}

// TestFiguresHoldTogether: a fresh till has no redemption or reward-return
// rate (not 0 %, not 100 %); a voided checkout leaves neither the day's
// checkouts nor its hour's; a day of redemptions with nothing issued has no
// redemption rate rather than 0 %.
func TestFiguresHoldTogether(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	a := open(t, t.TempDir(), c)
	enroll(t, a, card)
	s, err := a.Stats("")
	if err != nil || s.RedemptionRateBP != nil || s.RewardReturnBP != nil {
		t.Fatalf("a fresh till's rates: %v %v (%v)", s.RedemptionRateBP, s.RewardReturnBP, err)
	}
	for _, ref := range []string{"keep", "void"} {
		if _, err := a.Earn(ctx, agent.EarnRequest{Card: card, Amount: "500.00", Ref: ref}); err != nil {
			t.Fatal(err)
		}
	}
	c.add(time.Hour) // the void comes an hour later: it still leaves the checkout's hour
	if _, err := a.Void(ctx, agent.VoidRequest{Ref: "void"}); err != nil {
		t.Fatal(err)
	}
	s, _ = a.Stats("")
	var hours int64
	for _, h := range s.Hours {
		hours += h.Checkouts
	}
	if s.Checkouts != 1 || hours != 1 || s.Hours[10].Checkouts != 1 || s.Hours[11].Checkouts != 0 {
		t.Fatalf("checkouts %d, hours sum %d (10h %d, 11h %d): want 1 everywhere", s.Checkouts, hours, s.Hours[10].Checkouts, s.Hours[11].Checkouts)
	}
	c.add(24 * time.Hour)
	if _, err := a.Redeem(ctx, agent.RedeemRequest{Card: card, Points: 400}); err != nil {
		t.Fatal(err)
	}
	if s, _ = a.Stats(""); s.PointsRedeemed != 400 || s.RedemptionRateBP != nil {
		t.Fatalf("a day of 400 points redeemed and none issued: redeemed %d, rate %v", s.PointsRedeemed, s.RedemptionRateBP)
	}
}
