package headoffice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	udiff "github.com/aymanbagabas/go-udiff"

	"github.com/offline-loyalty/terminal/rules"
)

// SetRules publishes a rules document (validated). Terminals of every store
// receive it, so its version must be above every version a terminal may
// run: the published one, the built-in default's, and any a terminal
// reported running that this store never published (rules_ahead flags: a
// store restored from a copy older than a publication).
func (o *Office) SetRules(ctx context.Context, doc []byte) (int, error) {
	return o.publishRules(ctx, doc, "")
}

// publishRules is SetRules, recording why in the audit log.
func (o *Office) publishRules(ctx context.Context, doc []byte, reason string) (int, error) {
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
			Before: fmt.Sprintf("version %d", cur), After: fmt.Sprintf("version %d", d.Version), Reason: reason})
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

// RulesVersion is one published version of the rules.
type RulesVersion struct {
	Version int
	Doc     []byte
}

// RulesHistory returns every published version, newest first.
func (o *Office) RulesHistory(ctx context.Context) ([]RulesVersion, error) {
	var out []RulesVersion
	err := o.store.View(ctx, func(tx ReadTx) error {
		return tx.EachRules(func(v int, doc []byte) error {
			out = append(out, RulesVersion{Version: v, Doc: doc})
			return nil
		})
	})
	slices.Reverse(out)
	return out, err
}

// RulesPreview is what publishing a document would do: its problems (each
// "path: message"), or none, and the change against the running version as
// a unified diff of both documents indented.
type RulesPreview struct {
	Running  int
	Version  int
	Problems []string
	Diff     string
	Doc      []byte // the document, indented
}

// PreviewRules checks doc as SetRules would and compares it with the
// running rules; it publishes nothing.
func (o *Office) PreviewRules(ctx context.Context, doc []byte) (RulesPreview, error) {
	var p RulesPreview
	running, err := o.Rules(ctx)
	if err != nil {
		return p, err
	}
	if cur, err := rules.Parse(running); err == nil {
		p.Running = cur.Version
	}
	d, err := rules.Parse(doc)
	if err != nil {
		var probs rules.Problems
		if errors.As(err, &probs) {
			p.Problems = probs
		} else {
			p.Problems = []string{err.Error()}
		}
	} else {
		p.Version = d.Version
		if d.Version <= p.Running {
			p.Problems = append(p.Problems, fmt.Sprintf("version: %d is not above the running version %d", d.Version, p.Running))
		}
	}
	p.Doc = indent(doc)
	p.Diff = udiff.Unified(fmt.Sprintf("version %d", p.Running), "proposed", string(indent(running)), string(p.Doc))
	return p, nil
}

func indent(doc []byte) []byte {
	var b bytes.Buffer
	if json.Indent(&b, doc, "", "  ") != nil {
		return doc
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// RollbackRules publishes the content of an earlier version again, as a
// new version above every one published: terminals only move forward.
func (o *Office) RollbackRules(ctx context.Context, version int) (int, error) {
	var old []byte
	var cur int
	if err := o.store.View(ctx, func(tx ReadTx) error {
		var err error
		if _, cur, err = tx.Rules(); err != nil {
			return err
		}
		return tx.EachRules(func(v int, doc []byte) error {
			if v == version {
				old = doc
			}
			return nil
		})
	}); err != nil {
		return 0, err
	}
	if old == nil {
		return 0, fmt.Errorf("%w: no published version %d", ErrNotFound, version)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(old, &m); err != nil {
		return 0, fmt.Errorf("%w: version %d: %v", ErrCorrupt, version, err)
	}
	m["version"] = json.RawMessage(strconv.Itoa(cur + 1))
	doc, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	return o.publishRules(ctx, doc, fmt.Sprintf("the content of version %d again (a rollback)", version))
}
