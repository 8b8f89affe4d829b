package localapi

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/internal/localhttp"
)

// maxLine bounds one exported event line read by the client.
const maxLine = 1 << 20

// Client calls the local API.
type Client struct {
	hc *http.Client
}

// Dial returns a client for the agent serving the unix socket at socketPath.
// It does not connect until the first call.
func Dial(socketPath string) *Client { return &Client{hc: localhttp.Unix(socketPath)} }

// InProcess returns a client that calls h directly, for CLI verbs run while no
// agent is serving: the same requests, encodings and errors, without a socket.
func InProcess(h http.Handler) *Client { return &Client{hc: localhttp.InProcess(h)} }

// Error is a failed call: the agent's one-line message, and the sentinel
// error its code stands for, so callers can use errors.Is across the API.
type Error struct {
	Msg  string
	Code string
	kind error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the agent sentinel error the code maps to, if any.
func (e *Error) Unwrap() error { return e.kind }

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("local api: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	if err := readJSON(resp.Body, out); err != nil {
		return fmt.Errorf("local api: response: %w", err)
	}
	return nil
}

// readJSON decodes a response body of at most maxBody bytes. Read whole and
// then decoded, it is scanned once (a json.Decoder scans it twice).
func readJSON(body io.Reader, v any) error {
	b, err := io.ReadAll(io.LimitReader(body, maxBody))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func decodeError(resp *http.Response) error {
	var eb ErrorBody
	if err := readJSON(resp.Body, &eb); err != nil || eb.Error == "" {
		return fmt.Errorf("local api: %s", resp.Status)
	}
	e := &Error{Msg: eb.Error, Code: eb.Code, kind: agent.ReasonError(eb.Code)}
	switch eb.Code {
	case "too_large":
		e.kind = errTooLarge
	case "forbidden":
		e.kind = errForeign
	case "unsupported_media_type":
		e.kind = errMediaType
	}
	return e
}

// Backup calls GET /v1/backup and copies the archive to w as it comes; it
// returns the backup's manifest once the whole archive has arrived.
func (c *Client) Backup(ctx context.Context, w io.Writer) (agent.BackupInfo, error) {
	var info agent.BackupInfo
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent/v1/backup", nil)
	if err != nil {
		return info, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return info, fmt.Errorf("local api: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, decodeError(resp)
	}
	// Read through as a tar archive, so that a stream cut short between two
	// members is told from a whole one.
	tr := tar.NewReader(io.TeeReader(resp.Body, w))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return info, fmt.Errorf("local api: backup: %w", err)
		}
		if h.Name == "backup.json" {
			b, err := io.ReadAll(io.LimitReader(tr, maxBody))
			if err != nil || json.Unmarshal(b, &info) != nil {
				return info, fmt.Errorf("local api: backup: an unreadable backup.json")
			}
			continue
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return info, fmt.Errorf("local api: backup: %w", err)
		}
	}
	// What follows the archive's end (tar's zero blocks) goes to w too.
	if _, err := io.Copy(w, resp.Body); err != nil {
		return info, fmt.Errorf("local api: backup: %w", err)
	}
	if info.Format == 0 {
		return info, fmt.Errorf("local api: backup: no backup.json in the archive")
	}
	return info, nil
}

// Earn calls POST /v1/earn.
func (c *Client) Earn(ctx context.Context, r agent.EarnRequest) (res agent.EarnResult, err error) {
	return res, c.call(ctx, http.MethodPost, "/v1/earn", r, &res)
}

// Quote calls POST /v1/quote.
func (c *Client) Quote(ctx context.Context, r agent.EarnRequest) (res agent.Quote, err error) {
	return res, c.call(ctx, http.MethodPost, "/v1/quote", r, &res)
}

// Redeem calls POST /v1/redeem.
func (c *Client) Redeem(ctx context.Context, r agent.RedeemRequest) (res agent.Result, err error) {
	return res, c.call(ctx, http.MethodPost, "/v1/redeem", r, &res)
}

// Donate calls POST /v1/donate.
func (c *Client) Donate(ctx context.Context, r agent.DonateRequest) (res agent.Result, err error) {
	return res, c.call(ctx, http.MethodPost, "/v1/donate", r, &res)
}

