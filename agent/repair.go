package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/agent/store"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/rules"
)

// RepairOptions say who the terminal is when its ledger cannot: the
// identity it joined head office with (link.json).
type RepairOptions struct {
	Terminal, Store string
	Logger          *slog.Logger
	Location        *time.Location
}

// SeqRange is a run of sequence numbers, both ends included.
type SeqRange struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// RepairReport says what a repair kept, what it lost and where the damaged
// file is.
type RepairReport struct {
	Damaged string `json:"damaged,omitempty"` // where the damaged file was kept ("" when there was none)
	// DamagedLog is where the old ledger's write-ahead log was kept.
	DamagedLog string `json:"damaged_log,omitempty"`
	Terminal   string `json:"terminal"`
	Store      string `json:"store"`
	OldEpoch   string `json:"old_epoch,omitempty"`
	NewEpoch   string `json:"new_epoch"`
	Kept       int    `json:"kept"`     // events that verified (of the old ledger's epoch and of earlier ones it held)
	LastSeq    uint64 `json:"last_seq"` // the highest of the old epoch's
	// Lost are the sequences of the old ledger not found, up to the last
	// kept; events after it, if there were any, are not known either.
	Lost []SeqRange `json:"lost"`
	// Acked is head office's durable sequence of the old ledger, when the
	// damaged file still said it: head office holds every event up to it
	// and sends back those the repair lost ("" refill when it did not say).
	Acked uint64 `json:"acked,omitempty"`
}

// refill is what a repaired ledger asks head office for: the events of an
// earlier epoch after Have that it does not hold (Missing), or all of them
// after Have when Missing is empty.
type refill struct {
	Epoch   string     `json:"epoch"`
	Missing []SeqRange `json:"missing,omitempty"`
	After   uint64     `json:"after"` // everything past this sequence is asked for too
}

// metaRefill holds the refills a repaired ledger still has to ask for.
const metaRefill = "refill"

