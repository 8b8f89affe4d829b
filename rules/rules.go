// Package rules holds the loyalty program's rules document and evaluates it.
//
// Evaluation is pure: functions here take the checkout, the member's facts and
// the time as values and return what the ledger should write, with the lines
// that explain it. The package never reads a clock, a file or the network and
// never writes anything; its callers (the terminal's agent, head office)
// decide what to do with its answers.
package rules

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/offline-loyalty/terminal/money"
)

//go:embed default.json
var defaultJSON []byte

// Document is one version of the rules, authored at head office.
type Document struct {
	Version      int          `json:"version"`
	Currency     string       `json:"currency"`
	Earn         EarnRules    `json:"earn"`
	Tiers        []Tier       `json:"tiers"` // lowest first
	Campaigns    []Campaign   `json:"campaigns,omitempty"`
	Catalog      []Reward     `json:"catalog"`
	Discount     Discount     `json:"discount"`
	Charities    []Charity    `json:"charities"`
	OfflineLimit OfflineLimit `json:"offline_limit"`
	Refund       RefundRules  `json:"refund"`
	Approval     Approval     `json:"approval"`
	// Optional parts of the program; absent means the program has none.
	Surprise    *Surprise    `json:"surprise,omitempty"`
	WelcomeBack *WelcomeBack `json:"welcome_back,omitempty"`
	Expiry      *Expiry      `json:"expiry,omitempty"`
	Review      *Review      `json:"review,omitempty"`
}

// EarnRules is the base earn rate.
type EarnRules struct {
	// PointsPerUnit is the points earned per whole currency unit of the
	// eligible amount, rounded down.
	PointsPerUnit int64 `json:"points_per_unit"`
	// ExcludedCategories never earn (gift cards, tobacco, ...).
	ExcludedCategories []string `json:"excluded_categories"`
	// MaxAmount is the largest sale a cashier takes alone, minor units; 0
	// sets no cap. Above it a manager approves the sale, so a typo of a
	// few digits too many is caught, not earned.
	MaxAmount int64 `json:"max_amount,omitempty"`
}

// CheckAmount says why a sale needs a manager's approval: it is above the
// rules' largest (Earn.MaxAmount). nil when it does not.
func (d *Document) CheckAmount(amount int64) error {
	if d.Earn.MaxAmount > 0 && amount > d.Earn.MaxAmount {
		return fmt.Errorf("amount %s %s is over the largest sale a cashier takes alone (%s %s): check the amount",
			money.Format(amount, d.Currency), d.Currency, money.Format(d.Earn.MaxAmount, d.Currency), d.Currency)
	}
	return nil
}

// Approval is what a cashier may not do alone: above these limits the till
// asks for a manager's approval (the manager PIN, or a call with a manager's
// API token). Adjusting a balance always needs one; a limit of 0 sets none.
type Approval struct {
	// VoidPoints is the most points a void may take back or give back
	// without a manager.
	VoidPoints int64 `json:"void_points,omitempty"`
	// RefundAmount is the largest refund without a manager, minor units.
	RefundAmount int64 `json:"refund_amount,omitempty"`
}

// CheckVoid says why a void that moves points (either way) needs a
// manager; nil when it does not.
func (d *Document) CheckVoid(points int64) error {
	if points < 0 {
		points = -points
	}
	if d.Approval.VoidPoints > 0 && points > d.Approval.VoidPoints {
		return fmt.Errorf("a void of %d points is over the %d a cashier voids alone", points, d.Approval.VoidPoints)
	}
	return nil
}

// CheckRefund says why a refund of amount needs a manager; nil when it
// does not.
func (d *Document) CheckRefund(amount int64) error {
	if d.Approval.RefundAmount > 0 && amount > d.Approval.RefundAmount {
		return fmt.Errorf("a refund of %s %s is over the %s %s a cashier refunds alone",
			money.Format(amount, d.Currency), d.Currency, money.Format(d.Approval.RefundAmount, d.Currency), d.Currency)
	}
	return nil
}

// Reward is an entry of the reward catalog.
type Reward struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Names  Names  `json:"names,omitempty"` // the name in other languages
	Points int64  `json:"points"`
	Tier   string `json:"tier,omitempty"` // lowest tier allowed to redeem it; empty for all
	// From and To bound the days it can be redeemed (YYYY-MM-DD, store
	// time, both included); empty for no bound.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// Available reports whether the reward can be redeemed on day (YYYY-MM-DD).
func (r Reward) Available(day string) bool {
	return (r.From == "" || day >= r.From) && (r.To == "" || day <= r.To)
}

