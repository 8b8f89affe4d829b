package syncproto

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	in := Message{Type: TypeEvents, Events: []json.RawMessage{json.RawMessage(`{"seq":1}`)}, Seq: 3}
	out, err := Decode(Encode(in))
	if err != nil {
		t.Fatal(err)
	}
	if out.Type != in.Type || out.Seq != 3 || string(out.Events[0]) != `{"seq":1}` {
		t.Fatalf("round trip: %+v", out)
	}
}

func TestEventLines(t *testing.T) {
	evs := [][]byte{[]byte(`{"seq":1}`), []byte(`{"seq":2}`)}
	m, err := Decode(EncodeEvents(evs))
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != TypeEvents || len(m.Events) != 2 || string(m.Events[1]) != `{"seq":2}` {
		t.Fatalf("decoded %+v", m)
	}
	for name, in := range map[string]string{
		"lines on another type": "{\"type\":\"ack\"}\n{}",
		"empty line":            "{\"type\":\"events\"}\n{}\n\n{}",
		"both forms":            "{\"type\":\"events\",\"events\":[1]}\n{}",
	} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	many := make([][]byte, MaxBatch+1)
	for i := range many {
		many[i] = []byte("{}")
	}
	if _, err := Decode(EncodeEvents(many)); err == nil {
		t.Error("a batch over the limit decoded")
	}
}

func TestDecodeRefuses(t *testing.T) {
	big := Message{Type: TypeEvents, Events: make([]json.RawMessage, MaxBatch+1)}
	for i := range big.Events {
		big.Events[i] = json.RawMessage(`1`)
	}
	for name, in := range map[string]string{
		"empty":         ``,
		"junk":          `GET / HTTP/1.1`,
		"unknown type":  `{"type":"steal"}`,
		"unknown field": `{"type":"hello","admin":true}`,
		"trailing":      `{"type":"hello"}{}`,
		"long text":     `{"type":"hello","terminal":"` + strings.Repeat("x", 300) + `"}`,
		"big nonce":     `{"type":"challenge","nonce":"` + strings.Repeat("QUFB", 20) + `"}`,
		"big batch":     string(Encode(big)),
		"oversized":     `{"type":"hello","error":"` + strings.Repeat("x", MaxMessage) + `"}`,
	} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestStatementBindsEverything(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	nonce := bytes.Repeat([]byte{7}, NonceSize)
	sig := ed25519.Sign(priv, Statement("T1", "s1", nonce))
	if !ed25519.Verify(pub, Statement("T1", "s1", nonce), sig) {
		t.Fatal("signature does not verify")
	}
	for _, other := range [][]byte{Statement("T2", "s1", nonce), Statement("T1", "s2", nonce), Statement("T1", "s1", []byte("x"))} {
		if ed25519.Verify(pub, other, sig) {
			t.Fatal("a signature verifies for another terminal, session or nonce")
		}
	}
	// Field boundaries are unambiguous.
	if bytes.Equal(Statement("T1", "s1", nonce), Statement("T", "1s1", nonce)) {
		t.Fatal("statements collide")
	}
}

// FuzzDecode checks that Decode never panics and that what it accepts
// re-encodes to something it accepts again.
func FuzzDecode(f *testing.F) {
	for _, m := range []Message{
		{Type: TypeHello, Version: Version, Terminal: "T1", Epoch: "e"},
		{Type: TypeChallenge, Nonce: bytes.Repeat([]byte{1}, NonceSize), Session: "s"},
		{Type: TypeProof, Sig: bytes.Repeat([]byte{2}, ed25519.SignatureSize)},
		{Type: TypeEvents, Events: []json.RawMessage{json.RawMessage(`{"seq":1}`)}},
		{Type: TypeAck, Seq: 9},
		{Type: TypeMembers, Members: []Member{{Member: "M1", Cards: []string{"1"}, Balance: 5}}, Cursor: 3},
		{Type: TypeLookup, ID: "1", Card: "123"},
		{Type: TypeError, Code: CodeAuth, Error: "no"},
	} {
		f.Add(Encode(m))
	}
	f.Add([]byte(`{"type":"events","events":[1,2,3]}`))
	f.Add(EncodeEvents([][]byte{[]byte(`{"seq":1}`), []byte(`{"seq":2}`)}))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		// Events travel as lines that Decode does not parse (the receiver
		// reads each event itself), so they are re-encoded as lines: Encode
		// is for messages whose raw JSON this program made or parsed.
		var again []byte
		if m.Type == TypeEvents && len(m.Events) > 0 {
			raws := make([][]byte, len(m.Events))
			for i, e := range m.Events {
				raws[i] = e
			}
			again = EncodeEvents(raws)
		} else {
			again = Encode(m)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("accepted %q but not its re-encoding: %v", b, err)
		}
	})
}
