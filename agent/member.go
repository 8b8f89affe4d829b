package agent

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/agent/store"
	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/rules"
)

// Member returns the member a card belongs to, as this terminal sees them.
// A card unknown here is looked up at head office first when online.
func (a *Agent) Member(ctx context.Context, card string) (MemberView, error) {
	if err := checkCard(card); err != nil {
		return MemberView{}, err
	}
	a.resolveCard(ctx, card)
	var v MemberView
	err := a.st.View(func(tx *store.Tx) error {
		m, c, err := memberByCard(tx, card)
		if err != nil {
			return err
		}
		v = MemberView{Member: m.ID, Name: m.Name, Card: cardnum.Mask(card), Tier: m.Tier, Balance: m.Balance,
			Pending: m.Pending, Enrolled: m.Enrolled, Status: m.Status, Spend12m: m.Spend12m,
			Lifetime: m.Lifetime, Email: m.Email, Phone: m.Phone, Consent: m.Consent, Currency: a.Rules().Currency}
		if c.Blocked {
			v.Status = statusBlocked
		}
		if !m.LastVisit.IsZero() {
			t := m.LastVisit
			v.LastVisit = &t
		}
		if !m.BaseAt.IsZero() {
			t := m.BaseAt
			v.BalanceAsOf = &t
		}
		a.memberFacts(&v, m)
		return nil
	})
	return v, err
}

// expiringWindow is how far ahead the member view warns of expiring points.
const expiringWindow = 30 * 24 * time.Hour

// memberFacts fills in what the rules say about the member today: rolling
// spend as of now, points expiring soon, welcome back, birthday month.
func (a *Agent) memberFacts(v *MemberView, m *memberRecord) {
	doc, now := a.Rules(), a.now().In(a.loc)
	if m.Months != nil {
		v.Spend12m = rules.RollingSpend(m.Months, now)
	}
	v.Birthday = m.Birthday
	for _, e := range doc.Expiries(m.ID, m.Lots, m.Balance, m.LastVisit, now.Add(expiringWindow)) {
		v.Expiring += e.Points
		if v.ExpiresOn == nil {
			on := e.On
			v.ExpiresOn = &on
		}
	}
	v.WelcomeBack = doc.WelcomeBackDue(m.LastVisit, now)
	v.BirthdayMonth = m.Birthday != "" && m.Birthday[:2] == now.Format("01")
	cur := doc.Tier(m.Tier)
	v.TierName = cur.Name
	for _, id := range doc.TierIDs() {
		if doc.TierAllows(m.Tier, id) {
			v.OpenTiers = append(v.OpenTiers, id)
		}
	}
	if next, toGo, ok := doc.NextTier(m.Tier, v.Spend12m); ok {
		v.NextTier, v.NextTierName, v.SpendToNext = next.ID, next.Name, toGo
		// Thresholds rise strictly (rules.Document.Validate), so span > 0.
		span := next.MinSpend - cur.MinSpend
		done := min(max(v.Spend12m-cur.MinSpend, 0), span)
		if span <= math.MaxInt64/1000 {
			v.TierProgress = done * 1000 / span
		} else {
			v.TierProgress = min(done/(span/1000), 1000)
		}
	}
}

// Basket is the basket a POS pushed through the local API for the UI to show
// and the cashier to confirm.
type Basket struct {
	Ref     string       `json:"ref"`
	Card    string       `json:"card,omitempty"`
	Amount  string       `json:"amount"`
	Items   []rules.Item `json:"items,omitempty"`
	Updated time.Time    `json:"updated"`
}

// SetBasket replaces the current basket and tells watchers. It writes
// nothing to the ledger: the checkout is recorded when it is earned.
func (a *Agent) SetBasket(b Basket) error {
	if b.Card != "" {
		if err := checkCard(b.Card); err != nil {
			return err
		}
	}
	if err := checkRef(b.Ref); err != nil {
		return err
	}
	if err := checkItems(b.Items); err != nil {
		return err
	}
	b.Updated = a.now()
	a.mu.Lock()
	a.basket = b
	a.mu.Unlock()
	a.notify(Notice{Kind: NoticeBasket})
	return nil
}

