package strictjson

import (
	"encoding/json"
	"strings"
	"testing"
)

type item struct {
	SKU    string `json:"sku"`
	Amount int64  `json:"amount"`
}

type request struct {
	Card   string `json:"card"`
	Amount string `json:"amount"`
	Ref    string `json:"ref,omitempty"`
	Items  []item `json:"items,omitempty"`
}

func TestDecode(t *testing.T) {
	var ok request
	if err := Decode([]byte(`{"card":"4000","amount":"5","items":[{"sku":"a","amount":1},{"sku":"b","amount":2}]}`), &ok); err != nil || ok.Amount != "5" || len(ok.Items) != 2 {
		t.Fatalf("a plain body: %+v %v", ok, err)
	}
	for body, want := range map[string]string{
		`{"amount":"5","amount":"500000"}`:            "twice",
		`{"items":[{"sku":"a","sku":"b"}]}`:           "twice",
		`{"Amount":"5"}`:                              "exactly",
		`{"card":"4000","AMOUNT":"5"}`:                "exactly",
		"{\"ref\":\"r\xff1\"}":                        "UTF-8",
		`{"ref":"r\udc001"}`:                          "U+FFFD",
		`{"ref":"r1"} {"ref":"r2"}`:                   "trailing",
		`{"nope":1}`:                                  "unknown",
		`{"card":"4000"`:                              "EOF",
		strings.Repeat(`{"items":[`, 40) + "1" + "]}": "deep",
	} {
		var r request
		err := Decode([]byte(body), &r)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", body, err, want)
		}
	}
	// Keys inside a map are data: not checked against names.
	var m struct {
		Lots map[string]int64 `json:"lots"`
	}
	if err := Decode([]byte(`{"lots":{"2026-01":5,"2026-02":6}}`), &m); err != nil || len(m.Lots) != 2 {
		t.Fatalf("a map: %+v %v", m, err)
	}
	if err := Decode([]byte(`{"lots":{"a":1,"a":2}}`), &m); err == nil {
		t.Fatal("a map key twice was accepted")
	}
}

// FuzzDecode: whatever the body, Decode never panics, and what it accepts
// encoding/json decodes to the same value.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"card":"4000","amount":"5"}`, `{"amount":"5","amount":"6"}`, `{"items":[{"sku":"a"}]}`, `[]`, `{"Ref":"x"}`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var strict, loose request
		if Decode(body, &strict) != nil {
			return
		}
		if err := json.Unmarshal(body, &loose); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
		}
		a, _ := json.Marshal(strict)
		b, _ := json.Marshal(loose)
		if string(a) != string(b) {
			t.Fatalf("%q: strict %s, encoding/json %s", body, a, b)
		}
	})
}
