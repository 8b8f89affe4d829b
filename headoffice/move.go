package headoffice

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sort"

	"github.com/offline-loyalty/terminal/ledger"
)

// moveBatch is how many events or records go to the target in one
// transaction.
const moveBatch = 5000

// Moved counts what Move copied and Verify found in both stores.
type Moved struct {
	Terminals int   `json:"terminals"`
	Codes     int   `json:"join_codes"`
	Chains    int   `json:"chains"`
	Events    int64 `json:"events"`
	Members   int   `json:"members"`
	Cards     int   `json:"cards"`
	Rules     int   `json:"rules_versions"`
	Flags     int   `json:"flags"`
	Figures   int   `json:"daily_figures"`
	Meta      int   `json:"meta"`
}

// Move copies everything head office holds from one store to another that
// holds nothing yet: every terminal with its key and join code, every
// event with its chain head, every member and card, every rules version,
// the flags, the daily figures and head office's keys. The target's feed
// positions start above the source's, so every terminal receives all its
// members again from the target. The source is only read.
func Move(ctx context.Context, from, to Store) (Moved, error) {
	var n Moved
	if err := to.View(ctx, func(tx ReadTx) error {
		empty := true
		stop := fmt.Errorf("not empty")
		err := tx.Terminals(func(Terminal) error { empty = false; return stop })
		if err == nil || err == stop {
			err = tx.Events("", func([]byte) error { empty = false; return stop })
		}
		if err != nil && err != stop {
			return err
		}
		if !empty {
			return fmt.Errorf("%w: the target store holds terminals or events already", ErrInvalid)
		}
		return nil
	}); err != nil {
		return n, err
	}
	err := from.View(ctx, func(src ReadTx) error {
		// Records other than events, each kind in batches.
		var batch []func(Tx) error
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			b := batch
			batch = nil
			return to.Update(ctx, func(tx Tx) error {
				for _, w := range b {
					if err := w(tx); err != nil {
						return err
					}
				}
				return nil
			})
		}
		add := func(w func(Tx) error) error {
			batch = append(batch, w)
			if len(batch) >= moveBatch {
				return flush()
			}
			return nil
		}
		head, err := src.FeedHead()
		if err != nil {
			return err
		}
		if err := add(func(tx Tx) error { return tx.RaiseFeedHead(head) }); err != nil {
			return err
		}
		if err := src.EachMeta(func(k string, v []byte) error {
			n.Meta++
			return add(func(tx Tx) error { return tx.SetMeta(k, v) })
		}); err != nil {
			return err
		}
		if err := src.Terminals(func(t Terminal) error {
			n.Terminals++
			return add(func(tx Tx) error { return tx.PutTerminal(t) })
		}); err != nil {
			return err
		}
		if err := src.EachCode(func(h []byte, id string) error {
			n.Codes++
			return add(func(tx Tx) error { return tx.SetCode(h, id) })
		}); err != nil {
			return err
		}
		if err := src.EachRules(func(v int, doc []byte) error {
			n.Rules++
			return add(func(tx Tx) error { return tx.PutRules(v, doc) })
		}); err != nil {
			return err
		}
		if err := src.EachMember(func(m Member) error {
			n.Members++
			return add(func(tx Tx) error { return tx.PutMember(m) })
		}); err != nil {
			return err
		}
		if err := src.EachCard(func(card string, c Card) error {
			n.Cards++
			// A blocked card goes on the target's blocklist feed.
			return add(func(tx Tx) error { return tx.PutCard(card, c, c.Blocked) })
		}); err != nil {
			return err
		}
		if err := src.Flags(func(f Flag) error {
			n.Flags++
			return add(func(tx Tx) error { return tx.AddFlag(f) })
		}); err != nil {
			return err
		}
		if err := src.Figures("", "", func(f Figures) error {
			n.Figures++
			return add(func(tx Tx) error { return tx.AddFigures([]Figures{f}, nil) })
		}); err != nil {
			return err
		}
		if err := src.EachMemberDay(func(md MemberDay) error {
			return add(func(tx Tx) error { return tx.AddFigures(nil, []MemberDay{md}) })
		}); err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
		// Events, chain by chain (they are stored under the terminal that
		// sent them), each chain's head written with its last batch.
		heads := map[[2]string]Chain{}
		if err := src.Chains(func(terminal, epoch string, c Chain) error {
			heads[[2]string{terminal, epoch}] = c
			return nil
		}); err != nil {
			return err
		}
		terms := chainTerminals(heads)
		var pending []StoredEvent
		var cur [2]string
		put := func(last bool) error {
			if cur == ([2]string{}) || len(pending) == 0 && !last {
				return nil
			}
			evs, key := pending, cur
			pending = nil
			return to.Update(ctx, func(tx Tx) error {
				if _, err := tx.PutEvents(key[0], key[1], evs, nil); err != nil {
					return fmt.Errorf("%s/%s: %w", key[0], key[1], err)
				}
				if last {
					return tx.PutChain(key[0], key[1], heads[key])
				}
				return nil
			})
		}
		for _, term := range terms {
			if err := src.Events(term, func(raw []byte) error {
				e, err := ledger.Decode(raw)
				if err != nil {
					return fmt.Errorf("%w: stored event of %s: %v", ErrCorrupt, term, err)
				}
				if key := [2]string{term, e.Epoch}; key != cur {
					if err := put(true); err != nil {
						return err
					}
					cur = key
				}
				pending = append(pending, StoredEvent{Seq: e.Seq, Raw: bytes.Clone(raw)})
				n.Events++
				if len(pending) >= moveBatch {
					return put(false)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		n.Chains = len(heads)
		return put(true)
	})
	return n, err
}

// chainTerminals are the terminals that have chains, sorted.
func chainTerminals(heads map[[2]string]Chain) []string {
	seen := map[string]bool{}
	var terms []string
	for k := range heads {
		if !seen[k[0]] {
			seen[k[0]] = true
			terms = append(terms, k[0])
		}
	}
	sort.Strings(terms)
	return terms
}

// Verify compares two stores after a Move: the same counts of everything,
// every chain's events byte for byte with each chain verified link by link
// from its first event to its stored head, and every member's balance.
func Verify(ctx context.Context, a, b Store) (Moved, error) {
	type summary struct {
		n        Moved
		chains   map[[2]string]Chain
		digests  map[string][32]byte // per terminal: SHA-256 of its events in order
		balances map[string]int64
		rules    []int
	}
	read := func(s Store) (summary, error) {
		sm := summary{chains: map[[2]string]Chain{}, digests: map[string][32]byte{}, balances: map[string]int64{}}
		err := s.View(ctx, func(tx ReadTx) error {
			if err := tx.Terminals(func(Terminal) error { sm.n.Terminals++; return nil }); err != nil {
				return err
			}
			// The chains' terminals first, then their events: a store may
			// not read two things at once in one transaction.
			heads := map[[2]string]Chain{}
			if err := tx.Chains(func(terminal, epoch string, c Chain) error {
				heads[[2]string{terminal, epoch}] = c
				return nil
			}); err != nil {
				return err
			}
			for _, id := range chainTerminals(heads) {
				h := sha256.New()
				var prev Chain
				var epoch string
				if err := tx.Events(id, func(raw []byte) error {
					sm.n.Events++
					h.Write(raw)
					h.Write([]byte{'\n'})
					e, err := ledger.Decode(raw)
					if err != nil {
						return fmt.Errorf("terminal %s: %v", id, err)
					}
					if e.Epoch != epoch {
						epoch, prev = e.Epoch, Chain{}
					}
					if err := ledger.Follows(e, prev.LastSeq, prev.LastHash); err != nil {
						return fmt.Errorf("terminal %s epoch %s: %v", id, e.Epoch, err)
					}
					prev = Chain{LastSeq: e.Seq, LastHash: e.Hash}
					sm.chains[[2]string{id, e.Epoch}] = prev
					return nil
				}); err != nil {
					return err
				}
				sm.digests[id] = [32]byte(h.Sum(nil))
			}
			for k, c := range heads {
				if got := sm.chains[k]; got != c {
					return fmt.Errorf("chain %s/%s: stored head %d %.12s, events end at %d %.12s", k[0], k[1], c.LastSeq, c.LastHash, got.LastSeq, got.LastHash)
				}
			}
			if len(heads) != len(sm.chains) {
				return fmt.Errorf("%d chain heads stored for %d chains of events", len(heads), len(sm.chains))
			}
			sm.n.Chains = len(heads)
			if err := tx.EachMember(func(m Member) error { sm.n.Members++; sm.balances[m.ID] = m.Balance; return nil }); err != nil {
				return err
			}
			if err := tx.EachCard(func(string, Card) error { sm.n.Cards++; return nil }); err != nil {
				return err
			}
			if err := tx.EachCode(func([]byte, string) error { sm.n.Codes++; return nil }); err != nil {
				return err
			}
			if err := tx.EachRules(func(v int, _ []byte) error { sm.n.Rules++; sm.rules = append(sm.rules, v); return nil }); err != nil {
				return err
			}
			if err := tx.Flags(func(Flag) error { sm.n.Flags++; return nil }); err != nil {
				return err
			}
			if err := tx.Figures("", "", func(Figures) error { sm.n.Figures++; return nil }); err != nil {
				return err
			}
			return tx.EachMeta(func(string, []byte) error { sm.n.Meta++; return nil })
		})
		return sm, err
	}
	sa, err := read(a)
	if err != nil {
		return Moved{}, fmt.Errorf("source: %w", err)
	}
	sb, err := read(b)
	if err != nil {
		return Moved{}, fmt.Errorf("target: %w", err)
	}
	// The target may have more metadata than the source (its own), never
	// less.
	na, nb := sa.n, sb.n
	na.Meta, nb.Meta = 0, 0
	if na != nb || sb.n.Meta < sa.n.Meta {
		return sb.n, fmt.Errorf("counts differ: source %+v, target %+v", sa.n, sb.n)
	}
	terms := make([]string, 0, len(sa.digests))
	for t := range sa.digests {
		terms = append(terms, t)
	}
	sort.Strings(terms)
	for _, t := range terms {
		if sa.digests[t] != sb.digests[t] {
			return sb.n, fmt.Errorf("terminal %s: events differ", t)
		}
	}
	for id, bal := range sa.balances {
		if got, ok := sb.balances[id]; !ok || got != bal {
			return sb.n, fmt.Errorf("member %s: balance %d, target has %d", id, bal, got)
		}
	}
	if !slices.Equal(sa.rules, sb.rules) {
		return sb.n, fmt.Errorf("rules versions %v, target has %v", sa.rules, sb.rules)
	}
	return sb.n, nil
}
