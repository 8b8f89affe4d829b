package ui

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/rules"
)

// checkout is the cashier's screen: the scan prompt, the member panel, the
// sale (typed amount or the POS's basket) and the actions on the member.
type checkout struct {
	t       *terminal
	root    fyne.CanvasObject
	scanBar fyne.CanvasObject
	scan    *keyEntry

	// The member panel.
	member                    *agent.MemberView // nil when no member is scanned
	card                      string            // the scanned card in full; never shown
	unknown                   string            // a scanned card with no member, offered to enroll
	memberBox, emptyBox       *fyne.Container
	name, balance             *canvas.Text
	tier                      *pill
	cardLabel, pending, spend *widget.Label
	visit, expiring           *widget.Label
	welcome, birthday         *widget.Label
	progress                  *meter // the way to the next tier, and what it takes

	// The work area: the sale, the reward grid or a form.
	work     *fyne.Container
	sale     fyne.CanvasObject
	amount   *keyEntry
	earnBtn  *keyButton
	saleRef  string // idempotency key of the sale being rung up
	basket   agent.Basket
	earned   string // ref of the last basket that was earned
	basketBy *widget.Label
	items    *widget.List
	lines    *widget.Label // the last earn's explanation
	rewards  *rewardsPanel
	form     *form // the open form, nil on the sale

	lastRef string // the last checkout written here, for Void last
	actions map[fyne.KeyName]*keyButton
}

