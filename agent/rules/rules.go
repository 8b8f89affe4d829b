// Package rules holds the loyalty program's rules document and evaluates it.
//
// Evaluation is pure: functions here take the checkout, the member's facts and
// the time as values and return what the ledger should write, with the lines
// that explain it. The package never reads a clock, a file or the network and
// never writes anything; the agent decides what to do with its answers.
package rules

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"
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
}

// EarnRules is the base earn rate.
type EarnRules struct {
	// PointsPerUnit is the points earned per whole currency unit of the
	// eligible amount, rounded down.
	PointsPerUnit int64 `json:"points_per_unit"`
	// ExcludedCategories never earn (gift cards, tobacco, ...).
	ExcludedCategories []string `json:"excluded_categories"`
}

// Reward is an entry of the reward catalog.
type Reward struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Points int64  `json:"points"`
	Tier   string `json:"tier,omitempty"` // lowest tier allowed to redeem it; empty for all
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
	ID   string `json:"id"`
	Name string `json:"name"`
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

// Parse reads and validates a rules document.
func Parse(b []byte) (*Document, error) {
	var d Document
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

// maxPointsPerUnit bounds the base rate so that points on the largest amount
// fit comfortably in an int64.
const maxPointsPerUnit = 1000

// Validate reports the first problem of the document, with its path.
func (d *Document) Validate() error {
	switch {
	case d.Version <= 0:
		return errors.New("rules: version: must be a positive integer")
	case d.Currency == "":
		return errors.New("rules: currency: required")
	case d.Earn.PointsPerUnit < 0 || d.Earn.PointsPerUnit > maxPointsPerUnit:
		return fmt.Errorf("rules: earn.points_per_unit: between 0 and %d", maxPointsPerUnit)
	case d.Discount.Points < 0 || d.Discount.Value < 0 || d.Discount.MinPoints < 0:
		return errors.New("rules: discount: must not be negative")
	}
	for i, r := range d.Catalog {
		if r.ID == "" || r.Points <= 0 {
			return fmt.Errorf("rules: catalog[%d]: needs an id and a positive points cost", i)
		}
	}
	if err := d.validateTiers(); err != nil {
		return err
	}
	return d.validateCampaigns()
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
