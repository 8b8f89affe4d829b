package headoffice

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
)

// Operators are the people of head office who sign in to the console. Their
// accounts, sessions and failed sign-ins live in the store's metadata, so
// that every head office process on one database shares them, and a move or
// a backup of the store keeps them.
const (
	metaOperator = "operator/"
	metaSession  = "session/"
	metaSignIn   = "signin/"
)

// Roles of operators: analysts read; support also acts on members and
// cards; admins also manage the rules, terminals and operators.
const (
	RoleAnalyst = "analyst"
	RoleSupport = "support"
	RoleAdmin   = "admin"
)

// roleRank orders the roles: each may do what the ones below it may.
var roleRank = map[string]int{RoleAnalyst: 1, RoleSupport: 2, RoleAdmin: 3}

// Allows reports whether role may do what needs at least role need.
func Allows(role, need string) bool { return roleRank[role] > 0 && roleRank[role] >= roleRank[need] }

// Operator is an account of head office.
type Operator struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Hash      string    `json:"hash,omitempty"` // argon2id, PHC string
	Disabled  bool      `json:"disabled,omitempty"`
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
}

var operatorName = regexp.MustCompile(`^[a-z][a-z0-9._-]{1,31}$`)

// Password bounds: long enough to resist guessing, short enough that
// hashing one is bounded work.
const (
	minPassword = 10
	maxPassword = 128
)

// argon2id's cost, OWASP's smallest recommended setting: 19 MiB, two
// passes, one lane.
const (
	argonTime   = 2
	argonMemory = 19 * 1024
	argonLanes  = 1
	argonKeyLen = 32
)

