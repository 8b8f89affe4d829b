package headoffice

import (
	"context"
	"sort"

	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/sync/syncproto"
)

// Reapplied says what Reapply made of the events it was given.
type Reapplied struct {
	Chains  int `json:"chains"`  // terminal databases with events applied
	Applied int `json:"applied"` // events applied
	// Dropped are events that do not verify, of a terminal head office
	// does not know, or after a gap in their chain: their terminals send
	// them again.
	Dropped int `json:"dropped"`
}

// Reapply ingests again events read back from a damaged store (a repair):
// of each terminal database, the run from sequence 1 that verifies link by
// link, as if the terminal had sent it. Duplicates are ignored.
func (o *Office) Reapply(ctx context.Context, raws [][]byte) (Reapplied, error) {
	var rep Reapplied
	b := ledger.DecodeBatch(raws)
	type entry struct {
		e   ledger.Event
		raw []byte
	}
	chains := map[ChainKey]map[uint64]entry{}
	for i, e := range b.Events {
		if b.Errs[i] != nil {
			rep.Dropped++
			continue
		}
		k := ChainKey{e.Terminal, e.Epoch}
		if chains[k] == nil {
			chains[k] = map[uint64]entry{}
		}
		if _, dup := chains[k][e.Seq]; !dup {
			chains[k][e.Seq] = entry{e, b.Raws[i]}
		}
	}
	keys := make([]ChainKey, 0, len(chains))
	for k := range chains {
		keys = append(keys, k)
	}
	SortChainKeys(keys)
	for _, k := range keys {
		evs := chains[k]
		store, _, ok, err := o.Terminal(ctx, k.Terminal)
		if err != nil {
			return rep, err
		}
		seqs := make([]uint64, 0, len(evs))
		for s := range evs {
			seqs = append(seqs, s)
		}
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		var run [][]byte
		var prev Chain
		for _, s := range seqs {
			e := evs[s]
			if !ok || ledger.Follows(e.e, prev.LastSeq, prev.LastHash) != nil {
				break
			}
			run = append(run, e.raw)
			prev = Chain{LastSeq: e.e.Seq, LastHash: e.e.Hash}
		}
		rep.Dropped += len(evs) - len(run)
		if len(run) == 0 {
			continue
		}
		rep.Chains++
		for len(run) > 0 {
			n := min(len(run), syncproto.MaxBatch)
			if _, err := o.Ingest(ctx, k.Terminal, store, k.Epoch, ledger.DecodeBatch(run[:n])); err != nil {
				return rep, err
			}
			rep.Applied += n
			run = run[n:]
		}
	}
	return rep, nil
}