// Basket returns the basket last pushed by the POS.
func (a *Agent) Basket() Basket {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.basket
}

// Manager PINs are kept as PBKDF2-SHA256 hashes with a random salt.
const (
	pinIterations = 200_000
	pinMinLen     = 4
	pinMaxLen     = 12
)

// HasManagerPIN reports whether a manager PIN has been chosen.
func (a *Agent) HasManagerPIN() bool {
	set := false
	_ = a.st.View(func(tx *store.Tx) error { set = tx.Meta("pin") != ""; return nil })
	return set
}

// SetManagerPIN chooses the manager PIN (4 to 12 digits) of a terminal that
// has none (pos-agent manager add, on the machine); once one is set it is
// refused.
func (a *Agent) SetManagerPIN(pin string) error { return a.setManagerPIN(pin, false) }

// ReplaceManagerPIN sets a new manager PIN in place of the one set (pos-agent
// manager add --replace, on the machine), and lifts a lock of wrong tries.
func (a *Agent) ReplaceManagerPIN(pin string) error { return a.setManagerPIN(pin, true) }

func (a *Agent) setManagerPIN(pin string, replace bool) error {
	if len(pin) < pinMinLen || len(pin) > pinMaxLen || strings.Trim(pin, "0123456789") != "" {
		return fmt.Errorf("%w: the PIN must be %d to %d digits", ErrInvalid, pinMinLen, pinMaxLen)
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	h, err := pbkdf2.Key(sha256.New, pin, salt, pinIterations, 32)
	if err != nil {
		return err
	}
	err = a.st.Write(context.Background(), func(tx *store.Tx) error {
		if tx.Meta("pin") != "" && !replace {
			return fmt.Errorf("%w: a manager PIN is set already (pos-agent manager add --replace changes it)", ErrInvalid)
		}
		if err := tx.SetMetaUint("pin_failures", 0); err != nil {
			return err
		}
		return tx.SetMeta("pin", hex.EncodeToString(salt)+":"+hex.EncodeToString(h))
	})
	if err == nil {
		a.log.Info("manager PIN set", "replaced", replace)
	}
	return err
}

// Wrong manager PINs: after pinFreeTries in a row, each further try waits
// twice as long as the last (1 s, 2 s, 4 s ... up to pinMaxWait); after
// pinLockAfter the PIN is locked until UnlockManagerPIN. The count is in the
// ledger, so a restart does not reset it.
const (
	pinFreeTries = 3
	pinLockAfter = 10
	pinMaxWait   = time.Minute
)

// CheckManagerPIN returns nil if pin is the manager PIN and ErrBadPIN if not;
// ErrPINWait while the wait after the last wrong tries runs (the try is not
// counted), ErrPINLocked once too many were wrong.
func (a *Agent) CheckManagerPIN(pin string) error {
	var stored string
	var fails uint64
	var last time.Time
	_ = a.st.View(func(tx *store.Tx) error {
		stored, fails = tx.Meta("pin"), tx.MetaUint("pin_failures")
		last, _ = time.Parse(time.RFC3339Nano, tx.Meta("pin_failed_at"))
		return nil
	})
	now := a.now()
	if fails >= pinLockAfter {
		return fmt.Errorf("%w (%d): a manager unlocks it with pos-agent pin unlock", ErrPINLocked, fails)
	}
	if wait := pinWait(fails); wait > 0 && now.Before(last.Add(wait)) {
		return fmt.Errorf("%w (%s)", ErrPINWait, last.Add(wait).Sub(now).Round(time.Second))
	}
	saltHex, hashHex, ok := strings.Cut(stored, ":")
	if !ok {
		return fmt.Errorf("%w: no manager PIN has been set", ErrBadPIN)
	}
	salt, err1 := hex.DecodeString(saltHex)
	want, err2 := hex.DecodeString(hashHex)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%w: stored manager PIN", store.ErrCorrupt)
	}
	got, err := pbkdf2.Key(sha256.New, pin, salt, pinIterations, len(want))
	right := err == nil && subtle.ConstantTimeCompare(got, want) == 1
	if right && fails == 0 {
		return nil
	}
	err = a.st.Write(context.Background(), func(tx *store.Tx) error {
		if right {
			return tx.SetMetaUint("pin_failures", 0)
		}
		if err := tx.SetMetaUint("pin_failures", tx.MetaUint("pin_failures")+1); err != nil {
			return err
		}
		return tx.SetMeta("pin_failed_at", now.UTC().Format(time.RFC3339Nano))
	})
	if err != nil || right {
		return err
	}
	if fails+1 >= pinLockAfter {
		return fmt.Errorf("%w (%d): a manager unlocks it with pos-agent pin unlock", ErrPINLocked, fails+1)
	}
	return ErrBadPIN
}

