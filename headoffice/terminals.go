package headoffice

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/sync/syncproto"
)

// codeLife is how long a join code may be used (once).
const codeLife = 24 * time.Hour

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$`)

// codeAlphabet has no 0/O or 1/I, for codes read aloud over the phone.
const codeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

func newCode() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	var sb strings.Builder
	for i, c := range b {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(codeAlphabet[int(c)%len(codeAlphabet)])
	}
	return sb.String()
}

func hashCode(code string) []byte {
	sum := sha256.Sum256([]byte(strings.ToUpper(strings.TrimSpace(code))))
	return sum[:]
}

// AddTerminal registers a terminal of store and returns its id and a
// single-use join code valid for 24 hours. Adding the same store and name
// again issues a new code for a terminal that has not joined yet.
func (o *Office) AddTerminal(ctx context.Context, store, name string) (terminal, code string, err error) {
	if !idPattern.MatchString(store) || !idPattern.MatchString(name) {
		return "", "", fmt.Errorf("%w: store and name are 1 to 48 letters, digits, '.', '_' or '-'", ErrInvalid)
	}
	terminal, code = store+"-"+name, newCode()
	if ledger.Provisional(terminal) {
		return "", "", fmt.Errorf("%w: %s is the shape of the id a till has before it joins; choose another store or name", ErrInvalid, terminal)
	}
	now := o.now()
	err = o.store.Update(ctx, func(tx Tx) error {
		t, ok, err := tx.Terminal(terminal)
		if err != nil {
			return err
		}
		if ok && !t.Revoked.IsZero() {
			return fmt.Errorf("%w: terminal %s is revoked; register the replacement under another name", ErrInvalid, terminal)
		}
		if ok && t.Key != nil {
			return fmt.Errorf("%w: terminal %s has joined already", ErrInvalid, terminal)
		}
		if ok && t.CodeHash != nil {
			if err := tx.SetCode(t.CodeHash, ""); err != nil {
				return err
			}
		}
		before := "not registered"
		if ok {
			before = "registered, not joined"
		}
		t = Terminal{ID: terminal, Store: store, Name: name, CodeHash: hashCode(code), CodeExpires: now.Add(codeLife), Created: now}
		if err := tx.SetCode(t.CodeHash, terminal); err != nil {
			return err
		}
		if err := tx.PutTerminal(t); err != nil {
			return err
		}
		return o.audit(tx, Change{Operator: Actor(ctx), Action: "terminal.add", Subject: "terminal " + terminal,
			Before: before, After: "join code issued, valid until " + t.CodeExpires.UTC().Format("2006-01-02 15:04 UTC")})
	})
	return terminal, code, err
}

// Join exchanges a join code for the terminal's identity, recording its
// public key. A code works once, whichever head office process is asked, and
// for 24 hours.
func (o *Office) Join(ctx context.Context, req syncproto.JoinRequest) (syncproto.JoinResponse, error) {
	if len(req.Key) != ed25519.PublicKeySize {
		return syncproto.JoinResponse{}, fmt.Errorf("%w: the terminal key must be an ed25519 public key", ErrInvalid)
	}
	now := o.now()
	var resp syncproto.JoinResponse
	err := o.store.Update(ctx, func(tx Tx) error {
		h := hashCode(req.Code)
		id, err := tx.CodeTerminal(h)
		if err != nil {
			return err
		}
		if id == "" {
			return fmt.Errorf("%w: unknown or already used", ErrJoinCode)
		}
		t, ok, err := tx.Terminal(id)
		if err != nil {
			return err
		}
		if !ok || t.Key != nil {
			return fmt.Errorf("%w: unknown or already used", ErrJoinCode)
		}
		if now.After(t.CodeExpires) {
			return fmt.Errorf("%w: expired at %s", ErrJoinCode, t.CodeExpires.Format(time.RFC3339))
		}
		t.Key, t.Joined, t.CodeHash = req.Key, now, nil
		if err := tx.SetCode(h, ""); err != nil {
			return err
		}
		resp = syncproto.JoinResponse{Terminal: t.ID, Store: t.Store, QRKey: o.QRKey(), DrawKey: o.DrawKey(t.ID)}
		return tx.PutTerminal(t)
	})
	return resp, err
}

// Terminal returns a joined terminal's store and public key; ok is false for
// an id that was never registered or has not joined.
func (o *Office) Terminal(ctx context.Context, id string) (store string, key ed25519.PublicKey, ok bool, err error) {
	err = o.store.View(ctx, func(tx ReadTx) error {
		t, found, err := tx.Terminal(id)
		if err != nil || !found || len(t.Key) != ed25519.PublicKeySize || !t.Revoked.IsZero() {
			return err
		}
		store, key, ok = t.Store, t.Key, true
		return nil
	})
	return store, key, ok, err
}

// Durable returns the highest sequence of (terminal, epoch) head office has
// stored: the terminal resumes after it.
func (o *Office) Durable(ctx context.Context, terminal, epoch string) (uint64, error) {
	var seq uint64
	err := o.store.View(ctx, func(tx ReadTx) error {
		c, err := tx.Chain(terminal, epoch)
		seq = c.LastSeq
		return err
	})
	return seq, err
}

// RevokeTerminal stops trusting a terminal (a till stolen or retired): its
// key is refused from now on, its connections to this process end at once
// and those to other processes within a presence beat, and an unused join
// code of it is retired. Its events stay, and it is never trusted again: a
// replacement registers as a new terminal.
func (o *Office) RevokeTerminal(ctx context.Context, id, reason, by string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 200 {
		return fmt.Errorf("%w: revoking a terminal needs a reason (up to 200 characters)", ErrInvalid)
	}
	err := o.store.Update(ctx, func(tx Tx) error {
		t, ok, err := tx.Terminal(id)
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("%w: terminal %s", ErrNotFound, id)
		case !t.Revoked.IsZero():
			return fmt.Errorf("%w: terminal %s is revoked already", ErrInvalid, id)
		}
		if t.CodeHash != nil && t.Key == nil {
			if err := tx.SetCode(t.CodeHash, ""); err != nil {
				return err
			}
		}
		t.Revoked, t.RevokedBy = o.now().UTC(), by
		if err := tx.PutTerminal(t); err != nil {
			return err
		}
		return o.audit(tx, Change{Operator: by, Action: "terminal.revoke", Subject: "terminal " + id, Before: "trusted", After: "revoked", Reason: reason})
	})
	if err == nil {
		o.drop(id)
	}
	return err
}

// TerminalState is a registered terminal as the console lists it.
type TerminalState struct {
	Terminal
	Joined bool
	// Events is how many of its events head office holds, over its epochs
	// (the heads of its chains), and Epochs how many databases it had.
	Events uint64
	Epochs int
	// Flags are the flags raised on its events; ChainBreaks those of a
	// broken hash chain.
	Flags       int
	ChainBreaks int
	// Presence is its link as the head office processes last wrote it;
	// Online is whether one holds its connection now.
	Presence Presence
	Online   bool
}

// TerminalList returns every registered terminal by store and id, with
// what head office holds of it.
func (o *Office) TerminalList(ctx context.Context) ([]TerminalState, error) {
	var out []TerminalState
	now := o.now().UTC()
	err := o.store.View(ctx, func(tx ReadTx) error {
		byID := map[string]int{}
		if err := tx.Terminals(func(t Terminal) error {
			joined := t.Key != nil
			t.CodeHash, t.Key = nil, nil
			byID[t.ID] = len(out)
			out = append(out, TerminalState{Terminal: t, Joined: joined})
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Chains(func(terminal, _ string, c Chain) error {
			if i, ok := byID[terminal]; ok {
				out[i].Events += c.LastSeq
				out[i].Epochs++
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.MetaRange(metaPresence, false, func(k string, v []byte) error {
			if i, ok := byID[strings.TrimPrefix(k, metaPresence)]; ok {
				p, err := decode[Presence]("presence", k, v)
				if err != nil {
					return err
				}
				out[i].Presence, out[i].Online = p, p.online(now)
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.Flags(func(f Flag) error {
			if i, ok := byID[f.Terminal]; ok {
				out[i].Flags++
				if f.Kind == "chain_break" {
					out[i].ChainBreaks++
				}
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Store != out[j].Store {
			return out[i].Store < out[j].Store
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}
