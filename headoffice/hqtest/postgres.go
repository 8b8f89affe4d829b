package hqtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/offline-loyalty/terminal/headoffice/hqpg"
)

// Cluster is a real PostgreSQL server from Debian's postgresql package,
// started by the tests in a temporary directory on a free loopback port.
// Run as root, it belongs to the unprivileged postgres user (initdb and
// postgres refuse root). One cluster serves a whole test binary; each test
// gets databases of its own in it.
type Cluster struct {
	bin, dir, data, socket, log string
	port                        int
	runAs                       string // "" or the user to run the server as
	next                        atomic.Int64
}

var (
	clusterOnce sync.Once
	cluster     *Cluster
	clusterErr  error
)

// Main runs a test binary's tests, stops its cluster after them if one was
// started, and exits. Packages that use Postgres call it (or Run) from
// TestMain.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main for a TestMain with more to do after the tests: it returns
// the exit code.
func Run(m *testing.M) int {
	code := m.Run()
	if cluster != nil {
		cluster.Stop()
	}
	return code
}

// Postgres returns the test binary's cluster, starting it on first use. A
// machine without PostgreSQL fails the test (scripts/deps.sh installs it);
// it is never skipped.
func Postgres(tb testing.TB) *Cluster {
	tb.Helper()
	clusterOnce.Do(func() { cluster, clusterErr = startCluster() })
	if clusterErr != nil {
		tb.Fatalf("PostgreSQL: %v (scripts/deps.sh installs it)", clusterErr)
	}
	return cluster
}

// PostgresStore migrates a new database in the cluster and opens head
// office's store on it, closed when the test ends.
func PostgresStore(tb testing.TB, opts hqpg.Options) (*hqpg.DB, string) {
	tb.Helper()
	url := Postgres(tb).NewDatabase(tb)
	if _, err := hqpg.Migrate(context.Background(), url); err != nil {
		tb.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = Quiet()
	}
	db, err := hqpg.Open(context.Background(), url, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db, url
}

// binDir finds the newest installed server's programs.
func binDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d, nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		return "", fmt.Errorf("no /usr/lib/postgresql/*/bin/initdb")
	}
	sort.Slice(found, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[j]))))
		return vi < vj
	})
	return filepath.Dir(found[len(found)-1]), nil
}

func startCluster() (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hq-postgres-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, dir: dir, data: filepath.Join(dir, "data"), socket: dir, log: filepath.Join(dir, "server.log")}
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		c.runAs = "postgres"
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	if out, err := c.command("initdb", "-D", c.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if err := c.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cluster) command(prog string, args ...string) *exec.Cmd {
	path := filepath.Join(c.bin, prog)
	if c.runAs != "" {
		return exec.Command("runuser", append([]string{"-u", c.runAs, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

// Start starts the server (again) and waits until it accepts connections.
func (c *Cluster) Start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=128MB", c.port, c.socket)
	if out, err := c.command("pg_ctl", "-D", c.data, "-o", opts, "-l", c.log, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(c.log)
		return fmt.Errorf("pg_ctl start: %v: %s %s", err, out, log)
	}
	return nil
}

// Crash stops the server at once, as a power cut would (immediate
// shutdown: no checkpoint; the next start recovers from the WAL).
func (c *Cluster) Crash() error {
	if out, err := c.command("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	return nil
}

// Stop stops the server and removes its directory.
func (c *Cluster) Stop() {
	_ = c.command("pg_ctl", "-D", c.data, "-m", "fast", "-w", "stop").Run()
	os.RemoveAll(c.dir)
}

// URL is the address of database db in the cluster.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// NewDatabase creates an empty database and returns its URL.
func (c *Cluster) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), c.next.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{strings.ToLower(name)}.Sanitize()); err != nil {
		tb.Fatal(err)
	}
	return c.URL(name)
}