// Repair makes a new ledger in dir from what can be trusted of the old one:
// every event of it that still verifies (found in the file's bytes,
// whatever the state of its pages) is kept, as history, and the members,
// cards, checkouts and day figures are rebuilt from them. The damaged file
// is kept beside the new one. The new ledger is a new epoch: its events
// start at sequence 1 and the old ones stay in head office's chain of the
// old epoch; once connected, the terminal asks head office for the events
// of the old epoch it lost and gets the balances of its members anew.
//
// No agent may have dir open. A missing ledger is repaired too (nothing is
// kept, everything comes back from head office).
func Repair(ctx context.Context, dir string, opts RepairOptions) (RepairReport, error) {
	var rep RepairReport
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	sal, err := store.ReadSalvage(dir)
	if err != nil {
		return rep, err
	}
	events, oldEpoch := verified(sal)
	rep.OldEpoch = oldEpoch
	rep.Terminal, rep.Store = firstOf(opts.Terminal, sal.Meta["terminal"]), firstOf(opts.Store, sal.Meta["store"])
	for _, e := range events {
		if rep.Terminal == "" {
			rep.Terminal = e.Terminal
		}
		if rep.Store == "" {
			rep.Store = e.Store
		}
	}
	refills := refillsFor(events, oldEpoch)
	rep.Kept = len(events)
	for _, e := range events {
		if e.Epoch == oldEpoch {
			rep.LastSeq = max(rep.LastSeq, e.Seq)
		}
	}
	if len(refills) > 0 && refills[0].Epoch == oldEpoch {
		rep.Lost = refills[0].Missing
	}
	rep.Acked, _ = strconv.ParseUint(sal.Meta["acked"], 10, 64)
	stamp := ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
	if sal.Path != "" {
		rep.Damaged = sal.Path + stamp
		if err := os.Rename(sal.Path, rep.Damaged); err != nil {
			return rep, fmt.Errorf("keep the damaged file: %w", err)
		}
	}
	if sal.Log != "" {
		rep.DamagedLog = sal.Log + stamp
		if err := os.Rename(sal.Log, rep.DamagedLog); err != nil {
			return rep, fmt.Errorf("keep the damaged log: %w", err)
		}
	}
	st, err := store.Open(dir, nil)
	if err != nil {
		return rep, err
	}
	defer st.Close()
	a := &Agent{dir: dir, st: st, log: opts.Logger, now: time.Now, loc: opts.Location}
	if a.log == nil {
		a.log = slog.Default()
	}
	doc := rules.Default()
	if raw := sal.Meta["rules"]; raw != "" {
		if d, err := rules.Parse([]byte(raw)); err == nil {
			doc = d
		}
	}
	a.rules.Store(doc)
	err = st.Write(ctx, func(tx *store.Tx) error {
		rep.NewEpoch = tx.Meta("epoch")
		// What the old ledger said of the terminal, and its settings, rules
		// (when they still parse) and manager PIN, carry over.
		carried := map[string]string{"terminal": rep.Terminal, "store": rep.Store, "pin": sal.Meta["pin"], "settings": sal.Meta["settings"]}
		if _, err := rules.Parse([]byte(sal.Meta["rules"])); err == nil {
			carried["rules"] = sal.Meta["rules"]
		}
		for k, v := range carried {
			if v == "" {
				continue
			}
			if err := tx.SetMeta(k, v); err != nil {
				return err
			}
		}
		var hlc uint64
		for _, e := range events {
			hlc = max(hlc, e.HLC)
		}
		if h, _ := strconv.ParseUint(sal.Meta["hlc"], 10, 64); h > hlc {
			hlc = h
		}
		if err := tx.SetMetaUint("hlc", hlc); err != nil {
			return err
		}
		b, _ := json.Marshal(refills)
		if err := tx.SetMeta(metaRefill, string(b)); err != nil {
			return err
		}
		rb := &rebuild{a: a, tx: tx, doc: doc, members: map[string]*memberRecord{}}
		for i := range events {
			if err := tx.PutHistory(events[i].Epoch, events[i].Seq, events[i].raw); err != nil {
				return err
			}
			if err := rb.apply(&events[i].Event, true); err != nil {
				return err
			}
		}
		return rb.finish()
	})
	return rep, err
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

type verifiedEvent struct {
	ledger.Event
	raw []byte
}

// verified decodes the salvaged byte strings and keeps one verified event
// per epoch and sequence (a ledger repaired before holds the events of its
// earlier epochs as history), in the order they were written. The epoch
// returned is the ledger's own: its metadata's, or else the one most events
// have.
func verified(sal store.Salvage) ([]verifiedEvent, string) {
	b := ledger.DecodeBatch(sal.Events)
	byEpoch := map[string]map[uint64]verifiedEvent{}
	for i, e := range b.Events {
		if b.Errs[i] != nil {
			continue
		}
		if byEpoch[e.Epoch] == nil {
			byEpoch[e.Epoch] = map[uint64]verifiedEvent{}
		}
		byEpoch[e.Epoch][e.Seq] = verifiedEvent{e, b.Raws[i]}
	}
	epoch := sal.Meta["epoch"]
	if epoch == "" {
		for ep, evs := range byEpoch {
			if len(evs) > len(byEpoch[epoch]) || (len(evs) == len(byEpoch[epoch]) && ep < epoch) {
				epoch = ep
			}
		}
	}
	var out []verifiedEvent
	for _, evs := range byEpoch {
		for _, e := range evs {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.HLC != b.HLC {
			return a.HLC < b.HLC
		}
		if a.Epoch != b.Epoch {
			return a.Epoch < b.Epoch
		}
		return a.Seq < b.Seq
	})
	return out, epoch
}

// refillsFor is what a repaired ledger asks head office for: for the old
// ledger's epoch and every earlier one found, the sequences missing up to the
// last found and everything after it; and, last, the list of the terminal's
// earlier epochs, so that one no event was found of is refilled too.
func refillsFor(events []verifiedEvent, epoch string) []refill {
	bySeq := map[string][]uint64{}
	if epoch != "" {
		bySeq[epoch] = nil
	}
	for _, e := range events {
		bySeq[e.Epoch] = append(bySeq[e.Epoch], e.Seq)
	}
	var out []refill
	for ep, seqs := range bySeq {
		slices.Sort(seqs)
		r := refill{Epoch: ep}
		var next uint64 = 1
		for _, s := range seqs {
			if s > next {
				r.Missing = append(r.Missing, SeqRange{next, s - 1})
			}
			next = s + 1
			r.After = s
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Epoch == epoch) != (out[j].Epoch == epoch) {
			return out[i].Epoch == epoch
		}
		return out[i].Epoch < out[j].Epoch
	})
	return append(out, refill{})
}

