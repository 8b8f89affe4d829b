package ui

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/ui/i18n"
)

// form is a small panel of the work area: a title, fields, and a submit
// button that Enter in any field also presses. Esc cancels it.
type form struct {
	root   fyne.CanvasObject
	submit *keyButton
}

func (c *checkout) newForm(title, submit string, items []*widget.FormItem, onSubmit func()) *form {
	f := &form{}
	f.submit = c.t.newButton(submit+" (Enter)", theme.ConfirmIcon(), onSubmit)
	f.submit.Importance = widget.HighImportance
	cancel := c.t.newButton(lang.L("Cancel")+" (Esc)", theme.CancelIcon(), c.escape)
	for _, it := range items {
		if e, ok := it.Widget.(*keyEntry); ok {
			e.OnSubmitted = func(string) { onSubmit() }
		}
	}
	wf := widget.NewForm(items...)
	f.root = container.NewVBox(bigText(title, sizeLarge), wf, container.NewGridWithColumns(2, cancel, f.submit))
	return f
}

func (c *checkout) show(f *form, focus fyne.Focusable) {
	c.form = f
	c.open(f.root, focus)
}

// points reads a whole number of points typed by the cashier.
func points(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New(lang.L("Points must be a positive whole number"))
	}
	return n, nil
}

func (c *checkout) openDiscount() {
	if !c.requireMember() {
		return
	}
	e := c.t.newEntry(lang.L("Points"))
	ref := newRef()
	d := c.t.ag.Rules().Discount
	hint := lang.L("{{.Points}} pts = {{.Value}} off, at least {{.Min}} pts",
		map[string]any{"Points": d.Points, "Value": c.money(d.Value), "Min": d.MinPoints})
	c.show(c.newForm(lang.L("Points as discount"), lang.L("Apply discount"), []*widget.FormItem{
		{Text: lang.L("Points"), Widget: e, HintText: hint},
	}, func() {
		n, err := points(e.Text)
		if err != nil {
			c.t.fail(err)
			return
		}
		req := agent.RedeemRequest{Card: c.card, Points: n, Ref: ref}
		run(c.t.br, func(ctx context.Context) (agent.Result, error) { return c.t.ag.Redeem(ctx, req) },
			func(r agent.Result, err error) {
				if err != nil {
					c.t.fail(err)
					return
				}
				c.done(lang.L("Discount of {{.Value}} for {{.Points}} pts. New balance {{.Balance}} pts",
					map[string]any{"Value": c.money(r.Value), "Points": -r.Points, "Balance": r.Balance}), r)
			})
	}), e)
}

func (c *checkout) openDonate() {
	if !c.requireMember() {
		return
	}
	charities := c.t.ag.Rules().Charities
	if len(charities) == 0 {
		c.t.fail(errors.New(lang.L("No charity partners in the current rules")))
		return
	}
	names := make([]string, len(charities))
	for i, ch := range charities {
		names[i] = ch.Names.In(i18n.Current(), ch.Name)
	}
	sel := c.t.newSelect(names)
	sel.SetSelectedIndex(0)
	e := c.t.newEntry(lang.L("Points"))
	ref := newRef()
	c.show(c.newForm(lang.L("Donate points"), lang.L("Donate"), []*widget.FormItem{
		{Text: lang.L("Charity"), Widget: sel},
		{Text: lang.L("Points"), Widget: e},
	}, func() {
		n, err := points(e.Text)
		if err != nil {
			c.t.fail(err)
			return
		}
		ch := charities[max(sel.SelectedIndex(), 0)]
		req := agent.DonateRequest{Card: c.card, Points: n, Charity: ch.ID, Ref: ref}
		run(c.t.br, func(ctx context.Context) (agent.Result, error) { return c.t.ag.Donate(ctx, req) },
			func(r agent.Result, err error) {
				if err != nil {
					c.t.fail(err)
					return
				}
				c.done(lang.L("Donated {{.Points}} pts to {{.Charity}}. New balance {{.Balance}} pts",
					map[string]any{"Points": -r.Points, "Charity": ch.Names.In(i18n.Current(), ch.Name), "Balance": r.Balance}), r)
			})
	}), e)
}

// openVoid asks to void the last checkout made on this screen, naming what
// it was (kind, time, member, amount, points) before anything is done;
// Enter on the highlighted Void button voids it.
func (c *checkout) openVoid() {
	if c.lastRef == "" {
		c.t.fail(errors.New(lang.L("Nothing to void: no checkout was made on this screen yet")))
		return
	}
	ref := c.lastRef
	run(c.t.br, func(ctx context.Context) (agent.CheckoutView, error) { return c.t.ag.Checkout(ctx, ref) },
		func(v agent.CheckoutView, err error) {
			if err != nil {
				c.t.fail(err)
				return
			}
			if v.Voided {
				c.t.fail(errors.New(lang.L("Checkout {{.Ref}} is voided already", map[string]any{"Ref": ref})))
				return
			}
			c.showVoid(v)
		})
}

