package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/money"
	"github.com/offline-loyalty/terminal/rules"
)

// The program's page: the parts of the rules people change, as a form; the
// whole document for the rest; a check with every problem at its field and
// the change as a diff before anything is published; the versions
// published, each of which can be published again (a rollback).

type rulesData struct {
	Running  *rules.Document
	Version  int
	Form     map[string]string // field (the document's path) → value as typed
	Problems map[string]string // field → its problem
	Other    []string          // problems of no field on the form
	Preview  *headoffice.RulesPreview
	History  []headoffice.RulesVersion
	JSON     string // the document in the JSON form
	// CanPublish: the preview found no problem, on the form or in the
	// document.
	CanPublish bool
}

// DiffLine is a line of a preview's diff with its kind: "add", "del",
// "hunk" or "".
type DiffLine struct{ Kind, Text string }

func diffLines(diff string) []DiffLine {
	var out []DiffLine
	for _, l := range strings.Split(strings.TrimRight(diff, "\n"), "\n") {
		kind := ""
		switch {
		case strings.HasPrefix(l, "+++") || strings.HasPrefix(l, "---"):
			kind = "head"
		case strings.HasPrefix(l, "@@"):
			kind = "hunk"
		case strings.HasPrefix(l, "+"):
			kind = "add"
		case strings.HasPrefix(l, "-"):
			kind = "del"
		}
		out = append(out, DiffLine{kind, l})
	}
	return out
}

func (c *Console) running(r *request) (*rules.Document, []byte, error) {
	raw, err := c.office.Rules(r.Context())
	if err != nil {
		return nil, nil, err
	}
	d, err := rules.Parse(raw)
	return d, raw, err
}

// formOf is the form's fields of a document.
func formOf(d *rules.Document) map[string]string {
	cur := d.Currency
	f := map[string]string{
		"earn.points_per_unit":         strconv.FormatInt(d.Earn.PointsPerUnit, 10),
		"earn.max_amount":              money.Format(d.Earn.MaxAmount, cur),
		"discount.points":              strconv.FormatInt(d.Discount.Points, 10),
		"discount.value":               money.Format(d.Discount.Value, cur),
		"discount.min_points":          strconv.FormatInt(d.Discount.MinPoints, 10),
		"offline_limit.points_per_day": strconv.FormatInt(d.OfflineLimit.PointsPerDay, 10),
		"offline_limit.stale_after":    d.OfflineLimit.StaleAfter.String(),
	}
	for i, t := range d.Tiers {
		p := fmt.Sprintf("tiers[%d].", i)
		f[p+"min_spend"] = money.Format(t.MinSpend, cur)
		f[p+"multiplier_bp"] = strconv.FormatInt(t.MultiplierBP, 10)
	}
	for i, cp := range d.Campaigns {
		p := fmt.Sprintf("campaigns[%d].", i)
		f[p+"from"], f[p+"to"] = cp.From, cp.To
		f[p+"multiplier_bp"] = strconv.FormatInt(cp.MultiplierBP, 10)
		f[p+"bonus"] = strconv.FormatInt(cp.Bonus, 10)
		f[p+"budget"] = strconv.FormatInt(cp.Budget, 10)
	}
	if d.Surprise != nil {
		f["surprise.probability_bp"] = strconv.FormatInt(d.Surprise.ProbabilityBP, 10)
		f["surprise.bonus"] = strconv.FormatInt(d.Surprise.Bonus, 10)
		f["surprise.daily_budget"] = strconv.FormatInt(d.Surprise.DailyBudget, 10)
	}
	return f
}

