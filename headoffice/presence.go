package headoffice

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"sync"
	"time"
)

// Presence is what head office knows of a terminal's link: whether a head
// office process holds its connection, since when, when that was last
// confirmed, and the rules version it runs. Each process keeps its own
// connections' presence in memory and writes it to the store's metadata
// (presence/TERMINAL) in one transaction every few seconds, so that the
// console of any process sees every terminal, and a process that dies
// stops confirming its terminals, which then show offline.
type Presence struct {
	Online  bool      `json:"online"`
	Epoch   string    `json:"epoch,omitempty"`
	Since   time.Time `json:"since"` // connected, or disconnected, at
	Seen    time.Time `json:"seen"`  // last confirmed
	Rules   int       `json:"rules,omitempty"`
	Process string    `json:"process,omitempty"`
}

const metaPresence = "presence/"

// Presence is written every presenceFlush when it changed and every
// presenceBeat while online; an online presence not confirmed within
// presenceStale is a process that stopped, and reads as offline.
const (
	presenceFlush = 2 * time.Second
	presenceBeat  = 30 * time.Second
	presenceStale = 90 * time.Second
)

type presences struct {
	mu      sync.Mutex
	process string
	m       map[string]*Presence // this process's terminals, online or just gone
	conns   map[string]int       // connections per terminal (a reconnect may overlap the old one)
	drops   map[string][]*func() // what ends each of a terminal's connections
	dirty   map[string]bool
	beat    time.Time
}

func newPresences() *presences {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return &presences{process: host + "/" + hex.EncodeToString(b), m: map[string]*Presence{}, conns: map[string]int{}, drops: map[string][]*func(){}, dirty: map[string]bool{}}
}

// Connected records that this process holds terminal's connection in
// epoch, which drop ends if the terminal is revoked; the returned func
// records its end.
func (o *Office) Connected(terminal, epoch string, drop func()) (done func()) {
	p := o.presence
	now := o.now().UTC()
	dp := &drop
	p.mu.Lock()
	p.conns[terminal]++
	p.drops[terminal] = append(p.drops[terminal], dp)
	old := p.m[terminal]
	rules := 0
	if old != nil {
		rules = old.Rules
	}
	p.m[terminal] = &Presence{Online: true, Epoch: epoch, Since: now, Seen: now, Rules: rules, Process: p.process}
	p.dirty[terminal] = true
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.drops[terminal] = slices.DeleteFunc(p.drops[terminal], func(d *func()) bool { return d == dp })
			if len(p.drops[terminal]) == 0 {
				delete(p.drops, terminal)
			}
			if p.conns[terminal]--; p.conns[terminal] > 0 {
				return
			}
			delete(p.conns, terminal)
			if st := p.m[terminal]; st != nil {
				now := o.now().UTC()
				st.Online, st.Since, st.Seen = false, now, now
				p.dirty[terminal] = true
			}
		})
	}
}

// drop ends this process's connections of terminal.
func (o *Office) drop(terminal string) {
	o.presence.mu.Lock()
	drops := slices.Clone(o.presence.drops[terminal])
	o.presence.mu.Unlock()
	for _, d := range drops {
		(*d)()
	}
}

// runsRules notes the rules version a connected terminal has.
func (o *Office) runsRules(terminal string, v int) {
	p := o.presence
	p.mu.Lock()
	if st := p.m[terminal]; st != nil && st.Rules != v {
		st.Rules = v
		p.dirty[terminal] = true
	}
	p.mu.Unlock()
}

// flushPresence writes what changed, and every presenceBeat all this
// process's online terminals. A terminal now held by another process is
// not overwritten by this one's news of its old connection.
func (o *Office) flushPresence(ctx context.Context, all bool) error {
	p := o.presence
	now := o.now().UTC()
	p.mu.Lock()
	beat := all || now.Sub(p.beat) >= presenceBeat
	var write []string
	out := map[string]Presence{}
	for t, st := range p.m {
		if p.dirty[t] || (beat && st.Online) {
			if st.Online {
				st.Seen = now
			}
			write = append(write, t)
			out[t] = *st
		}
	}
	clear(p.dirty)
	for t, st := range p.m {
		if !st.Online {
			delete(p.m, t) // written once, gone from memory
		}
	}
	if beat {
		p.beat = now
	}
	p.mu.Unlock()
	if beat {
		// A terminal revoked through another process is dropped here at
		// the next beat.
		var revoked []string
		if err := o.store.View(ctx, func(tx ReadTx) error {
			for _, t := range write {
				if term, ok, err := tx.Terminal(t); err != nil {
					return err
				} else if ok && !term.Revoked.IsZero() {
					revoked = append(revoked, t)
				}
			}
			return nil
		}); err != nil {
			return err
		}
		for _, t := range revoked {
			o.drop(t)
		}
	}
	if len(write) == 0 {
		return nil
	}
	return o.store.Update(ctx, func(tx Tx) error {
		for _, t := range write {
			st := out[t]
			if !st.Online {
				cur, ok, err := getJSON[Presence](tx, metaPresence+t)
				if err != nil {
					return err
				}
				if ok && cur.Online && cur.Process != p.process && now.Sub(cur.Seen) < presenceStale {
					continue
				}
			}
			if err := putJSON(tx, metaPresence+t, st); err != nil {
				return err
			}
		}
		return nil
	})
}

// maintain flushes presence and sweeps ended sessions and old sign-in
// failures until the Office stops, and marks this process's terminals
// offline as it stops.
func (o *Office) maintain() {
	defer close(o.presenceDone)
	tick := time.NewTicker(presenceFlush)
	defer tick.Stop()
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	for {
		select {
		case <-sweep.C:
			ctx, cancel := context.WithTimeout(context.Background(), readWait)
			if err := o.sweepConsole(ctx); err != nil {
				o.log.Warn("console sweep", "err", err)
			}
			cancel()
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), readWait)
			if err := o.flushPresence(ctx, false); err != nil {
				o.log.Warn("terminal presence", "err", err)
			}
			cancel()
		case <-o.stop:
			o.presence.mu.Lock()
			now := o.now().UTC()
			for t, st := range o.presence.m {
				st.Online, st.Since, st.Seen = false, now, now
				o.presence.dirty[t] = true
			}
			o.presence.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), readWait)
			_ = o.flushPresence(ctx, true)
			cancel()
			return
		}
	}
}

// online reads a stored presence at now: online only when confirmed lately.
func (p Presence) online(now time.Time) bool {
	return p.Online && now.Sub(p.Seen) < presenceStale
}
