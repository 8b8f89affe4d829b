package ui

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"image/color"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/offline-loyalty/terminal/agent"
)

// historyDays is how many days the issued-vs-redeemed chart covers.
const historyDays = 14

var (
	colorIssued   = color.NRGBA{R: 0x2e, G: 0x7d, B: 0x32, A: 0xff}
	colorRedeemed = color.NRGBA{R: 0xc6, G: 0x28, B: 0x28, A: 0xff}
	colorBars     = color.NRGBA{R: 0x15, G: 0x65, B: 0xc0, A: 0xff}
)

// manager is the store manager's screen behind the PIN: today's figures,
// charts, sync health and the CSV export.
type manager struct {
	t        *terminal
	root     *fyne.Container
	unlocked bool

	// The PIN gate. The PIN is set on the machine (pos-agent manager
	// add), never chosen here by whoever comes first.
	gate      fyne.CanvasObject
	gateTitle *widget.Label
	pin       *keyEntry
	pinBtn    *keyButton
	// then, when set, is where the unlocked PIN leads instead of the
	// figures (the settings screen).
	then func()

	board      fyne.CanvasObject
	figures    map[string]*widget.Label // value label of each figure card
	order      []string                 // figure names in card order
	hours      *barChart
	days       *barChart
	tiers      *barChart
	top        *widget.Label
	sync       *widget.Label // the queue, the oldest unsent event, the last sync
	queueBar   *meter
	queuePeak  uint64 // largest queue since it was last empty: the catch-up's start
	exportBtn  *keyButton
	stats      agent.Stats
	dayHistory []agent.Stats
}

// figureCardWidth is the narrowest a figure card gets: its title on at
// most two lines.
const figureCardWidth = 135

// figureNames are the section 3 figures shown as cards, in order.
var figureNames = []string{
	"Checkouts", "Member checkouts", "Unique members", "Purchase frequency", "Average order value",
	"Points issued", "Points redeemed", "Points donated", "Points expired", "Redemption rate",
	"Enrollments", "Welcome-back members", "Reward return rate", "Points liability",
}