func newCheckout(t *terminal) *checkout {
	c := &checkout{t: t, saleRef: newRef()}
	c.scan = t.newEntry(lang.L("Scan a card or phone QR, or type the card number"))
	c.scan.OnSubmitted = func(raw string) {
		c.scan.SetText("")
		c.scanned(c.decode(raw))
	}
	prompt := bigText(lang.L("Scan"), sizeLarge)
	c.scanBar = container.NewBorder(nil, nil, container.NewHBox(widget.NewIcon(theme.SearchIcon()), prompt), nil, c.scan)

	c.name = bigText("", sizeLarge)
	c.balance = bigText("", sizeHuge)
	c.tier = newPill()
	c.cardLabel, c.pending, c.spend = widget.NewLabel(""), widget.NewLabel(""), widget.NewLabel("")
	c.visit, c.expiring = widget.NewLabel(""), widget.NewLabel("")
	// The longer facts wrap: the member's panel never widens the screen.
	for _, l := range []*widget.Label{c.pending, c.spend, c.visit, c.expiring} {
		l.Wrapping = fyne.TextWrapWord
	}
	c.welcome = widget.NewLabelWithStyle(lang.L("Welcome back!"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	c.welcome.Importance = widget.SuccessImportance
	c.birthday = widget.NewLabelWithStyle(lang.L("Happy birthday!"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	c.birthday.Importance = widget.WarningImportance
	c.expiring.Importance = widget.WarningImportance
	c.progress = newMeter()
	c.memberBox = container.NewVBox(
		c.name, container.NewHBox(c.tier.root, c.cardLabel),
		c.balance, c.pending,
		c.progress, c.expiring, c.welcome, c.birthday, c.spend, c.visit,
	)
	c.emptyBox = container.NewVBox(bigText(lang.L("No member"), sizeLarge),
		widget.NewLabel(lang.L("Scan a card to start, or press F8 to enroll a new member.")))
	c.emptyBox.Objects[1].(*widget.Label).Wrapping = fyne.TextWrapWord
	// The member's facts scroll on a small screen rather than push the
	// sale's buttons and the message line off it.
	memberCard := widget.NewCard("", "", container.NewVScroll(container.NewStack(c.memberBox, c.emptyBox)))
	c.showMember()

	c.amount = t.newEntry(lang.L("Amount, e.g. 12.50"))
	c.amount.OnSubmitted = func(string) { c.earn() }
	c.earnBtn = c.t.newButton(lang.L("Earn")+" (Enter)", theme.ConfirmIcon(), c.earn)
	c.earnBtn.Importance = widget.HighImportance
	c.basketBy = widget.NewLabel(lang.L("No basket from the POS"))
	c.items = widget.NewList(func() int { return len(c.basket.Items) },
		func() fyne.CanvasObject { return widget.NewLabel("") },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			o.(*widget.Label).SetText(c.itemText(c.basket.Items[i]))
		})
	c.lines = widget.NewLabel("")
	c.lines.Wrapping = fyne.TextWrapWord
	c.sale = container.NewBorder(
		container.NewVBox(bigText(lang.L("Sale"), sizeLarge),
			container.NewBorder(nil, nil, nil, c.earnBtn, c.amount), c.basketBy),
		container.NewVBox(widget.NewSeparator(), c.lines), nil, nil, c.items)
	c.rewards = newRewardsPanel(c)
	c.work = container.NewStack(c.sale)

	c.actions = map[fyne.KeyName]*keyButton{}
	bar := container.NewGridWithColumns(4)
	for _, a := range []struct {
		key  fyne.KeyName
		text string
		icon fyne.Resource
		fn   func()
	}{
		{fyne.KeyF2, lang.L("Earn"), theme.ConfirmIcon(), c.earn},
		{fyne.KeyF3, lang.L("Redeem"), theme.GridIcon(), c.openRewards},
		{fyne.KeyF4, lang.L("Discount"), theme.ContentRemoveIcon(), c.openDiscount},
		{fyne.KeyF5, lang.L("Donate"), theme.VisibilityIcon(), c.openDonate},
		{fyne.KeyF6, lang.L("Void last"), theme.CancelIcon(), c.openVoid},
		{fyne.KeyF7, lang.L("Refund"), theme.ContentUndoIcon(), c.openRefund},
		{fyne.KeyF8, lang.L("Enroll"), theme.ContentAddIcon(), c.openEnroll},
		{fyne.KeyEscape, lang.L("Clear"), theme.ContentClearIcon(), c.escape},
	} {
		label := string(a.key)
		if a.key == fyne.KeyEscape {
			label = "Esc"
		}
		b := c.t.newButton(label+"  "+a.text, a.icon, a.fn)
		c.actions[a.key] = b
		bar.Add(b)
	}
	split := container.NewHSplit(memberCard, container.NewPadded(c.work))
	split.Offset = 0.38
	c.root = container.NewBorder(nil, bar, nil, nil, split)
	return c
}

// newRef is a fresh idempotency key for one operation started on screen: a
// second tap, or a retry after a timeout, repeats it and writes nothing new.
func newRef() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "UI-" + hex.EncodeToString(b)
}

// action runs the action bound to a function key; it reports whether there
// is one.
func (c *checkout) action(k fyne.KeyName) bool {
	b, ok := c.actions[k]
	if ok {
		b.OnTapped()
	}
	return ok
}

// decode turns what was typed or wedge-scanned into the prompt into a scan.
func (c *checkout) decode(raw string) Scan {
	raw = strings.TrimSpace(raw)
	if c.t.d.Wedge != nil {
		return c.t.d.Wedge(raw)
	}
	return Scan{Kind: "typed", Card: raw}
}

// scanned looks up the member of a scan.
func (c *checkout) scanned(s Scan) {
	switch {
	case s.Err != nil:
		c.t.fail(fmt.Errorf("%s: %w", lang.L("Scan not readable"), s.Err))
		return
	case s.Card == "":
		c.t.fail(errors.New(lang.L("Scan a card or type its number first")))
		return
	}
	c.t.log.Info("scan", "kind", s.Kind, "card", cardnum.Mask(s.Card))
	c.lookup(s.Card)
}

func (c *checkout) lookup(card string) { c.lookupSaying(card, "") }

// lookupSaying shows the member of card and then says hello, or names the
// member when hello is empty.
func (c *checkout) lookupSaying(card, hello string) {
	run(c.t.br, func(ctx context.Context) (agent.MemberView, error) { return c.t.ag.Member(ctx, card) },
		func(m agent.MemberView, err error) {
			if errors.Is(err, agent.ErrUnknownCard) {
				c.clearMember()
				c.unknown = card
				c.t.fail(fmt.Errorf("%s %s: %s", lang.L("Unknown card"), cardnum.Mask(card), lang.L("press F8 to enroll")))
				return
			}
			if err != nil {
				c.t.fail(err)
				return
			}
			if m.Status == "blocked" {
				c.clearMember()
				c.t.fail(fmt.Errorf("%w: %s", agent.ErrBlockedCard, m.Card))
				return
			}
			if c.card != card {
				c.saleRef = newRef()
				c.lines.SetText("")
			}
			c.card, c.unknown = card, ""
			c.setMember(m)
			if hello == "" {
				hello = fmt.Sprintf("%s: %s", lang.L("Member"), m.Name)
			}
			c.t.say(hello)
			c.t.w.Canvas().Focus(c.amount)
		})
}

// refreshMember re-reads the member on screen after the ledger changed.
func (c *checkout) refreshMember() {
	card := c.card
	if card == "" {
		return
	}
	run(c.t.br, func(ctx context.Context) (agent.MemberView, error) { return c.t.ag.Member(ctx, card) },
		func(m agent.MemberView, err error) {
			if err == nil && c.card == card {
				c.setMember(m)
			}
		})
}

func (c *checkout) clearMember() {
	c.member, c.card = nil, ""
	c.showMember()
	c.showCustomer()
}

func (c *checkout) setMember(m agent.MemberView) {
	c.member = &m
	f := factsOf(m, c.t.ag.Rules())
	c.name.Text = m.Name
	if m.Name == "" {
		c.name.Text = lang.L("Member")
	}
	c.cardLabel.SetText(lang.L("Card") + " " + m.Card)
	c.tier.set(f.Tier, tierColor(m.Tier))
	c.balance.Text = lang.L("{{.Points}} pts", map[string]any{"Points": m.Balance})
	c.pending.SetText("")
	if m.Pending != 0 {
		c.pending.SetText(lang.L("Not yet confirmed by head office: {{.Points}} pts", map[string]any{"Points": signed(m.Pending)}))
	}
	c.progress.Hidden = f.NextTier == ""
	c.progress.set(f.Progress, lang.L("{{.Amount}} more to {{.Tier}}",
		map[string]any{"Amount": c.money(f.SpendToNext), "Tier": f.NextTier}))
	c.expiring.Hidden = f.Expiring <= 0
	c.expiring.SetText(lang.L("{{.Points}} pts expire on {{.Date}}",
		map[string]any{"Points": f.Expiring, "Date": f.ExpiresOn.Format("2006-01-02")}))
	c.welcome.Hidden = !f.WelcomeBack
	c.birthday.Hidden = !f.Birthday
	c.spend.SetText(lang.L("Spent in the last 12 months: {{.Amount}}", map[string]any{"Amount": c.money(m.Spend12m)}))
	c.visit.SetText(lang.L("First visit"))
	if m.LastVisit != nil {
		c.visit.SetText(lang.L("Last visit: {{.Date}}", map[string]any{"Date": m.LastVisit.In(c.t.now().Location()).Format("2006-01-02")}))
	}
	c.showMember()
	c.showCustomer()
	if c.work.Objects[0] == c.rewards.root {
		c.rewards.fill()
	}
}

func (c *checkout) showMember() {
	if c.member == nil {
		c.memberBox.Hide()
		c.emptyBox.Show()
	} else {
		c.emptyBox.Hide()
		c.memberBox.Show()
		c.memberBox.Refresh()
	}
}

// showCustomer puts what the cashier sees of the member on the customer
// display, when there is one.
func (c *checkout) showCustomer() {
	if cd := c.t.cust; cd != nil {
		toNext := ""
		if !c.progress.Hidden {
			toNext = c.progress.text
		}
		cd.show(c.member, c.t.ag.Rules(), c.lines.Text, toNext)
	}
}

// money formats minor units in the rules' currency.
func (c *checkout) money(v int64) string {
	cur := c.t.ag.Rules().Currency
	return localMoney(v, cur)
}

func signed(v int64) string {
	if v > 0 {
		return "+" + strconv.FormatInt(v, 10)
	}
	return strconv.FormatInt(v, 10)
}

func (c *checkout) itemText(it rules.Item) string {
	cat := ""
	if it.Category != "" {
		cat = " (" + it.Category + ")"
	}
	return fmt.Sprintf("%s%s × %d   %s", it.SKU, cat, it.Quantity, c.money(it.Amount))
}

// requireMember says what to do when an action needs a member and there is
// none; it reports whether there is one.
func (c *checkout) requireMember() bool {
	if c.member == nil {
		c.t.fail(errors.New(lang.L("Scan a member card first")))
		c.t.w.Canvas().Focus(c.scan)
		return false
	}
	return true
}

// refreshBasket shows the basket the POS pushed last.
func (c *checkout) refreshBasket() {
	run(c.t.br, func(context.Context) (agent.Basket, error) { return c.t.ag.Basket(), nil },
		func(b agent.Basket, _ error) {
			c.basket = b
			c.items.Refresh()
			if b.Ref == "" || b.Ref == c.earned {
				c.basketBy.SetText(lang.L("No basket from the POS"))
				return
			}
			c.basketBy.SetText(lang.L("Basket {{.Ref}} from the POS: {{.Amount}}",
				map[string]any{"Ref": b.Ref, "Amount": b.Amount + " " + c.t.ag.Rules().Currency}))
			if b.Card != "" && b.Card != c.card {
				c.lookup(b.Card)
			}
		})
}

// earn records the sale: the typed amount, or the POS's basket when nothing
// is typed.
func (c *checkout) earn() {
	// A keyboard-wedge scan of the next card, made while the focus was in
	// the amount, is a scan, not a sale of that many units.
	if c.amount.burst() {
		raw := c.amount.Text
		c.amount.SetText("")
		c.scanned(c.decode(raw))
		return
	}
	if !c.requireMember() {
		return
	}
	req := agent.EarnRequest{Card: c.card, Amount: strings.TrimSpace(c.amount.Text), Ref: c.saleRef}
	if req.Amount == "" {
		if c.basket.Ref == "" || c.basket.Ref == c.earned {
			c.t.fail(errors.New(lang.L("Type the amount of the sale first")))
			c.t.w.Canvas().Focus(c.amount)
			return
		}
		req.Amount, req.Ref, req.Items = c.basket.Amount, c.basket.Ref, c.basket.Items
	}
	c.submitEarn(req)
}

// submitEarn records the sale req; one the rules let no cashier take alone
// goes to a manager's approval first.
func (c *checkout) submitEarn(req agent.EarnRequest) {
	withApproval(c, func(ctx context.Context, pin string) (agent.EarnResult, error) {
		req.ManagerPIN = pin
		return c.t.ag.Earn(ctx, req)
	},
		func(r agent.EarnResult, err error) {
			if err != nil {
				c.t.fail(err)
				return
			}
			if c.form != nil {
				c.back() // from the approval
			}
			if req.Ref == c.basket.Ref {
				c.earned = r.Ref
				c.basketBy.SetText(lang.L("No basket from the POS"))
			}
			c.lastRef, c.saleRef = r.Ref, newRef()
			c.amount.SetText("")
			var lines []string
			for _, l := range r.Lines {
				lines = append(lines, fmt.Sprintf("%s  %s", signed(l.Points), lineLabel(c.t.ag.Rules(), l.Label)))
			}
			c.lines.SetText(strings.Join(lines, "\n"))
			if c.member != nil {
				m := *c.member
				m.Balance = r.Balance
				c.setMember(m)
			}
			msg := lang.L("Earned {{.Points}} pts. New balance {{.Balance}} pts. Receipt {{.Ref}}",
				map[string]any{"Points": r.Points, "Balance": r.Balance, "Ref": r.Ref})
			if r.NewTierName != "" {
				msg += " " + lang.L("Now {{.Tier}} tier!", map[string]any{"Tier": tierLabel(c.t.ag.Rules(), r.NewTier, r.NewTierName)})
			}
			c.t.say(msg)
			c.refreshMember()
		})
}

// done shows the outcome of a burn, void, refund or donation and returns to
// the sale.
func (c *checkout) done(text string, r agent.Result) {
	c.lastRef = r.Ref
	c.back()
	c.t.say(text)
	if c.member != nil && c.member.Member == r.Member {
		m := *c.member
		m.Balance = r.Balance
		c.setMember(m)
	}
	c.refreshMember()
}

// back returns the work area to the sale.
func (c *checkout) back() {
	c.form = nil
	c.work.Objects = []fyne.CanvasObject{c.sale}
	c.work.Refresh()
	if c.member != nil {
		c.t.w.Canvas().Focus(c.amount)
	} else {
		c.t.w.Canvas().Focus(c.scan)
	}
}

// escape closes the open panel, or clears the member when none is open.
func (c *checkout) escape() {
	if c.work.Objects[0] != c.sale {
		c.back()
		c.t.say(lang.L("Cancelled"))
		return
	}
	c.clearMember()
	c.unknown = ""
	c.amount.SetText("")
	c.lines.SetText("")
	c.saleRef = newRef()
	c.t.say(lang.L("Ready: scan a card or type its number"))
	c.t.w.Canvas().Focus(c.scan)
}

func (c *checkout) open(o fyne.CanvasObject, focus fyne.Focusable) {
	c.work.Objects = []fyne.CanvasObject{o}
	c.work.Refresh()
	if focus != nil {
		c.t.w.Canvas().Focus(focus)
	}
}
