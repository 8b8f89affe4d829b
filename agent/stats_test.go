package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/offline-loyalty/terminal/agent/store"
)

// The day record's hand-written codec keeps the layout encoding/binary gave
// the struct, so day figures already on disk read the same.
func TestDayRecordLayout(t *testing.T) {
	var d dayRecord
	for i, v := range d.fields() {
		*v = int64(i+1) * -7919 // distinct, negative: sign and order both show
	}
	want, err := binary.Append(nil, binary.BigEndian, &d)
	if err != nil {
		t.Fatal(err)
	}
	got := d.encode()
	if !bytes.Equal(got, want) {
		t.Fatalf("encode differs from the binary layout:\n got %x\nwant %x", got, want)
	}
	back, err := decodeDay(want)
	if err != nil {
		t.Fatal(err)
	}
	if back != d {
		t.Fatalf("decode: got %+v, want %+v", back, d)
	}
	if _, err := decodeDay(want[:len(want)-1]); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("short record: err %v, want ErrCorrupt", err)
	}
	if zero, err := decodeDay(nil); err != nil || zero != (dayRecord{}) {
		t.Fatalf("no record: %+v, %v", zero, err)
	}
}
