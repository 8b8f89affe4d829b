package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/agent/store"
)

// The roles of the local API's tokens (pos-agent token add): a POS
// integration records checkouts; a manager's credential also corrects
// balances, replaces cards, runs housekeeping and reads the whole ledger.
const (
	RolePOS     = "pos"
	RoleManager = "manager"
)

// ErrBadToken is a local API call over TCP without a token the terminal
// knows.
var ErrBadToken = errors.New("unknown or revoked API token")

// tokenPrefix starts every token, so that one found in a file or a log is
// recognised for what it is.
const tokenPrefix = "lat_"

// Token is what the terminal keeps of an API token: never the token itself,
// only its SHA-256 (a token is 32 random bytes, so a plain hash is as good
// as a slow one).
type Token struct {
	Name    string    `json:"name"`
	Role    string    `json:"role"`
	Created time.Time `json:"created"`
	Hash    string    `json:"hash,omitempty"`
}

// tokens reads the terminal's tokens.
func tokens(tx *store.Tx) ([]Token, error) {
	raw := tx.Meta("tokens")
	if raw == "" {
		return nil, nil
	}
	var out []Token
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		return nil, fmt.Errorf("%w: stored API tokens: %v", store.ErrCorrupt, err)
	}
	return out, nil
}

func setTokens(tx *store.Tx, ts []Token) error {
	b, err := json.Marshal(ts)
	if err != nil {
		return err
	}
	return tx.SetMeta("tokens", string(b))
}

// validTokenName is a name of 1 to 40 letters, digits, '-', '_' or '.'.
func validTokenName(name string) bool {
	if name == "" || len(name) > 40 {
		return false
	}
	return strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == ""
}

// AddToken creates an API token for the local API's TCP listener, named
// for whoever uses it, and returns it: it is shown this once and kept only
// as a hash.
func (a *Agent) AddToken(name, role string) (string, error) {
	if !validTokenName(name) {
		return "", fmt.Errorf("%w: a token's name is 1 to 40 letters, digits, '-', '_' or '.'", ErrInvalid)
	}
	if role != RolePOS && role != RoleManager {
		return "", fmt.Errorf("%w: role %q: pos or manager", ErrInvalid, role)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(token))
	err := a.st.Write(context.Background(), func(tx *store.Tx) error {
		ts, err := tokens(tx)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(ts, func(t Token) bool { return t.Name == name }) {
			return fmt.Errorf("%w: a token named %q exists already (pos-agent token revoke --name %s first)", ErrInvalid, name, name)
		}
		return setTokens(tx, append(ts, Token{Name: name, Role: role, Created: a.now().UTC(), Hash: hex.EncodeToString(sum[:])}))
	})
	if err != nil {
		return "", err
	}
	a.log.Info("api token added", "name", name, "role", role)
	return token, nil
}

// Tokens lists the terminal's API tokens, without their hashes.
func (a *Agent) Tokens() ([]Token, error) {
	var ts []Token
	err := a.st.View(func(tx *store.Tx) error {
		var err error
		ts, err = tokens(tx)
		return err
	})
	for i := range ts {
		ts[i].Hash = ""
	}
	return ts, err
}

// RevokeToken deletes the token named name: calls made with it are refused
// from now on.
func (a *Agent) RevokeToken(name string) error {
	err := a.st.Write(context.Background(), func(tx *store.Tx) error {
		ts, err := tokens(tx)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(ts, func(t Token) bool { return t.Name == name })
		if i < 0 {
			return fmt.Errorf("%w: no token named %q (pos-agent token list)", ErrInvalid, name)
		}
		return setTokens(tx, slices.Delete(ts, i, i+1))
	})
	if err == nil {
		a.log.Info("api token revoked", "name", name)
	}
	return err
}

// CheckToken returns the token token is (its name and role), or ErrBadToken.
func (a *Agent) CheckToken(token string) (Token, error) {
	sum := sha256.Sum256([]byte(token))
	var ts []Token
	err := a.st.View(func(tx *store.Tx) error {
		var err error
		ts, err = tokens(tx)
		return err
	})
	if err != nil {
		return Token{}, err
	}
	for _, t := range ts {
		h, err := hex.DecodeString(t.Hash)
		if err == nil && subtle.ConstantTimeCompare(h, sum[:]) == 1 {
			t.Hash = ""
			return t, nil
		}
	}
	return Token{}, ErrBadToken
}
