package ui

import (
	"cmp"
	"context"
	"errors"
	"image/color"
	"slices"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/rules"
)

// rewardCell is the size of one reward in the grid: a large touch target.
var rewardCell = fyne.NewSize(200, 96)

// rewardsPanel is the reward catalog as a grid: the rewards the member can
// afford first, then the ones they cannot yet, then the tier-locked ones.
// Choosing one asks for confirmation; the agent decides.
type rewardsPanel struct {
	c       *checkout
	root    fyne.CanvasObject
	grid    *keyGrid
	list    []rewardChoice
	chosen  *rewardChoice
	ask     *widget.Label
	confirm *keyButton
	ref     string
}

// rewardChoice is a reward as the grid shows it.
type rewardChoice struct {
	rules.Reward
	affordable, locked bool
}

// keyGrid is the reward grid; Enter confirms the chosen reward and the
// function keys and Escape reach the terminal's hotkeys.
type keyGrid struct {
	widget.GridWrap
	p *rewardsPanel
}

// TypedKey confirms on Enter and passes hotkeys to the terminal.
func (g *keyGrid) TypedKey(k *fyne.KeyEvent) {
	switch {
	case k.Name == fyne.KeyReturn || k.Name == fyne.KeyEnter:
		g.p.redeem()
	case isHotkey(k.Name) && g.p.c.t.hotkey(k):
	default:
		g.GridWrap.TypedKey(k)
	}
}

func newRewardsPanel(c *checkout) *rewardsPanel {
	p := &rewardsPanel{c: c}
	p.grid = &keyGrid{p: p}
	p.grid.Length = func() int { return len(p.list) }
	p.grid.CreateItem = func() fyne.CanvasObject {
		name := widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
		name.Truncation = fyne.TextTruncateEllipsis
		size := canvas.NewRectangle(color.Transparent)
		size.SetMinSize(rewardCell)
		return container.NewStack(size, container.NewVBox(name, widget.NewLabel(""), widget.NewLabel("")))
	}
	p.grid.UpdateItem = func(i widget.GridWrapItemID, o fyne.CanvasObject) {
		r := p.list[i]
		box := o.(*fyne.Container).Objects[1].(*fyne.Container)
		box.Objects[0].(*widget.Label).SetText(rewardLabel(r.Reward))
		box.Objects[1].(*widget.Label).SetText(lang.L("{{.Points}} pts", map[string]any{"Points": r.Points}))
		state := box.Objects[2].(*widget.Label)
		switch {
		case r.locked:
			state.Importance = widget.DangerImportance
			state.SetText(lang.L("Locked: {{.Tier}} tier", map[string]any{"Tier": tierLabel(p.c.t.ag.Rules(), r.Tier, r.Tier)}))
		case !r.affordable:
			state.Importance = widget.WarningImportance
			state.SetText(lang.L("Not enough points"))
		default:
			state.Importance = widget.SuccessImportance
			state.SetText(lang.L("Available"))
		}
	}
	p.grid.OnSelected = func(i widget.GridWrapItemID) {
		r := p.list[i]
		p.chosen = &r
		p.ref = newRef()
		p.ask.SetText(lang.L("Redeem {{.Name}} for {{.Points}} pts?", map[string]any{"Name": rewardLabel(r.Reward), "Points": r.Points}))
		p.confirm.Enable()
		p.c.t.clearFailure()
	}
	p.grid.ExtendBaseWidget(p.grid)
	p.ask = widget.NewLabel("")
	p.confirm = c.t.newButton(lang.L("Redeem")+" (Enter)", theme.ConfirmIcon(), p.redeem)
	p.confirm.Importance = widget.HighImportance
	cancel := c.t.newButton(lang.L("Cancel")+" (Esc)", theme.CancelIcon(), c.escape)
	p.root = container.NewBorder(bigText(lang.L("Rewards"), sizeLarge),
		container.NewVBox(p.ask, container.NewGridWithColumns(2, cancel, p.confirm)), nil, nil, p.grid)
	return p
}

// fill sorts the catalog for the member on screen.
func (p *rewardsPanel) fill() {
	m := p.c.member
	p.list = p.list[:0]
	for _, r := range p.c.t.ag.Rules().Catalog {
		p.list = append(p.list, rewardChoice{Reward: r, affordable: r.Points <= m.Balance,
			locked: locked(*m, r.Tier)})
	}
	rank := func(r rewardChoice) int {
		switch {
		case r.locked:
			return 2
		case !r.affordable:
			return 1
		}
		return 0
	}
	slices.SortStableFunc(p.list, func(a, b rewardChoice) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.Points, b.Points))
	})
	p.grid.UnselectAll()
	p.grid.Refresh()
}

func (c *checkout) openRewards() {
	if !c.requireMember() {
		return
	}
	p := c.rewards
	p.chosen = nil
	p.ask.SetText(lang.L("Choose a reward"))
	p.confirm.Disable()
	p.fill()
	c.open(p.root, p.grid)
	// The first reward the member can take is chosen already: Enter
	// redeems it, the arrows choose another.
	if len(p.list) > 0 && p.list[0].affordable && !p.list[0].locked {
		p.grid.Select(0)
	}
}

// redeem burns the chosen reward.
func (p *rewardsPanel) redeem() {
	if p.chosen == nil {
		p.c.t.fail(errors.New(lang.L("Choose a reward first")))
		return
	}
	r := *p.chosen
	req := agent.RedeemRequest{Card: p.c.card, Reward: r.ID, Ref: p.ref}
	run(p.c.t.br, func(ctx context.Context) (agent.Result, error) { return p.c.t.ag.Redeem(ctx, req) },
		func(res agent.Result, err error) {
			if err != nil {
				p.c.t.fail(err)
				return
			}
			p.c.done(lang.L("Redeemed {{.Name}} for {{.Points}} pts. New balance {{.Balance}} pts",
				map[string]any{"Name": rewardLabel(r.Reward), "Points": -res.Points, "Balance": res.Balance}), res)
		})
}
