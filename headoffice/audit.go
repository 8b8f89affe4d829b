package headoffice

import (
	"context"
	"fmt"
	"time"

	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/rules"
)

// SurpriseAudit is what AuditSurprise found for a day.
type SurpriseAudit struct {
	Day        string             `json:"day"`
	Checkouts  int                `json:"checkouts"` // earn events of the day
	Won        int                `json:"won"`       // of them, paid a surprise
	Unaudited  int                `json:"unaudited"` // drawn before the terminal joined, with its own key
	Mismatches []SurpriseMismatch `json:"mismatches"`
}

// SurpriseMismatch is a checkout paid a surprise its draw did not win.
type SurpriseMismatch struct {
	Terminal      string `json:"terminal"`
	Epoch         string `json:"epoch"`
	Seq           uint64 `json:"seq"`
	Ref           string `json:"ref"`
	Paid          int64  `json:"paid"`
	Draw          int64  `json:"draw"`
	ProbabilityBP int64  `json:"probability_bp"`
}

// AuditSurprise draws again every checkout of day (YYYY-MM-DD, the events'
// UTC day) with its terminal's key, epoch and sequence and the rules version
// it was earned under, and lists every one paid a surprise its draw did not
// win. It reads every stored event (an audit, not a report).
func (o *Office) AuditSurprise(ctx context.Context, day string) (SurpriseAudit, error) {
	a := SurpriseAudit{Day: day, Mismatches: []SurpriseMismatch{}}
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return a, fmt.Errorf("%w: day %q is not YYYY-MM-DD", ErrInvalid, day)
	}
	err := o.store.View(ctx, func(tx ReadTx) error {
		// The built-in rules, for events earned before any was published.
		builtin := rules.Default()
		docs := map[int]*rules.Document{builtin.Version: builtin}
		if err := tx.EachRules(func(v int, doc []byte) error {
			if d, err := rules.Parse(doc); err == nil {
				docs[v] = d
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.Events("", func(raw []byte) error {
			e, err := ledger.Decode(raw)
			if err != nil || e.Type != ledger.Earn || e.Time.UTC().Format(time.DateOnly) != day {
				return nil
			}
			a.Checkouts++
			var paid int64
			for _, l := range e.Lines {
				if l.Label == "surprise" {
					paid += l.Points
				}
			}
			if paid == 0 {
				return nil
			}
			a.Won++
			if ledger.Provisional(e.Terminal) {
				a.Unaudited++
				return nil
			}
			var prob int64
			if d := docs[e.RulesVersion]; d != nil && d.Surprise != nil {
				prob = d.Surprise.ProbabilityBP
			}
			if draw := rules.Draw(o.DrawKey(e.Terminal), e.Epoch, e.Seq); draw >= prob {
				a.Mismatches = append(a.Mismatches, SurpriseMismatch{Terminal: e.Terminal, Epoch: e.Epoch, Seq: e.Seq, Ref: e.Ref,
					Paid: paid, Draw: draw, ProbabilityBP: prob})
			}
			return nil
		})
	})
	return a, err
}