// Discount converts points to money off: Points points are worth Value minor
// units; a redemption must be at least MinPoints.
type Discount struct {
	Points    int64 `json:"points"`
	Value     int64 `json:"value"`
	MinPoints int64 `json:"min_points"`
}

// Charity is a partner that members can donate points to.
type Charity struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Names Names  `json:"names,omitempty"` // the name in other languages
}

// Names are an entry's name in other languages than its Name's, by
// two-letter language code: {"tr": "Gümüş"}. The till shows the one of the
// language on screen, else Name.
type Names map[string]string

// In is the name in language code, or fallback.
func (n Names) In(code, fallback string) string {
	if s := n[code]; s != "" {
		return s
	}
	return fallback
}

// LineLabel is an earn line's label (EarnResult.Lines) in language code:
// a campaign's line is its name there, a tier's line the tier's name there
// with its multiplier; any other label (the base, welcome back, surprise
// lines, the caller's words) comes back as it is.
func (d *Document) LineLabel(label, code string) string {
	for _, c := range d.Campaigns {
		if c.Name == label {
			return c.Names.In(code, c.Name)
		}
	}
	for _, t := range d.Tiers {
		if rest, ok := strings.CutPrefix(label, t.Name+" x"); ok {
			return t.Names.In(code, t.Name) + " x" + rest
		}
	}
	return label
}

// TierName is tier id's name in language code ("" for an unknown tier).
func (d *Document) TierName(id, code string) string {
	for _, t := range d.Tiers {
		if t.ID == id {
			return t.Names.In(code, t.Name)
		}
	}
	return ""
}

// maxName is the longest name in another language, in bytes.
const maxName = 80

func (n Names) check(p *problems, path string) {
	for code, s := range n {
		if len(code) != 2 || strings.ToLower(code) != code || strings.Trim(code, "abcdefghijklmnopqrstuvwxyz") != "" {
			p.addf("%s: %q is not a two-letter language code like \"tr\"", path, code)
		}
		if s == "" || len(s) > maxName || !utf8.ValidString(s) {
			p.addf("%s.%s: a name of 1 to %d bytes of UTF-8", path, code, maxName)
		}
	}
}

// OfflineLimit bounds the points one member may burn per day while the
// terminal's view of the member's balance is older than StaleAfter.
type OfflineLimit struct {
	PointsPerDay int64    `json:"points_per_day"`
	StaleAfter   Duration `json:"stale_after"`
}

// RefundRules says what a clawback does when the points were already spent.
type RefundRules struct {
	// AllowNegative lets a refund or void take the balance below zero (the
	// member owes points); when false such a return is refused at the till.
	AllowNegative bool `json:"allow_negative"`
}

// Duration is a time.Duration written as text ("24h", "90m") in JSON.
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration written as text.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("not a duration string like \"24h\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration: %q", s)
	}
	d.Duration = v
	return nil
}

// Default returns the rules document shipped inside the binary, so a terminal
// works out of the box before head office has sent any.
func Default() *Document {
	d, err := Parse(defaultJSON)
	if err != nil {
		panic("rules: the embedded default does not parse: " + err.Error())
	}
	return d
}

// Parse reads and validates a rules document. A document that does not
// decode gets one error; one that decodes but breaks rules gets a Problems
// error listing every problem with its path.
func Parse(b []byte) (*Document, error) {
	var d Document
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, decodeError(b, err)
	}
	if dec.More() {
		return nil, errors.New("rules: more than one JSON value")
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

// decodeError turns a JSON decoding error into one line with the path or the
// place of the problem.
func decodeError(b []byte, err error) error {
	var typ *json.UnmarshalTypeError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Errorf("rules: %s: %s where %s was expected", typ.Field, typ.Value, typeName(typ.Type.Kind().String()))
	case errors.As(err, &syn):
		line, col := position(b, syn.Offset-1) // Offset counts the offending byte
		return fmt.Errorf("rules: line %d column %d: %v", line, col, syn)
	case errors.Is(err, io.EOF):
		return errors.New("rules: empty document")
	}
	return fmt.Errorf("rules: %v", strings.TrimPrefix(err.Error(), "json: "))
}

func typeName(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "an integer"
	case kind == "slice":
		return "a list"
	case kind == "struct", kind == "ptr", kind == "map":
		return "an object"
	case kind == "bool":
		return "true or false"
	}
	return "a " + kind
}