// rebuild derives a ledger's records from events of an earlier ledger: the
// members and cards, the checkouts (with the first result of each operation,
// so that a retried ref is answered and not done again) and the day
// figures. Balances so rebuilt are the terminal's own count; head office's
// snapshots replace them when they come.
type rebuild struct {
	a       *Agent
	tx      *store.Tx
	doc     *rules.Document
	members map[string]*memberRecord
}

func (rb *rebuild) op(e *ledger.Event) *op {
	return &op{a: rb.a, tx: rb.tx, now: e.Time, doc: rb.doc, day: e.Time.In(rb.a.loc).Format(time.DateOnly)}
}

func (rb *rebuild) member(e *ledger.Event) *memberRecord {
	m := rb.members[e.Member]
	if m == nil {
		m = &memberRecord{ID: e.Member, Status: statusActive, Tier: rb.doc.StartTier(), TierSince: e.Time, Enrolled: e.Time}
		rb.members[e.Member] = m
	}
	if e.Card != "" && !contains(m.Cards, e.Card) && e.Type != ledger.CardReplace {
		m.Cards = append(m.Cards, e.Card)
	}
	return m
}

// apply derives the records of one event into rb.members, the checkouts,
// the cards and the day figures. With balances, the member's points move too
// (events kept at the repair); without (events refilled from head office
// later, whose members the caller does not keep), they do not.
func (rb *rebuild) apply(e *ledger.Event, balances bool) error {
	o := rb.op(e)
	m := rb.member(e)
	var co checkoutRecord
	if _, err := rb.tx.Get(store.Checkouts, e.Ref, &co); err != nil {
		return err
	}
	if co.Ref == "" {
		co.Ref = e.Ref
	}
	result := func(key string, v any) {
		if co.Results == nil {
			co.Results = map[string]json.RawMessage{}
		}
		if _, ok := co.Results[key]; !ok {
			co.Results[key], _ = json.Marshal(v)
		}
	}
	res := Result{Ref: e.Ref, Type: string(e.Type), Member: m.ID, Points: e.Points, Seq: e.Seq, Reward: e.Reward, Charity: e.Charity}
	if balances {
		m.Balance += e.Points
		if m.Lots == nil {
			m.Lots = rules.Lots{}
		}
		if e.Points > 0 {
			m.Lots.Add(o.month(e.Time), e.Points)
		} else if e.Points < 0 {
			m.Lots.Take(-e.Points)
		}
	}
	res.Balance = m.Balance
	var err error
	switch e.Type {
	case ledger.Enroll:
		m.Name, m.Email, m.Phone, m.Consent, m.Birthday, m.Enrolled = e.Name, e.Email, e.Phone, e.Consent, e.Birthday, e.Time
		if e.Tier != "" {
			m.Tier = e.Tier
		}
		if co.Member == "" {
			co.Member, co.Card, co.Day, co.Time = m.ID, e.Card, o.day, e.Time
		}
		res.Type = string(ledger.Enroll)
		result("enroll", res)
		err = o.countEnroll(m.Tier)
	case ledger.Earn:
		firstToday := m.LastDay != o.day
		m.LastDay = o.day
		o.addSpend(m, e.Time, e.Amount)
		m.LastVisit = e.Time
		m.Checkouts++
		co.Member, co.Card, co.EarnEvent, co.Day, co.Time = m.ID, e.Card, e.ID, o.day, e.Time
		co.Amount, co.Earned = e.Amount, e.Points
		result("earn", EarnResult{Ref: e.Ref, Member: m.ID, Points: e.Points, Lines: e.Lines, Balance: m.Balance, Seq: e.Seq})
		err = o.countEarn(e, firstToday, false, false)
	case ledger.Redeem, ledger.BurnDiscount, ledger.Donate:
		if m.BurnDay != o.day {
			m.BurnDay, m.BurnedDay = o.day, 0
		}
		m.BurnedDay += -e.Points
		if co.Member == "" {
			co.Member, co.Card, co.Day, co.Time = m.ID, e.Card, o.day, e.Time
		}
		co.Burned += -e.Points
		res.Value = e.Amount
		result(string(e.Type), res)
		err = o.countBurn(e)
	case ledger.Void:
		o.addSpend(m, co.Time, -e.Amount)
		co.Voided = true
		result("void", res)
		err = o.countReversal(e, &co)
	case ledger.Refund:
		o.addSpend(m, co.Time, -e.Amount)
		co.Refunded += e.Amount
		co.Clawed += -e.Points
		res.Value = e.Amount
		key := "refund:" + strconv.FormatInt(e.Amount, 10)
		if e.Reason != "" {
			key = "refund:return:" + e.Reason
		}
		result(key, res)
		err = o.countReversal(e, &co)
	case ledger.Adjust:
		result("adjust", res)
	case ledger.Expire:
		result("expire", res)
	case ledger.TierChange:
		if err := o.addMetaInt("tier/"+m.Tier, -1); err != nil {
			return err
		}
		if err := o.addMetaInt("tier/"+e.Tier, 1); err != nil {
			return err
		}
		m.Tier, m.TierSince = e.Tier, e.Time
		if strings.HasPrefix(e.Ref, "review:") {
			result("review", res)
		}
	case ledger.CardReplace:
		m.Cards = append(m.Cards, e.NewCard)
		if err := rb.tx.Put(store.Cards, e.Card, cardRecord{Member: m.ID, Blocked: true}); err != nil {
			return err
		}
		if err := rb.tx.Put(store.Cards, e.NewCard, cardRecord{Member: m.ID}); err != nil {
			return err
		}
		result("card_replace", res)
	}
	if err != nil {
		return err
	}
	if e.Card != "" && e.Type != ledger.CardReplace {
		var c cardRecord
		if ok, err := rb.tx.Get(store.Cards, e.Card, &c); err != nil {
			return err
		} else if !ok {
			if err := rb.tx.Put(store.Cards, e.Card, cardRecord{Member: m.ID}); err != nil {
				return err
			}
		}
	}
	return rb.tx.Put(store.Checkouts, e.Ref, &co)
}