func hashPassword(password string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonLanes, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonLanes,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// checkPassword compares password with a PHC string of hashPassword, with
// the cost the string names (so that raising the cost keeps old hashes).
func checkPassword(encoded, password string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<20 || t > 16 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked against when the name is unknown, so that an unknown
// name costs the same time as a wrong password.
var dummyHash = hashPassword("no operator has this password")

// AddOperator creates an operator. The password is hashed with argon2id; it
// is never stored or logged.
func (o *Office) AddOperator(ctx context.Context, name, role, password, by string) error {
	switch {
	case !operatorName.MatchString(name):
		return fmt.Errorf("%w: an operator name is 2 to 32 lower-case letters, digits, '.', '_' or '-', starting with a letter", ErrInvalid)
	case roleRank[role] == 0:
		return fmt.Errorf("%w: role %q is not admin, support or analyst", ErrInvalid, role)
	case len(password) < minPassword || len(password) > maxPassword:
		return fmt.Errorf("%w: a password is %d to %d characters", ErrInvalid, minPassword, maxPassword)
	}
	op := Operator{Name: name, Role: role, Hash: hashPassword(password), Created: o.now().UTC(), CreatedBy: by}
	return o.store.Update(ctx, func(tx Tx) error {
		old, err := tx.Meta(metaOperator + name)
		if err != nil {
			return err
		}
		if old != nil {
			return fmt.Errorf("%w: operator %s exists", ErrInvalid, name)
		}
		if err := putJSON(tx, metaOperator+name, op); err != nil {
			return err
		}
		return o.audit(tx, Change{Operator: by, Action: "operator.add", Subject: "operator " + name, After: "role " + role})
	})
}

// Operators lists the operators by name, without their password hashes.
func (o *Office) Operators(ctx context.Context) ([]Operator, error) {
	var out []Operator
	err := o.store.View(ctx, func(tx ReadTx) error {
		return tx.MetaRange(metaOperator, false, func(k string, v []byte) error {
			op, err := decode[Operator]("operator", k, v)
			op.Hash = ""
			out = append(out, op)
			return err
		})
	})
	return out, err
}

// DisableOperator stops an operator from signing in and ends its sessions.
// An operator is disabled rather than deleted: the audit log names it.
func (o *Office) DisableOperator(ctx context.Context, name, by string) error {
	return o.store.Update(ctx, func(tx Tx) error {
		op, ok, err := getJSON[Operator](tx, metaOperator+name)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: no operator %s", ErrNotFound, name)
		}
		if op.Disabled {
			return nil
		}
		op.Disabled = true
		if err := putJSON(tx, metaOperator+name, op); err != nil {
			return err
		}
		var ended []string
		if err := tx.MetaRange(metaSession, false, func(k string, v []byte) error {
			if s, err := decode[Session]("session", k, v); err == nil && s.Operator == name {
				ended = append(ended, k)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range ended {
			if err := tx.DeleteMeta(k); err != nil {
				return err
			}
		}
		return o.audit(tx, Change{Operator: by, Action: "operator.disable", Subject: "operator " + name,
			Before: "enabled", After: fmt.Sprintf("disabled, %d sessions ended", len(ended))})
	})
}

// Session is a signed-in operator's session. The token that names it is in
// the operator's cookie only; the store keeps its SHA-256.
type Session struct {
	Operator string    `json:"operator"`
	Role     string    `json:"role"`
	CSRF     string    `json:"csrf"` // the token every form of the session carries
	Created  time.Time `json:"created"`
	Seen     time.Time `json:"seen"`
	Address  string    `json:"address"`
}

// Sessions end after SessionIdle without a request, and SessionLife after
// sign-in in any case.
const (
	SessionIdle = 30 * time.Minute
	SessionLife = 12 * time.Hour
	// seenEvery is how stale a session's last-seen time may get before a
	// request writes it again: not every page view is a write.
	seenEvery = time.Minute
)

// Sign-in throttling: failures for a name, or from an address, within
// failureWindow are counted; from slowAfter on each answer waits longer
// (Options.SignInDelay times the failures past it), and at lockAfter the
// name or address is locked for lockFor.
const (
	failureWindow = 15 * time.Minute
	slowAfter     = 2
	lockAfter     = 5
	lockFor       = 15 * time.Minute
)

// Sign-in refusals.
var (
	ErrSignIn  = &Error{"sign_in", "wrong name or password"}
	ErrLocked  = &Error{"locked", "sign-in locked"}
	ErrSession = &Error{"session", "not signed in"}
	ErrCSRF    = &Error{"csrf", "the form is stale or not from the console"}
)

// LockError is a sign-in refused because the name or the address is
// locked; it is ErrLocked, and says until when.
type LockError struct{ Until time.Time }

func (e *LockError) Error() string {
	return fmt.Sprintf("%s: too many wrong passwords; try again after %s UTC", ErrLocked.msg, e.Until.UTC().Format("15:04"))
}

// Is makes a LockError ErrLocked.
func (e *LockError) Is(target error) bool { return target == ErrLocked }

type failures struct {
	Count  int       `json:"count"`
	First  time.Time `json:"first"`
	Locked time.Time `json:"locked_until,omitzero"`
}

func signInKeys(name, addr string) []string {
	return []string{metaSignIn + "name/" + name, metaSignIn + "addr/" + addr}
}

// SignIn checks an operator's password and opens a session, returning its
// token (for the cookie). Wrong passwords for a name or from an address are
// answered more and more slowly and then locked for a while; a locked name
// or address is refused, saying until when, even with the right password.
func (o *Office) SignIn(ctx context.Context, name, password, addr string) (token string, s Session, err error) {
	now := o.now().UTC()
	keys := signInKeys(name, addr)
	// A lock is checked before the password is, so that a locked name
	// costs no hashing.
	var worst failures
	var op Operator
	var found bool
	err = o.store.View(ctx, func(tx ReadTx) error {
		for _, k := range keys {
			f, _, err := getJSON[failures](tx, k)
			if err != nil {
				return err
			}
			if f.Locked.After(worst.Locked) {
				worst = f
			}
		}
		op, found, err = getJSON[Operator](tx, metaOperator+name)
		return err
	})
	if err != nil {
		return "", Session{}, err
	}
	if worst.Locked.After(now) {
		o.metrics.signIns.WithLabelValues("locked").Inc()
		return "", Session{}, &LockError{Until: worst.Locked}
	}
	hash := dummyHash
	if found {
		hash = op.Hash
	}
	if !checkPassword(hash, password) || !found || op.Disabled {
		n, locked, err := o.signInFailed(ctx, keys, now)
		if err != nil {
			return "", Session{}, err
		}
		o.log.Warn("console sign-in refused", "name", name, "address", addr, "failures", n, "locked", locked)
		if locked {
			o.metrics.signIns.WithLabelValues("locked").Inc()
			return "", Session{}, &LockError{Until: now.Add(lockFor)}
		}
		if n > slowAfter {
			t := time.NewTimer(time.Duration(n-slowAfter) * o.signInDelay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		o.metrics.signIns.WithLabelValues("password").Inc()
		return "", Session{}, ErrSignIn
	}
	token = rand.Text() // 128 bits, base32
	s = Session{Operator: name, Role: op.Role, CSRF: rand.Text(), Created: now, Seen: now, Address: addr}
	err = o.store.Update(ctx, func(tx Tx) error {
		// A name's failures end with a right password; an address keeps
		// its own, so that one good account does not reset a guesser's.
		if err := tx.DeleteMeta(keys[0]); err != nil {
			return err
		}
		return putJSON(tx, sessionKey(token), s)
	})
	if err != nil {
		return "", Session{}, err
	}
	o.log.Info("console sign-in", "operator", name, "address", addr)
	return token, s, nil
}

// signInFailed counts a failure for the name and the address, and reports
// the higher count and whether it locked either.
func (o *Office) signInFailed(ctx context.Context, keys []string, now time.Time) (n int, locked bool, err error) {
	err = o.store.Update(ctx, func(tx Tx) error {
		n, locked = 0, false
		for _, k := range keys {
			f, _, err := getJSON[failures](tx, k)
			if err != nil {
				return err
			}
			if now.Sub(f.First) > failureWindow {
				f = failures{First: now}
			}
			f.Count++
			if f.Count >= lockAfter {
				f.Locked, locked = now.Add(lockFor), true
			}
			n = max(n, f.Count)
			if err := putJSON(tx, k, f); err != nil {
				return err
			}
		}
		return nil
	})
	return n, locked, err
}

// sweepEvery is how often ended sessions and old sign-in failures are
// deleted: a session is otherwise deleted only when presented again, and an
// address that guessed once would keep its record for ever.
const sweepEvery = 10 * time.Minute

// sweepConsole deletes ended sessions and sign-in failures whose window
// and lock have passed.
func (o *Office) sweepConsole(ctx context.Context) error {
	now := o.now().UTC()
	ended := func(k string, v []byte) bool {
		if strings.HasPrefix(k, metaSession) {
			s, err := decode[Session]("session", k, v)
			return err != nil || now.Sub(s.Seen) > SessionIdle || now.Sub(s.Created) > SessionLife
		}
		f, err := decode[failures]("sign-in failures", k, v)
		return err != nil || (now.Sub(f.First) > failureWindow && !f.Locked.After(now))
	}
	var gone []string
	err := o.store.View(ctx, func(tx ReadTx) error {
		for _, prefix := range []string{metaSession, metaSignIn} {
			if err := tx.MetaRange(prefix, false, func(k string, v []byte) error {
				if ended(k, v) {
					gone = append(gone, k)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || len(gone) == 0 {
		return err
	}
	// Read again where it is deleted: a failure counted or a session
	// used since is kept.
	return o.store.Update(ctx, func(tx Tx) error {
		for _, k := range gone {
			v, err := tx.Meta(k)
			if err != nil {
				return err
			}
			if v != nil && ended(k, v) {
				if err := tx.DeleteMeta(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func sessionKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return metaSession + hex.EncodeToString(sum[:])
}

// Session returns the session a token names, with the operator's current
// role, and notes the request. A session past its idle or absolute expiry,
// of a disabled operator, or unknown, is ErrSession.
func (o *Office) Session(ctx context.Context, token string) (Session, error) {
	if token == "" || len(token) > 64 {
		return Session{}, ErrSession
	}
	now := o.now().UTC()
	key := sessionKey(token)
	var s Session
	var ok bool
	var op Operator
	err := o.store.View(ctx, func(tx ReadTx) error {
		var err error
		if s, ok, err = getJSON[Session](tx, key); err != nil || !ok {
			return err
		}
		op, ok, err = getJSON[Operator](tx, metaOperator+s.Operator)
		return err
	})
	if err != nil {
		return Session{}, err
	}
	if !ok || op.Disabled || now.Sub(s.Seen) > SessionIdle || now.Sub(s.Created) > SessionLife {
		if ok {
			_ = o.store.Update(ctx, func(tx Tx) error { return tx.DeleteMeta(key) })
		}
		return Session{}, ErrSession
	}
	s.Role = op.Role
	if now.Sub(s.Seen) > seenEvery {
		s.Seen = now
		if err := o.store.Update(ctx, func(tx Tx) error { return putJSON(tx, key, s) }); err != nil {
			return Session{}, err
		}
	}
	return s, nil
}

// SignOut ends the session a token names.
func (o *Office) SignOut(ctx context.Context, token string) error {
	return o.store.Update(ctx, func(tx Tx) error { return tx.DeleteMeta(sessionKey(token)) })
}

// CheckCSRF reports whether a form's token is the session's.
func (s Session) CheckCSRF(token string) error {
	if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRF)) != 1 {
		return ErrCSRF
	}
	return nil
}

func putJSON(tx Tx, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.SetMeta(key, b)
}

func getJSON[T any](tx ReadTx, key string) (T, bool, error) {
	var v T
	b, err := tx.Meta(key)
	if err != nil || b == nil {
		return v, false, err
	}
	v, err = decode[T]("metadata", key, b)
	return v, err == nil, err
}

func decode[T any](what, key string, b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%w: %s %q: %v", ErrCorrupt, what, key, err)
	}
	return v, nil
}

// Change is one entry of the audit log: who changed what, when, from what
// to what, and why.
type Change struct {
	Time     time.Time `json:"time"`
	Operator string    `json:"operator"`
	Action   string    `json:"action"`  // "member.adjust", "card.block", ...
	Subject  string    `json:"subject"` // "member M1", "card ****1234"
	Before   string    `json:"before,omitempty"`
	After    string    `json:"after,omitempty"`
	Reason   string    `json:"reason,omitempty"`
}

const metaAudit = "audit/"

type actorKey struct{}

// WithActor names who is asking, for the audit log of the changes made
// under ctx: the console's operator. Changes asked without one are the
// command line's (the admin socket is its owner's only).
func WithActor(ctx context.Context, operator string) context.Context {
	return context.WithValue(ctx, actorKey{}, operator)
}

// Actor is who asks under ctx.
func Actor(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "command line"
}

// audit writes a change in tx, so that it is recorded exactly when the
// change commits.
func (o *Office) audit(tx Tx, c Change) error {
	if c.Time.IsZero() {
		c.Time = o.now().UTC()
	}
	if c.Operator == "" {
		c.Operator = "unknown"
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	// Keys sort by time: a fixed-width UTC stamp, then this process's count
	// (two changes in one nanosecond keep their order) and a random part
	// (two processes never write one key).
	stamp := fmt.Sprintf("%s/%016x-%s", c.Time.UTC().Format("20060102T150405.000000000Z"), o.audits.Add(1), hex.EncodeToString(suffix))
	if err := putJSON(tx, metaAudit+stamp, c); err != nil {
		return err
	}
	// And under its subject, so that a member's page reads its own changes
	// and not the whole log.
	return putJSON(tx, auditBySubject(c.Subject)+stamp, c)
}

// metaAuditBy keys the audit log by subject: auditby/SUBJECT\x1fSTAMP.
const metaAuditBy = "auditby/"

func auditBySubject(subject string) string { return metaAuditBy + subject + "\x1f" }

// AuditLog returns up to max changes, newest first, whose subject is
// subject ("" for all): a subject's are read from its own key range.
func (o *Office) AuditLog(ctx context.Context, subject string, max int) ([]Change, error) {
	var out []Change
	prefix := metaAudit
	if subject != "" {
		prefix = auditBySubject(subject)
	}
	err := o.store.View(ctx, func(tx ReadTx) error {
		return tx.MetaRange(prefix, true, func(k string, v []byte) error {
			c, err := decode[Change]("audit entry", k, v)
			if err != nil {
				return err
			}
			if subject == "" || c.Subject == subject {
				out = append(out, c)
			}
			if len(out) >= max {
				return ErrStop
			}
			return nil
		})
	})
	return out, err
}