// pinWait is the wait before the next try after fails wrong ones.
func pinWait(fails uint64) time.Duration {
	if fails < pinFreeTries {
		return 0
	}
	return min(time.Second<<(fails-pinFreeTries), pinMaxWait)
}

// UnlockManagerPIN clears the count of wrong manager PINs (a manager, at the
// till's own account: the CLI over the unix socket).
func (a *Agent) UnlockManagerPIN() error {
	return a.st.Write(context.Background(), func(tx *store.Tx) error { return tx.SetMetaUint("pin_failures", 0) })
}

// Export calls fn with every ledger event, encoded, until fn returns an
// error: the events of earlier ledgers kept by a repair, and this ledger's,
// by epoch and then sequence (the order head office keeps a terminal's
// events in). It reads in chunks so that a long export never holds a read
// transaction open against the writer.
func (a *Agent) Export(fn func(encoded []byte) error) error {
	const chunk = 1000
	var epochs []string
	current := a.Identity().Epoch
	if err := a.st.View(func(tx *store.Tx) error { epochs = tx.HistoryEpochs(); return nil }); err != nil {
		return err
	}
	if !slices.Contains(epochs, current) {
		epochs = append(epochs, current)
	}
	slices.Sort(epochs)
	for _, ep := range epochs {
		after := uint64(0)
		for {
			var evs [][]byte
			var err error
			if ep == current {
				evs, err = a.OutboxAfter(after, chunk)
			} else {
				err = a.st.View(func(tx *store.Tx) error {
					tx.HistoryAfter(ep, after, func(seq uint64, b []byte) bool {
						evs = append(evs, bytes.Clone(b))
						after = seq
						return len(evs) < chunk
					})
					return nil
				})
			}
			if err != nil {
				return err
			}
			for _, b := range evs {
				if err := fn(b); err != nil {
					return err
				}
			}
			if len(evs) < chunk {
				break
			}
			if ep == current {
				after += uint64(len(evs))
			}
		}
	}
	return nil
}

// Scanned records a read of the till's scanner, whichever program runs
// it: a card read becomes the card of the current basket, which the POS
// reads from the local API, and every read goes to watchers (the UI, here
// or attached through the local API) as a NoticeScan. It writes nothing to
// the ledger.
func (a *Agent) Scanned(s Scan) {
	if s.Error == "" {
		if err := checkCard(s.Card); err != nil {
			s.Card, s.Error = "", err.Error()
		}
	} else {
		s.Card = ""
	}
	if s.Error == "" {
		a.mu.Lock()
		a.basket.Card = s.Card
		a.basket.Updated = a.now()
		a.mu.Unlock()
	}
	a.metrics.scans.Inc()
	a.notify(Notice{Kind: NoticeScan, Scan: &s})
}