func position(b []byte, off int64) (line, col int) {
	line, col = 1, 1
	for _, c := range b[:min(int(off), len(b))] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// Problems is every problem a document has, each with its path
// ("campaigns[2].from: not a date like 2026-11-24").
type Problems []string

func (p Problems) Error() string {
	if len(p) == 1 {
		return "rules: " + p[0]
	}
	return fmt.Sprintf("rules: %d problems: %s", len(p), strings.Join(p, "; "))
}

// problems collects what Validate finds.
type problems struct{ list Problems }

func (p *problems) addf(format string, args ...any) {
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

// uniqueID checks that the entry at path has an id not seen before.
func (p *problems) uniqueID(path, id string, seen map[string]bool) {
	switch {
	case id == "":
		p.addf("%s.id: required", path)
	case seen[id]:
		p.addf("%s.id: %q is used twice", path, id)
	}
	seen[id] = true
}

// maxPointsPerUnit bounds the base rate so that points on the largest amount
// fit comfortably in an int64.
const maxPointsPerUnit = 1000

// maxBonus bounds every fixed bonus and budget.
const maxBonus = 1_000_000_000

// Validate reports every problem of the document, with its path, as
// Problems; nil when there are none.
func (d *Document) Validate() error {
	var p problems
	if d.Version <= 0 {
		p.addf("version: must be a positive integer")
	}
	if len(d.Currency) != 3 || strings.ToUpper(d.Currency) != d.Currency {
		p.addf("currency: an ISO 4217 code like EUR")
	}
	if d.Earn.PointsPerUnit < 0 || d.Earn.PointsPerUnit > maxPointsPerUnit {
		p.addf("earn.points_per_unit: between 0 and %d", maxPointsPerUnit)
	}
	if d.Earn.MaxAmount < 0 || d.Earn.MaxAmount > money.MaxAmount {
		p.addf("earn.max_amount: between 0 (no cap) and %d minor units", money.MaxAmount)
	}
	if d.Approval.VoidPoints < 0 || d.Approval.VoidPoints > maxBonus {
		p.addf("approval.void_points: between 0 (no limit) and %d", maxBonus)
	}
	if d.Approval.RefundAmount < 0 || d.Approval.RefundAmount > money.MaxAmount {
		p.addf("approval.refund_amount: between 0 (no limit) and %d minor units", money.MaxAmount)
	}
	if d.Discount.Points < 0 || d.Discount.Value < 0 || d.Discount.MinPoints < 0 {
		p.addf("discount: must not be negative")
	}
	if d.Discount.Points > maxBonus || d.Discount.MinPoints > maxBonus || d.Discount.Value > money.MaxAmount {
		p.addf("discount: points at most %d, value at most %d minor units", maxBonus, money.MaxAmount)
	}
	d.validateTiers(&p)
	d.validateCatalog(&p)
	d.validateCampaigns(&p)
	d.validateExtras(&p)
	if p.list != nil {
		return p.list
	}
	return nil
}

func (d *Document) validateCatalog(p *problems) {
	seen := map[string]bool{}
	for i, r := range d.Catalog {
		path := fmt.Sprintf("catalog[%d]", i)
		p.uniqueID(path, r.ID, seen)
		r.Names.check(p, path+".names")
		if r.Points <= 0 || r.Points > maxBonus {
			p.addf("%s.points: between 1 and %d", path, maxBonus)
		}
		if r.Tier != "" && !d.hasTier(r.Tier) {
			p.addf("%s.tier: unknown tier %q", path, r.Tier)
		}
		checkDates(p, path, r.From, r.To)
	}
	seen = map[string]bool{}
	for i, c := range d.Charities {
		c.Names.check(p, fmt.Sprintf("charities[%d].names", i))
		if c.ID == "" || seen[c.ID] {
			p.addf("charities[%d].id: missing or used twice", i)
		}
		seen[c.ID] = true
	}
}

// checkDates checks an optional from/to pair of days.
func checkDates(p *problems, path, from, to string) {
	ok := true
	for _, f := range []struct{ name, v string }{{"from", from}, {"to", to}} {
		if f.v == "" {
			continue
		}
		if _, err := time.Parse(time.DateOnly, f.v); err != nil {
			p.addf("%s.%s: not a date like 2026-11-24", path, f.name)
			ok = false
		}
	}
	if ok && from != "" && to != "" && to < from {
		p.addf("%s.to: before from", path)
	}
}

// Reward returns the catalog reward with the given id.
func (d *Document) Reward(id string) (Reward, bool) {
	for _, r := range d.Catalog {
		if r.ID == id {
			return r, true
		}
	}
	return Reward{}, false
}

// Charity returns the charity partner with the given id.
func (d *Document) Charity(id string) (Charity, bool) {
	for _, c := range d.Charities {
		if c.ID == id {
			return c, true
		}
	}
	return Charity{}, false
}
