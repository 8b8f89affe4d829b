package syncserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
)

// FuzzJoinBody sends arbitrary bodies to the join endpoint, the one endpoint
// that decodes a body before any authentication: bad input gets a 4xx with a
// one-line JSON error, never a 5xx or a panic, and a join never succeeds
// without a code head office issued.
func FuzzJoinBody(f *testing.F) {
	o := hqtest.Office(f, hqtest.Bolt(f), headoffice.Options{})
	h := New(o, Options{Logger: hqtest.Quiet()}).Handler()
	f.Add([]byte(`{"code":"ABCD-EFGH-JKLM","key":"AAAA"}`))
	f.Add([]byte(`{"code":"ABCD-EFGH-JKLM","key":"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}`))
	f.Add([]byte(`{"code":"","key":null,"extra":1}`))
	f.Add([]byte(`{"code":"x"}{"code":"y"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/join", bytes.NewReader(body)))
		switch {
		case w.Code >= 500:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		case w.Code < 300:
			t.Fatalf("joined with a code head office never issued: %q", body)
		}
		var e struct{ Error, Code string }
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" || strings.Contains(e.Error, "\n") {
			t.Fatalf("error body %q is not one JSON line with an error", w.Body)
		}
	})
}
