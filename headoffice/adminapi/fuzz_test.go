package adminapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/rules"
)

// fuzzRequests are the admin endpoints that decode a request body.
var fuzzRequests = []struct{ method, path string }{
	{http.MethodPost, "/admin/terminals"},
	{http.MethodPut, "/admin/rules"},
	{http.MethodPost, "/admin/members"},
}

// FuzzRequestBodies sends arbitrary bodies to every admin endpoint that
// decodes one: bad input gets a 4xx with a one-line JSON error, never a 5xx
// or a panic.
func FuzzRequestBodies(f *testing.F) {
	h := Handler(hqtest.Office(f, hqtest.Bolt(f), headoffice.Options{}))
	doc, _ := json.Marshal(rules.Default())
	for i, seed := range [][]byte{
		[]byte(`{"Store":"s1","Name":"till-1"}`),
		doc,
		[]byte("card,member,name,email,tier,balance\n4000000000000002,M1,Ada,ada@example.com,gold,150\n"),
	} {
		f.Add(uint8(i), seed)
	}
	f.Add(uint8(1), []byte(`{"version":99,"currency":"EUR"}`))
	f.Add(uint8(2), []byte("card,member\n\x00,\"unterminated\n"))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		ep := fuzzRequests[int(which)%len(fuzzRequests)]
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(ep.method, ep.path, bytes.NewReader(body)))
		switch {
		case w.Code >= 500:
			t.Fatalf("%s %s: status %d for %q: %s", ep.method, ep.path, w.Code, body, w.Body)
		case w.Code >= 400:
			var e errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" || strings.Contains(e.Error, "\n") {
				t.Fatalf("%s %s: error body %q is not one JSON line with an error", ep.method, ep.path, w.Body)
			}
		}
	})
}
