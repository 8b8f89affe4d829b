package syncserver

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/headoffice/hqtest"
	"github.com/offline-loyalty/terminal/sync/syncproto"
)

// startHQ runs a head office on a loopback port.
func startHQ(t testing.TB) (*headoffice.Office, string) {
	t.Helper()
	o := hqtest.Office(t, hqtest.Bolt(t), headoffice.Options{})
	s := New(o, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return o, "ws://" + ln.Addr().String() + "/v1/sync"
}

// joined registers and joins a terminal, returning its id and key.
func joined(t testing.TB, s *headoffice.Office, name string) (string, ed25519.PrivateKey) {
	t.Helper()
	id, code, err := s.AddTerminal(context.Background(), "store1", name)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	if _, err := s.Join(context.Background(), syncproto.JoinRequest{Code: code, Key: pub}); err != nil {
		t.Fatal(err)
	}
	return id, priv
}

func dial(t testing.TB, url string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	return ws
}

func send(t testing.TB, ws *websocket.Conn, m syncproto.Message) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, syncproto.Encode(m)); err != nil {
		t.Fatal(err)
	}
}

func recv(ws *websocket.Conn) (syncproto.Message, error) {
	_, b, err := ws.ReadMessage()
	if err != nil {
		return syncproto.Message{}, err
	}
	return syncproto.Decode(b)
}

// handshake runs hello and proof with sign, and returns head office's answer
// to the proof and the challenge it signed.
func handshake(t *testing.T, url, terminal string, sign func(challenge syncproto.Message) []byte) (syncproto.Message, syncproto.Message, error) {
	t.Helper()
	return handshakeV(t, url, terminal, syncproto.Version, sign)
}

func handshakeV(t *testing.T, url, terminal string, version int, sign func(challenge syncproto.Message) []byte) (syncproto.Message, syncproto.Message, error) {
	t.Helper()
	ws := dial(t, url)
	hello := syncproto.Message{Type: syncproto.TypeHello, Version: version, Terminal: terminal, Epoch: "ep1"}
	if version >= 2 {
		dh, _ := ecdh.X25519().GenerateKey(rand.Reader)
		hello.DH = dh.PublicKey().Bytes()
	}
	send(t, ws, hello)
	ch, err := recv(ws)
	if err != nil {
		return syncproto.Message{}, ch, err
	}
	send(t, ws, syncproto.Message{Type: syncproto.TypeProof, Sig: sign(ch)})
	m, err := recv(ws)
	return m, ch, err
}

func signer(id string, key ed25519.PrivateKey) func(syncproto.Message) []byte {
	return func(ch syncproto.Message) []byte {
		return ed25519.Sign(key, syncproto.Statement(id, ch.Session, ch.Nonce))
	}
}

// refused expects an auth error (or a closed connection) instead of a welcome.
func refused(t *testing.T, what string, m syncproto.Message, err error) {
	t.Helper()
	if err == nil && m.Type == syncproto.TypeWelcome {
		t.Fatalf("%s: welcomed", what)
	}
	if err == nil && m.Type != syncproto.TypeError {
		t.Fatalf("%s: answered %+v", what, m)
	}
}

