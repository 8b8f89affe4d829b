// Package syncproto is the wire protocol between terminals and head office:
// the messages, their encoding, their limits and the handshake's signed
// statement. It takes and returns bytes; it never touches a connection, a
// database or the terminal's ledger (it does not import the agent).
package syncproto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Version is the protocol version a terminal announces in its hello; head
// office speaks OldestVersion to Version and refuses others. Version 2 adds
// head office's signature on every message it sends after the proof.
const (
	Version       = 2
	OldestVersion = 1
)

// Signed reports whether head office signs its messages in version v.
func Signed(v int) bool { return v >= 2 }

// Limits.
const (
	// MaxMessage bounds one message on the wire: a full upstream batch of
	// MaxBatch events of about 500 bytes, with room to spare.
	MaxMessage = 4 << 20
	// MaxHandshake bounds a message before the terminal has proved its key:
	// a hello or a proof is well under 1 KiB.
	MaxHandshake = 4 << 10
	// MaxBatch is the most events in one upstream message.
	MaxBatch = 1000
	// MaxFeed is the most member snapshots or blocked cards in one message.
	MaxFeed = 500
	// NonceSize is the size of the server's handshake challenge.
	NonceSize = 32
	maxText   = 256
)

// Message types.
const (
	TypeHello     = "hello"     // terminal → head office: who I am
	TypeChallenge = "challenge" // head office → terminal: sign this
	TypeProof     = "proof"     // terminal → head office: the signature
	TypeWelcome   = "welcome"   // head office → terminal: authenticated; resume after Seq
	TypeCursors   = "cursors"   // terminal → head office: where its downstream feeds stand
	TypeEvents    = "events"    // terminal → head office: a batch of ledger events
	TypeAck       = "ack"       // head office → terminal: events up to Seq are durable
	TypeRules     = "rules"     // head office → terminal: a rules document
	TypeMembers   = "members"   // head office → terminal: member snapshots up to Cursor
	TypeBlocked   = "blocked"   // head office → terminal: blocklist changes up to Cursor
	TypeLookup    = "lookup"    // terminal → head office: who holds this card?
	TypeFound     = "found"     // head office → terminal: the answer to a lookup
	TypeHistory   = "history"   // terminal → head office: send my events of an earlier epoch; and the answer
	TypeCurrent   = "current"   // head office → terminal (version 2): your feeds are caught up
	TypeError     = "error"     // either way: a refusal; the sender closes after it
)

var knownTypes = map[string]bool{
	TypeHello: true, TypeChallenge: true, TypeProof: true, TypeWelcome: true, TypeCursors: true,
	TypeEvents: true, TypeAck: true, TypeRules: true, TypeMembers: true, TypeBlocked: true,
	TypeLookup: true, TypeFound: true, TypeError: true, TypeHistory: true, TypeCurrent: true,
}

