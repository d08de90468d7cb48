package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// mainEnv makes the test binary run the command itself (main) instead of
// the tests, so that tests can check what the real program prints and its
// exit status.
const mainEnv = "S3BACKUP_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runMain runs the program (this test binary as s3backup) with args and
// the extra environment, and returns its stdout, stderr and exit code.
func runMain(t testing.TB, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), mainEnv+"=1"), env...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// Test credentials of the throwaway gateway.
const (
	testKey    = "pgsbTestAccessKey42"
	testSecret = "pgsbTestSecret/Never+Printed"
)

// gateway is a Versity S3 Gateway on a loopback port, serving a directory.
type gateway struct {
	t    testing.TB
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd
}

// versitygwBinary finds the gateway: $VERSITYGW, the repository's
// .cache/bin (scripts/install-versitygw.sh), or $PATH. With CI=true a
// missing gateway fails the test instead of skipping it.
func versitygwBinary(t testing.TB) string {
	t.Helper()
	cands := []string{os.Getenv("VERSITYGW"), filepath.Join("..", "..", ".cache", "bin", "versitygw")}
	if p, err := exec.LookPath("versitygw"); err == nil {
		cands = append(cands, p)
	}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			abs, _ := filepath.Abs(c)
			return abs
		}
	}
	msg := "versitygw not found: run scripts/install-versitygw.sh (or set VERSITYGW)"
	if ci, err := strconv.ParseBool(strings.TrimSpace(os.Getenv("CI"))); err == nil && ci {
		t.Fatal(msg + "; CI=true makes that a failure")
	}
	t.Skip(msg)
	return ""
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startGateway starts a gateway with bucket "backups" and the test
// credentials in the environment of the test process.
func startGateway(t testing.TB) *gateway {
	t.Helper()
	g := &gateway{t: t, bin: versitygwBinary(t), dir: t.TempDir(), addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	t.Setenv("AWS_ACCESS_KEY_ID", testKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testSecret)
	g.start()
	t.Cleanup(g.stop)
	st := g.store(t, "")
	if err := st.core.Client.MakeBucket(context.Background(), "backups", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *gateway) start() {
	g.t.Helper()
	g.cmd = exec.Command(g.bin, "--port", g.addr, "posix", g.dir)
	g.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+testKey, "ROOT_SECRET_KEY="+testSecret)
	log, err := os.OpenFile(filepath.Join(g.t.TempDir(), "versitygw.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		g.t.Fatal(err)
	}
	g.cmd.Stdout, g.cmd.Stderr = log, log
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", g.addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("versitygw did not listen on %s", g.addr)
		}
	}
}

// kill stops the gateway abruptly, as a crash would.
func (g *gateway) kill() {
	if g.cmd != nil && g.cmd.Process != nil {
		g.cmd.Process.Signal(syscall.SIGKILL)
		g.cmd.Wait()
		g.cmd = nil
	}
}

func (g *gateway) stop() { g.kill() }

// freeze stops the gateway (SIGSTOP): connections stay open and nothing
// answers, like a hung server or a network that drops everything.
func (g *gateway) freeze() { g.cmd.Process.Signal(syscall.SIGSTOP) }

// thaw resumes a frozen gateway.
func (g *gateway) thaw() { g.cmd.Process.Signal(syscall.SIGCONT) }

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (g *gateway) config(prefix string) storeConfig {
	return storeConfig{Endpoint: g.addr, Bucket: "backups", Prefix: prefix, Insecure: true}
}

func (g *gateway) store(t testing.TB, prefix string) *store {
	t.Helper()
	st, err := openStore(g.config(prefix))
	if err != nil {
		t.Fatal(err)
	}
	return st
}
