package localapi_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/agent/localapi"
)

// FuzzRequests posts arbitrary bodies to every write endpoint: the API must
// answer each with a success or a 4xx and one-line error, never a panic or a
// 5xx, and the ledger must stay verifiable.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{
		`{"card":"4000000000000002","amount":"12.50","ref":"r1"}`,
		`{"card":"4000000000000002","reward":"coffee"}`,
		`{"card":"4000000000000002","points":100}`,
		`{"card":"4000000000000002","points":5,"charity":"trees"}`,
		`{"ref":"r1"}`, `{"ref":"r1","amount":"1.00"}`,
		`{"card":"123","name":"x","email":"a@b"}`,
		`{"card":"4000000000000002","amount":"1e3"}`, `{"amount":"-5"}`, `{}`, `[]`, `null`, ``,
		`{"card":"4000000000000002","amount":"12.50","items":[{"sku":"a","category":"tobacco","qty":1,"amount":500}]}`,
		`{"pin":"2468"}`, `{"pin":"24a8"}`, `{"pin":""}`,
		`{"name":"pos-1","role":"pos"}`, `{"name":"","role":"manager"}`, `{"name":"a b","role":"admin"}`,
	} {
		for ep := range 14 {
			f.Add(uint8(ep), []byte(s))
		}
	}
	ctx := context.Background()
	a, err := agent.Open(ctx, f.TempDir(), agent.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { a.Close() })
	if _, err := a.Enroll(ctx, agent.EnrollRequest{Card: "4000000000000002"}); err != nil {
		f.Fatal(err)
	}
	h := localapi.Handler(a, nil)
	endpoints := []string{"quote", "earn", "redeem", "donate", "void", "refund", "enroll", "basket", "adjust", "replace-card", "pin", "pin/check", "tokens", "tokens/revoke"}
	f.Fuzz(func(t *testing.T, ep uint8, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/"+endpoints[int(ep)%len(endpoints)], bytes.NewReader(body))
		req.RemoteAddr = "@" // the unix socket's: past the TCP address's guard, to the endpoint
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: status %d: %s", endpoints[int(ep)%len(endpoints)], body, rec.Code, rec.Body)
		}
		if rec.Code != http.StatusOK && bytes.Count(bytes.TrimSpace(rec.Body.Bytes()), []byte("\n")) != 0 {
			t.Fatalf("error body is not one line: %q", rec.Body)
		}
	})
}

// FuzzAuthorization sends arbitrary Authorization headers to the TCP
// address's guard: only the one token made is admitted; anything else is a
// 401 with a one-line error, never a panic or a 5xx.
func FuzzAuthorization(f *testing.F) {
	ctx := context.Background()
	a, err := agent.Open(ctx, f.TempDir(), agent.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { a.Close() })
	tok, err := a.AddToken("pos", agent.RolePOS)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"Bearer " + tok, "bearer " + tok, "Bearer  " + tok + " ", "Bearer " + tok[:len(tok)-1], "Bearer", "Bearer ",
		"Basic dXNlcjpwYXNz", "", "Bearer lat_", "Bearer \x00", "Token " + tok} {
		f.Add(s)
	}
	h := localapi.Handler(a, nil)
	f.Fuzz(func(t *testing.T, header string) {
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/v1/status", nil)
		req.RemoteAddr = "127.0.0.1:40000"
		req.Header["Authorization"] = []string{header}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		_, err := a.CheckToken(strings.TrimSpace(header[min(len(header), len("Bearer ")):]))
		valid := err == nil && len(header) > len("Bearer ") && strings.EqualFold(header[:len("Bearer ")], "Bearer ")
		switch {
		case valid && rec.Code != http.StatusOK, !valid && rec.Code != http.StatusUnauthorized:
			t.Fatalf("Authorization %q: status %d (a valid token: %v): %s", header, rec.Code, valid, rec.Body)
		case rec.Code != http.StatusOK && bytes.Count(bytes.TrimSpace(rec.Body.Bytes()), []byte("\n")) != 0:
			t.Fatalf("error body is not one line: %q", rec.Body)
		}
	})
}