// Message is the one envelope of the protocol; Type says which fields mean
// something. Unused fields are omitted on the wire.
type Message struct {
	Type string `json:"type"`

	// hello, welcome
	Version  int    `json:"v,omitempty"`
	Terminal string `json:"terminal,omitempty"`
	Epoch    string `json:"epoch,omitempty"`
	// challenge, proof
	Nonce   []byte `json:"nonce,omitempty"`
	Session string `json:"session,omitempty"`
	Sig     []byte `json:"sig,omitempty"`
	// hello and welcome (version 2): each side's X25519 public key for the
	// session's message key (SessionKey).
	DH []byte `json:"dh,omitempty"`

	// events: exact encoded ledger events; ack and welcome: a sequence
	Events []json.RawMessage `json:"events,omitempty"`
	Seq    uint64            `json:"seq,omitempty"`
	HLC    uint64            `json:"hlc,omitempty"`
	// history: the terminal asks for its events of Epoch after Seq up to
	// Until (0: all); head office answers with Events and Seq, the
	// sequence up to which it sent all it holds. Asked with no Epoch, head
	// office answers with Epochs: the terminal's epochs other than the
	// session's.
	Until  uint64   `json:"until,omitempty"`
	Epochs []string `json:"epochs,omitempty"`
	// welcome (version 2): the key of the terminal's surprise draws.
	DrawKey []byte `json:"draw_key,omitempty"`

	// cursors, rules, members, blocked
	RulesVersion int             `json:"rules_version,omitempty"`
	Members      []Member        `json:"members,omitempty"`
	Blocked      []Block         `json:"blocked,omitempty"`
	Cursor       uint64          `json:"cursor,omitempty"`
	BlockCursor  uint64          `json:"block_cursor,omitempty"`
	Rules        json.RawMessage `json:"rules,omitempty"`

	// lookup, found
	ID     string  `json:"id,omitempty"`
	Card   string  `json:"card,omitempty"`
	Member *Member `json:"member,omitempty"`

	// error (and found, when the card is unknown)
	Code  string `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
}

// Member is head office's snapshot of a member. Balance includes the
// receiving terminal's events up to AsOfSeq of its current epoch.
type Member struct {
	Member    string           `json:"member"`
	Name      string           `json:"name,omitempty"`
	Cards     []string         `json:"cards"`
	Tier      string           `json:"tier"`
	Balance   int64            `json:"balance"`
	Spend12m  int64            `json:"spend_12m"`
	Lifetime  int64            `json:"lifetime_spend"`
	LastVisit time.Time        `json:"last_visit"`
	Enrolled  time.Time        `json:"enrolled"`
	Status    string           `json:"status"`
	AsOfSeq   uint64           `json:"as_of_seq"`
	Taken     time.Time        `json:"taken"`
	Birthday  string           `json:"birthday,omitempty"` // MM-DD
	Months    map[string]int64 `json:"months,omitempty"`   // qualifying spend by YYYY-MM
	Lots      map[string]int64 `json:"lots,omitempty"`     // unspent earned points by YYYY-MM, for expiry
}

// Cursors are where a terminal stands on its downstream feeds, as it reports
// them in its cursors message and head office moves them as it sends.
type Cursors struct {
	Rules   int    // the rules version it has
	Members uint64 // its position on its store's member feed
	Blocked uint64 // its position on the blocklist feed
}

// Block blocks or unblocks a card.
type Block struct {
	Card    string `json:"card"`
	Blocked bool   `json:"blocked"`
}

// Error codes a head office sends before closing.
const (
	CodeAuth     = "auth"     // unknown terminal, bad signature, wrong version
	CodeProtocol = "protocol" // a malformed or unexpected message
	CodeChain    = "chain"    // the terminal's hash chain is broken at Seq, an event was altered, or it is not the session's
	CodeRange    = "range"    // an event's amount or points, or the balance it makes, are out of range
	CodeSkew     = "skew"     // an event's time is too far from head office's clock
	CodeInternal = "internal" // head office could not store the batch
)

// ErrMalformed wraps every decoding refusal.
var ErrMalformed = errors.New("malformed message")

// An events message travels as lines: its envelope (type "events", no events
// field) on the first, then one encoded ledger event per line. Event
// encodings are single-line JSON, so the receiver splits lines instead of
// scanning the batch as one JSON document, and the sender joins its stored
// bytes instead of re-validating them.

// EncodeEvents returns the wire form of an events message.
func EncodeEvents(events [][]byte) []byte {
	head := Encode(Message{Type: TypeEvents})
	n := len(head)
	for _, e := range events {
		n += len(e) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, head...)
	for _, e := range events {
		b = append(b, '\n')
		b = append(b, e...)
	}
	return b
}

// Decode parses one message and checks its type, sizes and text fields. It
// does not check that the message is expected in the current state: that is
// the reader's job. Events are returned as their exact bytes, unchecked: the
// ledger decodes each.
func Decode(b []byte) (Message, error) {
	var m Message
	if len(b) > MaxMessage {
		return m, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(b), MaxMessage)
	}
	var lines [][]byte
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b, lines = b[:i], bytes.Split(b[i+1:], []byte{'\n'})
	}
	m, err := decodeEnvelope(b)
	if err != nil {
		return Message{}, err
	}
	if lines != nil {
		if m.Type != TypeEvents || len(m.Events) > 0 {
			return Message{}, fmt.Errorf("%w: only an events message has lines", ErrMalformed)
		}
		if len(lines) > MaxBatch {
			return Message{}, fmt.Errorf("%w: %d events, limit %d", ErrMalformed, len(lines), MaxBatch)
		}
		m.Events = make([]json.RawMessage, len(lines))
		for i, l := range lines {
			if len(l) == 0 {
				return Message{}, fmt.Errorf("%w: empty event line", ErrMalformed)
			}
			m.Events[i] = l
		}
	}
	return m, nil
}

func decodeEnvelope(b []byte) (Message, error) {
	var m Message
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return Message{}, fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	if !knownTypes[m.Type] {
		return Message{}, fmt.Errorf("%w: unknown type %q", ErrMalformed, m.Type)
	}
	switch {
	case len(m.Events) > MaxBatch:
		return Message{}, fmt.Errorf("%w: %d events, limit %d", ErrMalformed, len(m.Events), MaxBatch)
	case len(m.Members) > MaxFeed || len(m.Blocked) > MaxFeed:
		return Message{}, fmt.Errorf("%w: feed of more than %d entries", ErrMalformed, MaxFeed)
	case len(m.Nonce) > NonceSize || len(m.Sig) > ed25519.SignatureSize || len(m.DrawKey) > 64 || len(m.DH) > 32:
		return Message{}, fmt.Errorf("%w: oversized nonce, signature or key", ErrMalformed)
	}
	for _, s := range []string{m.Terminal, m.Epoch, m.Session, m.ID, m.Card, m.Code} {
		if len(s) > maxText {
			return Message{}, fmt.Errorf("%w: a text field is longer than %d bytes", ErrMalformed, maxText)
		}
	}
	return m, nil
}

// FrameReader is a websocket connection as the protocol reads it: one
// message per frame (gorilla/websocket's *Conn satisfies it).
type FrameReader interface {
	ReadMessage() (messageType int, p []byte, err error)
}

// textFrame is websocket's frame type for text (RFC 6455 opcode 1).
const textFrame = 1

// Read reads and decodes the next message from a connection; binary frames
// are refused.
func Read(r FrameReader) (Message, error) {
	typ, b, err := r.ReadMessage()
	if err != nil {
		return Message{}, err
	}
	if typ != textFrame {
		return Message{}, fmt.Errorf("%w: binary frame", ErrMalformed)
	}
	return Decode(b)
}

// Encode returns the wire form of m (an events message with its events
// inline; EncodeEvents is the compact form senders use).
func Encode(m Message) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		// Message holds strings, integers, byte slices, raw JSON that was
		// itself decoded or encoded by this program, and times.
		panic("syncproto: encode: " + err.Error())
	}
	return b
}

// handshakeContext separates these signatures from any other use of a key.
const handshakeContext = "loyalty-sync-v1"

// Statement is what a terminal signs to prove its identity: the protocol,
// its terminal id, the session head office chose and head office's fresh
// nonce. A signature cannot be replayed on another connection because each
// connection has a new nonce and session.
func Statement(terminal, session string, nonce []byte) []byte {
	var b bytes.Buffer
	b.WriteString(handshakeContext)
	for _, part := range [][]byte{[]byte(terminal), []byte(session), nonce} {
		b.WriteByte(0)
		b.Write(part)
	}
	return b.Bytes()
}

// headOfficeContext separates head office's signatures on its messages.
const headOfficeContext = "loyalty-sync-v2 head office"

// HeadOfficeStatement is what head office signs of a message it sends in a
// session (version 2): the message as encoded without its signature, bound
// to the session, so that a message can neither be forged nor moved to
// another connection. The terminal decodes, clears Sig and encodes again:
// Encode gives the same bytes for the same message.
func HeadOfficeStatement(session string, m Message) []byte {
	m.Sig = nil
	var b bytes.Buffer
	b.WriteString(headOfficeContext)
	b.WriteByte(0)
	b.WriteString(session)
	b.WriteByte(0)
	b.Write(Encode(m))
	return b.Bytes()
}

// SessionKey is the key of a version 2 session's message MACs, from the
// X25519 secret the terminal's hello and head office's signed welcome
// agreed on, bound to the session.
func SessionKey(shared []byte, session string) []byte {
	m := hmac.New(sha256.New, shared)
	m.Write([]byte(headOfficeContext + " session\x00" + session))
	return m.Sum(nil)
}

// MAC authenticates a message head office sends after the welcome in a
// version 2 session: HMAC-SHA256 with the session key over the message as
// encoded without its Sig. (The welcome itself is signed, HeadOfficeStatement:
// it proves head office's key and carries its half of the session key; an
// HMAC per message then costs a microsecond where a signature costs tens.)
func MAC(key []byte, m Message) []byte {
	m.Sig = nil
	h := hmac.New(sha256.New, key)
	h.Write(Encode(m))
	return h.Sum(nil)
}

// JoinRequest is what `pos-agent join` posts to head office's /v1/join.
type JoinRequest struct {
	Code string `json:"code"`
	Key  []byte `json:"key"` // the terminal's ed25519 public key
}

// JoinResponse is head office's answer to a join.
type JoinResponse struct {
	Terminal string `json:"terminal"`
	Store    string `json:"store"`
	// QRKey is head office's public key for member QR tokens, verified
	// offline by the terminal's scanner decoder.
	QRKey []byte `json:"qr_key"`
	// DrawKey is the key of the terminal's surprise draws (also sent with
	// every welcome of a signed session).
	DrawKey []byte `json:"draw_key,omitempty"`
}
