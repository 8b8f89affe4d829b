package headoffice

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/offline-loyalty/terminal/rules"
)

// SetRules publishes a rules document (validated; its version must be above
// the published one). Terminals of every store receive it.
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
		return tx.PutRules(d.Version, doc)
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
