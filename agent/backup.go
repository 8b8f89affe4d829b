package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/agent/store"
	"github.com/offline-loyalty/terminal/internal/buildstamp"
)

// A backup is a tar archive of four members, mode 0600: backup.json (its
// BackupInfo), ledger.db (a whole bbolt file, one committed state of the
// ledger) and, for a terminal that joined, its identity (terminal.key and
// link.json), which a till rebuilt on a new disk needs to reconnect as
// itself. It holds the terminal's private key: keep it as the till itself.
const (
	backupFormat   = 1
	backupManifest = "backup.json"
	// maxBackupMeta bounds the small members a restore reads into memory,
	// maxBackupLedger the ledger it writes to disk.
	maxBackupMeta   = 1 << 20
	maxBackupLedger = 16 << 30
)

// BackupInfo describes a backup: whose ledger, at which point of it.
type BackupInfo struct {
	Format   int       `json:"format"`
	Terminal string    `json:"terminal"`
	Store    string    `json:"store"`
	Epoch    string    `json:"epoch"`
	Seq      uint64    `json:"seq"`   // the last event it holds
	Acked    uint64    `json:"acked"` // head office's durable sequence when it was taken
	Time     time.Time `json:"time"`
	Version  string    `json:"version"` // of the pos-agent that took it
	Bytes    int64     `json:"ledger_bytes"`
}

