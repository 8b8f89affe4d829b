package syncserver

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/offline-loyalty/terminal/rules"
	"github.com/offline-loyalty/terminal/sync/hqstore"
)

// fuzzRequests are the endpoints that decode a request body: the join
// endpoint on the network listener and the admin API's writers.
var fuzzRequests = []struct {
	method, path string
	admin        bool
}{
	{http.MethodPost, "/v1/join", false},
	{http.MethodPost, "/admin/terminals", true},
	{http.MethodPut, "/admin/rules", true},
	{http.MethodPost, "/admin/members", true},
}

// FuzzRequestBodies sends arbitrary bodies to every endpoint that decodes
// one: bad input gets a 4xx with a one-line JSON error, never a 5xx or a
// panic, and a join never succeeds without a code head office issued.
func FuzzRequestBodies(f *testing.F) {
	db, err := hqstore.Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	s, err := New(db, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	public, admin := s.Handler(), s.AdminHandler()
	doc, _ := json.Marshal(rules.Default())
	for i, seed := range [][]byte{
		[]byte(`{"code":"ABCD-EFGH-JKLM","key":"AAAA"}`),
		[]byte(`{"Store":"s1","Name":"till-1"}`),
		doc,
		[]byte("card,member,name,email,tier,balance\n4000000000000002,M1,Ada,ada@example.com,gold,150\n"),
	} {
		f.Add(uint8(i), seed)
	}
	f.Add(uint8(0), []byte(`{"code":"","key":null,"extra":1}`))
	f.Add(uint8(2), []byte(`{"version":99,"currency":"EUR"}`))
	f.Add(uint8(3), []byte("card,member\n\x00,\"unterminated\n"))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		ep := fuzzRequests[int(which)%len(fuzzRequests)]
		h := public
		if ep.admin {
			h = admin
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(ep.method, ep.path, bytes.NewReader(body)))
		switch {
		case w.Code >= 500:
			t.Fatalf("%s %s: status %d for %q: %s", ep.method, ep.path, w.Code, body, w.Body)
		case ep.path == "/v1/join" && w.Code < 300:
			t.Fatalf("joined with a code head office never issued: %q", body)
		case w.Code >= 400:
			var e errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" || strings.Contains(e.Error, "\n") {
				t.Fatalf("%s %s: error body %q is not one JSON line with an error", ep.method, ep.path, w.Body)
			}
		}
	})
}
