package syncserver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/ledger"
	"github.com/offline-loyalty/terminal/sync/syncproto"
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

// FuzzSession drives an authenticated session: a joined terminal proves its
// key and sends one frame, the fuzzer's, after a valid batch. Whatever the
// frame holds (mutated events, envelopes, lines), head office answers with
// an ack or a one-line error and closes, never panics or hangs, never
// applies an event that does not verify, and goes on serving the next
// session.
func FuzzSession(f *testing.F) {
	o, url := startHQ(f)
	id, key := joined(f, o, "till1")
	at := time.Now().UTC().Add(-time.Hour)
	seal := func(seq uint64, prev string, points int64) ledger.Event {
		e := ledger.Event{Terminal: id, Store: "store1", Epoch: "ep1", Seq: seq, ID: fmt.Sprint("ep1-", seq), Type: ledger.Earn, Member: "M1",
			Card: "C1", Points: points, Amount: 100, Ref: fmt.Sprint("r", seq), Time: at}
		e.Seal(prev)
		return e
	}
	first := seal(1, "", 5)
	second := seal(2, first.Hash, 7)
	f.Add(syncproto.EncodeEvents([][]byte{second.Encode()}))
	f.Add(syncproto.EncodeEvents([][]byte{seal(2, first.Hash, 9_000_000_000_000_000_000).Encode()}))
	f.Add(syncproto.EncodeEvents([][]byte{bytes.Replace(second.Encode(), []byte(`"points":7`), []byte(`"points":700`), 1)}))
	f.Add(syncproto.EncodeEvents([][]byte{seal(3, second.Hash, 1).Encode(), second.Encode()}))
	f.Add([]byte(`{"type":"events"}` + "\n{}\n"))
	f.Add([]byte(`{"type":"history","epoch":"ep1","seq":0}`))
	f.Add([]byte(`{"type":"lookup","id":"1","card":"C1"}`))
	f.Add([]byte(`{"type":"cursors","cursor":18446744073709551615}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		ws := dial(t, url)
		send(t, ws, syncproto.Message{Type: syncproto.TypeHello, Version: 1, Terminal: id, Epoch: "ep1"})
		ch, err := recv(ws)
		if err != nil {
			t.Fatal(err)
		}
		send(t, ws, syncproto.Message{Type: syncproto.TypeProof, Sig: ed25519.Sign(key, syncproto.Statement(id, ch.Session, ch.Nonce))})
		if w, err := recv(ws); err != nil || w.Type != syncproto.TypeWelcome {
			t.Fatalf("welcome: %+v %v", w, err)
		}
		_ = ws.WriteMessage(websocket.TextMessage, syncproto.EncodeEvents([][]byte{first.Encode()}))
		_ = ws.WriteMessage(websocket.TextMessage, frame)
		// Read what head office answers until it closes or goes quiet (the
		// frame answered, the session still served).
		_ = ws.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				break
			}
			m, err := syncproto.Decode(b)
			if err != nil {
				t.Fatalf("head office sent what does not decode: %q", b)
			}
			if m.Type == syncproto.TypeError && (m.Error == "" || strings.Contains(m.Error, "\n")) {
				t.Fatalf("error %+v is not one line", m)
			}
		}
		ws.Close()
		v, err := o.MemberByCard(context.Background(), "C1")
		if err != nil {
			t.Fatalf("member: %v", err)
		}
		var sum int64
		if err := o.Events(context.Background(), id, func(raw []byte) error {
			e, err := ledger.Decode(raw)
			if err != nil {
				t.Fatalf("a stored event does not verify: %v", err)
			}
			sum += e.Points
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if v.Balance != sum {
			t.Fatalf("balance %d, events add up to %d", v.Balance, sum)
		}
	})
}