// Backup writes a consistent copy of the ledger and the terminal's identity
// to w while the agent runs: every write that returned before the call is
// in it. Checkouts go on meanwhile.
func (a *Agent) Backup(w io.Writer) (BackupInfo, error) {
	var ident [][2]string // name, content
	for _, name := range []string{KeyFile, LinkFile} {
		b, err := os.ReadFile(filepath.Join(a.dir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return BackupInfo{}, err
		}
		ident = append(ident, [2]string{name, string(b)})
	}
	var info BackupInfo
	tw := tar.NewWriter(w)
	now := a.now().UTC()
	header := func(name string, size int64) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: now, Typeflag: tar.TypeReg})
	}
	err := a.st.Backup(func(tx *store.Tx, size int64, copyTo func(io.Writer) error) error {
		info = BackupInfo{Format: backupFormat, Terminal: tx.Meta("terminal"), Store: tx.Meta("store"), Epoch: tx.Meta("epoch"),
			Acked: tx.MetaUint("acked"), Time: now, Version: buildstamp.Get().Version, Bytes: size}
		info.Seq, _ = tx.LastEvent()
		manifest, _ := json.MarshalIndent(info, "", "  ")
		manifest = append(manifest, '\n')
		if err := header(backupManifest, int64(len(manifest))); err != nil {
			return err
		}
		if _, err := tw.Write(manifest); err != nil {
			return err
		}
		if err := header(LedgerFile, size); err != nil {
			return err
		}
		return copyTo(tw)
	})
	if err != nil {
		return BackupInfo{}, fmt.Errorf("backup: %w", err)
	}
	for _, f := range ident {
		if err := header(f[0], int64(len(f[1]))); err != nil {
			return BackupInfo{}, fmt.Errorf("backup: %w", err)
		}
		if _, err := io.WriteString(tw, f[1]); err != nil {
			return BackupInfo{}, fmt.Errorf("backup: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return BackupInfo{}, fmt.Errorf("backup: %w", err)
	}
	return info, nil
}

// RestoreOptions say how a restore treats a data directory that has a
// ledger already.
type RestoreOptions struct {
	// Replace moves an existing ledger (and its log) aside, kept as
	// *.replaced-<time>, instead of refusing.
	Replace bool
	Repair  RepairOptions
}

// RestoreReport says what a restore brought back and what it could not.
type RestoreReport struct {
	Backup BackupInfo   `json:"backup"`
	Repair RepairReport `json:"repair"`
	// Replaced and ReplacedLog are where the ledger and log the restore
	// replaced were kept ("" when there were none).
	Replaced    string `json:"replaced,omitempty"`
	ReplacedLog string `json:"replaced_log,omitempty"`
}

// Errors of a restore.
var (
	ErrBackup    = errors.New("not a pos-agent backup")
	ErrHasLedger = errors.New("the data directory has a ledger")
	ErrOtherTill = errors.New("the backup is another terminal's")
)

// Restore brings a backup back into dir (no agent may have it open). The
// ledger is rebuilt from the backup's events as a new epoch, as Repair
// rebuilds one, so that no sequence of the backed-up epoch is ever used
// twice: the events the till wrote after the backup stay in head office's
// chain of the old epoch, and once connected the terminal asks head office
// for them (those that never reached it are lost). A directory with a
// ledger is refused unless opts.Replace; one with another terminal's
// identity always is.
func Restore(ctx context.Context, dir string, r io.Reader, opts RestoreOptions) (RestoreReport, error) {
	var rep RestoreReport
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return rep, err
	}
	tmp, err := os.MkdirTemp(dir, ".restore-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(tmp)
	files, err := readBackup(r, tmp)
	if err != nil {
		return rep, err
	}
	if err := json.Unmarshal(files[backupManifest], &rep.Backup); err != nil || rep.Backup.Format != backupFormat {
		return rep, fmt.Errorf("%w: backup.json is not a format %d manifest", ErrBackup, backupFormat)
	}
	sal, err := store.ReadSalvage(tmp)
	if err != nil {
		return rep, fmt.Errorf("%w: ledger.db: %v", ErrBackup, err)
	}
	if sal.Meta["epoch"] != rep.Backup.Epoch || sal.Meta["terminal"] != rep.Backup.Terminal {
		return rep, fmt.Errorf("%w: its ledger is terminal %q epoch %q, backup.json says %q epoch %q", ErrBackup,
			sal.Meta["terminal"], sal.Meta["epoch"], rep.Backup.Terminal, rep.Backup.Epoch)
	}
	for _, name := range []string{KeyFile, LinkFile} {
		have, err := os.ReadFile(filepath.Join(dir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return rep, err
		case files[name] == nil || !bytes.Equal(have, files[name]):
			return rep, fmt.Errorf("%w: it is %s's, and %s holds another identity (%s)", ErrOtherTill, rep.Backup.Terminal, dir, name)
		}
	}
	stamp := ".replaced-" + time.Now().UTC().Format("20060102T150405Z")
	for _, name := range []string{LedgerFile, "wal"} {
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if !opts.Replace {
			return rep, fmt.Errorf("%w (%s): restore --replace keeps it aside and restores over it", ErrHasLedger, p)
		}
		if err := os.Rename(p, p+stamp); err != nil {
			return rep, err
		}
		if name == LedgerFile {
			rep.Replaced = p + stamp
		} else {
			rep.ReplacedLog = p + stamp
		}
	}
	for _, name := range []string{KeyFile, LinkFile} {
		if files[name] == nil {
			continue
		}
		if err := writeFileSync(filepath.Join(dir, name), files[name]); err != nil {
			return rep, err
		}
	}
	if err := os.Rename(filepath.Join(tmp, LedgerFile), filepath.Join(dir, LedgerFile)); err != nil {
		return rep, err
	}
	ro := opts.Repair
	ro.Terminal, ro.Store = firstOf(ro.Terminal, rep.Backup.Terminal), firstOf(ro.Store, rep.Backup.Store)
	rep.Repair, err = Repair(ctx, dir, ro)
	if err != nil {
		return rep, fmt.Errorf("restore: %w", err)
	}
	// Repair kept the backup's file aside as a damaged one: it is not, and
	// the backup itself is where it came from.
	if rep.Repair.Damaged != "" {
		_ = os.Remove(rep.Repair.Damaged)
		rep.Repair.Damaged = ""
	}
	return rep, nil
}

// readBackup reads a backup archive: the ledger into tmp, the small members
// into memory. Any other member, a member twice or a missing one refuses it.
func readBackup(r io.Reader, tmp string) (map[string][]byte, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBackup, err)
		}
		if _, dup := files[h.Name]; dup || h.Typeflag != tar.TypeReg || sparse(h) {
			return nil, fmt.Errorf("%w: member %q", ErrBackup, h.Name)
		}
		switch h.Name {
		case LedgerFile:
			if h.Size > maxBackupLedger {
				return nil, fmt.Errorf("%w: a ledger.db of %d bytes", ErrBackup, h.Size)
			}
			if err := copyToFile(filepath.Join(tmp, LedgerFile), tr); err != nil {
				return nil, fmt.Errorf("%w: ledger.db: %v", ErrBackup, err)
			}
			files[h.Name] = []byte{}
		case backupManifest, KeyFile, LinkFile:
			b, err := io.ReadAll(io.LimitReader(tr, maxBackupMeta+1))
			if err != nil || len(b) > maxBackupMeta {
				return nil, fmt.Errorf("%w: %s: too large or unreadable", ErrBackup, h.Name)
			}
			files[h.Name] = b
		default:
			return nil, fmt.Errorf("%w: unexpected member %q", ErrBackup, h.Name)
		}
	}
	for _, name := range []string{backupManifest, LedgerFile} {
		if files[name] == nil {
			return nil, fmt.Errorf("%w: no %s in it", ErrBackup, name)
		}
	}
	return files, nil
}

// sparse reports a member stored as a sparse file (PAX GNU.sparse records),
// which a few bytes of archive can expand to any size.
func sparse(h *tar.Header) bool {
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// copyToFile writes r to a new file at path, mode 0600, synced.
func copyToFile(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeFileSync replaces path with b, mode 0600, synced.
func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := copyToFile(tmp, bytes.NewReader(b)); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
