package syncserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/rules"
	"github.com/offline-loyalty/terminal/sync/hqstore"
	"github.com/offline-loyalty/terminal/sync/syncproto"
)

// Limits of the admin and join operations.
const (
	// codeLife is how long a join code may be used (once).
	codeLife = 24 * time.Hour
	// maxJoinBody bounds an unauthenticated join request.
	maxJoinBody = 4 << 10
	// maxImport bounds a members CSV.
	maxImport = 256 << 20
)

// Errors of the admin operations; their messages are what the operator reads.
var (
	ErrInvalid  = errors.New("invalid request")
	ErrJoinCode = errors.New("join code refused")
	ErrNotFound = errors.New("not found")
)

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
func (s *Server) AddTerminal(store, name string) (terminal, code string, err error) {
	if !idPattern.MatchString(store) || !idPattern.MatchString(name) {
		return "", "", fmt.Errorf("%w: store and name are 1 to 48 letters, digits, '.', '_' or '-'", ErrInvalid)
	}
	terminal, code = store+"-"+name, newCode()
	now := s.now()
	err = s.db.Update(func(tx *hqstore.Tx) error {
		t, ok, err := tx.Terminal(terminal)
		if err != nil {
			return err
		}
		if ok && t.Key != nil {
			return fmt.Errorf("%w: terminal %s has joined already", ErrInvalid, terminal)
		}
		if ok && t.CodeHash != nil {
			if err := tx.SetCode(t.CodeHash, ""); err != nil {
				return err
			}
		}
		t = hqstore.Terminal{ID: terminal, Store: store, Name: name, CodeHash: hashCode(code), CodeExpires: now.Add(codeLife), Created: now}
		if err := tx.SetCode(t.CodeHash, terminal); err != nil {
			return err
		}
		return tx.PutTerminal(t)
	})
	return terminal, code, err
}

// Join exchanges a join code for the terminal's identity, recording its
// public key. A code works once and for 24 hours.
func (s *Server) Join(req syncproto.JoinRequest) (syncproto.JoinResponse, error) {
	if len(req.Key) != 32 {
		return syncproto.JoinResponse{}, fmt.Errorf("%w: the terminal key must be an ed25519 public key", ErrInvalid)
	}
	now := s.now()
	var resp syncproto.JoinResponse
	err := s.db.Update(func(tx *hqstore.Tx) error {
		h := hashCode(req.Code)
		id := tx.CodeTerminal(h)
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
		resp = syncproto.JoinResponse{Terminal: t.ID, Store: t.Store, QRKey: s.qrKey.Public().(ed25519.PublicKey)}
		return tx.PutTerminal(t)
	})
	return resp, err
}

func (s *Server) serveJoin(w http.ResponseWriter, r *http.Request) {
	var req syncproto.JoinRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxJoinBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, fmt.Errorf("%w: %v", ErrInvalid, err))
		return
	}
	resp, err := s.Join(req)
	if err != nil {
		s.log.Info("join refused", "remote", r.RemoteAddr, "err", err)
		writeError(w, err)
		return
	}
	s.log.Info("terminal joined", "terminal", resp.Terminal)
	writeJSON(w, resp)
}

// SetRules publishes a rules document (validated; its version must be above
// the current one).
func (s *Server) SetRules(doc []byte) (int, error) {
	d, err := rules.Parse(doc)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	err = s.db.Update(func(tx *hqstore.Tx) error {
		if cur := rulesVersionOf(tx.Meta("rules")); d.Version <= cur {
			return fmt.Errorf("%w: version %d is not above the published version %d", ErrInvalid, d.Version, cur)
		}
		return tx.SetMeta("rules", doc)
	})
	if err != nil {
		return 0, err
	}
	s.changed()
	return d.Version, nil
}

// Rules returns the published rules document (the built-in default when
// none has been published).
func (s *Server) Rules() ([]byte, error) {
	var doc []byte
	err := s.db.View(func(tx *hqstore.Tx) error { doc = tx.Meta("rules"); return nil })
	if doc == nil {
		doc, err = json.Marshal(rules.Default())
	}
	return doc, err
}

func rulesVersionOf(doc []byte) int {
	var v struct {
		Version int `json:"version"`
	}
	_ = json.Unmarshal(doc, &v)
	return v.Version
}