func newManager(t *terminal) *manager {
	m := &manager{t: t, figures: map[string]*widget.Label{}, order: figureNames}
	m.gateTitle = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	m.gateTitle.Wrapping = fyne.TextWrapWord
	m.pin = t.newEntry(lang.L("PIN"))
	m.pin.Password = true
	m.pin.OnSubmitted = func(string) { m.submitPIN() }
	m.pinBtn = t.newButton(lang.L("Unlock")+" (Enter)", theme.LoginIcon(), m.submitPIN)
	m.pinBtn.Importance = widget.HighImportance
	m.gate = container.NewCenter(container.NewGridWrap(fyne.NewSize(360, 240),
		container.NewVBox(m.gateTitle, m.pin, m.pinBtn)))

	var cardList []fyne.CanvasObject
	for _, name := range figureNames {
		v := widget.NewLabelWithStyle("-", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
		m.figures[name] = v
		title := widget.NewLabel(lang.L(name))
		title.Wrapping = fyne.TextWrapWord
		title.SizeName = theme.SizeNameCaptionText
		cardList = append(cardList, widget.NewCard("", "", container.NewVBox(title, v)))
	}
	cards := newCardGrid(figureCardWidth, 7, cardList...)
	m.hours, m.days, m.tiers = newBarChart(), newBarChart(), newBarChart()
	m.top = widget.NewLabel("")
	m.sync = widget.NewLabel("")
	m.top.Wrapping, m.sync.Wrapping = fyne.TextWrapWord, fyne.TextWrapWord
	m.queueBar = newMeter()
	m.exportBtn = t.newButton(lang.L("Export CSV"), theme.DocumentSaveIcon(), m.export)
	lock := t.newButton(lang.L("Lock")+" (Esc)", theme.LogoutIcon(), t.showCheckout)
	head := container.NewBorder(nil, nil, bigText(lang.L("Today in this store"), sizeLarge), container.NewHBox(m.exportBtn, lock))
	charts := container.NewGridWithColumns(2,
		widget.NewCard("", lang.L("Checkouts by hour today"), m.hours.box),
		widget.NewCard("", lang.L("Points issued and redeemed, last 14 days"), m.days.box))
	// One label of three lines and the catch-up bar: no taller than the
	// chart beside it (the scanner's state is on the status bar).
	sync := container.NewVBox(m.sync, m.queueBar)
	lower := container.NewGridWithColumns(3,
		widget.NewCard("", lang.L("Top rewards"), m.top),
		widget.NewCard("", lang.L("Members by tier"), m.tiers.box),
		widget.NewCard("", lang.L("Sync health"), sync))
	m.board = container.NewVScroll(container.NewVBox(head, cards, charts, lower))
	m.root = container.NewStack(m.gate, m.board)
	m.board.Hide()
	return m
}

// open shows the PIN gate, or the figures when already unlocked.
func (m *manager) open() {
	m.then = nil
	m.gateFor()
}

// openThen shows the PIN gate and, once the PIN is right, calls then.
func (m *manager) openThen(then func()) {
	if m.unlocked {
		then()
		return
	}
	m.then = then
	m.gateFor()
}

func (m *manager) gateFor() {
	if m.unlocked {
		m.gate.Hide()
		m.board.Show()
		m.refresh()
		return
	}
	m.board.Hide()
	m.gate.Show()
	m.pin.SetText("")
	run(m.t.br, func(context.Context) (bool, error) { return m.t.ag.HasManagerPIN(), nil },
		func(has bool, _ error) {
			if has {
				m.gateTitle.SetText(lang.L("Manager PIN"))
				m.pin.Show()
				m.pinBtn.Show()
				m.t.w.Canvas().Focus(m.pin)
				return
			}
			m.gateTitle.SetText(lang.L("No manager PIN is set on this till. A manager sets one on this computer with: pos-agent manager add"))
			m.pin.Hide()
			m.pinBtn.Hide()
			m.t.w.Canvas().Unfocus()
		})
}

// lock hides the figures until the PIN is entered again.
func (m *manager) lock() {
	m.unlocked = false
	m.board.Hide()
	m.gate.Show()
}

func (m *manager) submitPIN() {
	pin := m.pin.Text
	run(m.t.br, func(context.Context) (struct{}, error) {
		return struct{}{}, m.t.ag.CheckManagerPIN(pin)
	}, func(_ struct{}, err error) {
		m.pin.SetText("")
		if err != nil {
			m.t.fail(err)
			return
		}
		m.unlocked = true
		m.gate.Hide()
		m.t.say(lang.L("Manager screen unlocked"))
		if then := m.then; then != nil {
			m.then = nil
			then()
			return
		}
		m.board.Show()
		m.refresh()
	})
}

// refresh reads today's figures and the last days' history.
func (m *manager) refresh() {
	now := m.t.now()
	run(m.t.br, func(context.Context) ([]agent.Stats, error) {
		out := make([]agent.Stats, historyDays)
		for i := range historyDays {
			day := now.AddDate(0, 0, i-historyDays+1).Format(time.DateOnly)
			s, err := m.t.ag.Stats(day)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	}, func(days []agent.Stats, err error) {
		if err != nil {
			m.t.fail(err)
			return
		}
		m.show(days)
	})
}

func (m *manager) show(days []agent.Stats) {
	s := days[len(days)-1]
	m.stats, m.dayHistory = s, days
	for i, v := range figureValues(s) {
		m.figures[m.order[i]].SetText(v)
	}
	hourLabels := make([]string, 24)
	checkouts := make([]int64, 24)
	for h := range 24 {
		hourLabels[h] = strconv.Itoa(h)
		checkouts[h] = s.Hours[h].Checkouts
	}
	m.hours.set(hourLabels, series{lang.L("Checkouts"), colorBars, checkouts})
	dayLabels := make([]string, len(days))
	issued, redeemed := make([]int64, len(days)), make([]int64, len(days))
	for i, d := range days {
		dayLabels[i] = d.Day[len("2006-01-"):]
		issued[i], redeemed[i] = d.PointsIssued, d.PointsRedeemed
	}
	m.days.set(dayLabels, series{lang.L("Issued"), colorIssued, issued}, series{lang.L("Redeemed"), colorRedeemed, redeemed})
	tierIDs := slices.Collect(maps.Keys(s.TierDistribution))
	doc := m.t.ag.Rules()
	ladder := doc.TierIDs() // lowest first
	slices.SortFunc(tierIDs, func(a, b string) int {
		rank := func(id string) int {
			if i := slices.Index(ladder, id); i >= 0 {
				return i
			}
			return len(ladder)
		}
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a, b))
	})
	var tierLabels []string
	var tierCounts []int64
	for _, id := range tierIDs {
		tierLabels = append(tierLabels, fmt.Sprintf("%s %d", tierLabel(doc, id, id), s.TierDistribution[id]))
		tierCounts = append(tierCounts, int64(s.TierDistribution[id]))
	}
	m.tiers.set(tierLabels, series{lang.L("Members"), colorBars, tierCounts})
	top := ""
	for i, r := range s.TopRewards {
		name := r.Reward
		if rw, ok := m.t.ag.Rules().Reward(r.Reward); ok {
			name = rewardLabel(rw)
		}
		top += fmt.Sprintf("%d. %s  × %d\n", i+1, name, r.Count)
	}
	if top == "" {
		top = lang.L("No rewards redeemed today")
	}
	m.top.SetText(top)
	m.showSync(s.Sync)
}

