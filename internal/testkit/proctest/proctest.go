// Package proctest runs `uraiden serve` as separate OS processes for the system tests
// (internal/systemtest/...): the binary built once per test binary, each run's output kept in
// a file, SIGKILL, SIGSTOP and SIGTERM; a dev chain serving JSON-RPC on loopback, which
// outlives the processes, with channels opened to the receiver; Checks sent over gRPC as
// Envoy sends them; and a ledger's records compared with the payments answered OK.
package proctest

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
)

// The uraiden binary, built once per test binary into binDir.
var (
	binDir    string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Main runs the tests of a package that calls Binary, and removes the binary afterwards;
// call it from TestMain.
func Main(m *testing.M) {
	var err error
	binDir, err = os.MkdirTemp("", "uraiden-proctest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// Binary builds cmd/uraiden on first use and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	if binDir == "" {
		t.Fatal("proctest: call proctest.Main from TestMain")
	}
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "uraiden")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/uraiden/uraiden/cmd/uraiden").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Proc is one run of `uraiden --config <file> serve`.
type Proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	log  string // the file of its stdout and stderr
	done chan struct{}
	err  error // the exit status, once done is closed
}

// Start runs `uraiden --config config serve` in dir, its output going to the file log. The
// process is killed when the test ends.
func Start(t testing.TB, dir, config, log string) *Proc {
	t.Helper()
	p := &Proc{t: t, log: log, done: make(chan struct{})}
	out, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close() // the child has its own copy
	p.cmd = exec.Command(Binary(t), "--config", config, "serve")
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.Kill)
	return p
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has ended; Err is then its exit status.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the exit status once Done is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Output is what the run wrote to stdout and stderr so far.
func (p *Proc) Output() string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	return string(data)
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill ends the process at once (SIGKILL) and waits for it.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Signal sends sig to the process (SIGSTOP freezes it where it is: its sockets stay open
// and its etcd lease is kept alive by nothing).
func (p *Proc) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop asks the process to shut down (SIGTERM) and returns its exit error.
func (p *Proc) Stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.Kill()
		return errors.New("did not stop within 30s of SIGTERM")
	}
	return p.err
}

// Wait waits for the process to end by itself and returns its exit error; the test fails
// when it is still running after within.
func (p *Proc) Wait(within time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		p.Kill()
		p.t.Fatalf("uraiden serve still running after %s:\n%s", within, p.Output())
		return nil
	}
}

// Ready waits until the admin server at adminAddr answers 200 on /readyz: the ledger opened
// and takes writes, and the chain is followed.
func (p *Proc) Ready(adminAddr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		if p.Exited() {
			return fmt.Errorf("uraiden serve exited (%v) before it was ready:\n%s", p.err, p.Output())
		}
		code, body := Get(adminAddr, "/readyz")
		if code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("uraiden serve not ready within %s: /readyz answers %d %s\n%s", within, code, body, Tail(p.Output(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Get fetches a path of the admin server at adminAddr; the status is 0 when it does not
// answer.
func Get(adminAddr, path string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + adminAddr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// AuthzClient connects to the Check of the service at addr over gRPC. The connection
// retries quickly, since the tests restart services on the same port.
func AuthzClient(t testing.TB, addr string) authv3.AuthorizationClient {
	t.Helper()
	bc := backoff.DefaultConfig
	bc.BaseDelay, bc.MaxDelay = 20*time.Millisecond, 50*time.Millisecond
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// WaitFor polls cond until it holds, and fails the test when within passes first.
func WaitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Tail is the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