// Void calls POST /v1/void.
func (c *Client) Void(ctx context.Context, r agent.VoidRequest) (res agent.Result, err error) {
	return res, c.call(ctx, http.MethodPost, "/v1/void", r, &res)
}

// Refund calls POST /v1/refund.
func (c *Client) Refund(ctx context.Context, r agent.RefundRequest) (res agent.Result, err error) {
	return res, c.call(ctx, http.MethodPost, "/v1/refund", r, &res)
}

// Enroll calls POST /v1/enroll.
func (c *Client) Enroll(ctx context.Context, r agent.EnrollRequest) (res agent.Result, err error) {
	return res, c.call(ctx, http.MethodPost, "/v1/enroll", r, &res)
}

// Adjust calls POST /v1/adjust.
func (c *Client) Adjust(ctx context.Context, r agent.AdjustRequest) (res agent.Result, err error) {
	return res, c.call(ctx, http.MethodPost, "/v1/adjust", r, &res)
}

// UnlockManagerPIN calls POST /v1/pin/unlock (the unix socket only).
func (c *Client) UnlockManagerPIN(ctx context.Context) error {
	var out struct{}
	return c.call(ctx, http.MethodPost, "/v1/pin/unlock", struct{}{}, &out)
}

// SetManagerPIN calls POST /v1/pin (the unix socket only): the first
// manager PIN, or with replace a new one.
func (c *Client) SetManagerPIN(ctx context.Context, pin string, replace bool) error {
	var out struct{}
	return c.call(ctx, http.MethodPost, pinPath, PINRequest{PIN: pin, Replace: replace}, &out)
}

// AddToken calls POST /v1/tokens (the unix socket only): a new API token
// for the TCP listener.
func (c *Client) AddToken(ctx context.Context, name, role string) (res TokenAdded, err error) {
	return res, c.call(ctx, http.MethodPost, tokensPath, TokenRequest{Name: name, Role: role}, &res)
}

// Tokens calls GET /v1/tokens (the unix socket only).
func (c *Client) Tokens(ctx context.Context) (res []agent.Token, err error) {
	return res, c.call(ctx, http.MethodGet, tokensPath, nil, &res)
}

// RevokeToken calls POST /v1/tokens/revoke (the unix socket only).
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	var out struct{}
	return c.call(ctx, http.MethodPost, revokePath, TokenRequest{Name: name}, &out)
}

// Expire calls POST /v1/expire.
func (c *Client) Expire(ctx context.Context) (res agent.Housekeeping, err error) {
	return res, c.call(ctx, http.MethodPost, "/v1/expire", nil, &res)
}

// ReplaceCard calls POST /v1/replace-card.
func (c *Client) ReplaceCard(ctx context.Context, r agent.ReplaceCardRequest) (res agent.Result, err error) {
	return res, c.call(ctx, http.MethodPost, "/v1/replace-card", r, &res)
}

// SetBasket calls POST /v1/basket.
func (c *Client) SetBasket(ctx context.Context, b agent.Basket) (res agent.Basket, err error) {
	return res, c.call(ctx, http.MethodPost, "/v1/basket", b, &res)
}

// Member calls GET /v1/member.
func (c *Client) Member(ctx context.Context, card string) (res agent.MemberView, err error) {
	return res, c.call(ctx, http.MethodGet, "/v1/member?card="+url.QueryEscape(card), nil, &res)
}

// Checkout calls GET /v1/checkout.
func (c *Client) Checkout(ctx context.Context, ref string) (res agent.CheckoutView, err error) {
	return res, c.call(ctx, http.MethodGet, "/v1/checkout?ref="+url.QueryEscape(ref), nil, &res)
}

// Status calls GET /v1/status.
func (c *Client) Status(ctx context.Context) (res agent.Status, err error) {
	return res, c.call(ctx, http.MethodGet, "/v1/status", nil, &res)
}

// Stats calls GET /v1/stats.
func (c *Client) Stats(ctx context.Context, day string) (res agent.Stats, err error) {
	return res, c.call(ctx, http.MethodGet, "/v1/stats?day="+url.QueryEscape(day), nil, &res)
}

// Export calls GET /v1/export and passes each event line to fn.
func (c *Client) Export(ctx context.Context, fn func(line []byte) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent/v1/export", nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("local api: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("local api: export: %w", err)
	}
	return nil
}
