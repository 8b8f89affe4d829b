package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// backupOf returns a backup of an agent with a member and n earns, taken
// while two goroutines earn on, and the agent.
func backupOf(t *testing.T, n int) ([]byte, BackupInfo, *Agent) {
	t.Helper()
	ctx := context.Background()
	a := openAgent(t)
	if _, err := a.Enroll(ctx, EnrollRequest{Card: "4000000000000002"}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := a.Earn(ctx, EarnRequest{Card: "4000000000000002", Amount: "3.00", Ref: fmt.Sprint("r", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for lane := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := a.Earn(ctx, EarnRequest{Card: "4000000000000002", Amount: "1.00", Ref: fmt.Sprint("lane", lane, "-", i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var buf bytes.Buffer
	info, err := a.Backup(&buf)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), info, a
}

func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	b, info, a := backupOf(t, 20)
	st := a.Status()
	if info.Format != 1 || info.Epoch != st.Epoch || info.Seq < 21 || info.Seq > st.Seq || info.Terminal != st.Terminal {
		t.Fatalf("backup %+v of a ledger at %+v", info, st)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	rep, err := Restore(ctx, dir, bytes.NewReader(b), RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Repair.NewEpoch == info.Epoch || uint64(rep.Repair.Kept) != info.Seq || rep.Repair.Damaged != "" {
		t.Fatalf("restore %+v of %+v", rep, info)
	}
	r, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The new epoch starts at 1, and asks head office for the backed-up
	// epoch's events after the backup.
	if s := r.Status(); s.Epoch != rep.Repair.NewEpoch || s.Seq != 0 || s.Terminal != info.Terminal {
		t.Fatalf("restored status %+v", s)
	}
	if req, ok := r.NextHistoryRequest(); !ok || req.Epoch != info.Epoch || req.After != info.Seq || req.Until != 0 {
		t.Fatalf("refill %+v %v", req, ok)
	}
	// A checkout of the backup, retried, is answered from it.
	res, err := r.Earn(ctx, EarnRequest{Card: "4000000000000002", Amount: "3.00", Ref: "r7"})
	if err != nil || res.Ref != "r7" || r.Status().Seq != 0 {
		t.Fatalf("retried earn %+v %v, seq %d", res, err, r.Status().Seq)
	}
	for _, p := range []string{dir, filepath.Join(dir, LedgerFile)} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Fatalf("%s: %v %v", p, fi.Mode(), err)
		}
	}
}

func TestRestoreRefuses(t *testing.T) {
	ctx := context.Background()
	b, info, _ := backupOf(t, 3)
	// Over a ledger: refused unless asked to replace it, which keeps it.
	dir := t.TempDir()
	if _, err := Restore(ctx, dir, bytes.NewReader(b), RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, dir, bytes.NewReader(b), RestoreOptions{}); !errors.Is(err, ErrHasLedger) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("restore over a ledger: %v", err)
	}
	rep, err := Restore(ctx, dir, bytes.NewReader(b), RestoreOptions{Replace: true})
	if err != nil || rep.Replaced == "" {
		t.Fatalf("restore --replace: %+v %v", rep, err)
	}
	if _, err := os.Stat(rep.Replaced); err != nil {
		t.Fatalf("the replaced ledger was not kept: %v", err)
	}
	// Another terminal's identity in the directory.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, KeyFile), []byte("someone else"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, other, bytes.NewReader(b), RestoreOptions{}); !errors.Is(err, ErrOtherTill) {
		t.Fatalf("restore over another identity: %v", err)
	}
	// Archives that are not backups.
	var manifestOnly, foreign, lying bytes.Buffer
	writeTar(t, &manifestOnly, map[string][]byte{"backup.json": []byte(`{"format":1}`)})
	writeTar(t, &foreign, map[string][]byte{"backup.json": []byte(`{"format":1}`), "../etc/passwd": []byte("x")})
	ledger := tarMember(t, b, LedgerFile)
	writeTar(t, &lying, map[string][]byte{"backup.json": []byte(fmt.Sprintf(`{"format":1,"terminal":%q,"epoch":"0000"}`, info.Terminal)), LedgerFile: ledger})
	for name, archive := range map[string][]byte{
		"empty": nil, "garbage": []byte("not a tar archive at all, not even close....."), "truncated": b[:len(b)/2],
		"manifest only": manifestOnly.Bytes(), "a foreign member": foreign.Bytes(), "a manifest that lies": lying.Bytes(),
	} {
		d := filepath.Join(t.TempDir(), "till")
		_, err := Restore(ctx, d, bytes.NewReader(archive), RestoreOptions{})
		if !errors.Is(err, ErrBackup) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v", name, err)
		}
		if entries, _ := os.ReadDir(d); len(entries) != 0 {
			t.Errorf("%s: a refused restore left %v", name, entries)
		}
	}
}

func writeTar(t testing.TB, w *bytes.Buffer, files map[string][]byte) {
	t.Helper()
	tw := tar.NewWriter(w)
	for _, name := range []string{"backup.json", LedgerFile, "../etc/passwd"} {
		if b, ok := files[name]; ok {
			if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
				t.Fatal(err)
			}
			_, _ = tw.Write(b)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func tarMember(t *testing.T, archive []byte, name string) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no %s in the backup: %v", name, err)
		}
		if h.Name == name {
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(tr)
			return buf.Bytes()
		}
	}
}

// FuzzRestore: whatever the archive, a restore into an empty directory
// either succeeds or refuses it as not a backup, leaving the directory empty.
func FuzzRestore(f *testing.F) {
	var small bytes.Buffer
	writeTar(f, &small, map[string][]byte{"backup.json": []byte(`{"format":1,"terminal":"T","epoch":"e"}`), LedgerFile: []byte("bolt")})
	f.Add(small.Bytes())
	f.Add([]byte{})
	f.Add(make([]byte, 1024))
	f.Fuzz(func(t *testing.T, archive []byte) {
		d := filepath.Join(t.TempDir(), "till")
		_, err := Restore(context.Background(), d, bytes.NewReader(archive), RestoreOptions{})
		if err == nil {
			return
		}
		if !errors.Is(err, ErrBackup) {
			t.Fatalf("not refused as a backup: %v", err)
		}
		if entries, _ := os.ReadDir(d); len(entries) != 0 {
			t.Fatalf("a refused restore left %v", entries)
		}
	})
}
