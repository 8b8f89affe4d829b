package localapi_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
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
	} {
		for ep := range 12 {
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
	endpoints := []string{"quote", "earn", "redeem", "donate", "void", "refund", "enroll", "basket", "adjust", "replace-card", "pin", "pin/check"}
	f.Fuzz(func(t *testing.T, ep uint8, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/"+endpoints[int(ep)%len(endpoints)], bytes.NewReader(body))
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