// finish writes the members rebuilt: their balance is the base, with
// nothing pending and no snapshot time, so that head office's first
// snapshot of each replaces it.
func (rb *rebuild) finish() error {
	for _, m := range rb.members {
		m.Base, m.Pending, m.AsOfSeq, m.BaseAt = m.Balance, 0, 0, time.Time{}
		if err := rb.tx.Put(store.Members, m.ID, m); err != nil {
			return err
		}
	}
	return nil
}

// errNoLedger is Repair's answer when dir holds nothing to repair and no
// identity: there is nothing a repair could know.
var errNoLedger = errors.New("nothing to repair: no ledger and no terminal identity")

// CheckRepairable refuses to repair a directory that is neither a ledger's
// nor a joined terminal's.
func CheckRepairable(dir string) error {
	for _, f := range []string{LedgerFile, KeyFile, LinkFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	return fmt.Errorf("%s: %w", dir, errNoLedger)
}

// HistoryRequest is the next request for events a repaired ledger lost:
// those of Epoch after After, up to Until (0: all head office holds). With
// no Epoch, it asks which earlier epochs the terminal has (ApplyEpochs).
type HistoryRequest struct {
	Epoch        string
	After, Until uint64
}

// NextHistoryRequest returns what to ask head office for next, if a repair
// left anything to refill.
func (a *Agent) NextHistoryRequest() (HistoryRequest, bool) {
	var req HistoryRequest
	found := false
	_ = a.st.View(func(tx *store.Tx) error {
		var rs []refill
		if err := json.Unmarshal([]byte(tx.Meta(metaRefill)), &rs); err != nil || len(rs) == 0 {
			return nil
		}
		r := rs[0]
		req, found = HistoryRequest{Epoch: r.Epoch, After: r.After}, true
		if len(r.Missing) > 0 {
			req.After, req.Until = r.Missing[0].From-1, r.Missing[0].To
		}
		return nil
	})
	return req, found
}

// ApplyHistory keeps what head office sent back of an earlier epoch: each
// event verified (its hash, its epoch, inside the range asked for), stored
// as history, its checkout, card and day records rebuilt (not its points:
// head office's snapshots count them already). covered is the sequence up to
// which head office sent all it holds; the request is then done, or moves
// on.
func (a *Agent) ApplyHistory(req HistoryRequest, covered uint64, raws [][]byte) error {
	b := ledger.DecodeBatch(raws)
	for i, e := range b.Events {
		if b.Errs[i] != nil {
			return fmt.Errorf("history from head office: %v", b.Errs[i])
		}
		if e.Epoch != req.Epoch || e.Seq <= req.After || (req.Until != 0 && e.Seq > req.Until) || e.Seq > covered {
			return fmt.Errorf("history from head office: event %s/%d outside the range asked for", e.Epoch, e.Seq)
		}
	}
	doc := a.Rules()
	return a.st.Write(context.Background(), func(tx *store.Tx) error {
		rb := &rebuild{a: a, tx: tx, doc: doc, members: map[string]*memberRecord{}}
		for i := range b.Events {
			e := &b.Events[i]
			if tx.HasHistory(e.Epoch, e.Seq) {
				continue
			}
			if err := tx.PutHistory(e.Epoch, e.Seq, b.Raws[i]); err != nil {
				return err
			}
			// The members rebuilt here are thrown away: head office's
			// snapshots have these events in them already.
			if err := rb.apply(e, false); err != nil {
				return err
			}
		}
		var rs []refill
		if err := json.Unmarshal([]byte(tx.Meta(metaRefill)), &rs); err != nil || len(rs) == 0 || rs[0].Epoch != req.Epoch {
			return nil
		}
		r := &rs[0]
		switch {
		case len(r.Missing) > 0 && covered >= r.Missing[0].To:
			r.Missing = r.Missing[1:]
		case len(r.Missing) > 0:
			r.Missing[0].From = covered + 1
		case req.Until == 0 && (len(raws) == 0 || covered <= req.After):
			rs = rs[1:] // everything past the last kept event is in
		default:
			r.After = covered
		}
		out, _ := json.Marshal(rs)
		if len(rs) == 0 {
			out = nil
		}
		return tx.SetMeta(metaRefill, string(out))
	})
}

// ApplyEpochs takes head office's list of the terminal's earlier epochs, the
// answer to a request with no epoch: each one this ledger holds nothing of
// and has not asked for yet is asked for whole.
func (a *Agent) ApplyEpochs(epochs []string) error {
	current := a.Identity().Epoch
	return a.st.Write(context.Background(), func(tx *store.Tx) error {
		var rs []refill
		if err := json.Unmarshal([]byte(tx.Meta(metaRefill)), &rs); err != nil || len(rs) == 0 || rs[0].Epoch != "" {
			return nil
		}
		rs = rs[1:]
		held := tx.HistoryEpochs()
		for _, ep := range epochs {
			asked := slices.ContainsFunc(rs, func(r refill) bool { return r.Epoch == ep })
			if ep == "" || ep == current || asked || slices.Contains(held, ep) {
				continue
			}
			rs = append(rs, refill{Epoch: ep})
		}
		out, _ := json.Marshal(rs)
		if len(rs) == 0 {
			out = nil
		}
		return tx.SetMeta(metaRefill, string(out))
	})
}
