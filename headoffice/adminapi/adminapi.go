// Package adminapi is head office's admin API: HTTP+JSON on the unix socket
// DIR/headoffice.sock (0600), which the headoffice verbs call, and its
// client. It is never on the network listener. Handlers parse the request,
// call the Office and write its answer; they decide nothing.
package adminapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/internal/localhttp"
	"github.com/offline-loyalty/terminal/internal/strictjson"
)

// maxAdminBody bounds an admin request other than a members import.
const maxAdminBody = 4 << 20

// Handler returns the admin API's handler over o.
func Handler(o *headoffice.Office) http.Handler {
	s := o
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/terminals", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Store, Name string }
		if err := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody)).Decode(&req); err != nil {
			writeError(w, fmt.Errorf("%w: %v", headoffice.ErrInvalid, err))
			return
		}
		id, code, err := s.AddTerminal(r.Context(), req.Store, req.Name)
		respond(w, map[string]string{"terminal": id, "code": code}, err)
	})
	mux.HandleFunc("PUT /admin/rules", func(w http.ResponseWriter, r *http.Request) {
		doc, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody))
		if err != nil {
			writeError(w, err)
			return
		}
		v, err := s.SetRules(r.Context(), doc)
		respond(w, map[string]int{"version": v}, err)
	})
	mux.HandleFunc("GET /admin/rules", func(w http.ResponseWriter, r *http.Request) {
		doc, err := s.Rules(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
	mux.HandleFunc("POST /admin/members", func(w http.ResponseWriter, r *http.Request) {
		n, err := s.ImportMembers(r.Context(), r.Body)
		respond(w, map[string]int{"imported": n}, err)
	})
	mux.HandleFunc("GET /admin/member", func(w http.ResponseWriter, r *http.Request) {
		m, err := s.MemberByCard(r.Context(), r.URL.Query().Get("card"))
		respond(w, m, err)
	})
	mux.HandleFunc("GET /admin/report", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		rep, err := s.Report(r.Context(), q.Get("from"), q.Get("to"), q.Get("store"))
		respond(w, rep, err)
	})
	mux.HandleFunc("POST /admin/members/merge", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Into string `json:"into"`
			From string `json:"from"`
			By   string `json:"by"`
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody))
		if err == nil {
			err = strictjson.Decode(body, &req)
		}
		if err != nil {
			writeError(w, fmt.Errorf("%w: %v", headoffice.ErrInvalid, err))
			return
		}
		v, err := s.MergeMembers(r.Context(), req.Into, req.From, req.By)
		respond(w, v, err)
	})
	mux.HandleFunc("POST /admin/operators", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name     string `json:"name"`
			Role     string `json:"role"`
			Password string `json:"password"`
		}
		if err := decodeBody(r, &req); err != nil {
			writeError(w, err)
			return
		}
		err := s.AddOperator(r.Context(), req.Name, req.Role, req.Password, headoffice.Actor(r.Context()))
		respond(w, map[string]string{"name": req.Name, "role": req.Role}, err)
	})
	mux.HandleFunc("GET /admin/operators", func(w http.ResponseWriter, r *http.Request) {
		ops, err := s.Operators(r.Context())
		respond(w, ops, err)
	})
	mux.HandleFunc("POST /admin/operators/disable", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name string `json:"name"`
		}
		if err := decodeBody(r, &req); err != nil {
			writeError(w, err)
			return
		}
		err := s.DisableOperator(r.Context(), req.Name, headoffice.Actor(r.Context()))
		respond(w, map[string]string{"disabled": req.Name}, err)
	})
	mux.HandleFunc("GET /admin/audit/surprise", func(w http.ResponseWriter, r *http.Request) {
		a, err := s.AuditSurprise(r.Context(), r.URL.Query().Get("day"))
		respond(w, a, err)
	})
	mux.HandleFunc("GET /admin/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Trailer", streamError)
		err := s.Events(r.Context(), r.URL.Query().Get("terminal"), func(b []byte) error {
			if _, err := w.Write(b); err != nil {
				return err
			}
			_, err := w.Write([]byte{'\n'})
			return err
		})
		if err != nil {
			// The answer has started: the error goes in a trailer, which
			// the client reports after the lines it read.
			w.Header().Set(streamError, err.Error())
		}
	})
	mux.HandleFunc("GET /admin/backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Trailer", streamError)
		if _, err := s.Backup(w); err != nil {
			w.Header().Set(streamError, err.Error())
		}
	})
	return mux
}

// decodeBody reads a JSON request body into v, refusing unknown fields.
func decodeBody(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody))
	if err == nil {
		err = strictjson.Decode(body, v)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", headoffice.ErrInvalid, err)
	}
	return nil
}

// streamError is the trailer of a JSON-lines answer that stopped on an error.
const streamError = "X-Stream-Error"

type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func writeError(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, "internal"
	var he *headoffice.Error
	if errors.As(err, &he) {
		code = he.Code()
		switch code {
		case "invalid":
			status = http.StatusBadRequest
		case "join_code":
			status = http.StatusForbidden
		case "not_found":
			status = http.StatusNotFound
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: err.Error(), Code: code})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func respond(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, v)
}

// Client calls the admin API.
type Client struct{ hc *http.Client }

// Dial returns a client of the head office serving the unix socket.
func Dial(socket string) *Client { return &Client{hc: localhttp.Unix(socket)} }

// InProcess returns a client that calls h directly, for verbs run while no
// head office is serving the data directory.
func InProcess(h http.Handler) *Client { return &Client{hc: localhttp.InProcess(h)} }

// Do calls method path with body and decodes a JSON answer into out (when
// not nil). A refusal comes back as its one-line message.
func (c *Client) Do(ctx context.Context, method, path string, body io.Reader, out any) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw, err = io.ReadAll(resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Copy calls path and copies its answer to w; an error the answer ended
// with (its trailer) fails the call after the bytes were copied.
func (c *Client) Copy(ctx context.Context, path string, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, err
	}
	if msg := resp.Trailer.Get(streamError); msg != "" {
		return n, errors.New(msg)
	}
	return n, nil
}

// Lines calls path and passes each line of a JSON-lines answer to fn.
func (c *Client) Lines(ctx context.Context, path string, fn func([]byte) error) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if msg := resp.Trailer.Get(streamError); msg != "" {
		return errors.New(msg)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://headoffice"+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin api: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var eb errorBody
		if json.NewDecoder(resp.Body).Decode(&eb) != nil || eb.Error == "" {
			return nil, fmt.Errorf("admin api: %s", resp.Status)
		}
		return nil, errors.New(eb.Error)
	}
	return resp, nil
}

// Query builds a path with query parameters.
func Query(path string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// Body is a JSON request body.
func Body(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// SocketName is the admin socket inside head office's data directory.
const SocketName = "headoffice.sock"
