package headoffice

import (
	"context"
	"math"
)

// RestoreGap is how far the feed positions move past a restored copy's:
// more member and block changes than any head office gives between its last
// backup and its loss. The terminals' cursors may stand anywhere up to where
// the lost store had got; every change written after the restore is given a
// position above all of them, so no terminal misses one.
const RestoreGap = 1 << 32

// Restored is what marking a restored store changed.
type Restored struct {
	FeedHead uint64 `json:"feed_head"` // the highest position the copy had given
	RaisedTo uint64 `json:"raised_to"` // positions given from now on are above this
}

// MarkRestored prepares a store put back from a backup (a copy of the
// embedded file, or a PostgreSQL database restored with its own tools) for
// the terminals, whose cursors are ahead of it: the feeds give positions
// RestoreGap past the copy's. The terminals send the events the copy lacks
// by themselves (the welcome's sequence is below what they sent).
func MarkRestored(ctx context.Context, s Store) (Restored, error) {
	var r Restored
	err := s.Update(ctx, func(tx Tx) error {
		head, err := tx.FeedHead()
		if err != nil {
			return err
		}
		// Positions are int64 in PostgreSQL.
		r = Restored{FeedHead: head, RaisedTo: min(head+RestoreGap, math.MaxInt64/2)}
		return tx.RaiseFeedHead(r.RaisedTo)
	})
	return r, err
}