// applyForm writes the form's fields onto a copy of the running document,
// as the next version. A field that does not read (not a number, not an
// amount of the currency) is a problem at that field.
func applyForm(run *rules.Document, form func(string) string) (*rules.Document, map[string]string) {
	raw, _ := json.Marshal(run)
	var d rules.Document
	_ = json.Unmarshal(raw, &d)
	d.Version = run.Version + 1
	problems := map[string]string{}
	integer := func(name string, dst *int64) {
		s := strings.TrimSpace(form(name))
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			problems[name] = "a whole number"
			return
		}
		*dst = v
	}
	amount := func(name string, dst *int64) {
		v, err := money.ParseNonNegative(strings.TrimSpace(form(name)), d.Currency)
		if err != nil {
			problems[name] = "an amount in " + d.Currency + ", such as 12.50"
			return
		}
		*dst = v
	}
	integer("earn.points_per_unit", &d.Earn.PointsPerUnit)
	amount("earn.max_amount", &d.Earn.MaxAmount)
	integer("discount.points", &d.Discount.Points)
	amount("discount.value", &d.Discount.Value)
	integer("discount.min_points", &d.Discount.MinPoints)
	integer("offline_limit.points_per_day", &d.OfflineLimit.PointsPerDay)
	if v, err := time.ParseDuration(strings.TrimSpace(form("offline_limit.stale_after"))); err != nil {
		problems["offline_limit.stale_after"] = "a duration, such as 24h or 90m"
	} else {
		d.OfflineLimit.StaleAfter = rules.Duration{Duration: v}
	}
	for i := range d.Tiers {
		p := fmt.Sprintf("tiers[%d].", i)
		amount(p+"min_spend", &d.Tiers[i].MinSpend)
		integer(p+"multiplier_bp", &d.Tiers[i].MultiplierBP)
	}
	for i := range d.Campaigns {
		p := fmt.Sprintf("campaigns[%d].", i)
		d.Campaigns[i].From, d.Campaigns[i].To = strings.TrimSpace(form(p+"from")), strings.TrimSpace(form(p+"to"))
		integer(p+"multiplier_bp", &d.Campaigns[i].MultiplierBP)
		integer(p+"bonus", &d.Campaigns[i].Bonus)
		integer(p+"budget", &d.Campaigns[i].Budget)
	}
	if d.Surprise != nil {
		integer("surprise.probability_bp", &d.Surprise.ProbabilityBP)
		integer("surprise.bonus", &d.Surprise.Bonus)
		integer("surprise.daily_budget", &d.Surprise.DailyBudget)
	}
	return &d, problems
}

func (c *Console) rulesPage(r *request, status int, data rulesData, err error) {
	p := r.page("title.rules", "rules", nil)
	run, raw, lerr := c.running(r)
	if lerr != nil {
		c.fail(r, "rules", p, lerr)
		return
	}
	hist, lerr := c.office.RulesHistory(r.Context())
	if lerr != nil {
		c.fail(r, "rules", p, lerr)
		return
	}
	data.Running, data.History = run, hist
	if data.Form == nil {
		data.Form = formOf(run)
	}
	if data.JSON == "" {
		data.JSON = string(indentJSON(raw))
	}
	p.Data = data
	if err != nil {
		c.fail(r, "rules", p, err)
		return
	}
	c.render(r.w, status, "rules", p)
}

func indentJSON(b []byte) []byte {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	return out
}

func (c *Console) rulesView(r *request) { c.rulesPage(r, http.StatusOK, rulesData{}, nil) }

// previewRules checks the form or the whole document and shows the
// problems at their fields and the change; nothing is published.
func (c *Console) previewRules(r *request) {
	run, _, err := c.running(r)
	if err != nil {
		c.rulesPage(r, http.StatusOK, rulesData{}, err)
		return
	}
	var doc []byte
	data := rulesData{Problems: map[string]string{}}
	if r.PostFormValue("source") == "json" {
		data.JSON = r.PostFormValue("doc")
		doc = []byte(data.JSON)
	} else {
		d, problems := applyForm(run, r.PostFormValue)
		data.Form = map[string]string{}
		for k := range formOf(run) {
			data.Form[k] = r.PostFormValue(k)
		}
		data.Problems = problems
		doc, _ = json.Marshal(d)
	}
	pv, err := c.office.PreviewRules(r.Context(), doc)
	if err != nil {
		c.rulesPage(r, http.StatusOK, data, err)
		return
	}
	for _, pr := range pv.Problems {
		path, msg, _ := strings.Cut(pr, ": ")
		if _, onForm := data.Form[path]; onForm && data.Problems[path] == "" {
			data.Problems[path] = msg
			continue
		}
		data.Other = append(data.Other, pr)
	}
	data.Preview = &pv
	data.CanPublish = len(pv.Problems) == 0 && len(data.Problems) == 0
	status := http.StatusOK
	if !data.CanPublish {
		status = http.StatusBadRequest
	}
	c.rulesPage(r, status, data, nil)
}

func (c *Console) publishRules(r *request) {
	v, err := c.office.SetRules(r.ctx, []byte(r.PostFormValue("doc")))
	if err != nil {
		c.rulesPage(r, http.StatusBadRequest, rulesData{JSON: r.PostFormValue("doc")}, err)
		return
	}
	http.Redirect(r.w, r.Request, fmt.Sprintf("/rules?ok=published&v=%d", v), http.StatusSeeOther)
}

func (c *Console) rollbackRules(r *request) {
	v, err := strconv.Atoi(r.PostFormValue("version"))
	if err != nil {
		c.rulesPage(r, http.StatusBadRequest, rulesData{}, fmt.Errorf("%w: version is a number", headoffice.ErrInvalid))
		return
	}
	if _, err := c.office.RollbackRules(r.ctx, v); err != nil {
		c.rulesPage(r, http.StatusBadRequest, rulesData{}, err)
		return
	}
	http.Redirect(r.w, r.Request, "/rules?ok=rolled_back", http.StatusSeeOther)
}
