package agent

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/offline-loyalty/terminal/agent/store"
	"github.com/offline-loyalty/terminal/cardnum"
)

// CheckoutView is a checkout as a cashier confirms it before a void or a
// refund: when, whose, how much, and what was done on it.
type CheckoutView struct {
	Ref      string    `json:"ref"`
	Time     time.Time `json:"time"`
	Member   string    `json:"member"`
	Name     string    `json:"name"`
	Card     string    `json:"card"`     // masked
	Amount   int64     `json:"amount"`   // the sale, minor units (0 for a burn alone)
	Currency string    `json:"currency"` // of Amount
	Earned   int64     `json:"earned"`   // points the sale earned
	Burned   int64     `json:"burned"`   // points redeemed, taken as discount or donated under it
	Refunded int64     `json:"refunded"` // amount returned so far
	Voided   bool      `json:"voided"`
	// Operations are what was done on the checkout: "earn", "redeem",
	// "burn_discount", "donate", "void", "refund:…", in name order.
	Operations []string `json:"operations"`
}

// Checkout returns the checkout ref as this terminal recorded it; a ref
// with no sale or burn here is ErrUnknownCheckout.
func (a *Agent) Checkout(_ context.Context, ref string) (CheckoutView, error) {
	if ref == "" {
		return CheckoutView{}, fmt.Errorf("%w: a checkout's ref is needed", ErrInvalid)
	}
	if err := checkRef(ref); err != nil {
		return CheckoutView{}, err
	}
	var v CheckoutView
	err := a.st.View(func(tx *store.Tx) error {
		var co checkoutRecord
		ok, err := tx.Get(store.Checkouts, ref, &co)
		if err != nil {
			return err
		}
		if !ok || co.Member == "" || (co.Amount == 0 && co.Burned == 0) {
			return fmt.Errorf("%w %q", ErrUnknownCheckout, ref)
		}
		var m memberRecord
		if _, err := tx.Get(store.Members, co.Member, &m); err != nil {
			return err
		}
		v = CheckoutView{Ref: ref, Time: co.Time, Member: co.Member, Name: m.Name, Card: cardnum.Mask(co.Card),
			Amount: co.Amount, Currency: a.Rules().Currency, Earned: co.Earned, Burned: co.Burned,
			Refunded: co.Refunded, Voided: co.Voided, Operations: slices.Sorted(maps.Keys(co.Results))}
		return nil
	})
	return v, err
}
