package headoffice

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/offline-loyalty/terminal/rules"
)

// SetRules publishes a rules document (validated). Terminals of every store
// receive it, so its version must be above every version a terminal may
// run: the published one, the built-in default's, and any a terminal
// reported running that this store never published (rules_ahead flags: a
// store restored from a copy older than a publication).
func (o *Office) SetRules(ctx context.Context, doc []byte) (int, error) {
	d, err := rules.Parse(doc)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	err = o.store.Update(ctx, func(tx Tx) error {
		_, cur, err := tx.Rules()
		if err != nil {
			return err
		}
		if d.Version <= cur {
			return fmt.Errorf("%w: version %d is not above the published version %d", ErrInvalid, d.Version, cur)
		}
		if def := rules.Default().Version; d.Version <= def {
			return fmt.Errorf("%w: version %d is not above the built-in default's version %d, which terminals run until a publication", ErrInvalid, d.Version, def)
		}
		var ahead Flag
		if err := tx.Flags(func(f Flag) error {
			if f.Kind == FlagRulesAhead && f.Seq > ahead.Seq {
				ahead = f
			}
			return nil
		}); err != nil {
			return err
		}
		if uint64(d.Version) <= ahead.Seq {
			return fmt.Errorf("%w: version %d is not above version %d, which terminal %s runs (published before head office was restored from an older copy); publish it as version %d or above", ErrInvalid, d.Version, ahead.Seq, ahead.Terminal, ahead.Seq+1)
		}
		if err := tx.PutRules(d.Version, doc); err != nil {
			return err
		}
		return o.audit(tx, Change{Operator: Actor(ctx), Action: "rules.publish", Subject: "rules",
			Before: fmt.Sprintf("version %d", cur), After: fmt.Sprintf("version %d", d.Version)})
	})
	if err != nil {
		return 0, err
	}
	return d.Version, nil
}

// Rules returns the published rules document (the built-in default when
// none has been published).
func (o *Office) Rules(ctx context.Context) ([]byte, error) {
	var doc []byte
	err := o.store.View(ctx, func(tx ReadTx) error {
		var err error
		doc, _, err = tx.Rules()
		return err
	})
	if err == nil && doc == nil {
		doc, err = json.Marshal(rules.Default())
	}
	return doc, err
}

// FlagRulesAhead is the flag of a terminal running a rules version above
// the published one: one this store never published, so head office was
// restored from a copy older than that publication. Seq is the version.
const FlagRulesAhead = "rules_ahead"

// aheadKey is a terminal and a rules version checked by checkRulesAhead.
type aheadKey struct {
	terminal string
	version  int
}

// checkRulesAhead raises, once per terminal and version, the flag of a
// terminal whose cursor says it runs rules version v when this process knew
// of none that high (confirmed in the store, which another process may
// have published to meanwhile).
func (o *Office) checkRulesAhead(ctx context.Context, terminal, epoch string, v int) error {
	if v <= rules.Default().Version || int64(v) <= o.rulesVersion.Load() {
		return nil
	}
	if _, seen := o.rulesAhead.LoadOrStore(aheadKey{terminal, v}, true); seen {
		return nil
	}
	return o.store.Update(ctx, func(tx Tx) error {
		_, cur, err := tx.Rules()
		if err != nil || v <= cur {
			return err
		}
		o.log.Warn("a terminal runs rules this store never published", "terminal", terminal, "version", v, "published", cur)
		return tx.AddFlag(Flag{Time: o.now(), Kind: FlagRulesAhead, Terminal: terminal, Epoch: epoch, Seq: uint64(v),
			Detail: fmt.Sprintf("the terminal runs rules version %d, above the published version %d: head office was restored from a copy older than that publication; publish the rules again as version %d or above", v, cur, v+1)})
	})
}