// checkoutPoints says what a checkout did to points.
func checkoutPoints(v agent.CheckoutView) string {
	var pts []string
	if v.Earned != 0 {
		pts = append(pts, lang.L("{{.Points}} earned", map[string]any{"Points": signed(v.Earned)}))
	}
	if v.Burned != 0 {
		pts = append(pts, lang.L("{{.Points}} spent", map[string]any{"Points": v.Burned}))
	}
	return strings.Join(pts, ", ")
}

func (c *checkout) checkoutTime(v agent.CheckoutView) string {
	return v.Time.In(c.t.now().Location()).Format("2006-01-02 15:04")
}

func (c *checkout) showVoid(v agent.CheckoutView) {
	label := func(s string) fyne.CanvasObject { return widget.NewLabel(s) }
	items := []*widget.FormItem{
		{Text: lang.L("What"), Widget: label(checkoutKinds(v.Operations))},
		{Text: lang.L("When"), Widget: label(c.checkoutTime(v))},
		{Text: lang.L("Member"), Widget: label(strings.TrimSpace(v.Name + " " + v.Card))},
	}
	if v.Amount != 0 {
		items = append(items, &widget.FormItem{Text: lang.L("Amount"), Widget: label(c.money(v.Amount))})
	}
	if pts := checkoutPoints(v); pts != "" {
		items = append(items, &widget.FormItem{Text: lang.L("Points"), Widget: label(pts)})
	}
	items = append(items, &widget.FormItem{Text: lang.L("Receipt"), Widget: label(v.Ref)})
	ref := v.Ref
	submit := func() {
		withApproval(c, func(ctx context.Context, pin string) (agent.Result, error) {
			return c.t.ag.Void(ctx, agent.VoidRequest{Ref: ref, ManagerPIN: pin})
		}, func(r agent.Result, err error) {
			if err != nil {
				c.t.fail(err)
				return
			}
			c.done(lang.L("Checkout {{.Ref}} voided: {{.Points}} pts. New balance {{.Balance}} pts",
				map[string]any{"Ref": ref, "Points": signed(r.Points), "Balance": r.Balance}), r)
			c.lastRef = ""
		})
	}
	f := c.newForm(lang.L("Void this checkout?"), lang.L("Void"), items, submit)
	c.show(f, f.submit)
}

// withApproval makes call without a PIN; when the agent refuses it for want
// of a manager's approval, the approval form asks for the manager PIN and
// makes call again with it (a wrong one leaves the form open, done saying
// why). done gets every other answer, on the UI goroutine.
func withApproval[T any](c *checkout, call func(ctx context.Context, pin string) (T, error), done func(T, error)) {
	var try func(pin string)
	try = func(pin string) {
		run(c.t.br, func(ctx context.Context) (T, error) { return call(ctx, pin) }, func(v T, err error) {
			if errors.Is(err, agent.ErrApproval) && pin == "" {
				c.askApproval(err, try)
				return
			}
			done(v, err)
		})
	}
	try("")
}

// askApproval asks a manager to approve what the agent refused to a
// cashier alone (why says what and why): the manager types the PIN, and
// again makes the same call with it. Esc cancels; a wrong PIN leaves the
// form open and is counted by the agent.
func (c *checkout) askApproval(why error, again func(pin string)) {
	pin := c.t.newEntry(lang.L("PIN"))
	pin.Password = true
	about := widget.NewLabel(describe(why))
	about.Wrapping = fyne.TextWrapWord
	f := c.newForm(lang.L("A manager's approval"), lang.L("Approve"), []*widget.FormItem{
		{Text: "", Widget: about},
		{Text: lang.L("Manager PIN"), Widget: pin},
	}, func() {
		p := pin.Text
		pin.SetText("")
		again(p)
	})
	c.show(f, pin)
}

// checkoutKinds names what was done on a checkout, in the cashier's words.
func checkoutKinds(ops []string) string {
	names := map[string]string{"earn": lang.L("Sale"), "redeem": lang.L("Reward redeemed"),
		"burn_discount": lang.L("Points as discount"), "donate": lang.L("Donation"), "enroll": lang.L("Enrollment")}
	var out []string
	for _, op := range ops {
		if n, ok := names[op]; ok {
			out = append(out, n)
		} else if strings.HasPrefix(op, "refund") && !slices.Contains(out, lang.L("Refund")) {
			out = append(out, lang.L("Refund"))
		}
	}
	return strings.Join(out, ", ")
}