func TestAuthRefusals(t *testing.T) {
	s, url := startHQ(t)
	id, key := joined(t, s, "till1")

	m, first, err := handshake(t, url, id, signer(id, key))
	if err != nil || m.Type != syncproto.TypeWelcome {
		t.Fatalf("a joined terminal with its key: %+v, %v", m, err)
	}

	m, _, err = handshake(t, url, "store1-nobody", signer("store1-nobody", key))
	refused(t, "unknown terminal", m, err)

	_, other, _ := ed25519.GenerateKey(nil)
	m, _, err = handshake(t, url, id, signer(id, other))
	refused(t, "wrong key", m, err)

	// A proof recorded on one connection does not open another: every
	// connection has a fresh nonce and session.
	replay := ed25519.Sign(key, syncproto.Statement(id, first.Session, first.Nonce))
	m, _, err = handshake(t, url, id, func(syncproto.Message) []byte { return replay })
	refused(t, "replayed handshake", m, err)

	// Junk before the handshake: refused and closed, nothing more read.
	ws := dial(t, url)
	if err := ws.WriteMessage(websocket.TextMessage, []byte("GET /admin HTTP/1.1")); err != nil {
		t.Fatal(err)
	}
	m, err = recv(ws)
	refused(t, "junk before the handshake", m, err)
	if _, err := recv(ws); err == nil {
		t.Fatal("junk: connection still open")
	}

	// Events before the proof are not read as events.
	ws = dial(t, url)
	send(t, ws, syncproto.Message{Type: syncproto.TypeEvents, Events: nil})
	m, err = recv(ws)
	refused(t, "events before the handshake", m, err)

	// An oversized frame closes the connection.
	ws = dial(t, url)
	big := bytes.Repeat([]byte("x"), syncproto.MaxMessage+1)
	_ = ws.WriteMessage(websocket.TextMessage, big)
	if m, err := recv(ws); err == nil && m.Type == syncproto.TypeChallenge {
		t.Fatal("oversized frame: answered with a challenge")
	}

	// After all that, head office still serves.
	m, _, err = handshake(t, url, id, signer(id, key))
	if err != nil || m.Type != syncproto.TypeWelcome {
		t.Fatalf("still serving: %+v, %v", m, err)
	}
}

// TestHandshakeStoreDown: a handshake head office cannot finish because its
// store fails is refused with code internal (the terminal retries), not
// auth (the terminal would stop for good).
func TestHandshakeStoreDown(t *testing.T) {
	db := hqtest.Bolt(t)
	o := hqtest.Office(t, db, headoffice.Options{})
	id, key := joined(t, o, "till1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: New(o, Options{Logger: hqtest.Quiet()}).Handler(), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	db.Close()
	// The answer to the hello is the refusal.
	_, first, _ := handshake(t, "ws://"+ln.Addr().String()+"/v1/sync", id, signer(id, key))
	if first.Type != syncproto.TypeError || first.Code != syncproto.CodeInternal {
		t.Fatalf("handshake with the store closed: %+v", first)
	}
}

// TestVersions: a terminal of version 2 gets a welcome signed by head
// office's key and bound to its session; one of version 1 (not upgraded
// yet) is still served, unsigned; a version 2 hello without its X25519
// key, and other versions, are refused.
func TestVersions(t *testing.T) {
	s, url := startHQ(t)
	id, key := joined(t, s, "till1")
	w, ch, err := handshakeV(t, url, id, 2, signer(id, key))
	if err != nil || w.Type != syncproto.TypeWelcome || !ed25519.Verify(s.QRKey(), syncproto.HeadOfficeStatement(ch.Session, w), w.Sig) {
		t.Fatalf("version 2: %+v %v: want a welcome signed for the session", w, err)
	}
	if ed25519.Verify(s.QRKey(), syncproto.HeadOfficeStatement("another-session", w), w.Sig) {
		t.Fatal("the welcome's signature holds for another session")
	}
	// A version 2 hello without the terminal's half of the session key.
	ws := dial(t, url)
	send(t, ws, syncproto.Message{Type: syncproto.TypeHello, Version: 2, Terminal: id, Epoch: "ep1"})
	ch2, err := recv(ws)
	if err != nil {
		t.Fatal(err)
	}
	send(t, ws, syncproto.Message{Type: syncproto.TypeProof, Sig: signer(id, key)(ch2)})
	m, err := recv(ws)
	refused(t, "version 2 without an X25519 key", m, err)
	w, _, err = handshakeV(t, url, id, 1, signer(id, key))
	if err != nil || w.Type != syncproto.TypeWelcome || w.Sig != nil {
		t.Fatalf("version 1: %+v %v: want an unsigned welcome", w, err)
	}
	for _, v := range []int{0, 3} {
		m, _, err := handshakeV(t, url, id, v, signer(id, key))
		refused(t, fmt.Sprint("version ", v), m, err)
	}
}