// ImportMembers loads members and cards from CSV with the header
// card,member,name,email,tier,balance (balance in points). An existing member
// is updated and its balance replaced; the whole file is one transaction, so
// a bad row changes nothing.
func (s *Server) ImportMembers(r io.Reader) (int, error) {
	cr := csv.NewReader(io.LimitReader(r, maxImport))
	cr.FieldsPerRecord = 6
	head, err := cr.Read()
	if err != nil {
		return 0, fmt.Errorf("%w: members CSV: %v", ErrInvalid, err)
	}
	if strings.Join(head, ",") != "card,member,name,email,tier,balance" {
		return 0, fmt.Errorf("%w: members CSV header must be card,member,name,email,tier,balance", ErrInvalid)
	}
	type row struct {
		card, member, name, email, tier string
		balance                         int64
	}
	var rows []row
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("%w: members CSV: %v", ErrInvalid, err)
		}
		bal, err := strconv.ParseInt(rec[5], 10, 64)
		if err != nil || rec[0] == "" || rec[1] == "" {
			return 0, fmt.Errorf("%w: members CSV line %d: needs a card, a member id and an integer balance", ErrInvalid, line)
		}
		rows = append(rows, row{rec[0], rec[1], rec[2], rec[3], rec[4], bal})
	}
	now := s.now()
	err = s.db.Update(func(tx *hqstore.Tx) error {
		for _, r := range rows {
			m, ok, err := tx.Member(r.member)
			if err != nil {
				return err
			}
			if !ok {
				m = hqstore.Member{ID: r.member, Status: "active", Enrolled: now}
			}
			m.Name, m.Email, m.Tier, m.Balance = r.name, r.email, r.tier, r.balance
			if m.Tier == "" {
				m.Tier = "bronze"
			}
			if !contains(m.Cards, r.card) {
				m.Cards = append(m.Cards, r.card)
			}
			c, _, err := tx.Card(r.card)
			if err != nil {
				return err
			}
			c.Member = r.member
			if err := tx.PutCard(r.card, c, false); err != nil {
				return err
			}
			if err := tx.PutMember(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.changed()
	return len(rows), nil
}

// MemberView is a member as head office's admin verbs show it.
type MemberView struct {
	syncproto.Member
	Email string `json:"email,omitempty"`
}

// MemberByCard returns the authoritative member a card belongs to.
func (s *Server) MemberByCard(card string) (MemberView, error) {
	var v MemberView
	err := s.db.View(func(tx *hqstore.Tx) error {
		c, ok, err := tx.Card(card)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: no member has card %s", ErrNotFound, cardnum.Mask(card))
		}
		m, ok, err := tx.Member(c.Member)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: member %s", ErrNotFound, c.Member)
		}
		v = MemberView{Member: snapshot(m, 0, s.now()), Email: m.Email}
		if c.Blocked {
			v.Status = "blocked"
		}
		return nil
	})
	return v, err
}

// Events calls fn with the exact bytes of every ingested event of terminal
// ("" for all), by terminal, epoch and sequence.
func (s *Server) Events(terminal string, fn func([]byte) error) error {
	return s.db.View(func(tx *hqstore.Tx) error { return tx.Events(terminal, fn) })
}

// StoreFigures are one store's figures for a period.
type StoreFigures struct {
	Store          string `json:"store"`
	Events         int64  `json:"events"`
	Checkouts      int64  `json:"checkouts"`
	Sales          int64  `json:"sales"` // minor units
	PointsIssued   int64  `json:"points_issued"`
	PointsRedeemed int64  `json:"points_redeemed"`
	PointsDonated  int64  `json:"points_donated"`
	Enrollments    int64  `json:"enrollments"`
	Members        int64  `json:"unique_members"`
}

// Report is the head-office report across stores.
type Report struct {
	From             string         `json:"from,omitempty"`
	To               string         `json:"to,omitempty"`
	Stores           []StoreFigures `json:"stores"`
	Terminals        int            `json:"terminals"`
	NegativeBalances []hqstore.Flag `json:"negative_balances"`
	ChainBreaks      []hqstore.Flag `json:"chain_breaks"`
	Other            []hqstore.Flag `json:"other_flags"`
	Liability        int64          `json:"liability_points"` // sum of all members' balances
}

// Report computes the figures of the events whose day (UTC) is within
// [from, to] (YYYY-MM-DD, either may be empty), for store ("" for all).
func (s *Server) Report(from, to, store string) (Report, error) {
	for _, d := range []string{from, to} {
		if d != "" {
			if _, err := time.Parse(time.DateOnly, d); err != nil {
				return Report{}, fmt.Errorf("%w: day %q is not YYYY-MM-DD", ErrInvalid, d)
			}
		}
	}
	rep := Report{From: from, To: to, NegativeBalances: []hqstore.Flag{}, ChainBreaks: []hqstore.Flag{}, Other: []hqstore.Flag{}}
	figs := map[string]*StoreFigures{}
	members := map[string]map[string]bool{}
	err := s.db.View(func(tx *hqstore.Tx) error {
		var terms []hqstore.Terminal
		if err := tx.Terminals(func(t hqstore.Terminal) error {
			terms = append(terms, t)
			return nil
		}); err != nil {
			return err
		}
		for _, t := range terms {
			// Events belong to the terminal that sent them, whatever id they
			// carry (events written before a terminal joined carry its
			// provisional id).
			st := t.Store
			if store != "" && st != store {
				continue
			}
			rep.Terminals++
			if err := tx.Events(t.ID, func(raw []byte) error {
				var e ledger.Event
				if err := json.Unmarshal(raw, &e); err != nil {
					return err
				}
				day := e.Time.UTC().Format(time.DateOnly)
				if (from != "" && day < from) || (to != "" && day > to) {
					return nil
				}
				f := figs[st]
				if f == nil {
					f = &StoreFigures{Store: st}
					figs[st] = f
					members[st] = map[string]bool{}
				}
				f.Events++
				switch e.Type {
				case ledger.Earn:
					f.Checkouts++
					f.Sales += e.Amount
					f.PointsIssued += e.Points
					members[st][e.Member] = true
				case ledger.Redeem, ledger.BurnDiscount:
					f.PointsRedeemed -= e.Points
				case ledger.Donate:
					f.PointsDonated -= e.Points
				case ledger.Enroll:
					f.Enrollments++
				}
				return nil
			}); err != nil {
				return err
			}
		}
		if err := tx.Members(func(m hqstore.Member) error { rep.Liability += m.Balance; return nil }); err != nil {
			return err
		}
		return tx.Flags(func(f hqstore.Flag) error {
			switch f.Kind {
			case "negative_balance":
				rep.NegativeBalances = append(rep.NegativeBalances, f)
			case "chain_break":
				rep.ChainBreaks = append(rep.ChainBreaks, f)
			default:
				rep.Other = append(rep.Other, f)
			}
			return nil
		})
	})
	for st, f := range figs {
		f.Members = int64(len(members[st]))
		rep.Stores = append(rep.Stores, *f)
	}
	sort.Slice(rep.Stores, func(i, j int) bool { return rep.Stores[i].Store < rep.Stores[j].Store })
	return rep, err
}