// setStatus follows the link and scanner between refreshes.
func (m *manager) setStatus(st agent.Status) {
	m.showSync(agent.SyncHealth{Queue: st.Queue, OldestUnsent: st.OldestUnsent, LastSync: st.LastSync})
}

func (m *manager) showSync(h agent.SyncHealth) {
	if h.Queue == 0 {
		m.queuePeak = 0
		m.queueBar.Hide()
	} else {
		m.queuePeak = max(m.queuePeak, h.Queue)
		sent := float64(m.queuePeak-h.Queue) / float64(m.queuePeak)
		m.queueBar.set(sent, lang.L("{{.Sent}} of {{.Peak}} sent", map[string]any{"Sent": m.queuePeak - h.Queue, "Peak": m.queuePeak}))
		m.queueBar.Show()
	}
	m.sync.SetText(strings.Join([]string{
		lang.L("Queue: {{.Queue}} events to send", map[string]any{"Queue": h.Queue}),
		lang.L("Oldest unsent: {{.Time}}", map[string]any{"Time": m.when(h.OldestUnsent)}),
		lang.L("Last sync: {{.Time}}", map[string]any{"Time": m.when(h.LastSync)}),
	}, "\n"))
}

func (m *manager) when(t *time.Time) string {
	if t == nil {
		return lang.L("never")
	}
	return t.In(m.t.now().Location()).Format("2006-01-02 15:04")
}

// figureValues formats the figure cards' values in figureNames order.
func figureValues(s agent.Stats) []string {
	cur := s.Currency
	return []string{
		strconv.FormatInt(s.Checkouts, 10),
		strconv.FormatInt(s.MemberCheckouts, 10),
		strconv.FormatInt(s.UniqueMembers, 10),
		hundredths(s.FrequencyX100),
		localMoney(s.AvgOrderValue, cur),
		strconv.FormatInt(s.PointsIssued, 10),
		strconv.FormatInt(s.PointsRedeemed, 10),
		strconv.FormatInt(s.PointsDonated, 10),
		strconv.FormatInt(s.PointsExpired, 10),
		percent(s.RedemptionRateBP),
		strconv.FormatInt(s.Enrollments, 10),
		strconv.FormatInt(s.WelcomeBack, 10),
		percent(s.RewardReturnBP),
		localMoney(s.Liability, cur),
	}
}

// percent writes a rate in basis points as a percentage, and a rate that
// has no value (nothing to divide by: nothing issued, nobody redeemed) as a
// dash, not as 0 % or 100 %.
func percent(bp *int64) string {
	if bp == nil {
		return "—"
	}
	return hundredths(*bp) + " %"
}

// hundredths writes an integer count of hundredths as a decimal: 1234 → "12.34".
func hundredths(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// statsCSV is the day's figures as CSV: one figure per row, then the hours.
func statsCSV(s agent.Stats) ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"day", "terminal", "store", "figure", "value"})
	for i, v := range figureValues(s) {
		_ = w.Write([]string{s.Day, s.Terminal, s.Store, figureNames[i], v})
	}
	for h, hs := range s.Hours {
		_ = w.Write([]string{s.Day, s.Terminal, s.Store, fmt.Sprintf("checkouts %02d:00", h), strconv.FormatInt(hs.Checkouts, 10)})
	}
	w.Flush()
	return b.Bytes(), w.Error()
}

// export writes the day's figures as CSV into the export directory.
func (m *manager) export() {
	s, dir := m.stats, m.t.d.ExportDir
	if dir == "" {
		m.t.fail(errors.New(lang.L("No export folder is configured")))
		return
	}
	run(m.t.br, func(context.Context) (string, error) {
		b, err := statsCSV(s)
		if err != nil {
			return "", err
		}
		path := filepath.Join(dir, "stats-"+s.Day+".csv")
		return path, os.WriteFile(path, b, 0o644)
	}, func(path string, err error) {
		if err != nil {
			m.t.fail(err)
			return
		}
		m.t.say(lang.L("Exported to {{.Path}}", map[string]any{"Path": path}))
	})
}
