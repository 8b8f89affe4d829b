package ledger

import (
	"runtime"
	"slices"
	"sync"
)

// Batch is a run of one terminal database's encoded events as received, with
// each one's decoding or the reason it does not decode. Decoding and checking
// each event's own hash is pure and the bulk of receiving it, so a receiver
// decodes a batch on all cores before, not inside, the transaction that
// stores it.
type Batch struct {
	Raws   [][]byte
	Events []Event
	Errs   []error
}

// DecodeBatch decodes raws on all cores.
func DecodeBatch(raws [][]byte) Batch {
	events := make([]Event, len(raws))
	errs := make([]error, len(raws))
	workers := min(runtime.GOMAXPROCS(0), len(raws))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(raws); i += workers {
				events[i], errs[i] = Decode(raws[i])
			}
		}()
	}
	wg.Wait()
	return Batch{Raws: raws, Events: events, Errs: errs}
}

// Len is the number of events in the batch.
func (b Batch) Len() int { return len(b.Raws) }

// Merge returns b's events followed by next's, in new slices.
func (b Batch) Merge(next Batch) Batch {
	return Batch{Raws: slices.Concat(b.Raws, next.Raws), Events: slices.Concat(b.Events, next.Events), Errs: slices.Concat(b.Errs, next.Errs)}
}
