// Package upstreamtest runs real upstreams for tests: Python's http.server, the static
// upstream of the Compose example (envoy/docker-compose.yaml), which resolves paths its own
// way (it unquotes, then normalizes: /x/../a, //a and /a%2Fb all reach their file).
package upstreamtest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// PricedFile writes the demo's priced file, echofix/hello holding "hello", under a new
// temporary directory and returns the directory.
func PricedFile(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "echofix"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "echofix", "hello"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// PythonFileServer runs python3 -m http.server over dir on a loopback port and returns its
// host:port. Without python3 the test is skipped, or fails under CI.
func PythonFileServer(t testing.TB, dir string) string {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 is not installed: it runs the real upstream of this test")
		}
		t.Skip("python3 is not installed")
	}
	cmd := exec.Command(python, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard // one access log line per request
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// "Serving HTTP on 127.0.0.1 port 43567 (http://127.0.0.1:43567/) ..."
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		var port int
		if _, err := fmt.Sscanf(strings.TrimPrefix(l, "Serving HTTP on 127.0.0.1 port "), "%d", &port); err != nil {
			t.Fatalf("python3 -m http.server said %q", l)
		}
		return fmt.Sprintf("127.0.0.1:%d", port)
	case <-time.After(15 * time.Second):
		t.Fatal("python3 -m http.server did not start")
		return ""
	}
}

// RawGet sends target as it is on a GET request line (Go's client would clean it, as curl
// does without --path-as-is) and returns the status and body.
func RawGet(t testing.TB, addr, target string) (int, string) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", target); err != nil {
		t.Error(err)
		return 0, ""
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