// openRefund asks for a receipt and the amount returned; the checkout the
// receipt names (kind, time, member, amount, points, returned so far) is
// shown as it is typed, before anything is refunded.
func (c *checkout) openRefund() {
	refE := c.t.newEntry(lang.L("Receipt number"))
	about := widget.NewLabel("")
	about.Wrapping = fyne.TextWrapWord
	refE.OnChanged = func(text string) { c.describeReceipt(strings.TrimSpace(text), refE, about) }
	refE.SetText(c.lastRef)
	amt := c.t.newEntry(lang.L("Amount returned, e.g. 5.00"))
	ret := newRef() // one return: pressing Enter twice returns the goods once
	c.show(c.newForm(lang.L("Refund by receipt"), lang.L("Refund"), []*widget.FormItem{
		{Text: lang.L("Receipt"), Widget: refE},
		{Text: "", Widget: about},
		{Text: lang.L("Amount"), Widget: amt},
	}, func() {
		req := agent.RefundRequest{Ref: strings.TrimSpace(refE.Text), Amount: strings.TrimSpace(amt.Text), Return: ret}
		if req.Ref == "" {
			c.t.fail(errors.New(lang.L("Type the receipt number of the checkout")))
			return
		}
		c.submitRefund(req)
	}), amt)
}

// submitRefund records the refund req, through a manager's approval when
// the rules want one.
func (c *checkout) submitRefund(req agent.RefundRequest) {
	withApproval(c, func(ctx context.Context, pin string) (agent.Result, error) {
		req.ManagerPIN = pin
		return c.t.ag.Refund(ctx, req)
	}, func(r agent.Result, err error) {
		if err != nil {
			c.t.fail(err)
			return
		}
		c.done(lang.L("Refund on {{.Ref}}: {{.Points}} pts. New balance {{.Balance}} pts",
			map[string]any{"Ref": req.Ref, "Points": signed(r.Points), "Balance": r.Balance}), r)
	})
}

// describeReceipt shows in about the checkout ref names, once it is known,
// unless the receipt field has changed since.
func (c *checkout) describeReceipt(ref string, refE *keyEntry, about *widget.Label) {
	if ref == "" {
		about.SetText("")
		return
	}
	run(c.t.br, func(ctx context.Context) (agent.CheckoutView, error) { return c.t.ag.Checkout(ctx, ref) },
		func(v agent.CheckoutView, err error) {
			if strings.TrimSpace(refE.Text) != ref {
				return
			}
			switch {
			case errors.Is(err, agent.ErrUnknownCheckout):
				about.SetText(lang.L("No checkout with this receipt number on this terminal"))
			case err != nil:
				about.SetText(err.Error())
			default:
				parts := []string{checkoutKinds(v.Operations), c.checkoutTime(v), strings.TrimSpace(v.Name + " " + v.Card)}
				if v.Amount != 0 {
					parts = append(parts, c.money(v.Amount))
				}
				if pts := checkoutPoints(v); pts != "" {
					parts = append(parts, pts)
				}
				if v.Refunded != 0 {
					parts = append(parts, lang.L("{{.Amount}} returned already", map[string]any{"Amount": c.money(v.Refunded)}))
				}
				if v.Voided {
					parts = append(parts, lang.L("voided"))
				}
				about.SetText(strings.Join(parts, " · "))
			}
		})
}

func (c *checkout) openEnroll() {
	card := c.t.newEntry(lang.L("Card number"))
	card.SetText(c.unknown)
	name, email, phone := c.t.newEntry(""), c.t.newEntry(""), c.t.newEntry("")
	consent := widget.NewCheck(lang.L("Agrees to receive offers (marketing consent)"), nil)
	ref := newRef()
	focus := card
	if c.unknown != "" {
		focus = name
	}
	c.show(c.newForm(lang.L("Enroll a new member"), lang.L("Enroll"), []*widget.FormItem{
		{Text: lang.L("Card"), Widget: card},
		{Text: lang.L("Name"), Widget: name},
		{Text: lang.L("Email"), Widget: email},
		{Text: lang.L("Phone"), Widget: phone},
		{Text: "", Widget: consent},
	}, func() {
		req := agent.EnrollRequest{Card: strings.TrimSpace(card.Text), Name: strings.TrimSpace(name.Text),
			Email: strings.TrimSpace(email.Text), Phone: strings.TrimSpace(phone.Text), Consent: consent.Checked, Ref: ref}
		run(c.t.br, func(ctx context.Context) (agent.Result, error) { return c.t.ag.Enroll(ctx, req) },
			func(r agent.Result, err error) {
				if err != nil {
					c.t.fail(err)
					return
				}
				c.back()
				c.lookupSaying(req.Card, lang.L("New member enrolled: {{.Name}}", map[string]any{"Name": req.Name}))
			})
	}), focus)
}
