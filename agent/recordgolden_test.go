package agent

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeGolden writes the golden files of the records' current binary
// versions that do not exist yet (go test ./agent -run TestRecordGoldens
// -write-golden). Files of earlier versions are never rewritten: they are
// what those versions wrote, and today's code must read them all.
var writeGolden = flag.Bool("write-golden", false, "write the missing golden files of the current record versions")

// TestRecordGoldens: every record in testdata/records, written by an
// earlier schema (JSON) or binary version, reads as its .want.json says;
// the current version's record is written byte for byte as its golden file,
// so a field added, moved or dropped without a new version fails here.
func TestRecordGoldens(t *testing.T) {
	t.Run("member", func(t *testing.T) { recordGoldens[memberRecord](t, "member", memberBinV1) })
	t.Run("checkout", func(t *testing.T) { recordGoldens[checkoutRecord](t, "checkout", checkoutBinV1) })
}

func recordGoldens[T any, P binaryRecord[T]](t *testing.T, kind string, current byte) {
	dir := filepath.Join("testdata", "records")
	bin := filepath.Join(dir, fmt.Sprintf("%s.v%d.bin", kind, current))
	if _, err := os.Stat(bin); os.IsNotExist(err) && *writeGolden {
		rec := fullRecord[T, P](t, -1)
		b, err := rec.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(strings.TrimSuffix(bin, ".bin")+".want.json", []byte(jsonOf(t, rec)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, kind+".*"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, ".want.json") {
			continue
		}
		name := strings.TrimPrefix(filepath.Base(f), kind+".")
		seen[name] = true
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(strings.TrimSuffix(strings.TrimSuffix(f, ".bin"), ".json") + ".want.json")
		if err != nil {
			t.Fatalf("%s has no .want.json: %v", f, err)
		}
		rec := P(new(T))
		if err := rec.UnmarshalBinary(b); err != nil {
			t.Fatalf("%s no longer reads: %v", f, err)
		}
		if got := jsonOf(t, rec); got != strings.TrimSpace(string(want)) {
			t.Errorf("%s reads as\n%s\nwant\n%s", f, got, want)
		}
		if name == fmt.Sprintf("v%d.bin", current) {
			again, err := rec.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b) {
				t.Errorf("%s is not what version %d writes today: a field was added, moved or dropped without a new version\n got %x\nwant %x", f, current, again, b)
			}
		}
	}
	// The JSON of the versions before the binary form, and every binary
	// version up to the current one.
	for _, name := range append([]string{"json"}, binVersions(current)...) {
		if !seen[name] {
			t.Errorf("no golden %s record %s.%s in %s (write the current version's with -write-golden)", kind, kind, name, dir)
		}
	}
	// Fields are written in declaration order: each field set alone
	// changes the record first at a later byte than the field before it.
	zero, err := P(new(T)).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeFor[T]()
	prev := -1
	for i := range typ.NumField() {
		b, err := fullRecord[T, P](t, i).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		at := 0
		for at < len(b) && at < len(zero) && b[at] == zero[at] {
			at++
		}
		if at <= prev {
			t.Errorf("field %s is written before the field declared ahead of it", typ.Field(i).Name)
		}
		prev = at
	}
}

func binVersions(current byte) []string {
	var out []string
	for v := byte(1); v <= current; v++ {
		out = append(out, fmt.Sprintf("v%d.bin", v))
	}
	return out
}
